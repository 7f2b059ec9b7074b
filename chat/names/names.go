// Package names holds the rule for identity text: the nicknames and room
// names that clients, the server API and an application backend give, and
// that the gateway shows to other clients. One rule, used wherever a name
// enters, so that a name refused on one path cannot come in through
// another.
//
// # The rule
//
// A name is valid UTF-8 and holds no character of these Unicode general
// categories:
//
//   - Cc, the controls: C0 (U+0000–U+001F, NUL included), DEL (U+007F) and
//     C1 (U+0080–U+009F). They include line breaks, tabs and the escape
//     that starts ANSI terminal sequences.
//   - Cf, the format characters. Among them: the bidi embeddings and
//     overrides U+202A–U+202E, the isolates U+2066–U+2069, the marks
//     U+200E, U+200F and U+061C, the zero-width characters U+200B–U+200D,
//     U+2060 and U+FEFF, the soft hyphen U+00AD, the invisible operators
//     U+2061–U+2064, the interlinear annotation marks U+FFF9–U+FFFB and the
//     tag characters U+E0001 and U+E0020–U+E007F. They are invisible or
//     change how the text around them is displayed: one could make a nick
//     look like another, or turn the rest of a line around. The price is
//     that emoji sequences joined with U+200D (ZERO WIDTH JOINER) and flag
//     tag sequences are refused; their parts alone are allowed.
//   - Zl and Zp, U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR,
//     line breaks by another name.
//
// Everything else is allowed, U+FFFD REPLACEMENT CHARACTER, private-use
// and unassigned code points included. The categories are those of the
// Unicode version of Go's unicode package.
//
// Nicknames are 1 to MaxNickLen characters (code points), room names 1 to
// MaxRoomLen bytes.
//
// # Normalisation
//
// NFC returns a room name in Unicode Normalization Form C, so that "é"
// written as one code point and as "e" with a combining accent name the
// same room. The gateway applies it only with -room-nfc; the rule above
// does not depend on it.
//
// Everything here is stateless, safe from any goroutine, and does not
// allocate, except NFC for a name that is not in NFC already.
package names

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits of names, as docs/protocol.md gives them.
const (
	MaxNickLen = 32  // characters (code points)
	MaxRoomLen = 128 // bytes of UTF-8
)

// Text reports whether s is valid UTF-8 without a refused character (see
// the package documentation). The empty string is valid text.
func Text[S ~string | ~[]byte](s S) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		// At most UTFMax bytes converted to a string that does not escape:
		// a stack buffer, no allocation for []byte input.
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		if r == utf8.RuneError && size == 1 || Refused(r) {
			return false
		}
		i += size
	}
	return true
}

// Refused reports whether the rule refuses the character r. r must be a
// Unicode scalar value (surrogates are never text).
func Refused(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f:
		return true
	case r < 0x80:
		return false
	case r <= 0x9f:
		return true // C1
	case r == '\u2028', r == '\u2029':
		return true // Zl, Zp
	}
	return unicode.Is(unicode.Cf, r)
}

// Nick reports whether s is an acceptable nickname: 1 to MaxNickLen
// characters of valid text.
func Nick[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 || len(s) > MaxNickLen*utf8.UTFMax {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i]&0xc0 != 0x80 { // not a continuation byte
			n++
		}
	}
	return n <= MaxNickLen && Text(s)
}

// Room reports whether s is an acceptable room name: 1 to MaxRoomLen
// bytes of valid text.
func Room[S ~string | ~[]byte](s S) bool {
	return len(s) > 0 && len(s) <= MaxRoomLen && Text(s)
}

// NFC returns b in Normalization Form C: b itself when it is already in
// NFC (all ASCII is), a new slice otherwise. Invalid UTF-8 is passed
// through as norm passes it.
func NFC(b []byte) []byte {
	if norm.NFC.IsNormal(b) {
		return b
	}
	return norm.NFC.Append(make([]byte, 0, len(b)+len(b)/2), b...)
}

// NFCString is NFC for a string.
func NFCString(s string) string {
	if norm.NFC.IsNormalString(s) {
		return s
	}
	return norm.NFC.String(s)
}
