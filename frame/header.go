package frame

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// Header sizes (RFC 6455 §5.2).
const (
	// MaxHeaderLen is the longest header of a server frame: 2 bytes plus a
	// 64-bit extended length. Server frames are never masked (§5.1).
	MaxHeaderLen = 10

	// maxClientHeaderLen is the longest header of a client frame: a server
	// frame header plus the 4-byte masking key.
	maxClientHeaderLen = MaxHeaderLen + 4
)

// Bits of the first two header bytes (RFC 6455 §5.2).
const (
	bitFin    = 0x80
	bitsRsv   = 0x70
	bitsOp    = 0x0f
	bitMask   = 0x80
	bitsLen7  = 0x7f
	len16Mark = 126
	len64Mark = 127

	// maxControlPayload is the longest control frame payload (§5.5).
	maxControlPayload = 125
)

// ParseHeader parses one frame header from the start of b and returns it
// with its encoded size n. It only decodes the wire format of RFC 6455 §5.2;
// the rules a server applies to client frames (masking, reserved bits and
// opcodes, control frame limits) are checked by the Reader.
//
// It returns ErrNeedMore if b does not hold the whole header yet, and
// ErrLength if the 64-bit length has its most significant bit set (that is
// reported as soon as the length bytes are present, before the masking key).
// Lengths that are not minimally encoded are accepted.
//
// h.Rsv holds the three RSV bits as in ws.Header (RSV1 is 0x4). ParseHeader
// does not allocate and does not retain b.
func ParseHeader(b []byte) (h ws.Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, ErrNeedMore
	}
	h.Fin = b[0]&bitFin != 0
	h.Rsv = (b[0] & bitsRsv) >> 4
	h.OpCode = ws.OpCode(b[0] & bitsOp)
	h.Masked = b[1]&bitMask != 0

	n = 2
	switch l := b[1] & bitsLen7; l {
	case len16Mark:
		if len(b) < 4 {
			return h, 0, ErrNeedMore
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
	case len64Mark:
		if len(b) < 10 {
			return h, 0, ErrNeedMore
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, ErrLength
		}
		h.Length = int64(u)
		n = 10
	default:
		h.Length = int64(l)
	}

	if h.Masked {
		if len(b) < n+4 {
			return h, 0, ErrNeedMore
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// HeaderLen returns the size of the header that AppendHeader writes for a
// payload of length bytes.
func HeaderLen(length int) int {
	switch {
	case length <= maxControlPayload:
		return 2
	case length <= 0xffff:
		return 4
	default:
		return 10
	}
}

// AppendHeader appends the header of a final (FIN), unmasked server frame
// with opcode op and a payload of length bytes to dst, using the shortest
// length encoding (RFC 6455 §5.2), and returns the extended slice. length
// must not be negative.
func AppendHeader(dst []byte, op ws.OpCode, length int) []byte {
	b0 := bitFin | byte(op&bitsOp)
	switch {
	case length <= maxControlPayload:
		return append(dst, b0, byte(length))
	case length <= 0xffff:
		return append(dst, b0, len16Mark, byte(length>>8), byte(length))
	default:
		return binary.BigEndian.AppendUint64(append(dst, b0, len64Mark), uint64(length))
	}
}

// putHeader writes the header of AppendHeader right-aligned so that it ends
// at b[len(b)] and returns its length. b must be at least MaxHeaderLen long.
func putHeader(b []byte, op ws.OpCode, length int) int {
	n := HeaderLen(length)
	h := b[len(b)-n:]
	h[0] = bitFin | byte(op&bitsOp)
	switch n {
	case 2:
		h[1] = byte(length)
	case 4:
		h[1] = len16Mark
		binary.BigEndian.PutUint16(h[2:], uint16(length))
	default:
		h[1] = len64Mark
		binary.BigEndian.PutUint64(h[2:], uint64(length))
	}
	return n
}

// AppendFrame appends a whole final, unmasked server frame carrying payload
// to dst and returns the extended slice.
func AppendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	dst = AppendHeader(dst, op, len(payload))
	return append(dst, payload...)
}
