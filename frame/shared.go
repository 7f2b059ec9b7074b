package frame

import (
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/valyala/bytebufferpool"
)

// Pools behind AcquireShared: the Shared values themselves, so that encoding
// a broadcast allocates nothing, and their buffers, in a pool of their own
// that calibrates to broadcast sizes and drops rare huge buffers.
var (
	sharedPool sync.Pool
	sharedBufs bytebufferpool.Pool
)

// headerRoom fills the room reserved for the header of the first frame.
var headerRoom [MaxHeaderLen]byte

// Shared is an outgoing frame, or a few frames, encoded once and written to
// many connections, possibly by several event loops: a broadcast. It holds a
// pooled buffer and an atomic reference count; the last Release returns the
// buffer to the pool.
//
// Life cycle:
//
//  1. AcquireShared, then append the payload of the first frame with
//     AppendPayload, AppendPayloadString, Write or PayloadBuffer. The
//     buffer reserves MaxHeaderLen bytes in front of the payload, so the
//     header is written there afterwards and the payload is never moved.
//  2. Seal writes the header. Optionally AppendFrame adds more whole frames.
//  3. Retain one reference per extra holder (e.g. one per event loop) before
//     handing it over. From then on the bytes are immutable: Bytes may be
//     called from any goroutine, and each holder calls Release once when it
//     has written them.
//
// Steps 1 and 2 belong to one goroutine. It is forbidden to access a Shared
// after its last Release: the value and its buffer are reused.
type Shared struct {
	buf  *bytebufferpool.ByteBuffer
	refs atomic.Int32
	off  int // start of the first frame in buf.B
	end  int // end of the first frame's payload in buf.B; 0 before Seal
}

// AcquireShared returns an empty Shared from the pool, with one reference
// held by the caller and MaxHeaderLen bytes reserved in front of the
// payload. Release it when done.
func AcquireShared() *Shared {
	s, _ := sharedPool.Get().(*Shared)
	if s == nil {
		s = new(Shared)
	}
	s.buf = sharedBufs.Get()
	s.buf.B = append(s.buf.B[:0], headerRoom[:]...)
	s.off = MaxHeaderLen
	s.end = 0
	s.refs.Store(1)
	return s
}

// NewSharedFrame returns a sealed Shared holding one final frame with
// opcode op and a copy of payload, with one reference held by the caller.
func NewSharedFrame(op ws.OpCode, payload []byte) *Shared {
	s := AcquireShared()
	s.AppendPayload(payload)
	s.Seal(op)
	return s
}

// Payload returns the payload of the first frame: before Seal, the bytes
// appended so far. It aliases the buffer and is valid until the next append
// or the last Release.
func (s *Shared) Payload() []byte {
	if s.end == 0 {
		return s.buf.B[MaxHeaderLen:]
	}
	return s.buf.B[MaxHeaderLen:s.end]
}

// AppendPayload appends p to the payload of the first frame. Call it only
// before Seal.
func (s *Shared) AppendPayload(p []byte) {
	s.buf.B = append(s.buf.B, p...)
}

// AppendPayloadString appends p to the payload of the first frame. Call it
// only before Seal.
func (s *Shared) AppendPayloadString(p string) {
	s.buf.B = append(s.buf.B, p...)
}

// Write appends p to the payload of the first frame, so that a Shared can
// be the io.Writer of an encoder. It always returns len(p), nil. Call it
// only before Seal.
func (s *Shared) Write(p []byte) (int, error) {
	s.buf.B = append(s.buf.B, p...)
	return len(p), nil
}

// PayloadBuffer returns a pointer to the underlying slice for append-style
// encoders, e.g. *b = strconv.AppendInt(*b, n, 10). The slice starts with
// the reserved header room: only append to it, never shorten it or write
// below its length. The pointer must not be used after Seal.
func (s *Shared) PayloadBuffer() *[]byte {
	return &s.buf.B
}

// Seal writes the header of the first frame (FIN, opcode op, unmasked, the
// shortest length encoding; RFC 6455 §5.2) into the reserved room, right
// before the payload, so that Bytes is one contiguous frame. It must be
// called once, after the payload is complete; later calls do nothing.
func (s *Shared) Seal(op ws.OpCode) {
	if s.end != 0 {
		return
	}
	b := s.buf.B
	n := putHeader(b[:MaxHeaderLen], op, len(b)-MaxHeaderLen)
	s.off = MaxHeaderLen - n
	s.end = len(b)
}

// AppendFrame appends another whole final frame with opcode op and a copy of
// payload after the sealed first frame, so that one write sends both (e.g.
// a Socket.IO event and its binary attachments). Call it only after Seal
// and before the Shared is handed over.
func (s *Shared) AppendFrame(op ws.OpCode, payload []byte) {
	s.buf.B = AppendFrame(s.buf.B, op, payload)
}

// Bytes returns the encoded frames, or nil before Seal. The slice is valid
// until the last Release and must not be modified.
func (s *Shared) Bytes() []byte {
	if s.end == 0 {
		return nil
	}
	return s.buf.B[s.off:]
}

// Retain adds n references, one for each holder the Shared is about to be
// handed to. Call it while holding a reference; it is safe from any
// goroutine.
func (s *Shared) Retain(n int) {
	s.refs.Add(int32(n))
}

// Release drops one reference; the last one returns the buffer and the
// Shared to their pools. It is safe from any goroutine. It is forbidden to
// access s after its last Release.
//
// Releasing more often than retaining is a bug that would hand the buffer
// to two users. It is detected while the Shared has not been reacquired,
// and then Release panics rather than corrupt another broadcast.
func (s *Shared) Release() {
	n := s.refs.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		panic("frame: Shared released more often than retained")
	}
	buf := s.buf
	s.buf = nil
	sharedBufs.Put(buf)
	sharedPool.Put(s)
}
