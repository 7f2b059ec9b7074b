package frame

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/valyala/bytebufferpool"
)

// DefaultMaxMessage is the message size limit of a Reader whose Init got a
// limit <= 0, or that was never initialised.
const DefaultMaxMessage = 64 << 10

// Pools of the Reader's reassembly buffers. They are separate so that each
// calibrates to its own size distribution: messages vary, control frames
// are at most 125 bytes.
var (
	msgPool bytebufferpool.Pool
	ctlPool bytebufferpool.Pool
)

// Handler receives what a Reader parses, in stream order, on the goroutine
// that calls Feed.
//
// payload is valid only until the method returns: it may alias the bytes
// passed to Feed or a pooled buffer that is reused afterwards. Copy what
// must outlive the call. A non-nil error stops Feed, which returns it; use
// an *Error to choose the close code (see CloseCode). Methods must not call
// Feed or Reset on the Reader that calls them.
type Handler interface {
	// OnMessage receives a whole data message (RFC 6455 §5.6), reassembled
	// from its fragments (§5.4). op is ws.OpText or ws.OpBinary; text has
	// already been validated as UTF-8.
	OnMessage(op ws.OpCode, payload []byte) error

	// OnControl receives a control frame (RFC 6455 §5.5): ws.OpPing,
	// ws.OpPong or ws.OpClose. A Close payload has already been validated
	// by ParseClose. Control frames may arrive between the fragments of a
	// message; they are delivered when they arrive, before the message.
	// The Reader keeps no closing state: after a Close the caller replies
	// and stops feeding.
	OnControl(op ws.OpCode, payload []byte) error
}

// Reader is the incremental frame reader of one server-side connection. An
// event loop pushes whatever bytes it read into Feed, which may hold part of
// a frame or several frames; the Reader keeps the parsing state between
// calls.
//
// Idle, between messages, it holds no buffer: a header cut by the end of a
// read waits in a 14-byte array inside the Reader, and payloads are
// unmasked in place. Only a message that is fragmented or cut by the end of
// a read (or a control frame cut by a read) is copied, into a buffer from a
// pool that goes back as soon as it is delivered.
//
// The zero value is ready to use with DefaultMaxMessage. A Reader is not
// safe for concurrent use: it belongs to the loop that owns the connection.
type Reader struct {
	buf  *bytebufferpool.ByteBuffer // message being reassembled, or nil
	cbuf *bytebufferpool.ByteBuffer // control frame being reassembled, or nil
	err  *Error                     // first error; Feed returns it again

	// int32 keeps the Reader small (it lives in every connection); Init
	// clamps the limit so the counts always fit.
	max    int32 // message size limit; <= 0 means DefaultMaxMessage
	msgLen int32 // payload bytes announced so far by the open message
	remain int32 // payload bytes of the current frame still to come

	mask  [4]byte                  // masking key of the current frame
	hdr   [maxClientHeaderLen]byte // header bytes cut by the end of a Feed
	hn    uint8                    // number of bytes in hdr
	moff  uint8                    // payload bytes of the current frame unmasked so far, mod 4
	op    ws.OpCode                // opcode of the current frame
	msgOp ws.OpCode                // opcode of the open message, 0 (continuation) if none
	fin   bool                     // FIN of the current frame
	in    bool                     // between the header and the end of the payload of a frame
	utf8  UTF8                     // validator of the open text message

	// deflate: permessage-deflate was negotiated (SetDeflate), so RSV1
	// may mark a message compressed; z: the open message is.
	deflate bool
	z       bool
}

// Init sets the largest message the Reader accepts, in payload bytes summed
// over all fragments; maxMessage <= 0 means DefaultMaxMessage. Call it
// before the first Feed.
func (r *Reader) Init(maxMessage int) {
	*r = Reader{max: int32(min(maxMessage, MaxMessageLimit))}
}

// SetDeflate sets whether the connection negotiated permessage-deflate
// (RFC 7692): then a data message whose first frame has RSV1 set is
// inflated before it is delivered, its inflated size bounded by the
// message size limit. Call it after Init, before the first Feed.
func (r *Reader) SetDeflate(on bool) { r.deflate = on }

// MaxMessageLimit is the largest message size limit Init accepts (1 GiB);
// larger values are clamped to it.
const MaxMessageLimit = 1 << 30

// Feed parses all of p and calls h for every message and control frame that
// completes in it. Bytes of an unfinished frame are kept for the next call.
//
// p is modified in place (payloads are unmasked) and may be aliased by the
// payloads passed to h; it is not retained after Feed returns, so the caller
// may reuse it.
//
// Feed returns the first error, either a protocol violation (*Error, see
// CloseCode) or the error of a Handler method. Messages and control frames
// before the offending byte have been delivered; nothing after it is. After
// an error the Reader is dead: its buffers are released, Pending reports
// false and every later Feed returns the same protocol error, or ErrStopped
// after a Handler error, until Reset.
func (r *Reader) Feed(p []byte, h Handler) error {
	if r.err != nil {
		return r.err
	}
	err := r.feed(p, h)
	if err != nil {
		r.release()
		// Only *Error values are kept (8 bytes instead of an interface's
		// 16: the Reader lives in every connection).
		var fe *Error
		if !errors.As(err, &fe) {
			fe = ErrStopped
		}
		*r = Reader{max: r.max, deflate: r.deflate, err: fe}
	}
	return err
}

func (r *Reader) feed(p []byte, h Handler) error {
	for {
		if !r.in {
			if len(p) == 0 {
				return nil
			}
			n, err := r.header(p)
			if err != nil {
				return err
			}
			p = p[n:]
			if !r.in {
				return nil // header cut by the end of p, kept in r.hdr
			}
		}
		// A frame with an empty payload goes on even when p is exhausted.
		if r.remain > 0 && len(p) == 0 {
			return nil
		}
		var (
			n   int
			err error
		)
		if r.op.IsControl() {
			n, err = r.control(p, h)
		} else {
			n, err = r.data(p, h)
		}
		if err != nil {
			return err
		}
		p = p[n:]
	}
}

// header consumes header bytes from p and returns how many it took. When the
// header completes, it starts the frame (r.in). Each partial header is
// checked too, so that a violation is reported with the first byte that
// shows it, and a too long message is refused before its masking key and
// payload arrive (RFC 6455 §10.4).
func (r *Reader) header(p []byte) (int, error) {
	old := int(r.hn)
	b := p
	if old > 0 {
		k := copy(r.hdr[old:], p)
		b = r.hdr[:old+k]
	}
	if err := r.check(b); err != nil {
		return 0, err
	}
	h, n, err := ParseHeader(b)
	if err == ErrNeedMore {
		// A header is at most len(r.hdr) bytes, so what is still
		// incomplete fits.
		r.hn = uint8(old + copy(r.hdr[old:], p))
		return len(p), nil
	}
	if err != nil {
		return 0, err // not reached: check rejects ErrLength first
	}
	r.hn = 0
	r.in = true
	r.op = h.OpCode
	r.fin = h.Fin
	r.mask = h.Mask
	r.remain = int32(h.Length) // fits: check bounded it by the limits
	r.moff = 0
	if r.op.IsData() {
		if r.op != ws.OpContinuation {
			r.msgOp = r.op
			r.msgLen = 0
			r.utf8.Reset()
			r.z = h.Rsv&0x4 != 0 // RSV1 (check allowed it)
		}
		r.msgLen += r.remain
	}
	return n - old, nil
}

// check applies the server's rules for client frames (RFC 6455 §5) to the
// header prefix b, as far as b goes. The checks run in the order of the
// bytes they need, so whatever the split of the stream, the first violation
// found is the same.
func (r *Reader) check(b []byte) error {
	b0 := b[0]
	op := ws.OpCode(b0 & bitsOp)
	if b0&bitsRsv != 0 {
		switch {
		case b0&bitsRsv != bitRsv1 || !r.deflate:
			return ErrReservedBits
		case op.IsControl() || op == ws.OpContinuation:
			return ErrCompressedBit
		}
	}
	switch {
	case op.IsReserved():
		return ErrReservedOpcode
	case op.IsControl():
		if b0&bitFin == 0 {
			return ErrControlFragmented
		}
	case op == ws.OpContinuation:
		if r.msgOp == ws.OpContinuation {
			return ErrContinuation
		}
	default:
		if r.msgOp != ws.OpContinuation {
			return ErrInterleaved
		}
	}
	if len(b) < 2 {
		return nil
	}

	b1 := b[1]
	if b1&bitMask == 0 {
		return ErrUnmasked
	}
	length := uint64(b1 & bitsLen7)
	if op.IsControl() {
		if length > maxControlPayload {
			return ErrControlTooLong
		}
		return nil
	}
	switch length {
	case len16Mark:
		if len(b) < 4 {
			return nil
		}
		length = uint64(binary.BigEndian.Uint16(b[2:4]))
	case len64Mark:
		if len(b) < 10 {
			return nil
		}
		length = binary.BigEndian.Uint64(b[2:10])
		if length>>63 != 0 {
			return ErrLength
		}
	}
	limit := int(r.max)
	if limit <= 0 {
		limit = DefaultMaxMessage
	}
	if length > uint64(limit-int(r.msgLen)) {
		return ErrTooBig
	}
	return nil
}

// control consumes the payload of a control frame from p and returns how
// many bytes it took.
func (r *Reader) control(p []byte, h Handler) (int, error) {
	if r.cbuf == nil && int(r.remain) <= len(p) {
		// Fast path: the whole payload is in p; unmask it in place and
		// hand it over without copying.
		payload := p[:r.remain]
		ws.Cipher(payload, r.mask, 0)
		r.in = false
		return int(r.remain), r.deliverControl(payload, h)
	}

	k := min(int(r.remain), len(p))
	chunk := p[:k]
	ws.Cipher(chunk, r.mask, int(r.moff))
	r.moff = uint8((int(r.moff) + k) & 3)
	if r.cbuf == nil {
		r.cbuf = ctlPool.Get()
	}
	r.cbuf.B = append(r.cbuf.B, chunk...)
	r.remain -= int32(k)
	if r.remain > 0 {
		return k, nil
	}
	r.in = false
	buf := r.cbuf
	r.cbuf = nil
	err := r.deliverControl(buf.B, h)
	ctlPool.Put(buf)
	return k, err
}

func (r *Reader) deliverControl(payload []byte, h Handler) error {
	if r.op == ws.OpClose {
		if _, _, err := ParseClose(payload); err != nil {
			return err
		}
	}
	return h.OnControl(r.op, payload)
}

// data consumes the payload of a data frame from p and returns how many
// bytes it took.
func (r *Reader) data(p []byte, h Handler) (int, error) {
	if r.buf == nil && r.fin && int(r.remain) <= len(p) {
		// Fast path: nothing of the message is buffered (so this frame
		// carries all of it and the validator has seen none of it) and
		// the whole payload is in p: unmask it in place, validate it in
		// one pass and hand it over without copying.
		n := int(r.remain)
		payload := p[:n]
		ws.Cipher(payload, r.mask, 0)
		if r.z {
			return n, r.deliverInflated(payload, h)
		}
		if r.msgOp == ws.OpText && !utf8.Valid(payload) {
			return n, ErrInvalidUTF8
		}
		op := r.msgOp
		r.endMessage()
		return n, h.OnMessage(op, payload)
	}

	k := min(int(r.remain), len(p))
	if k > 0 {
		chunk := p[:k]
		ws.Cipher(chunk, r.mask, int(r.moff))
		r.moff = uint8((int(r.moff) + k) & 3)
		// Validate before buffering, to fail as soon as the text can
		// no longer become valid (RFC 6455 §8.1).
		if r.msgOp == ws.OpText && !r.z && !r.utf8.Feed(chunk) {
			return k, ErrInvalidUTF8
		}
		if r.buf == nil {
			r.buf = msgPool.Get()
		}
		r.buf.B = append(r.buf.B, chunk...)
		r.remain -= int32(k)
	}
	if r.remain > 0 {
		return k, nil
	}
	r.in = false
	if !r.fin {
		return k, nil
	}
	if r.z {
		buf := r.buf
		r.buf = nil
		err := r.deliverInflated(buf.B, h)
		msgPool.Put(buf)
		return k, err
	}
	if r.msgOp == ws.OpText && !r.utf8.Done() {
		return k, ErrInvalidUTF8
	}
	// r.buf is set: a message with nothing buffered took the fast path,
	// and a frame that did not has sent at least one byte here.
	op := r.msgOp
	r.endMessage()
	// Detach the buffer before the call so that the Reader no longer
	// refers to it, whatever the handler does.
	buf := r.buf
	r.buf = nil
	err := h.OnMessage(op, buf.B)
	msgPool.Put(buf)
	return k, err
}

// deliverInflated ends a compressed message: its payload p (all its
// frames' payloads) is inflated, checked as text when it is, and
// delivered. Only its text is validated: the compressed bytes are not
// UTF-8.
func (r *Reader) deliverInflated(p []byte, h Handler) error {
	op := r.msgOp
	r.endMessage()
	limit := int(r.max)
	if limit <= 0 {
		limit = DefaultMaxMessage
	}
	out, err := inflate(p, limit)
	if err != nil {
		return err
	}
	if op == ws.OpText && !utf8.Valid(out.B) {
		msgPool.Put(out)
		return ErrInvalidUTF8
	}
	err = h.OnMessage(op, out.B)
	msgPool.Put(out)
	return err
}

// endMessage clears the message state after its last frame.
func (r *Reader) endMessage() {
	r.in = false
	r.msgOp = ws.OpContinuation
	r.msgLen = 0
	r.z = false
}

// Pending reports whether the Reader holds part of a frame or an unfinished
// fragmented message, that is whether the stream is not at a message
// boundary. For diagnostics and tests.
func (r *Reader) Pending() bool {
	return r.hn > 0 || r.in || r.msgOp != ws.OpContinuation
}

// Reset returns the pooled buffers and clears the state, keeping the limit
// set by Init, so the Reader can serve a new connection. Call it when the
// connection closes. It is safe to call repeatedly.
func (r *Reader) Reset() {
	r.release()
	*r = Reader{max: r.max, deflate: r.deflate}
}

// release returns the pooled buffers.
func (r *Reader) release() {
	if r.buf != nil {
		msgPool.Put(r.buf)
		r.buf = nil
	}
	if r.cbuf != nil {
		ctlPool.Put(r.cbuf)
		r.cbuf = nil
	}
}
