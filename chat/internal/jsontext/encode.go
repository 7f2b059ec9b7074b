package jsontext

import "unicode/utf8"

// AppendString appends s to dst as a JSON string, quotes included, and
// returns the extended slice. The result is valid JSON for any input:
//   - '"', '\\' and the control characters below U+0020 are escaped, with
//     the short forms \b \f \n \r \t where JSON has them;
//   - '<', '>' and '&' become \u003c, \u003e and \u0026, and U+2028 and
//     U+2029 become \u2028 and \u2029, as encoding/json does, so the
//     payload is safe to embed in HTML and JavaScript;
//   - each byte that is not part of valid UTF-8 becomes \ufffd (U+FFFD).
//
// Everything else is copied as is. It allocates only if dst must grow.
func AppendString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	// Bytes that need no escaping are copied in runs, from start to i.
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscape(dst, c)
			i++
			start = i
			continue
		}
		// Converting at most UTFMax bytes to a string that does not escape
		// uses a buffer on the stack: no allocation for []byte input.
		n := min(len(s)-i, utf8.UTFMax)
		r, size := utf8.DecodeRuneInString(string(s[i : i+n]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028':
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u2028`...)
		case r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u2029`...)
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendEscape appends the escape sequence of the ASCII byte c.
func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}

// plainASCII reports the ASCII bytes a JSON string can hold unescaped
// under the rules of AppendString.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()
