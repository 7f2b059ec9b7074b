package socketio

import (
	"bytes"

	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// This file holds the JSON helpers only Socket.IO needs; the ones it shares
// with chat/native live in chat/internal/jsontext.

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
	return string(jsontext.AppendUnquoted(buf[:0], s)) == want
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
