package jsontext

import "bytes"

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace (RFC 8259 §2), or len(p) if there is none.
func SkipSpace(p []byte, i int) int {
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

// SkipString returns the index just past the string that starts with the
// quote at p[i], or -1 if it is not closed.
func SkipString(p []byte, i int) int {
	j := i + 1
	for {
		// IndexByte is vectorised: long strings (a message's text) are
		// crossed in a few instructions per 16 or 32 bytes.
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

// SkipValue returns the index just past the value that starts at p[i], or
// -1 if there is none. p[i:SkipValue(p, i)] is the value's raw text.
func SkipValue(p []byte, i int) int {
	if i >= len(p) {
		return -1
	}
	switch p[i] {
	case '"':
		return SkipString(p, i)
	case '{', '[':
		return skipNested(p, i)
	}
	// A number or a literal (true, false, null); json.Valid checks which.
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
// recursing, so deep nesting costs no stack; json.Valid checks that the
// brackets match and that the depth is bounded.
func skipNested(p []byte, i int) int {
	depth := 0
	for j := i; j < len(p); {
		switch p[j] {
		case '"':
			j = SkipString(p, j)
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

// ScanObject walks the object that starts with the '{' at p[i] and calls
// member once for each of its members, in order, with the raw key (quotes
// removed, escapes still in) and the raw value (as SkipValue bounds it).
// Both alias p and are valid as long as it is. It returns the index just
// past the closing '}', or -1 if p[i:] does not start with an object; on
// -1, member may already have been called for the members before the
// fault.
//
// member runs synchronously and is not retained, so a method value of a
// stack variable passed here does not escape.
func ScanObject(p []byte, i int, member func(key, value []byte)) int {
	if i >= len(p) || p[i] != '{' {
		return -1
	}
	i = SkipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(p) || p[i] != '"' {
			return -1
		}
		end := SkipString(p, i)
		if end < 0 {
			return -1
		}
		key := p[i+1 : end-1]
		i = SkipSpace(p, end)
		if i >= len(p) || p[i] != ':' {
			return -1
		}
		i = SkipSpace(p, i+1)
		end = SkipValue(p, i)
		if end < 0 {
			return -1
		}
		member(key, p[i:end])
		i = SkipSpace(p, end)
		if i >= len(p) {
			return -1
		}
		switch p[i] {
		case ',':
			i = SkipSpace(p, i+1)
		case '}':
			return i + 1
		default:
			return -1
		}
	}
}

// IsString reports whether raw, a value slice from the scanner, is a JSON
// string.
func IsString(raw []byte) bool { return len(raw) >= 2 && raw[0] == '"' }

// DeeperThan reports whether the JSON value p nests arrays and objects
// more than max levels deep: a scalar is at depth 0, [] and {} at 1,
// [[]] at 2. Brackets inside strings do not count. It walks p once,
// stops at the first level past max, and does not allocate. Like the
// rest of the scanner it trusts p to be JSON; on anything else it returns
// some answer without reading out of bounds.
func DeeperThan(p []byte, max int) bool {
	depth := 0
	for j := 0; j < len(p); {
		switch p[j] {
		case '"':
			j = SkipString(p, j)
			if j < 0 {
				return false
			}
			continue
		case '{', '[':
			depth++
			if depth > max {
				return true
			}
		case '}', ']':
			depth--
		}
		j++
	}
	return false
}
