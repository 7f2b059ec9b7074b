// Package payload holds the one form in which chatgate pushes anything to a
// client: a Shared, a wire-codec payload (one text message and, for
// Socket.IO, its binary attachments) encoded once, reference-counted and
// shared by every recipient, whatever loop or transport they are on.
//
// The chat hub encodes a Shared per codec; it never frames it. Each
// transport frames its own output from the same bytes: the WebSocket edge
// (netpoll) writes a frame header into room reserved in front of the text,
// once per payload and before the payload is shared, so a broadcast to a
// thousand members is framed once and copied by nobody; long-polling
// (engineio) appends the parts to its HTTP payload.
//
// The package is pure: no I/O, no WebSocket, no chat types.
package payload

import (
	"sync"
	"sync/atomic"

	"github.com/valyala/bytebufferpool"
)

// HeaderRoom is how many bytes are reserved in front of the text, enough
// for the longest WebSocket server frame header (RFC 6455 §5.2: 2 + 8
// bytes, unmasked).
const HeaderRoom = 10

// MaxAttachments bounds the binary attachments of one payload.
const MaxAttachments = 64

// Pools behind Acquire: the Shared values, so encoding a broadcast
// allocates nothing, and their buffers, in a pool of their own that
// calibrates to broadcast sizes and drops rare huge buffers.
var (
	sharedPool sync.Pool
	bufs       bytebufferpool.Pool
)

var headerRoom [HeaderRoom]byte

// Shared is one encoded payload, shared by every recipient.
//
// Life cycle:
//
//  1. Acquire, then append the text through Text (append-style encoders
//     take the pointer it returns) and, optionally, attachments with
//     AddAttachment (after the text is complete).
//  2. The transport that will write it calls SetHeader or SetFramed once,
//     still on the goroutine that owns it.
//  3. Retain one reference per extra holder (one per event loop, say)
//     before handing it over. From then on the bytes are immutable: every
//     accessor may be called from any goroutine, and each holder calls
//     Release once when it is done.
//
// Steps 1 and 2 belong to one goroutine. It is forbidden to access a
// Shared after its last Release: the value and its buffers are reused.
type Shared struct {
	// buf is [HeaderRoom][text][attachment 0][attachment 1]…
	buf *bytebufferpool.ByteBuffer
	// framed is the transport's whole framing when it cannot live in the
	// header room (a text followed by binary frames); nil otherwise.
	framed *bytebufferpool.ByteBuffer
	refs   atomic.Int32
	// alt is a second framing of the same payload (a compressed one),
	// built on first demand by whichever holder asks first (Alt); altMu
	// guards building it, altDone publishes it.
	alt     *bytebufferpool.ByteBuffer
	altMu   sync.Mutex
	altDone atomic.Bool
	// text is the end of the text in buf.B; 0 while the text is still
	// open. ends[i] is the end of attachment i.
	text int32
	hdr  int32 // bytes of header written in front of the text (SetHeader)
	ends []int32
}

// Acquire returns an empty Shared from the pool, with one reference held
// by the caller.
func Acquire() *Shared {
	s, _ := sharedPool.Get().(*Shared)
	if s == nil {
		s = new(Shared)
	}
	s.buf = bufs.Get()
	s.buf.B = append(s.buf.B[:0], headerRoom[:]...)
	s.text, s.hdr = 0, 0
	s.altDone.Store(false)
	s.ends = s.ends[:0]
	s.refs.Store(1)
	return s
}

// New returns a Shared holding a copy of text and no attachments, with
// one reference held by the caller.
func New(text []byte) *Shared {
	s := Acquire()
	*s.Text() = append(*s.Text(), text...)
	return s
}

// Text returns a pointer to the buffer the text is appended to, for
// append-style encoders: *p = codec.AppendX(*p, …). The slice begins with
// the header room; only append to it. The pointer must not be used after
// the first AddAttachment, SetHeader or SetFramed.
func (s *Shared) Text() *[]byte { return &s.buf.B }

// closeText marks the end of the text, once.
func (s *Shared) closeText() {
	if s.text == 0 {
		s.text = int32(len(s.buf.B))
	}
}

// AddAttachment appends a copy of one binary attachment. At most
// MaxAttachments are kept; later ones are dropped, as the codecs refuse
// packets with more.
func (s *Shared) AddAttachment(b []byte) {
	s.closeText()
	if len(s.ends) >= MaxAttachments {
		return
	}
	s.buf.B = append(s.buf.B, b...)
	s.ends = append(s.ends, int32(len(s.buf.B)))
}

// Payload returns the text. It aliases the buffer: valid until the last
// Release, and not to be modified.
func (s *Shared) Payload() []byte {
	s.closeText()
	return s.buf.B[HeaderRoom:s.text]
}

// Empty reports whether the text is empty (a codec had nothing to say).
func (s *Shared) Empty() bool { return len(s.Payload()) == 0 }

// Attachments returns how many binary attachments follow the text.
func (s *Shared) Attachments() int { return len(s.ends) }

// Attachment returns attachment i. Like Payload, it aliases the buffer.
func (s *Shared) Attachment(i int) []byte {
	s.closeText()
	start := s.text
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.buf.B[start:s.ends[i]]
}

// SetHeader writes hdr (at most HeaderRoom bytes) right in front of the
// text, so that Framed is the header and the text in one slice without a
// copy. Call it once, before the Shared is shared.
func (s *Shared) SetHeader(hdr []byte) {
	s.closeText()
	if len(hdr) > HeaderRoom {
		panic("payload: header longer than HeaderRoom")
	}
	copy(s.buf.B[HeaderRoom-len(hdr):], hdr)
	s.hdr = int32(len(hdr))
}

// SetFramed stores the transport's framing of the whole payload, built by
// fn appending to an empty pooled buffer. Call it once, before the Shared
// is shared; it overrides SetHeader.
func (s *Shared) SetFramed(fn func(dst []byte) []byte) {
	s.closeText()
	if s.framed == nil {
		s.framed = bufs.Get()
	}
	s.framed.B = fn(s.framed.B[:0])
}

// Framed returns the transport framing set by SetHeader or SetFramed, or
// nil when neither was called. Valid until the last Release.
func (s *Shared) Framed() []byte {
	switch {
	case s.framed != nil:
		return s.framed.B
	case s.hdr > 0:
		return s.buf.B[HeaderRoom-s.hdr : s.text]
	}
	return nil
}

// Alt returns the payload's alternative framing (for WebSocket, the
// compressed frame of a permessage-deflate connection), built by build on
// the first call, by whichever holder makes it, and shared by every later
// call from any goroutine: a broadcast is compressed once, whatever the
// number of members that want it compressed. build appends to an empty
// pooled buffer and may return it empty, meaning there is no alternative
// (then Alt returns nil). build must be the same function for every call
// on one Shared. Valid until the last Release.
func (s *Shared) Alt(build func(dst []byte, s *Shared) []byte) []byte {
	if !s.altDone.Load() {
		s.altMu.Lock()
		if !s.altDone.Load() {
			b := bufs.Get()
			b.B = build(b.B[:0], s)
			if len(b.B) == 0 {
				bufs.Put(b)
			} else {
				s.alt = b
			}
			s.altDone.Store(true)
		}
		s.altMu.Unlock()
	}
	if s.alt == nil {
		return nil
	}
	return s.alt.B
}

// Retain adds n references, one for each holder the Shared is about to be
// handed to. Call it while holding a reference; safe from any goroutine.
func (s *Shared) Retain(n int) { s.refs.Add(int32(n)) }

// Release drops one reference; the last one returns the buffers and the
// Shared to their pools. Safe from any goroutine. Releasing more often
// than retaining is a bug that would hand a buffer to two users: it is
// detected while the Shared has not been reacquired, and then Release
// panics rather than corrupt another payload.
func (s *Shared) Release() {
	n := s.refs.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		panic("payload: Shared released more often than retained")
	}
	bufs.Put(s.buf)
	s.buf = nil
	if s.framed != nil {
		bufs.Put(s.framed)
		s.framed = nil
	}
	if s.alt != nil {
		bufs.Put(s.alt)
		s.alt = nil
	}
	sharedPool.Put(s)
}
