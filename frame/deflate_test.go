package frame

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// deflateRaw compresses p as a permessage-deflate client does (RFC 7692
// §7.2.1): a sync flush, its 00 00 ff ff tail removed. It uses
// compress/flate directly, independently of the package's compressor.
func deflateRaw(tb testing.TB, p []byte) []byte {
	tb.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.DefaultCompression)
	if err != nil {
		tb.Fatal(err)
	}
	w.Write(p)
	w.Flush()
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		tb.Fatalf("flush tail missing: %x", out[len(out)-4:])
	}
	return out[:len(out)-4]
}

// zf builds a masked client frame with RSV1 set when rsv1.
func zf(fin bool, op ws.OpCode, rsv1 bool, payload []byte) []byte {
	h := ws.Header{Fin: fin, OpCode: op, Masked: true, Mask: testMask(op, len(payload))}
	if rsv1 {
		h.Rsv = 0x4
	}
	return encode(h, payload)
}

// feedDeflate feeds input to a Reader that negotiated permessage-deflate
// (when on), whole and then cut at every offset, and checks that every
// split gives the same result.
func feedDeflate(t *testing.T, on bool, maxMessage int, input []byte) result {
	t.Helper()
	run := func(cuts []int) result {
		var r Reader
		r.Init(maxMessage)
		r.SetDeflate(on)
		var rec recorder
		var err error
		prev := 0
		for _, c := range append(cuts, len(input)) {
			piece := append([]byte(nil), input[prev:c]...)
			prev = c
			if err = r.Feed(piece, &rec); err != nil {
				break
			}
		}
		return result{events: rec.events, err: err, pending: r.Pending()}
	}
	whole := run(nil)
	for i := 1; i < len(input); i++ {
		if got := run([]int{i}); !got.equal(whole) {
			t.Fatalf("cut at %d: %v, whole: %v", i, got, whole)
		}
	}
	return whole
}

var chatJSON = []byte(strings.Repeat(`{"type":"message","room":"lobby","from":"u1","data":{"text":"hello, everyone in the room"}}`, 4))

func TestReaderInflatesCompressedMessages(t *testing.T) {
	z := deflateRaw(t, chatJSON)
	// One frame, and the same message in two fragments (RSV1 on the first
	// only, RFC 7692 §6.1), with a ping between them.
	got := feedDeflate(t, true, 0, join(zf(true, ws.OpText, true, z),
		zf(false, ws.OpText, true, z[:5]), ping("p"), zf(true, ws.OpContinuation, false, z[5:]),
		text("plain")))
	want := result{events: []string{"text:" + string(chatJSON), "ping:p", "text:" + string(chatJSON), "text:plain"}}
	if !got.equal(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestReaderDeflateViolations(t *testing.T) {
	z := deflateRaw(t, chatJSON)
	bomb := deflateRaw(t, bytes.Repeat([]byte("a"), 10000))
	badUTF8 := deflateRaw(t, []byte("bad \xff text"))
	for _, tc := range []struct {
		name  string
		on    bool
		max   int
		input []byte
		want  *Error
		code  ws.StatusCode
	}{
		{"RSV1 not negotiated", false, 0, zf(true, ws.OpText, true, z), ErrReservedBits, 1002},
		{"RSV1 on a continuation", true, 0, join(zf(false, ws.OpText, true, z[:5]), zf(true, ws.OpContinuation, true, z[5:])), ErrCompressedBit, 1002},
		{"RSV1 on a ping", true, 0, zf(true, ws.OpPing, true, []byte("p")), ErrCompressedBit, 1002},
		{"RSV2", true, 0, encode(ws.Header{Fin: true, OpCode: ws.OpText, Rsv: 0x2, Masked: true}, z), ErrReservedBits, 1002},
		{"invalid deflate data", true, 0, zf(true, ws.OpText, true, []byte{0xff, 0xfe, 0xfd, 0xfc, 0x00}), ErrInvalidDeflate, 1007},
		{"truncated deflate data", true, 0, zf(true, ws.OpText, true, z[:len(z)/2]), ErrInvalidDeflate, 1007},
		{"inflates past the limit", true, 9999, zf(true, ws.OpBinary, true, bomb), ErrTooBig, 1009},
		{"inflates to invalid UTF-8", true, 0, zf(true, ws.OpText, true, badUTF8), ErrInvalidUTF8, 1007},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := feedDeflate(t, tc.on, tc.max, tc.input)
			if !errors.Is(got.err, tc.want) || CloseCode(got.err) != tc.code || len(got.events) != 0 {
				t.Fatalf("got %v, want %v (%d) and no event", got, tc.want, tc.code)
			}
		})
	}
	// At the limit exactly, the bomb is a message.
	if got := feedDeflate(t, true, 10000, zf(true, ws.OpBinary, true, bomb)); got.err != nil || len(got.events) != 1 {
		t.Fatalf("at the limit: %v", got)
	}
}

func TestAppendDeflatedFrame(t *testing.T) {
	b := AppendDeflatedFrame([]byte("x"), ws.OpText, chatJSON)
	rd := bytes.NewReader(b[1:])
	var f ws.Frame
	var err error
	if f.Header, err = ws.ReadHeader(rd); err != nil {
		t.Fatal(err)
	}
	f.Payload = make([]byte, f.Header.Length)
	if _, err := io.ReadFull(rd, f.Payload); err != nil || rd.Len() != 0 {
		t.Fatalf("payload: %v, %d bytes left", err, rd.Len())
	}
	if f.Header.Rsv != 0x4 || !f.Header.Fin || f.Header.OpCode != ws.OpText || f.Header.Masked {
		t.Fatalf("header %+v, want a final unmasked text frame with RSV1", f.Header)
	}
	if len(f.Payload) >= len(chatJSON)/2 {
		t.Errorf("compressed %d bytes to %d", len(chatJSON), len(f.Payload))
	}
	// gobwas/ws's own decompressor reads it back.
	plain, err := wsflate.DecompressFrame(f)
	if err != nil || !bytes.Equal(plain.Payload, chatJSON) {
		t.Fatalf("inflated %q, %v", plain.Payload, err)
	}
	// Short messages and control frames go plain.
	for _, tc := range []struct {
		op ws.OpCode
		p  []byte
	}{{ws.OpText, chatJSON[:DeflateMin-1]}, {ws.OpPong, chatJSON[:100]}} {
		b := AppendDeflatedFrame(nil, tc.op, tc.p)
		if !bytes.Equal(b, AppendFrame(nil, tc.op, tc.p)) {
			t.Errorf("op %d, %d bytes: %x, want the plain frame", tc.op, len(tc.p), b[:2])
		}
	}
}

func BenchmarkAppendDeflatedFrame(b *testing.B) {
	b.ReportAllocs()
	var dst []byte
	for i := 0; i < b.N; i++ {
		dst = AppendDeflatedFrame(dst[:0], ws.OpText, chatJSON)
	}
}

func BenchmarkInflate(b *testing.B) {
	z := deflateRaw(b, chatJSON)
	in := zf(true, ws.OpText, true, z)
	var r Reader
	r.Init(0)
	r.SetDeflate(true)
	var h nopHandler
	buf := make([]byte, len(in))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		copy(buf, in) // Feed unmasks in place
		if err := r.Feed(buf, h); err != nil {
			b.Fatal(err)
		}
	}
}

type nopHandler struct{}

func (nopHandler) OnMessage(ws.OpCode, []byte) error { return nil }
func (nopHandler) OnControl(ws.OpCode, []byte) error { return nil }
