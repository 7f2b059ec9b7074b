package engineio

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/frame"
)

// TestFramedPayloadKeepsItsText: a packet relayed to its WebSocket's loop
// is framed as one frame and still carries its text, which is what a
// permessage-deflate connection compresses there (netpoll's
// deflateFramed needs the text and a frame of exactly it).
func TestFramedPayloadKeepsItsText(t *testing.T) {
	for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
		b := bytes.Repeat([]byte(`42["message",{"data":"x"}]`), 10)
		p := framedPayload(op, b)
		if !bytes.Equal(p.Payload(), b) {
			t.Errorf("op %d: text %q, want the packet", op, p.Payload())
		}
		if want := frame.AppendFrame(nil, op, b); !bytes.Equal(p.Framed(), want) {
			t.Errorf("op %d: framed %x…, want one frame of the packet", op, p.Framed()[:4])
		}
		p.Release()
	}
}
