package names

import (
	"strings"
	"testing"
	"unicode"
)

// TestRefusedIsTheDocumentedRule checks Refused against the categories
// the package documentation names, for every code point.
func TestRefusedIsTheDocumentedRule(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue // surrogates are never text
		}
		want := unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
		if Refused(r) != want {
			t.Fatalf("Refused(%U) = %v, want %v", r, !want, want)
		}
	}
	// The characters the issue names, by number.
	for _, r := range []rune{0, 0x1b, 0x7f, 0x80, 0x85, 0x9f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e,
		0x2066, 0x2067, 0x2068, 0x2069, 0x200e, 0x200f, 0x061c, 0x200b, 0x200c, 0x200d, 0x2060, 0xfeff} {
		if !Refused(r) {
			t.Errorf("%U is not refused", r)
		}
	}
	for _, r := range []rune{' ', 'a', 0xa0, 0xe9, 0x301, 0xfe0f, 0xfffd, 0xe000, 0x1f600, 0x10ffff} {
		if Refused(r) {
			t.Errorf("%U is refused", r)
		}
	}
}

func TestText(t *testing.T) {
	for _, s := range []string{"", "alice", "a b", "café", "😀", "\ufffd", "名前"} {
		if !Text(s) || !Text([]byte(s)) {
			t.Errorf("Text(%q) = false", s)
		}
	}
	for _, s := range []string{"\x00", "a\x1b[0m", "\u202e", "a\u200b", "\xff", "a\xe2\x82", "\xed\xa0\x80", "\U000E0001"} {
		if Text(s) || Text([]byte(s)) {
			t.Errorf("Text(%q) = true", s)
		}
	}
}

func TestNickAndRoom(t *testing.T) {
	tests := []struct {
		s          string
		nick, room bool
	}{
		{"", false, false},
		{"a", true, true},
		{strings.Repeat("a", 32), true, true},
		{strings.Repeat("a", 33), false, true},
		{strings.Repeat("😀", 32), true, true}, // 128 bytes
		{strings.Repeat("😀", 33), false, false},
		{strings.Repeat("a", 128), false, true},
		{strings.Repeat("a", 129), false, false},
		{"a\x00", false, false},
		{"\u202eevil", false, false},
		{"\ufffd", true, true},
	}
	for _, tc := range tests {
		if Nick(tc.s) != tc.nick || Nick([]byte(tc.s)) != tc.nick {
			t.Errorf("Nick(%q) = %v, want %v", tc.s, !tc.nick, tc.nick)
		}
		if Room(tc.s) != tc.room || Room([]byte(tc.s)) != tc.room {
			t.Errorf("Room(%q) = %v, want %v", tc.s, !tc.room, tc.room)
		}
	}
}

func TestNFC(t *testing.T) {
	const composed, decomposed = "caf\u00e9", "cafe\u0301"
	if got := string(NFC([]byte(decomposed))); got != composed {
		t.Errorf("NFC(%q) = %q", decomposed, got)
	}
	if got := NFCString(decomposed); got != composed {
		t.Errorf("NFCString(%q) = %q", decomposed, got)
	}
	// Names already in NFC come back as they are.
	b := []byte(composed)
	if got := NFC(b); &got[0] != &b[0] {
		t.Error("NFC copied a name already in NFC")
	}
	// A singleton: U+212B ANGSTROM SIGN is U+00C5 in NFC.
	if got := NFCString("\u212b"); got != "\u00c5" {
		t.Errorf("NFCString(U+212B) = %q", got)
	}
}

func TestAllocs(t *testing.T) {
	room := []byte("lobby-café-😀")
	if n := testing.AllocsPerRun(100, func() {
		if !Room(room) || !Nick(room) || len(NFC(room)) == 0 {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Errorf("Room, Nick and NFC of an NFC name allocate %v times", n)
	}
}

func BenchmarkRoom(b *testing.B) {
	for _, room := range []string{"general-discussion", "café für alle 😀"} {
		b.Run(room, func(b *testing.B) {
			b.ReportAllocs()
			r := []byte(room)
			for b.Loop() {
				Room(r)
			}
		})
	}
}
