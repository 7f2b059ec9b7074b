package jsontext

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "empty", in: "", want: `""`},
		{name: "plain", in: "hello, world", want: `"hello, world"`},
		{name: "quote and backslash", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "short forms", in: "\b\f\n\r\t", want: `"\b\f\n\r\t"`},
		{name: "other controls", in: "\x00\x01\x1f", want: `"\u0000\u0001\u001f"`},
		{name: "DEL kept", in: "\x7f", want: "\"\x7f\""},
		{name: "html", in: "<a href='x'>&</a>", want: `"\u003ca href='x'\u003e\u0026\u003c/a\u003e"`},
		{name: "line separators", in: "a\u2028b\u2029c", want: `"a\u2028b\u2029c"`},
		{name: "utf8 kept", in: "café 😀 ✓", want: `"café 😀 ✓"`},
		{name: "invalid byte", in: "a\xffb", want: `"a\ufffdb"`},
		{name: "truncated rune", in: "\xe2\x82", want: `"\ufffd\ufffd"`},
		{name: "truncated at end", in: "ok\xf0\x9f\x98", want: `"ok\ufffd\ufffd\ufffd"`},
		{name: "encoded surrogate", in: "\xed\xa0\x80", want: `"\ufffd\ufffd\ufffd"`},
		{name: "U+FFFD kept", in: "\uFFFD", want: "\"\uFFFD\""},
		{name: "slash kept", in: "a/b", want: `"a/b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(AppendString(nil, tc.in)); got != tc.want {
				t.Errorf("AppendString(string) = %s, want %s", got, tc.want)
			}
			if got := string(AppendString(nil, []byte(tc.in))); got != tc.want {
				t.Errorf("AppendString([]byte) = %s, want %s", got, tc.want)
			}
			// encoding/json follows the same rules.
			if want, _ := json.Marshal(tc.in); string(want) != tc.want {
				t.Errorf("encoding/json gives %s", want)
			}
		})
	}
}

// randString returns a short string mixing ASCII, bytes that need escaping,
// multi-byte runes and, when valid is false, invalid UTF-8.

// AppendString must agree with encoding/json, so that both wire codecs
// write the strings any JSON client expects.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "hello", `a"b\c`, "\b\f\n\r\t\x00\x1f\x7f", "<>&", "\u2028\u2029",
		"café 😀", "\xff", "\xe2\x82", "ok\xf0\x9f\x98", "\xed\xa0\x80", "\uFFFD", strings.Repeat("x", 300)} {
		t.Run(s, func(t *testing.T) {
			want, _ := json.Marshal(s)
			if got := AppendString(nil, s); !bytes.Equal(got, want) {
				t.Fatalf("string: got %s, want %s", got, want)
			}
			if got := AppendString(nil, []byte(s)); !bytes.Equal(got, want) {
				t.Fatalf("[]byte: got %s, want %s", got, want)
			}
		})
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "hello", `a"b\c`, "\b\f\n\r\t\x00\x1f\x7f", "<>&", "\u2028\u2029",
		"café 😀", "\xff", "\xe2\x82", "ok\xf0\x9f\x98", "\xed\xa0\x80", "\uFFFD", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString([]byte("[1,"), s)
		if !bytes.HasPrefix(out, []byte("[1,")) {
			t.Fatal("dst prefix lost")
		}
		out = out[len("[1,"):]
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("AppendString(%q) = %q is not valid JSON text", s, out)
		}
		if b := AppendString(nil, []byte(s)); !bytes.Equal(b, out) {
			t.Fatalf("[]byte gives %q, string gives %q", b, out)
		}
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		// Valid UTF-8 comes back unchanged; each invalid byte as U+FFFD.
		if want := validText(s); got != want {
			t.Fatalf("AppendString(%q) decodes to %q, want %q", s, got, want)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("valid input %q decodes to %q", s, got)
		}
		if bytes.ContainsAny(out, "<>&\u2028\u2029") {
			t.Fatalf("AppendString(%q) = %q leaves HTML or JS line terminators unescaped", s, out)
		}
		if want, _ := json.Marshal(s); !bytes.Equal(out, want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json gives %s", s, out, want)
		}
	})
}

// validText is what encoding/json decodes s as: each invalid byte U+FFFD.
func validText(s string) string { return string([]rune(s)) }

func TestAppendStringAllocs(t *testing.T) {
	dst := make([]byte, 0, 64)
	tests := []struct {
		name string
		f    func()
	}{
		{name: "string", f: func() { dst = AppendString(dst[:0], "é😀\xff<\u2028") }},
		{name: "string from bytes", f: func() { dst = AppendString(dst[:0], []byte("é😀\xff<")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tc.f); n != 0 {
				t.Errorf("%v allocations per call, want 0", n)
			}
		})
	}
}
