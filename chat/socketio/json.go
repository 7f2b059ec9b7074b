package socketio

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the package's small JSON toolkit: a string encoder with
// the same escaping rules as chat/native (so both wire codecs emit the same
// bytes for the same names), and a scanner that walks raw JSON without
// decoding it. The scanner trusts the structure it walks: callers prove
// validity with json.Valid (ParsePacket does), and on invalid input the
// scanner may return nonsense but never reads out of bounds.

// appendString appends s to dst as a JSON string, quotes included, and
// returns the extended slice. The result is valid JSON for any input:
//   - '"', '\\' and the control characters below U+0020 are escaped, with
//     the short forms \b \f \n \r \t where JSON has them;
//   - '<', '>' and '&' become \u003c, \u003e and \u0026, and U+2028 and
//     U+2029 become \u2028 and \u2029, as encoding/json does, so the
//     payload is safe to embed in HTML and JavaScript;
//   - each byte that is not part of valid UTF-8 becomes \ufffd (U+FFFD).
//
// Everything else is copied as is. It allocates only if dst must grow.
func appendString[S string | []byte](dst []byte, s S) []byte {
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
// under the rules of appendString.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace (RFC 8259 §2).
func skipSpace(p []byte, i int) int {
	for i < len(p) {
		switch p[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that starts with the
// quote at p[i], or -1 if it is not closed.
func skipString(p []byte, i int) int {
	j := i + 1
	for {
		// IndexByte is vectorised: long strings are crossed in a few
		// instructions per 16 or 32 bytes.
		k := bytes.IndexByte(p[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		// The quote is escaped iff an odd number of backslashes precedes
		// it. Each run of backslashes ends at one quote: this stays linear.
		n := 0
		for b := q - 1; b > i && p[b] == '\\'; b-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index just past the value that starts at p[i], or
// -1 if there is none.
func skipValue(p []byte, i int) int {
	if i >= len(p) {
		return -1
	}
	switch p[i] {
	case '"':
		return skipString(p, i)
	case '{', '[':
		return skipNested(p, i)
	}
	// A number or a literal; json.Valid has checked which.
	j := i
	for j < len(p) && scalarByte[p[j]] {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// skipNested returns the index just past the object or array that starts
// at p[i], or -1 if it is not closed. It counts brackets without
// recursing, so deep nesting costs no stack.
func skipNested(p []byte, i int) int {
	depth := 0
	for j := i; j < len(p); {
		switch p[j] {
		case '"':
			j = skipString(p, j)
			if j < 0 {
				return -1
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
		j++
	}
	return -1
}

// scalarByte reports the bytes that can make up a JSON number or literal.
var scalarByte = func() (t [256]bool) {
	for _, c := range []byte("0123456789+-.eEtrufalsn") {
		t[c] = true
	}
	return t
}()

// isString reports whether raw is a JSON string (a value slice from the
// scanner).
func isString(raw []byte) bool { return len(raw) >= 2 && raw[0] == '"' }

// maxEscapedName bounds the raw length of an escaped key or event name
// worth unescaping: the longest name this package matches ("_placeholder")
// written entirely as \uXXXX escapes. Anything longer cannot match.
const maxEscapedName = 6 * len("_placeholder")

// nameIs reports whether the raw JSON string contents s (quotes removed)
// decode to want. It does not allocate: escaped names short enough to
// match are decoded into a stack buffer.
func nameIs(s []byte, want string) bool {
	if string(s) == want {
		return true
	}
	if len(s) > maxEscapedName || len(s) < len(want) || bytes.IndexByte(s, '\\') < 0 {
		return false
	}
	// Unquoting at most triples the length (an invalid byte becomes the
	// three bytes of U+FFFD), so this buffer never grows.
	var buf [3 * maxEscapedName]byte
	return string(appendUnquoted(buf[:0], s)) == want
}

// unquote returns the contents of the raw JSON string: a subslice of raw
// when it can be returned as is, else a new slice holding what
// encoding/json would decode.
func unquote(raw []byte) []byte {
	s := raw[1 : len(raw)-1]
	// utf8.Valid checks eight ASCII bytes at a time, so the common case
	// costs two fast passes over a short string and no allocation.
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return s
	}
	return appendUnquoted(make([]byte, 0, len(s)), s)
}

// appendUnquoted appends the decoded contents s of a JSON string (without
// its quotes) to dst, with encoding/json's rules: invalid UTF-8 bytes and
// unpaired surrogate escapes become U+FFFD. A malformed escape, possible
// only on input json.Valid rejects, is copied through rather than
// panicking.
func appendUnquoted(dst, s []byte) []byte {
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

// parseUint parses the decimal digits of b starting at i. It returns the
// value, the index just past the digits, and false if there are no digits
// or the value exceeds limit.
func parseUint(b []byte, i int, limit uint64) (uint64, int, bool) {
	start := i
	var n uint64
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		d := uint64(b[i] - '0')
		if n > (limit-d)/10 {
			return 0, i, false
		}
		n = n*10 + d
		i++
	}
	return n, i, i > start
}
