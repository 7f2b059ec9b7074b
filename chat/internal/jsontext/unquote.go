package jsontext

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// Unquote returns the contents of the raw JSON string (IsString(raw)
// holds): a subslice of raw when it can be returned as is, else a new
// slice holding what encoding/json would decode. The new slice is the only
// allocation, and happens only for strings with escapes or invalid UTF-8.
func Unquote(raw []byte) []byte {
	s := raw[1 : len(raw)-1]
	// utf8.Valid checks eight ASCII bytes at a time, so the common case
	// costs two fast passes over a short string and no allocation.
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return s
	}
	return AppendUnquoted(make([]byte, 0, len(s)), s)
}

// AppendUnquoted appends the decoded contents s of a JSON string (without
// its quotes) to dst, with encoding/json's rules: invalid UTF-8 bytes and
// unpaired surrogate escapes become U+FFFD. A malformed escape, possible
// only on input json.Valid rejects, is copied through rather than
// panicking.
//
// The output is at most three times as long as s (an invalid byte becomes
// the three bytes of U+FFFD), so a caller matching short names can decode
// into a stack buffer of that size and never allocate.
func AppendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		if c != '\\' || i+1 >= len(s) {
			dst = append(dst, c)
			i++
			continue
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				dst = append(dst, c)
				i++
				continue
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A surrogate counts only as the first half of a pair
				// written as two escapes (RFC 8259 §7); anything else is
				// replaced and the following escape, if any, decoded alone.
				r2, ok := rune(0), false
				if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, ok = hex4(s, i+2)
				}
				r = utf16.DecodeRune(r, r2)
				if ok && r != utf8.RuneError {
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			dst = append(dst, c)
			i++
			continue
		}
		i += 2
	}
	return dst
}

// hex4 decodes the four hex digits at s[i:i+4].
func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// UnquoteText is Unquote for strings that must be text: names, rooms,
// connection and user ids, event names. Where Unquote replaces what
// cannot be decoded with U+FFFD, UnquoteText refuses it, so that a string
// that was never text cannot pass for one that holds a real U+FFFD. It
// reports false for invalid UTF-8 and for a surrogate escape that is not
// the first half of a pair written as two escapes, a high surrogate
// (\uD800–\uDBFF) followed by a low one (\uDC00–\uDFFF): a lone \ud800,
// a lone \udfff, or the pair reversed. Otherwise it returns what Unquote
// returns, with the same single allocation for strings with escapes.
func UnquoteText(raw []byte) ([]byte, bool) {
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		if !utf8.Valid(s) {
			return nil, false
		}
		return s, true
	}
	// Escapes are ASCII, so the raw bytes are valid UTF-8 exactly when
	// the unescaped text is.
	if !utf8.Valid(s) || !pairedSurrogates(s) {
		return nil, false
	}
	return AppendUnquoted(make([]byte, 0, len(s)), s), true
}

// pairedSurrogates reports whether every surrogate escape in the string
// contents s is a high surrogate immediately followed by a low one.
func pairedSurrogates(s []byte) bool {
	for i := 0; i < len(s); {
		k := bytes.IndexByte(s[i:], '\\')
		if k < 0 {
			return true
		}
		i += k
		if i+1 >= len(s) {
			return true
		}
		if s[i+1] != 'u' {
			i += 2 // a two-character escape, \\ included
			continue
		}
		r, ok := hex4(s, i+2)
		if !ok {
			i += 2 // malformed, possible only on input json.Valid rejects
			continue
		}
		i += 6
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return false // a low surrogate first
		case r >= 0xd800 && r <= 0xdbff:
			if i+1 >= len(s) || s[i] != '\\' || s[i+1] != 'u' {
				return false
			}
			r2, ok := hex4(s, i+2)
			if !ok || r2 < 0xdc00 || r2 > 0xdfff {
				return false
			}
			i += 6
		}
	}
	return true
}
