package frame

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// bits parses a string of '0' and '1' into bytes, most significant bit
// first. Spaces are ignored, so a header reads like RFC 6455 §5.2.
func bits(s string) []byte {
	s = strings.ReplaceAll(s, " ", "")
	if len(s)%8 != 0 {
		panic(fmt.Sprintf("bits: %d bits is not whole bytes", len(s)))
	}
	b := make([]byte, len(s)/8)
	for i, c := range s {
		switch c {
		case '1':
			b[i/8] |= 0x80 >> (i % 8)
		case '0':
		default:
			panic(fmt.Sprintf("bits: bad character %q", c))
		}
	}
	return b
}

// testMask derives a deterministic masking key from the frame, so that
// frames in one input use different keys.
func testMask(op ws.OpCode, n int) [4]byte {
	return [4]byte{byte(n) ^ 0x37, 0xa5, byte(op)<<4 | 1, byte(n>>8) ^ 0x5a}
}

// encode builds a frame with gobwas/ws, an encoder independent of this
// package. If h.Masked, the payload is masked with h.Mask.
func encode(h ws.Header, payload []byte) []byte {
	p := append([]byte(nil), payload...)
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	h.Length = int64(len(p))
	var buf bytes.Buffer
	if err := ws.WriteFrame(&buf, ws.Frame{Header: h, Payload: p}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// cf builds a masked client frame.
func cf(fin bool, op ws.OpCode, payload string) []byte {
	return encode(ws.Header{
		Fin:    fin,
		OpCode: op,
		Masked: true,
		Mask:   testMask(op, len(payload)),
	}, []byte(payload))
}

// text, bin, ping, pong and closeFrame build final masked client frames.
func text(s string) []byte { return cf(true, ws.OpText, s) }
func bin(s string) []byte  { return cf(true, ws.OpBinary, s) }
func ping(s string) []byte { return cf(true, ws.OpPing, s) }
func pong(s string) []byte { return cf(true, ws.OpPong, s) }

func closeFrame(code ws.StatusCode, reason string) []byte {
	return cf(true, ws.OpClose, string([]byte{byte(code >> 8), byte(code)})+reason)
}

func join(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

var errHandler = errors.New("test handler failure")

// recorder is a Handler that records every event as "op:payload".
type recorder struct {
	events []string
	failOn string // event on which to return errHandler
}

func opName(op ws.OpCode) string {
	switch op {
	case ws.OpText:
		return "text"
	case ws.OpBinary:
		return "binary"
	case ws.OpPing:
		return "ping"
	case ws.OpPong:
		return "pong"
	case ws.OpClose:
		return "close"
	}
	return fmt.Sprintf("op%d", op)
}

func (r *recorder) record(op ws.OpCode, p []byte) error {
	e := opName(op) + ":" + string(p) // copies: p is only valid during the call
	r.events = append(r.events, e)
	if r.failOn != "" && e == r.failOn {
		return errHandler
	}
	return nil
}

func (r *recorder) OnMessage(op ws.OpCode, p []byte) error {
	if op != ws.OpText && op != ws.OpBinary {
		return fmt.Errorf("OnMessage with opcode %d", op)
	}
	return r.record(op, p)
}

func (r *recorder) OnControl(op ws.OpCode, p []byte) error {
	if !op.IsControl() {
		return fmt.Errorf("OnControl with opcode %d", op)
	}
	return r.record(op, p)
}

// result is what feeding an input produced.
type result struct {
	events  []string
	err     error
	pending bool
}

func (r result) String() string {
	ev := make([]string, len(r.events))
	for i, e := range r.events {
		if len(e) > 40 {
			e = fmt.Sprintf("%s...(%d bytes)", e[:40], len(e))
		}
		ev[i] = fmt.Sprintf("%q", e)
	}
	return fmt.Sprintf("events=[%s] err=%v pending=%v", strings.Join(ev, " "), r.err, r.pending)
}

func (r result) equal(o result) bool {
	if r.err != o.err || r.pending != o.pending || len(r.events) != len(o.events) {
		return false
	}
	for i := range r.events {
		if r.events[i] != o.events[i] {
			return false
		}
	}
	return true
}

// feedPieces feeds input to a new Reader cut at the offsets in cuts
// (ascending). Every piece is fed from a fresh copy that is overwritten
// after Feed returns, which catches a Reader that keeps pointers into p. It
// also checks the Reader's invariants after each call.
func feedPieces(tb testing.TB, maxMessage int, failOn string, input []byte, cuts []int) result {
	tb.Helper()
	var r Reader
	r.Init(maxMessage)
	h := &recorder{failOn: failOn}
	prev := 0
	var err error
	for i := 0; i <= len(cuts) && err == nil; i++ {
		end := len(input)
		if i < len(cuts) {
			end = cuts[i]
		}
		piece := append([]byte(nil), input[prev:end]...)
		prev = end
		err = r.Feed(piece, h)
		for j := range piece {
			piece[j] = 0xee
		}
		checkInvariants(tb, &r, err)
	}
	if err != nil {
		var fe *Error
		want := error(ErrStopped)
		if errors.As(err, &fe) {
			want = fe
		}
		if again := r.Feed([]byte{0x81}, h); again != want {
			tb.Fatalf(
				"Feed after error %v returned %v",
				err, again)
		}
	}
	res := result{events: h.events, err: err, pending: r.Pending()}
	r.Reset()
	r.Reset()
	if r.Pending() || r.buf != nil || r.cbuf != nil {
		tb.Fatalf(
			"Reader not clean after Reset: %+v",
			r)
	}
	return res
}

// checkInvariants asserts that the Reader holds buffers only while it must.
func checkInvariants(tb testing.TB, r *Reader, err error) {
	tb.Helper()
	if err != nil {
		if r.buf != nil || r.cbuf != nil {
			tb.Fatalf(
				"buffers kept after error %v",
				err)
		}
		return
	}
	if r.msgOp == ws.OpContinuation && r.buf != nil {
		tb.Fatalf(
			"message buffer kept between messages")
	}
	if !r.in && r.cbuf != nil {
		tb.Fatalf(
			"control buffer kept between frames")
	}
	if !r.Pending() && (r.buf != nil || r.cbuf != nil) {
		tb.Fatalf(
			"idle Reader holds a buffer")
	}
}

type wrapped struct{ err error }

func (w wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func wrap(err error) error { return wrapped{err} }
