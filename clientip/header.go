package clientip

import "bytes"

// AppendHeader appends to dst the value of every field line named name
// (case-insensitive) in head, an HTTP/1.x request head from the request
// line through the blank line, joined by ", " as RFC 9110 §5.3 combines
// repeated fields, and returns the extended slice. A header that is absent
// appends nothing. Optional whitespace around each value is trimmed.
//
// It allocates only if dst lacks capacity; a per-loop scratch buffer makes
// it allocation-free. It keeps no reference to head.
func AppendHeader(dst, head []byte, name string) []byte {
	first := true
	for rest := fieldLines(head); ; {
		var line []byte
		var ok bool
		if line, rest, ok = nextFieldLine(rest); !ok {
			break
		}
		c := bytes.IndexByte(line, ':')
		if c != len(name) || !equalFoldName(line[:c], name) {
			continue
		}
		v := trimOWS(line[c+1:])
		if !first {
			dst = append(dst, ", "...)
		}
		dst = append(dst, v...)
		first = false
	}
	return dst
}

// fieldLines returns head without its request line: the field lines and
// what follows them; nil when head has no line break.
func fieldLines(head []byte) []byte {
	i := bytes.IndexByte(head, '\n')
	if i < 0 {
		return nil
	}
	return head[i+1:]
}

// nextFieldLine splits the next field line off rest, without its CRLF. ok
// is false at the blank line that ends the head, or at the end of rest.
func nextFieldLine(rest []byte) (line, tail []byte, ok bool) {
	if len(rest) == 0 {
		return nil, nil, false
	}
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		line, tail = rest[:i], rest[i+1:]
	} else {
		line, tail = rest, nil
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return line, tail, len(line) > 0
}

// equalFoldName compares an ASCII header name case-insensitively.
func equalFoldName(b []byte, name string) bool {
	for i := range b {
		x, y := b[i], name[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// HasForwarding reports whether head, an HTTP/1.x request head as for
// AppendHeader, has a field line named Forwarded, X-Forwarded-For or
// X-Real-IP, whatever its value (empty included): whether the sender
// forwarded the request for someone. A trusted proxy's own requests
// (health checks) have none; a request it forwarded whose headers name no
// client — garbage, "unknown", an empty value, only trusted hops —
// has one, and Resolve returns the proxy's address (the last good hop) for
// it. Per-address limits count such requests against that address rather
// than exempting them as the proxy's own.
//
// It does not allocate and keeps no reference to head.
func HasForwarding(head []byte) bool {
	for rest := fieldLines(head); ; {
		var line []byte
		var ok bool
		if line, rest, ok = nextFieldLine(rest); !ok {
			return false
		}
		name, _, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		switch len(name) {
		case len("Forwarded"): // and len("X-Real-IP")
			if equalFoldName(name, "Forwarded") || equalFoldName(name, "X-Real-IP") {
				return true
			}
		case len("X-Forwarded-For"):
			if equalFoldName(name, "X-Forwarded-For") {
				return true
			}
		}
	}
}
