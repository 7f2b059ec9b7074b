package jsontext

import (
	"encoding/json"
	"testing"
)

func TestUnquote(t *testing.T) {
	for _, raw := range []string{`""`, `"abc"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\ud83d\ude00"`, `"\ud800x"`, `"\udc00\ud800"`,
		"\"\xff\"", `"\u0041\u004A"`} {
		t.Run(raw, func(t *testing.T) {
			var want string
			if err := json.Unmarshal([]byte(raw), &want); err != nil {
				t.Fatal(err)
			}
			if got := Unquote([]byte(raw)); string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

// TestAppendUnquotedMalformed feeds escapes only invalid JSON can contain:
// AppendUnquoted must copy them through without reading out of bounds.
func TestAppendUnquotedMalformed(t *testing.T) {
	tests := []struct{ in, want string }{
		{`\`, `\`},
		{`a\`, `a\`},
		{`\q`, `\q`},
		{`\u`, `\u`},
		{`\u12`, `\u12`},
		{`\u12g4`, `\u12g4`},
		{`\ud800\u`, "\uFFFD\\u"},
		{`\ud800\`, "\uFFFD\\"},
		{`\ud800\ud`, "\uFFFD\\ud"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := string(AppendUnquoted(nil, []byte(tc.in))); got != tc.want {
				t.Errorf("AppendUnquoted(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
