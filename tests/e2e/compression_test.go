package e2e

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// permessage-deflate (-compression, docs/protocol.md): gorilla/websocket
// with EnableCompression and hand-made frames with RSV1 against the real
// binary.

// the extension the gateway answers, always without context takeover
const deflateAnswer = "permessage-deflate;server_no_context_takeover;client_no_context_takeover"

// dialCompressing is dial with gorilla's permessage-deflate offer; it
// checks what the gateway answered against want ("" for nothing).
func dialCompressing(t *testing.T, g *gateway, path, want string) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	ws, resp, err := d.Dial("ws://"+g.addr+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != want {
		t.Fatalf("Sec-WebSocket-Extensions %q, want %q", got, want)
	}
	return ws, resp
}

// nativeCompressing is a native client that negotiated compression.
func nativeCompressing(t *testing.T, g *gateway) *client {
	t.Helper()
	ws, _ := dialCompressing(t, g, "/ws", deflateAnswer)
	c := &client{t: t, ws: ws}
	w := c.read()
	if w["type"] != "welcome" {
		t.Fatalf("first message %v, want welcome", w)
	}
	c.id = w["id"].(string)
	return c
}

// upgradeDeflate is rawConn.upgrade with a permessage-deflate offer, when
// offer, and returns the extension answered.
func (r *rawConn) upgradeDeflate(offer bool) string {
	r.t.Helper()
	req := upgradeRequest
	if offer {
		req = strings.Replace(req, "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", 1)
	}
	r.write([]byte(req))
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil || resp.StatusCode != 101 {
		r.t.Fatalf("handshake: %v %v", resp, err)
	}
	return resp.Header.Get("Sec-WebSocket-Extensions")
}

// readFrameRSV is readFrame also returning the first header byte.
func (r *rawConn) readFrameRSV() (b0 byte, payload []byte) {
	r.t.Helper()
	b, err := r.br.Peek(1)
	if err != nil {
		r.t.Fatal(err)
	}
	b0 = b[0]
	_, payload = r.readFrame()
	return b0, payload
}

// deflateMessage compresses p as a permessage-deflate peer does
// (RFC 7692 §7.2.1), with compress/flate directly.
func deflateMessage(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(p)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// inflateMessage reverses deflateMessage.
func inflateMessage(t *testing.T, z []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))))
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

// compressedFrame is clientFrame with RSV1 set.
func compressedFrame(fin bool, op byte, z []byte) []byte {
	f := clientFrame(fin, op, z)
	f[0] |= 0x40
	return f
}

// chatText is a realistic chat message text of about 600 bytes.
var chatText = strings.Repeat("Meeting moved to 3pm, room B; bring the quarterly numbers and the draft. ", 8)

// TestCompressedBroadcast: in one room, native clients with and without
// permessage-deflate, a hand-made client that checks RSV1 on the wire and
// a Socket.IO client with compression all decode the same room message
// and the same direct message; a compressed message from a client is
// inflated and broadcast.
func TestCompressedBroadcast(t *testing.T) {
	g := startGateway(t, "-compression")
	zipped := nativeCompressing(t, g)
	plain := dial(t, g)
	for _, c := range []*client{zipped, plain} {
		if m := c.request(map[string]any{"type": "join", "room": "z"}); m["type"] != "ack" {
			t.Fatalf("join: %v", m)
		}
	}
	raw := dialRaw(t, g)
	if ext := raw.upgradeDeflate(true); ext != deflateAnswer {
		t.Fatalf("raw client's extension %q", ext)
	}
	_, welcome := raw.readFrame()
	var w map[string]any
	json.Unmarshal(welcome, &w)
	rawID := w["id"].(string)
	raw.write(clientFrame(true, 1, []byte(`{"type":"join","room":"z","id":1}`)))
	raw.readFrame()

	sws, _ := dialCompressing(t, g, "/socket.io/?EIO=4&transport=websocket", deflateAnswer)
	s := &sioClient{t: t, ws: sws, msgs: make(chan sioMsg, 64), pong: true}
	go s.readLoop()
	if first := s.nextText(); !strings.HasPrefix(first, "0") {
		t.Fatalf("open packet %q", first)
	}
	s.connect("40", "/")
	s.send(`422["join","z"]`)
	if got := s.nextText(); !strings.HasPrefix(got, `432[{"room":"z","count":4`) {
		t.Fatalf("Socket.IO join ack %q", got)
	}
	// (readType, and the raw reads below, skip the joins' presence events)

	// The compressing native client sends compressed (gorilla compresses
	// what it writes); everyone decodes the same data.
	zipped.send(map[string]any{"type": "send", "room": "z", "data": map[string]any{"text": chatText}})
	check := func(who string, m map[string]any) {
		t.Helper()
		if m["type"] != "message" || m["from"] != zipped.id || m["data"].(map[string]any)["text"] != chatText {
			t.Fatalf("%s got %v", who, m)
		}
	}
	check("plain native", plain.readType("message"))
	b0, z := raw.readFrameRSV()
	for b0 == 0x81 && strings.Contains(string(z), `"presence"`) {
		b0, z = raw.readFrameRSV()
	}
	if b0 != 0xc1 {
		t.Fatalf("raw member's frame starts %#x, want 0xc1 (FIN, RSV1, text)", b0)
	}
	var m map[string]any
	if err := json.Unmarshal(inflateMessage(t, z), &m); err != nil {
		t.Fatal(err)
	}
	check("raw compressing", m)
	if len(z) > len(chatText)/3 {
		t.Errorf("a %d-byte text went out as %d compressed bytes", len(chatText), len(z))
	}
	got := s.nextText()
	if want := `42["message",{"room":"z","from":"` + zipped.id + `","nick":"","data":{"text":"` + chatText + `"}`; !strings.HasPrefix(got, want) {
		t.Fatalf("Socket.IO got %q", got)
	}

	// A direct message is compressed for its one recipient.
	plain.request(map[string]any{"type": "send", "to": rawID, "data": chatText})
	b0, z = raw.readFrameRSV()
	if b0 != 0xc1 || !strings.Contains(string(inflateMessage(t, z)), `"data":"`+chatText+`"`) {
		t.Fatalf("direct message: first byte %#x, %q", b0, z)
	}
	// A compressed message written by hand, in two fragments.
	msg := deflateMessage(t, []byte(`{"type":"send","room":"z","id":"h","data":"`+chatText+`"}`))
	raw.write(append(compressedFrame(false, 1, msg[:7]), clientFrame(true, 0, msg[7:])...))
	if got := plain.readType("message"); got["data"] != chatText || got["from"] != rawID {
		t.Fatalf("plain member got %v from the hand-compressed message", got)
	}
}

// TestCompressionProtocolErrors: the RFC 7692 checks on the wire.
func TestCompressionProtocolErrors(t *testing.T) {
	g := startGateway(t, "-compression", "-max-message", "4096")
	for _, tc := range []struct {
		name  string
		offer bool
		frame []byte
		code  int
	}{
		{"invalid compressed data", true, compressedFrame(true, 1, []byte{0xff, 0xfe, 0xfd, 0xfc, 0x00, 0x01}), 1007},
		{"inflates past -max-message", true, compressedFrame(true, 1, deflateMessage(t, bytes.Repeat([]byte("a"), 100000))), 1009},
		{"RSV1 without the extension", false, compressedFrame(true, 1, deflateMessage(t, []byte(`{"type":"ping"}`))), 1002},
		{"RSV1 on a ping", true, compressedFrame(true, 9, nil), 1002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := dialRaw(t, g)
			ext := raw.upgradeDeflate(tc.offer)
			if (ext != "") != tc.offer {
				t.Fatalf("extension %q with offer %v", ext, tc.offer)
			}
			raw.readFrame() // welcome
			raw.write(tc.frame)
			if code := raw.readCloseCode(); code != tc.code {
				t.Fatalf("close %d, want %d", code, tc.code)
			}
		})
	}
	// The gateway serves on.
	c := nativeCompressing(t, g)
	if m := c.request(map[string]any{"type": "ping"}); m["type"] != "ack" {
		t.Fatalf("ping: %v", m)
	}
}

// TestCompressionOffByDefault: without -compression no offer is
// accepted, on /ws or Socket.IO.
func TestCompressionOffByDefault(t *testing.T) {
	g := startGateway(t)
	dialCompressing(t, g, "/ws", "")
	dialCompressing(t, g, "/socket.io/?EIO=4&transport=websocket", "")
	raw := dialRaw(t, g)
	if ext := raw.upgradeDeflate(true); ext != "" {
		t.Fatalf("extension %q", ext)
	}
}

// TestCompressedMessagesInARow: several compressed messages in a row,
// each repeating much of the one before (a compressor that kept its
// window would refer back to it), are inflated one by one by the gateway
// and reach a plain member whole and in order; the other way, a
// compressing member decodes a run of compressed broadcasts. gorilla
// offers and gets client_no_context_takeover.
func TestCompressedMessagesInARow(t *testing.T) {
	g := startGateway(t, "-compression")
	zipped := nativeCompressing(t, g)
	zipped2 := nativeCompressing(t, g)
	plain := dial(t, g)
	for _, c := range []*client{zipped, zipped2, plain} {
		if m := c.request(map[string]any{"type": "join", "room": "row"}); m["type"] != "ack" {
			t.Fatalf("join: %v", m)
		}
	}
	const n = 12
	text := func(i int) string { return fmt.Sprintf("%d: %s", i, chatText) }
	for i := 0; i < n; i++ {
		zipped.send(map[string]any{"type": "send", "room": "row", "data": text(i)})
	}
	for _, r := range []*client{plain, zipped2} {
		for i := 0; i < n; i++ {
			if m := r.readType("message"); m["data"] != text(i) || m["from"] != zipped.id {
				t.Fatalf("message %d: got %v", i, m)
			}
		}
	}
	for i := 0; i < n; i++ {
		plain.send(map[string]any{"type": "send", "room": "row", "data": text(n + i)})
	}
	for _, r := range []*client{zipped, zipped2} {
		for i := 0; i < n; i++ {
			if m := r.readType("message"); m["data"] != text(n+i) || m["from"] != plain.id {
				t.Fatalf("compressed broadcast %d: got %v", i, m)
			}
		}
	}
}
