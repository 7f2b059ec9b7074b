package jsontext

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestUnquoteText(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{`""`, "", true},
		{`"abc"`, "abc", true},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t", true},
		{`"\u00e9\ud83d\ude00"`, "é😀", true},
		{`"\uD83D\uDE00"`, "😀", true},
		{`"\ufffd"`, "\ufffd", true},
		{"\"\ufffd\"", "\ufffd", true},
		{`"\u0000"`, "\x00", true},    // text as JSON goes; names refuse NUL later
		{`"\\ud800"`, `\ud800`, true}, // an escaped backslash, no escape
		{`"\\\ud83d\ude00"`, `\😀`, true},
		{`"\ud800"`, "", false},
		{`"\udfff"`, "", false},
		{`"\udc00\ud800"`, "", false},
		{`"a\ud800b"`, "", false},
		{`"\ud800\u0041"`, "", false},
		{`"\ud800\ud800"`, "", false},
		{`"\ud800\ud83d\ude00"`, "", false},
		{`"\ud83d\ude00\udbff"`, "", false},
		{`"\ud800\n"`, "", false},
		{"\"\xff\"", "", false},
		{"\"a\xe2\x82\"", "", false},
		{"\"\xed\xa0\x80\"", "", false},
		{"\"\\n\xff\"", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, ok := UnquoteText([]byte(tc.raw))
			if ok != tc.ok || ok && string(got) != tc.want {
				t.Fatalf("UnquoteText(%s) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
			}
			if ok {
				var want string
				if err := json.Unmarshal([]byte(tc.raw), &want); err != nil || want != string(got) {
					t.Fatalf("encoding/json decodes %q (%v)", want, err)
				}
			}
		})
	}
}

func TestUnquoteTextAllocs(t *testing.T) {
	raw := []byte(`"lobby-café"`)
	if n := testing.AllocsPerRun(100, func() { UnquoteText(raw) }); n != 0 {
		t.Errorf("UnquoteText without escapes allocates %v times", n)
	}
}

// FuzzUnquoteText: what encoding/json writes for a Go string (valid UTF-8)
// is text and comes back unchanged; what UnquoteText accepts decodes as
// Unquote decodes it; what it refuses is what Unquote had to replace
// with U+FFFD.
func FuzzUnquoteText(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud800"`, `"\ud83d\ude00"`, `"\\\ud800"`, "\"\xff\"", `"\udfff\ufffd"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if utf8.ValidString(s) {
			raw, _ := json.Marshal(s)
			if got, ok := UnquoteText(raw); !ok || string(got) != s {
				t.Fatalf("UnquoteText(%s) = %q, %v; want %q", raw, got, ok, s)
			}
		}
		raw := []byte(s)
		if !json.Valid(raw) || !IsString(raw) {
			return
		}
		got, ok := UnquoteText(raw)
		u := Unquote(raw)
		if ok && string(got) != string(u) {
			t.Fatalf("UnquoteText(%s) = %q, Unquote gives %q", raw, got, u)
		}
		if !ok && !strings.ContainsRune(string(u), utf8.RuneError) {
			t.Fatalf("UnquoteText(%s) refused, yet Unquote replaced nothing: %q", raw, u)
		}
	})
}

func TestDeeperThan(t *testing.T) {
	tests := []struct {
		in    string
		depth int // the nesting of in
	}{
		{`1`, 0},
		{`"[[["`, 0},
		{`[]`, 1},
		{`{}`, 1},
		{`[[]]`, 2},
		{`{"a":[{"b":"]]]"}]}`, 3},
		{`[1,[2,[3]],[4]]`, 3},
		{`{"\"[":[["\\"]]}`, 3},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), 100},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if DeeperThan([]byte(tc.in), tc.depth) {
				t.Errorf("DeeperThan(%s, %d) = true", tc.in, tc.depth)
			}
			if tc.depth > 0 && !DeeperThan([]byte(tc.in), tc.depth-1) {
				t.Errorf("DeeperThan(%s, %d) = false", tc.in, tc.depth-1)
			}
		})
	}
	// Not JSON: some answer, no panic.
	for _, in := range []string{`"`, `["`, `]]]`, `[[`, `"\`} {
		DeeperThan([]byte(in), 1)
	}
	data := []byte(`{"text":"hello","list":[1,{"a":[true]}]}`)
	if n := testing.AllocsPerRun(100, func() { DeeperThan(data, 64) }); n != 0 {
		t.Errorf("DeeperThan allocates %v times", n)
	}
}
