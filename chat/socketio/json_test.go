package socketio

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// appendString must agree with encoding/json, whose escaping rules
// chat/native follows too, so both wire codecs write the same strings.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "hello", `a"b\c`, "\b\f\n\r\t\x00\x1f\x7f", "<>&", "\u2028\u2029",
		"café 😀", "\xff", "\xe2\x82", "ok\xf0\x9f\x98", "\xed\xa0\x80", "\uFFFD", strings.Repeat("x", 300)} {
		t.Run(s, func(t *testing.T) {
			want, _ := json.Marshal(s)
			if got := appendString(nil, s); !bytes.Equal(got, want) {
				t.Fatalf("string: got %s, want %s", got, want)
			}
			if got := appendString(nil, []byte(s)); !bytes.Equal(got, want) {
				t.Fatalf("[]byte: got %s, want %s", got, want)
			}
		})
	}
}

func TestUnquote(t *testing.T) {
	for _, raw := range []string{`""`, `"abc"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\ud83d\ude00"`, `"\ud800x"`, `"\udc00\ud800"`,
		"\"\xff\"", `"\u0041\u004A"`} {
		t.Run(raw, func(t *testing.T) {
			var want string
			if err := json.Unmarshal([]byte(raw), &want); err != nil {
				t.Fatal(err)
			}
			if got := unquote([]byte(raw)); string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

func TestParseUint(t *testing.T) {
	tests := []struct {
		in    string
		limit uint64
		n     uint64
		end   int
		ok    bool
	}{
		{"0", 10, 0, 1, true},
		{"10x", 10, 10, 2, true},
		{"11", 10, 0, 1, false},
		{"x", 10, 0, 0, false},
		{"18446744073709551615", 1<<64 - 1, 1<<64 - 1, 20, true},
		{"18446744073709551616", 1<<64 - 1, 0, 19, false},
		{"9223372036854775807", 1<<63 - 1, 1<<63 - 1, 19, true},
		{"9223372036854775808", 1<<63 - 1, 0, 18, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, end, ok := parseUint([]byte(tt.in), 0, tt.limit)
			if ok != tt.ok || ok && (n != tt.n || end != tt.end) {
				t.Fatalf("got (%d, %d, %v), want (%d, %d, %v)", n, end, ok, tt.n, tt.end, tt.ok)
			}
		})
	}
}
