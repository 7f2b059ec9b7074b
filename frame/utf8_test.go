package frame

import (
	"testing"
	"unicode/utf8"
)

// completions are the suffixes that validPrefix tries. Every range of a
// second byte in RFC 3629 §4 contains one of these bytes, and later bytes
// accept all of 80-BF, so a prefix can be completed iff one of them works.
var completions = func() [][]byte {
	cont := []byte{0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf}
	out := [][]byte{nil}
	for _, a := range cont {
		out = append(out, []byte{a})
		for _, b := range cont {
			out = append(out, []byte{a, b})
			for _, c := range cont {
				out = append(out, []byte{a, b, c})
			}
		}
	}
	return out
}()

// validPrefix is the reference for fail-fast validation: whether p is a
// prefix of some valid UTF-8 string.
func validPrefix(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	// Only the last sequence can be completed, and it starts within the
	// last 3 bytes; the bytes before it must be valid on their own.
	cut := -1
	for i := len(p) - 1; i >= 0 && i >= len(p)-3; i-- {
		if utf8.RuneStart(p[i]) {
			cut = i
			break
		}
	}
	if cut < 0 || !utf8.Valid(p[:cut]) {
		return false
	}
	tail := p[cut:]
	if tail[0] < 0xc2 || tail[0] > 0xf4 {
		return false // no multibyte sequence starts with this byte
	}
	for _, c := range completions {
		if utf8.Valid(append(append([]byte(nil), tail...), c...)) {
			return true
		}
	}
	return false
}

// checkUTF8 feeds in to a validator in pieces cut at cuts and checks after
// every piece that it agrees with validPrefix, and at the end with
// utf8.Valid.
func checkUTF8(tb testing.TB, in []byte, cuts []int) {
	tb.Helper()
	var v UTF8
	prev := 0
	ok := true
	for i := 0; i <= len(cuts); i++ {
		end := len(in)
		if i < len(cuts) {
			end = cuts[i]
		}
		ok = v.Feed(in[prev:end])
		prev = end
		if want := validPrefix(in[:end]); ok != want {
			tb.Fatalf(
				"%q cut at %v: Feed after %d bytes = %v; want %v",
				in, cuts, end, ok, want)
		}
		if !ok {
			break
		}
	}
	if got, want := ok && v.Done(), utf8.Valid(in); got != want {
		tb.Fatalf(
			"%q cut at %v: valid = %v; utf8.Valid = %v",
			in, cuts, got, want)
	}
}

func TestUTF8(t *testing.T) {
	for _, test := range []struct {
		name string
		in   string
	}{
		{
			name: "empty",
			in:   "",
		},
		{
			name: "ascii",
			in:   "hello, world",
		},
		{
			name: "two to four bytes",
			in:   "\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf",
		},
		{
			name: "greek",
			in:   "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
		},
		{
			name: "C0 C1 overlong",
			in:   "a\xc0\xafb\xc1\xbf",
		},
		{
			name: "E0 80 overlong",
			in:   "\xe0\x80\xaf",
		},
		{
			name: "F0 80 overlong",
			in:   "\xf0\x80\x80\xaf",
		},
		{
			name: "surrogate",
			in:   "\xed\xa0\x80",
		},
		{
			name: "last before surrogates",
			in:   "\xed\x9f\xbf",
		},
		{
			name: "above U+10FFFF",
			in:   "\xf4\x90\x80\x80",
		},
		{
			name: "F5 to FF",
			in:   "\xf5\xf6\xff",
		},
		{
			name: "stray continuation",
			in:   "ab\x80",
		},
		{
			name: "truncated at end",
			in:   "ab\xf0\x9f\x98",
		},
		{
			name: "truncated before ASCII",
			in:   "\xe2\x82(",
		},
		{
			name: "too many continuations",
			in:   "\xc3\xa9\xa9",
		},
		{
			name: "long ASCII then emoji",
			in:   "0123456789abcdefghijklmnopqrstuvwxyz\xf0\x9f\x98\x80",
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			in := []byte(test.in)
			for _, cuts := range splits(len(in)) {
				checkUTF8(t, in, cuts)
			}
		})
	}
}

// TestUTF8Exhaustive checks every sequence of up to three bytes, fed byte
// by byte and whole.
func TestUTF8Exhaustive(t *testing.T) {
	// Bytes that matter to the state machine: every boundary of RFC 3629.
	interesting := []byte{
		0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
		0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3,
		0xf4, 0xf5, 0xff,
	}
	in := make([]byte, 0, 4)
	var rec func()
	rec = func() {
		checkUTF8(t, in, nil)
		checkUTF8(t, in, splits(len(in))[1])
		if len(in) == 4 {
			return
		}
		for _, c := range interesting {
			in = append(in, c)
			rec()
			in = in[:len(in)-1]
		}
	}
	rec()
}

func TestUTF8StaysFailed(t *testing.T) {
	var v UTF8
	if v.Feed([]byte{0xff}) {
		t.Fatal("0xff accepted")
	}
	if v.Feed([]byte("a")) || v.Feed(nil) || v.Done() {
		t.Fatal("validator recovered after invalid input")
	}
	v.Reset()
	if !v.Feed([]byte("a")) || !v.Done() {
		t.Fatal("validator not usable after Reset")
	}
}
