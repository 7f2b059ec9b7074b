package load

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"

	"github.com/gobwas/ws"
)

// Errors of the client-side frame reader.
var (
	errFrameTooBig   = errors.New("load: frame larger than the read limit")
	errBadFrame      = errors.New("load: malformed frame")
	errUnexpectedOp  = errors.New("load: continuation frame without a message")
	errControlTooBig = errors.New("load: control frame longer than 125 bytes")
)

// maxMessage bounds a message the load client accepts. Chat messages in the
// benchmarks are a few hundred bytes.
const maxMessage = 1 << 20

// frameReader reads server frames from a buffered connection without
// allocating for frames that fit in the buffer: their payload is returned
// as a slice of the bufio.Reader's own buffer.
type frameReader struct {
	br      *bufio.Reader
	pending int    // bytes to discard before the next frame
	msg     []byte // assembles fragmented or oversize messages
	msgOp   ws.OpCode
	inMsg   bool
}

// next returns the next control frame or complete data message. The
// payload is valid only until the following call to next. Masked server
// frames (forbidden by RFC 6455 section 5.1, but harmless) are unmasked.
func (r *frameReader) next() (ws.OpCode, []byte, error) {
	for {
		if r.pending > 0 {
			if _, err := r.br.Discard(r.pending); err != nil {
				return 0, nil, err
			}
			r.pending = 0
		}
		// RFC 6455 section 5.2: 2 bytes, then 0, 2 or 8 bytes of extended
		// length, then a 4-byte mask key if the mask bit is set.
		b, err := r.br.Peek(2)
		if err != nil {
			return 0, nil, err
		}
		fin := b[0]&0x80 != 0
		op := ws.OpCode(b[0] & 0x0f)
		masked := b[1]&0x80 != 0
		hlen := 2
		switch b[1] & 0x7f {
		case 126:
			hlen += 2
		case 127:
			hlen += 8
		}
		if masked {
			hlen += 4
		}
		if b, err = r.br.Peek(hlen); err != nil {
			return 0, nil, err
		}
		var n uint64
		switch l := b[1] & 0x7f; l {
		case 126:
			n = uint64(binary.BigEndian.Uint16(b[2:4]))
		case 127:
			n = binary.BigEndian.Uint64(b[2:10])
		default:
			n = uint64(l)
		}
		var mask [4]byte
		if masked {
			copy(mask[:], b[hlen-4:hlen])
		}
		if op.IsControl() && (n > 125 || !fin) {
			return 0, nil, errControlTooBig
		}
		if n > maxMessage || (r.inMsg && uint64(len(r.msg))+n > maxMessage) {
			return 0, nil, errFrameTooBig
		}
		if _, err := r.br.Discard(hlen); err != nil {
			return 0, nil, err
		}
		var payload []byte
		if int(n) <= r.br.Size() {
			// Zero-copy: the payload stays in the reader's buffer until
			// the next call discards it.
			if payload, err = r.br.Peek(int(n)); err != nil {
				return 0, nil, err
			}
			r.pending = int(n)
		} else {
			// Larger than the buffer: read into the message buffer.
			start := len(r.msg)
			if !r.inMsg {
				start = 0
			}
			r.msg = append(r.msg[:start], make([]byte, n)...)
			if _, err := io.ReadFull(r.br, r.msg[start:]); err != nil {
				return 0, nil, err
			}
			payload = r.msg[start:]
		}
		if masked {
			ws.Cipher(payload, mask, 0)
		}
		switch {
		case op.IsControl():
			return op, payload, nil
		case op == ws.OpContinuation:
			if !r.inMsg {
				return 0, nil, errUnexpectedOp
			}
			if !isSuffix(r.msg, payload) {
				r.msg = append(r.msg, payload...)
			}
			if fin {
				r.inMsg = false
				return r.msgOp, r.msg, nil
			}
		case op == ws.OpText || op == ws.OpBinary:
			if r.inMsg {
				return 0, nil, errBadFrame
			}
			if fin {
				return op, payload, nil
			}
			r.inMsg, r.msgOp = true, op
			if !isSuffix(r.msg, payload) {
				r.msg = append(r.msg[:0], payload...)
			}
		default:
			return 0, nil, errBadFrame
		}
	}
}

// isSuffix reports whether p is already the tail of buf (it was read
// straight into buf).
func isSuffix(buf, p []byte) bool {
	return len(p) > 0 && len(buf) >= len(p) && &buf[len(buf)-len(p)] == &p[0]
}

// appendFrame appends one masked client frame (RFC 6455 section 5.3: every
// client frame is masked with a fresh key) carrying payload to dst.
func appendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	n := len(payload)
	dst = append(dst, 0x80|byte(op))
	switch {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}
