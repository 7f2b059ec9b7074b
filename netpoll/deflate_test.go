package netpoll

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws/wsflate"
	"github.com/gorilla/websocket"
)

// dialDeflate is dialWS with gorilla's permessage-deflate offer.
func dialDeflate(t *testing.T, addr string) *wsClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	ws, resp, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "permessage-deflate;server_no_context_takeover;client_no_context_takeover" {
		t.Fatalf("extensions %q", ext)
	}
	t.Cleanup(func() { ws.Close() })
	c := &wsClient{t: t, ws: ws}
	if w := c.read(); w["type"] != "welcome" {
		t.Fatalf("first message %v", w)
	}
	return c
}

// rawDeflateClient upgrades with a permessage-deflate offer and returns
// the connection positioned after the 101 and the welcome.
func rawDeflateClient(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, br, resp := upgradeWith(t, addr, deflateOffer)
	t.Cleanup(func() { nc.Close() })
	if !strings.HasPrefix(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Fatalf("upgrade: %v", resp)
	}
	if _, _, err := readServerFrame(br); err != nil { // welcome
		t.Fatal(err)
	}
	return nc, br
}

// TestBroadcastCompressedOnce: a room message to many members that
// negotiated permessage-deflate, spread over both loops, is compressed
// once; they and the plain members all decode the same message, the
// compressing ones from a frame with RSV1.
func TestBroadcastCompressedOnce(t *testing.T) {
	ts := startTestServer(t, Config{Compression: true, Loops: 2})
	var members []*wsClient
	for i := 0; i < 12; i++ {
		var c *wsClient
		if i%4 == 3 {
			c = dialWS(t, ts.addr) // plain
		} else {
			c = dialDeflate(t, ts.addr)
		}
		c.write(`{"type":"join","room":"r","id":1}`)
		c.read()
		members = append(members, c)
	}
	nc, br := rawDeflateClient(t, ts.addr)
	nc.Write(maskedText(`{"type":"join","room":"r","id":1}`))
	if _, _, err := readServerFrame(br); err != nil {
		t.Fatal(err)
	}
	sender := dialDeflate(t, ts.addr)
	sender.write(`{"type":"join","room":"r","id":1}`)
	sender.read()
	text := strings.Repeat("the quick brown fox jumps over the lazy dog ", 12)
	before := deflates.Load()
	sender.write(`{"type":"send","room":"r","id":2,"data":{"text":"` + text + `"}}`)
	if m := sender.read(); m["type"] != "ack" {
		t.Fatalf("sender got %v", m)
	}
	for i, c := range members {
		if m := c.read(); m["type"] != "message" || m["data"].(map[string]any)["text"] != text {
			t.Fatalf("member %d got %v", i, m)
		}
	}
	// The raw member sees the compressed frame itself.
	var h [2]byte
	if _, err := br.Read(h[:1]); err != nil || h[0] != 0xc1 {
		t.Fatalf("raw member's frame starts %#x (%v), want 0xc1: FIN, RSV1, text", h[0], err)
	}
	if n := deflates.Load() - before; n != 1 {
		t.Fatalf("the broadcast was compressed %d times for 10 compressing members, want once", n)
	}
}

// TestNoCompressionByDefault: without Config.Compression the offer is
// ignored and RSV1 from the client is a protocol error (1002).
func TestNoCompressionByDefault(t *testing.T) {
	ts := startTestServer(t, Config{})
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	ws, resp, err := d.Dial("ws://"+ts.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("extension %q negotiated with compression off", ext)
	}
}

// TestDeflateOffersDeclined: offers the gateway cannot honour are
// declined, and the connection opens without compression.
func TestDeflateOffersDeclined(t *testing.T) {
	ts := startTestServer(t, Config{Compression: true})
	for _, offer := range []string{
		"permessage-deflate; server_max_window_bits=10", // Go's deflate has one window size
		"permessage-deflate; no_such_parameter",
		"permessage-deflate; client_max_window_bits=99",
		"x-webkit-deflate-frame",
	} {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write([]byte(strings.Replace(upgradeReq, "\r\n\r\n", "\r\nSec-WebSocket-Extensions: "+offer+"\r\n\r\n", 1)))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Extensions") != "" {
			t.Fatalf("offer %q: %v %v", offer, resp, err)
		}
	}
}

// TestDeflateNegotiationAllocatesNothing: accepting permessage-deflate
// makes no garbage (loop.negotiate), so a storm of compressing handshakes
// does not grow the heap more than plain ones do. gobwas/ws's own
// Negotiate path allocated about 450 bytes per accepted offer.
func TestDeflateNegotiationAllocatesNothing(t *testing.T) {
	if builtWithRace() {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	lp := &loop{}
	lp.flate.Parameters = wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
	offer := []byte("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits; server_no_context_takeover, permessage-deflate")
	var got []httphead.Option
	run := func() {
		lp.flate.Reset()
		var ok bool
		if got, ok = lp.negotiate(offer, nil); !ok {
			t.Fatal("the offer was refused as malformed")
		}
	}
	run()
	if len(got) != 1 || string(got[0].Name) != "permessage-deflate" {
		t.Fatalf("accepted %v, want one permessage-deflate", got)
	}
	if _, ok := got[0].Parameters.Get("client_no_context_takeover"); !ok {
		t.Fatalf("accepted %v without client_no_context_takeover", got)
	}
	if allocs := testing.AllocsPerRun(1000, run); allocs != 0 {
		t.Fatalf("negotiating permessage-deflate allocates %v times, want 0", allocs)
	}
	if _, ok := lp.negotiate([]byte("permessage-deflate; ="), nil); ok {
		t.Fatal("a malformed offer was not refused")
	}
}
