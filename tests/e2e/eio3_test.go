package e2e

// Engine.IO v3 (socket.io-client 2.x) with -sio-allow-eio3, byte by byte
// against the real binary: raw HTTP/1.1 long-polling with v3's
// length-prefixed payloads (text and binary), gorilla/websocket clients
// with v3's typed binary frames, the client-driven heartbeat, the server's
// own CONNECT of "/", the upgrade, and the bad input a v3 session gets
// (v4 packets and framing, JSONP). Native /ws and v4 polling clients share
// the rooms. tests/node/eio3.test.mjs drives the same with the real
// socket.io-client 2.x.
//
// The payloads are decoded here independently of chat/socketio: lengths
// are counted in UTF-16 code units with unicode/utf16.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/gorilla/websocket"
)

// v3Packets splits a v3 text payload ("<length>:<packet>…", lengths in
// UTF-16 code units) into its packets.
func v3Packets(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for body != "" {
		colon := strings.IndexByte(body, ':')
		n, err := strconv.Atoi(body[:max(colon, 0)])
		if colon <= 0 || err != nil {
			t.Fatalf("v3 payload %q: no length", body)
		}
		units := utf16.Encode([]rune(body[colon+1:]))
		if len(units) < n {
			t.Fatalf("v3 payload %q: length %d past the end", body, n)
		}
		pkt := string(utf16.Decode(units[:n]))
		out = append(out, pkt)
		body = body[colon+1+len(pkt):]
	}
	return out
}

// v3Frame frames packets as a v3 text payload.
func v3Frame(packets ...string) string {
	var b strings.Builder
	for _, p := range packets {
		fmt.Fprintf(&b, "%d:%s", len(utf16.Encode([]rune(p))), p)
	}
	return b.String()
}

// v3Client is one v3 polling session: GETs on one connection, POSTs on
// another.
type v3Client struct {
	t         *testing.T
	sid       string
	extra     string // query parameters of every request
	open      map[string]any
	get, post *pollConn
	queue     []string
}

func v3Open(t *testing.T, addr string) *v3Client {
	t.Helper()
	return v3OpenQuery(t, addr, "")
}

// v3OpenQuery makes the handshake with extra query parameters ("&…"),
// as socket.io-client 2.x's query option adds them.
func v3OpenQuery(t *testing.T, addr, extra string) *v3Client {
	t.Helper()
	c := &v3Client{t: t, extra: extra, get: pollDial(t, addr), post: pollDial(t, addr)}
	r := c.get.do("GET", "/socket.io/?EIO=3&transport=polling&b64=1"+extra, nil, "")
	if r.status != 200 {
		t.Fatalf("v3 handshake: %d %q", r.status, r.body)
	}
	pkts := v3Packets(t, r.body)
	if len(pkts) != 1 || !strings.HasPrefix(pkts[0], "0{") {
		t.Fatalf("v3 handshake answered %q, want one open packet", r.body)
	}
	if err := json.Unmarshal([]byte(pkts[0][1:]), &c.open); err != nil {
		t.Fatal(err)
	}
	c.sid, _ = c.open["sid"].(string)
	return c
}

func (c *v3Client) target() string {
	return "/socket.io/?EIO=3&transport=polling&sid=" + url.QueryEscape(c.sid) + c.extra
}

// send POSTs packets as one text payload and expects "ok".
func (c *v3Client) send(packets ...string) {
	c.t.Helper()
	if r := c.post.do("POST", c.target(), nil, v3Frame(packets...)); r.status != 200 || r.body != "ok" {
		c.t.Fatalf("POST %q: %d %q, want 200 ok", packets, r.status, r.body)
	}
}

// sendBinary POSTs a binary payload (application/octet-stream), as
// engine.io-client 3.x does when a packet is binary.
func (c *v3Client) sendBinary(body []byte) pollResp {
	c.t.Helper()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", c.target(), len(body))
	_ = c.post.nc.SetDeadline(time.Now().Add(pollWait))
	if _, err := io.WriteString(c.post.nc, head+string(body)); err != nil {
		c.t.Fatal(err)
	}
	r, err := c.post.readResponse()
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// take returns the first packet, queued or polled for, that match
// accepts.
func (c *v3Client) take(what string, match func(string) bool) string {
	c.t.Helper()
	deadline := time.Now().Add(pollWait)
	for {
		for i, p := range c.queue {
			if match(p) {
				c.queue = append(c.queue[:i], c.queue[i+1:]...)
				return p
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no %s within %v; queued %q", what, pollWait, c.queue)
		}
		r := c.get.do("GET", c.target(), nil, "")
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			c.t.Fatalf("GET: %d %q (%s)", r.status, r.body, r.header.Get("Content-Type"))
		}
		c.queue = append(c.queue, v3Packets(c.t, r.body)...)
	}
}

func (c *v3Client) ack(id int) string {
	c.t.Helper()
	prefix := fmt.Sprintf("43%d[", id)
	return c.take("ack "+strconv.Itoa(id), func(s string) bool { return strings.HasPrefix(s, prefix) })
}

// v3Dial opens a v3 WebSocket: for a new session (sid "") or an upgrade.
func v3Dial(t *testing.T, addr, sid string) *websocket.Conn {
	t.Helper()
	u := "ws://" + addr + "/socket.io/?EIO=3&transport=websocket"
	if sid != "" {
		u += "&sid=" + url.QueryEscape(sid)
	}
	d := websocket.Dialer{HandshakeTimeout: pollWait}
	ws, resp, err := d.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return ws
}

// v3Read returns the next WebSocket message; a v3 server sends no pings,
// so there are none to skip.
func v3Read(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(pollWait))
	typ, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("ws read: %v", err)
	}
	return typ, string(b)
}

// v3Expect reads the next message and fails unless it is text s.
func v3Expect(t *testing.T, ws *websocket.Conn, s string) {
	t.Helper()
	if typ, got := v3Read(t, ws); typ != websocket.TextMessage || got != s {
		t.Fatalf("got %d %q, want text %q", typ, got, s)
	}
}

// v3Open, then "/" is connected by the server, whose "40" (no payload)
// the client never asked for.
func v3Connected(t *testing.T, addr string) *v3Client {
	t.Helper()
	c := v3Open(t, addr)
	if p := c.take("CONNECT", func(string) bool { return true }); p != "40" {
		t.Fatalf("first packet after the handshake %q, want the server's 40", p)
	}
	return c
}

// TestEIO3PollingChat: a v3 polling client is connected to "/" by the
// server and chats with a native client and a v4 client in one room, both
// ways; lengths count UTF-16 code units; its room events carry no history
// offset, which v4 clients get.
func TestEIO3PollingChat(t *testing.T) {
	g := pollGateway(t, "-sio-allow-eio3")
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "v3"})
	v4 := pollOpen(t, g.addr, "/socket.io/")
	v4.connect()
	v4.emit(1, `["join","v3"]`)

	c := v3Connected(t, g.addr)
	if c.open["upgrades"] == nil || fmt.Sprint(c.open["upgrades"]) != "[websocket]" || c.open["pingInterval"] != 25000.0 || c.open["pingTimeout"] != 20000.0 {
		t.Fatalf("open packet %v", c.open)
	}
	c.send(`421["join","v3"]`)
	if a := c.ack(1); !strings.HasPrefix(a, `431[{"room":"v3","count":3`) {
		t.Fatalf("join ack %q", a)
	}

	// Native → v3: multi-byte and astral characters, counted in UTF-16.
	native.sendRaw(`{"type":"send","room":"v3","data":"é😀"}`)
	ev := c.take("message", func(s string) bool { return strings.HasPrefix(s, `42["message"`) })
	var args []any
	if err := json.Unmarshal([]byte(ev[2:]), &args); err != nil || len(args) != 2 {
		t.Fatalf("v3 event %q: want [\"message\",{…}] with no offset argument (%v)", ev, err)
	}
	if m, _ := args[1].(map[string]any); m["data"] != "é😀" || m["from"] != native.id {
		t.Fatalf("v3 event %q", ev)
	}
	// The v4 client gets the same message with its offset.
	pkt := v4.take("message", func(s string) bool { return strings.HasPrefix(s, `42["message"`) })
	var v4args []any
	if err := json.Unmarshal([]byte(pkt[2:]), &v4args); err != nil || len(v4args) != 3 {
		t.Fatalf("v4 event %q: want the offset as a third argument (%v)", pkt, err)
	}

	// v3 → native and v4.
	c.send(`422["message",{"room":"v3","data":"from v2 ☃"}]`)
	if a := c.ack(2); a != `432[{"ok":true}]` {
		t.Fatalf("message ack %q", a)
	}
	if m := native.readType("message"); m["data"] != "from v2 ☃" || m["room"] != "v3" {
		t.Fatalf("native got %v", m)
	}
	if m := v4.event("message"); m["data"] != "from v2 ☃" {
		t.Fatalf("v4 got %v", m)
	}

	// The heartbeat is the client's: its ping is answered with a pong.
	c.send("2")
	if p := c.take("pong", func(string) bool { return true }); p != "3" {
		t.Fatalf("answer to the client's ping %q, want 3", p)
	}
}

// TestEIO3Binary: binary attachments cross between a v3 polling client
// (text payloads with "b4<base64>", and binary application/octet-stream
// payloads) and a v3 WebSocket client (binary frames led by 0x04), both
// ways.
func TestEIO3Binary(t *testing.T) {
	g := pollGateway(t, "-sio-allow-eio3")
	p := v3Connected(t, g.addr)
	p.send(`421["join","bin"]`)
	p.ack(1)
	ws := v3Dial(t, g.addr, "")
	if _, open := v3Read(t, ws); !strings.HasPrefix(open, `0{"sid":`) || !strings.Contains(open, `"upgrades":[]`) {
		t.Fatalf("v3 WebSocket open packet %q", open)
	}
	v3Expect(t, ws, "40")
	pollWSWrite(t, ws, websocket.TextMessage, `421["join","bin"]`)
	if _, a := v3Read(t, ws); !strings.HasPrefix(a, `431[{"room":"bin","count":2`) {
		t.Fatalf("join ack %q", a)
	}

	event := `451-["message",{"room":"bin","data":{"_placeholder":true,"num":0}}]`
	expectBinary := func(want []byte) {
		t.Helper()
		if _, s := v3Read(t, ws); !strings.HasPrefix(s, `451-["message",{"room":"bin"`) {
			t.Fatalf("binary event over the WebSocket: %q", s)
		}
		if typ, b := v3Read(t, ws); typ != websocket.BinaryMessage || b != string(want) {
			t.Fatalf("attachment frame %d %x, want binary %x", typ, b, want)
		}
	}
	// Polling, text payload → WebSocket.
	p.send(event, "b4AQIDBA==")
	expectBinary([]byte{4, 1, 2, 3, 4})
	// Polling, binary payload → WebSocket: per packet 0 (text) or 1
	// (binary), the length's digits as bytes, 255, the packet.
	var body bytes.Buffer
	body.WriteByte(0)
	for _, d := range strconv.Itoa(len(event)) {
		body.WriteByte(byte(d - '0'))
	}
	body.WriteByte(255)
	body.WriteString(event)
	body.Write([]byte{1, 4, 255, 4, 9, 8, 7})
	if r := p.sendBinary(body.Bytes()); r.status != 200 || r.body != "ok" {
		t.Fatalf("binary POST: %d %q", r.status, r.body)
	}
	expectBinary([]byte{4, 9, 8, 7})
	// WebSocket → polling.
	pollWSWrite(t, ws, websocket.TextMessage, event)
	pollWSWrite(t, ws, websocket.BinaryMessage, "\x04\x05\x06")
	p.take("binary event", func(s string) bool { return strings.HasPrefix(s, `451-["message",{"room":"bin"`) })
	if a := p.take("attachment", func(s string) bool { return strings.HasPrefix(s, "b") }); a != "b4BQY=" {
		t.Fatalf("attachment over polling %q, want b4BQY=", a)
	}
}

// TestEIO3Heartbeat: the server never pings a v3 client; the client's
// pings keep the session past several pingInterval+pingTimeout, and a
// client that stops pinging is closed after that long (a held GET gets
// the close packet, a WebSocket 1001).
func TestEIO3Heartbeat(t *testing.T) {
	g := pollGateway(t, "-sio-allow-eio3", "-sio-ping-interval", "300ms", "-sio-ping-timeout", "200ms")

	ws := v3Dial(t, g.addr, "")
	v3Read(t, ws) // open
	v3Expect(t, ws, "40")
	// A pong nobody asked for does not start v4's server pings.
	pollWSWrite(t, ws, websocket.TextMessage, "3")
	p := v3Connected(t, g.addr)
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond { // three times interval + timeout
		pollWSWrite(t, ws, websocket.TextMessage, "2")
		v3Expect(t, ws, "3") // a server ping here would fail: v3 servers do not ping
		p.send("2")
		if pkt := p.take("pong", func(string) bool { return true }); pkt != "3" {
			t.Fatalf("polling: %q, want the pong", pkt)
		}
		time.Sleep(150 * time.Millisecond) // the client's ping interval, not a synchronisation
	}
	// Silence: both close within interval + timeout (500 ms) and a sweep.
	closed := time.Now()
	_ = ws.SetReadDeadline(time.Now().Add(pollWait))
	_, b, err := ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1001 {
		t.Fatalf("silent v3 WebSocket: read %q, %v; want close 1001", b, err)
	}
	if d := time.Since(closed); d > 2*time.Second {
		t.Fatalf("silent v3 WebSocket closed after %v", d)
	}
	r := p.get.do("GET", p.target(), nil, "")
	if r.status == 200 {
		if pkts := v3Packets(t, r.body); len(pkts) != 1 || pkts[0] != "1" {
			t.Fatalf("GET of a silent v3 session: %q, want the close packet", r.body)
		}
	} else {
		pollExpectUnknownSID(t, r)
	}
}

// TestEIO3Upgrade: a v3 polling session upgrades to a v3 WebSocket: the
// held GET is released with a v3-framed noop, and the session goes on
// over the WebSocket.
func TestEIO3Upgrade(t *testing.T) {
	g := pollGateway(t, "-sio-allow-eio3")
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "up3"})
	p := v3Connected(t, g.addr)
	p.send(`421["join","up3"]`)
	p.ack(1)

	parked := pollAsyncGET(p.get, p.target(), nil)
	pollExpectParked(t, parked, 100*time.Millisecond)
	ws := v3Dial(t, g.addr, p.sid)
	pollWSWrite(t, ws, websocket.TextMessage, "2probe")
	v3Expect(t, ws, "3probe")
	if r := pollAwait(t, parked, "parked GET"); r.status != 200 || r.body != "1:6" {
		t.Fatalf("parked GET released with %d %q, want 200 \"1:6\"", r.status, r.body)
	}
	// An ack still in the polling outbox when the upgrade completes goes
	// out first, over the WebSocket, unframed.
	p.send(`423["ping"]`)
	pollWSWrite(t, ws, websocket.TextMessage, "5")
	v3Expect(t, ws, `433[{"ok":true}]`)
	pollWSWrite(t, ws, websocket.TextMessage, `422["ping"]`)
	v3Expect(t, ws, `432[{"ok":true}]`)
	native.sendRaw(`{"type":"send","room":"up3","data":"after"}`)
	if _, s := v3Read(t, ws); !strings.HasPrefix(s, `42["message",{"room":"up3","from":"`+native.id+`"`) {
		t.Fatalf("message over the upgraded WebSocket: %q", s)
	}
	pollWSWrite(t, ws, websocket.TextMessage, `451-["message",{"room":"up3","data":{"_placeholder":true,"num":0}}]`)
	pollWSWrite(t, ws, websocket.BinaryMessage, "\x04\xff")
	if m := native.readType("message"); fmt.Sprint(m["data"]) != "map[_binary:/w==]" {
		t.Fatalf("native got %v from the upgraded v3 WebSocket", m)
	}
}

// TestEIO3BadInput: without -sio-allow-eio3, EIO=3 is refused as before;
// with it, JSONP is refused with a clear 400, and a v3 client speaking v4
// (v4 payload framing, a CONNECT to "/" the server made, a binary frame
// without its type byte) loses its session, and nobody else does.
func TestEIO3BadInput(t *testing.T) {
	off := pollGateway(t)
	pollExpectError(t, pollDial(t, off.addr).do("GET", "/socket.io/?EIO=3&transport=polling", nil, ""), 400, 5)

	g := pollGateway(t, "-sio-allow-eio3")
	r := pollDial(t, g.addr).do("GET", "/socket.io/?EIO=3&transport=polling&j=0", nil, "")
	pollExpectError(t, r, 400, 3)
	if !strings.Contains(r.body, "JSONP") {
		t.Fatalf("JSONP refusal %q does not say why", r.body)
	}
	bystander := v3Connected(t, g.addr)

	// v4 framing (record separators, no lengths).
	p := v3Connected(t, g.addr)
	pollExpectError(t, p.post.do("POST", p.target(), nil, "42[\"ping\"]\x1e2"), 400, 3)
	pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", p.target(), nil, ""))

	// A v5 CONNECT to "/" over polling, and with an auth payload.
	for _, connect := range []string{"40", `40{"token":"x"}`} {
		p := v3Connected(t, g.addr)
		pollExpectError(t, p.post.do("POST", p.target(), nil, v3Frame(connect)), 400, 3)
		pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", p.target(), nil, ""))
	}

	// Over WebSocket: a v5 CONNECT, and a binary frame without 0x04.
	for _, bad := range []struct {
		typ  int
		data string
	}{{websocket.TextMessage, "40"}, {websocket.TextMessage, `451-["message",{"room":"r","data":{"_placeholder":true,"num":0}}]`}} {
		ws := v3Dial(t, g.addr, "")
		v3Read(t, ws)
		v3Expect(t, ws, "40")
		pollWSWrite(t, ws, bad.typ, bad.data)
		if bad.data != "40" {
			pollWSWrite(t, ws, websocket.BinaryMessage, "\x01\x02") // v4's raw attachment
		}
		_ = ws.SetReadDeadline(time.Now().Add(pollWait))
		_, b, err := ws.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1008 {
			t.Fatalf("after %q: read %q, %v; want close 1008", bad.data, b, err)
		}
	}

	// A namespace the gateway does not serve: v4's ERROR with a string,
	// and the session goes on.
	bystander.send(`40/admin,`)
	if e := bystander.take("namespace refusal", func(s string) bool { return strings.HasPrefix(s, "44") }); e != `44/admin,"Invalid namespace"` {
		t.Fatalf("CONNECT to /admin answered %q", e)
	}
	bystander.send(`421["ping"]`)
	if a := bystander.ack(1); a != `431[{"ok":true}]` {
		t.Fatalf("bystander after the bad input: %q", a)
	}
}

// TestEIO3Auth: a v3 client's token comes in the handshake's query
// (socket.io-client 2.x's query option). With it, "/" is connected; with
// none under -auth-required, the server's CONNECT is refused with an ERROR
// packet, and a v5 CONNECT carrying the token in its payload afterwards
// closes the session instead of connecting it.
func TestEIO3Auth(t *testing.T) {
	g := pollGateway(t, "-sio-allow-eio3", "-jwt-secret", hdSecret, "-auth-required")
	tok := hdHS256(t, hdClaims("alice"))

	c := v3OpenQuery(t, g.addr, "&token="+url.QueryEscape(tok))
	if p := c.take("CONNECT", func(string) bool { return true }); p != "40" {
		t.Fatalf("with a token: %q, want 40", p)
	}
	c.send(`421["ping"]`)
	if a := c.ack(1); a != `431[{"ok":true}]` {
		t.Fatalf("authenticated v3 session: %q", a)
	}

	anon := v3Open(t, g.addr)
	p := anon.take("refusal", func(string) bool { return true })
	var refusal struct{ Message string }
	if !strings.HasPrefix(p, "44{") || json.Unmarshal([]byte(p[2:]), &refusal) != nil || refusal.Message != "unauthorized" {
		t.Fatalf("without a token: %q, want 44{\"message\":\"unauthorized\",…}", p)
	}
	pollExpectError(t, anon.post.do("POST", anon.target(), nil, v3Frame(`40{"token":"`+tok+`"}`)), 400, 3)
	pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", anon.target(), nil, ""))
}

// TestEIO3ProxyConnect: with -proxy-connect-url, the server's CONNECT of
// "/" for a v3 client is asked of the backend, with the handshake's "auth"
// query parameter as the auth payload (a v3 CONNECT has none); the
// backend's acceptance is a plain "40", its refusal an ERROR packet with
// its message and code.
func TestEIO3ProxyConnect(t *testing.T) {
	be := newConnectBackend(t)
	g := pollGateway(t, "-sio-allow-eio3", "-proxy-connect-url", be.srv.URL)

	c := v3OpenQuery(t, g.addr, "&auth="+url.QueryEscape(`{"who":"sam"}`))
	if p := c.take("CONNECT", func(string) bool { return true }); p != "40" {
		t.Fatalf("accepted by the backend: %q, want 40", p)
	}
	body := be.body(0)
	if a, _ := body["auth"].(map[string]any); body["protocol"] != "socketio" || body["transport"] != "polling" || a["who"] != "sam" {
		t.Fatalf("backend got %v", body)
	}
	c.send(`421["rooms"]`)
	if a := c.ack(1); !strings.Contains(a, `"room":"hall"`) {
		t.Fatalf("rooms of the accepted v3 client %q, want the backend's hall", a)
	}

	u := "ws://" + g.addr + "/socket.io/?EIO=3&transport=websocket&auth=" + url.QueryEscape(`{"who":"bad"}`)
	bad, resp, err := (&websocket.Dialer{HandshakeTimeout: pollWait}).Dial(u, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	t.Cleanup(func() { bad.Close() })
	v3Read(t, bad) // open
	v3Expect(t, bad, `44{"message":"go away","data":{"code":"forbidden"}}`)
}
