package netpoll

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/rooms"
)

// testServer runs a Server in-process on a free loopback port.
type testServer struct {
	srv  *Server
	hub  *chat.Hub
	addr string
	done chan error
}

func startTestServer(tb testing.TB, cfg Config) *testServer {
	tb.Helper()
	return startTestServerHub(tb, cfg, chat.Config{})
}

// startTestServerHub is startTestServer with a hub of config hc (its
// Codecs default to the package's); each setup runs on the server before
// Run (Handle, Mount).
func startTestServerHub(tb testing.TB, cfg Config, hc chat.Config, setup ...func(*Server)) *testServer {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Addr = l.Addr().String()
	l.Close()
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if hc.Codecs == nil {
		hc.Codecs = Codecs()
	}
	hub := chat.NewHub(hc, rooms.New(cfg.Loops))
	ts := &testServer{srv: New(cfg, hub), hub: hub, addr: cfg.Addr, done: make(chan error, 1)}
	for _, f := range setup {
		f(ts.srv)
	}
	go func() { ts.done <- ts.srv.Run() }()
	select {
	case <-ts.srv.Ready():
	case err := <-ts.done:
		tb.Fatalf("server: %v", err)
	case <-time.After(5 * time.Second):
		tb.Fatal("server did not start")
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = ts.srv.Shutdown(ctx)
		<-ts.done
	})
	return ts
}

const upgradeReq = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// skipFrame reads past one server frame (unmasked, payload under 64 KiB)
// into the caller's scratch h, without allocating, so that a benchmark's
// allocs/op counts the server alone.
func skipFrame(br *bufio.Reader, h *[4]byte) error {
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		return err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		if _, err := io.ReadFull(br, h[2:4]); err != nil {
			return err
		}
		n = int(h[2])<<8 | int(h[3])
	}
	_, err := br.Discard(n)
	return err
}

// maskedText builds a masked client text frame.
func maskedText(payload string) []byte {
	b := []byte{0x81, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i := 0; i < len(payload); i++ {
		b = append(b, payload[i]^byte(i%4+1))
	}
	return b
}

// rawClient upgrades a TCP connection and returns it with a reader
// positioned after the 101 response.
func rawClient(tb testing.TB, addr string) (net.Conn, *bufio.Reader) {
	tb.Helper()
	nc, br, _ := upgradeWith(tb, addr, "")
	return nc, br
}

// deflateOffer is a permessage-deflate offer as Node's ws and browsers
// make it (no client_no_context_takeover: the server requires it in its
// answer), a request header line for upgradeWith.
const deflateOffer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"

// upgradeWith dials addr and upgrades at /ws with the extra request
// header lines hdr ("" for none, each line ending in \r\n). It returns the
// connection positioned after the 101, and the response for the caller's
// checks of it. The handshake has 5 s; the connection has no deadline
// after it.
func upgradeWith(tb testing.TB, addr, hdr string) (net.Conn, *bufio.Reader, *http.Response) {
	tb.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	req := strings.Replace(upgradeReq, "\r\n\r\n", "\r\n"+hdr+"\r\n", 1)
	if _, err := nc.Write([]byte(req)); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		tb.Fatalf("upgrade: %v %v", resp, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, br, resp
}

// readServerFrame reads one unmasked server frame.
func readServerFrame(br *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var e [2]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return 0, nil, err
		}
		n = int(e[0])<<8 | int(e[1])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(br, p)
	return h[0] & 0xf, p, err
}

// TestServerJoinAndFanout runs the server as cmd/gateway does, with real
// WebSocket clients speaking the native protocol (docs/protocol.md): n
// clients join one room, one of them sends a room message, and every other
// member receives exactly that message once, while the sender gets its ack
// and not the message.
func TestServerJoinAndFanout(t *testing.T) {
	ts := startTestServer(t, Config{})
	const n = 20
	clients := make([]*wsClient, n)
	for i := range clients {
		c := dialWS(t, ts.addr)
		clients[i] = c
		c.write(`{"type":"join","room":"r","id":"j"}`)
		if m := c.read(); m["type"] != "ack" || m["id"] != "j" || m["room"] != "r" || m["count"] != float64(i+1) {
			t.Fatalf("client %d: join reply %v", i, m)
		}
		for _, o := range clients[:i] {
			if o.id == c.id {
				t.Fatalf("client %d has the id %q of another", i, c.id)
			}
		}
	}
	if got := ts.hub.Table().Count([]byte("r")); got != n {
		t.Fatalf("room has %d members", got)
	}
	if s := ts.srv.Stats(); s.Sessions != n || s.Rooms != 1 {
		t.Fatalf("stats %+v", s)
	}

	sender := clients[n/2]
	const data = `{"text":"héllo, room","n":[1,2.50,null]}`
	before := time.Now().UnixMilli()
	sender.write(`{"type":"send","room":"r","id":7,"data":` + data + `}`)
	if m := sender.read(); m["type"] != "ack" || m["id"] != 7.0 || len(m) != 2 {
		t.Fatalf("sender got %v, want the send's ack", m)
	}
	for i, c := range clients {
		if c == sender {
			continue
		}
		raw := c.readRaw()
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("client %d: %s: %v", i, raw, err)
		}
		if string(m["data"]) != data {
			t.Fatalf("client %d: data %s, want %s byte for byte", i, m["data"], data)
		}
		for key, want := range map[string]string{"type": `"message"`, "room": `"r"`, "from": `"` + sender.id + `"`, "nick": `""`} {
			if string(m[key]) != want {
				t.Fatalf("client %d: message %s: %s is %s, want %s", i, raw, key, m[key], want)
			}
		}
		var at int64
		if err := json.Unmarshal(m["ts"], &at); err != nil || at < before || at > time.Now().UnixMilli() {
			t.Fatalf("client %d: message %s: ts is not the time of acceptance", i, raw)
		}
		if len(m) != 6 {
			t.Fatalf("client %d: message %s has keys beyond type, room, from, nick, data and ts", i, raw)
		}
	}
	// Exactly once, and never to the sender: each client's next frame is
	// the reply to its ping.
	for i, c := range clients {
		c.write(`{"type":"ping","id":"p"}`)
		if m := c.read(); m["type"] != "ack" || m["id"] != "p" {
			t.Fatalf("client %d: got %v, want only its ping's ack", i, m)
		}
	}
}

// wsClient is a gorilla/websocket client of the native protocol.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
	id string // from the welcome
}

// dialWS connects to addr's /ws and reads the welcome.
func dialWS(t *testing.T, addr string) *wsClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	c := &wsClient{t: t, ws: ws}
	w := c.read()
	id, _ := w["id"].(string)
	if w["type"] != "welcome" || id == "" {
		t.Fatalf("first message %v, want a welcome with an id", w)
	}
	c.id = id
	return c
}

func (c *wsClient) write(s string) {
	c.t.Helper()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readRaw returns the next message, which must be a text message.
func (c *wsClient) readRaw() []byte {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		c.t.Fatalf("message type %d, want text", typ)
	}
	return b
}

func (c *wsClient) read() map[string]any {
	c.t.Helper()
	b := c.readRaw()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%s: %v", b, err)
	}
	return m
}

// TestFanoutAllocsPerMember: what a room message allocates does not grow
// with the room. It counts the allocations of whole messages (the sender's
// write, the gateway's read, decode, fan-out and writes, the members'
// reads) through real loopback connections, in a room of 8 and one of 136
// members; one allocation per member would add 128, far above the slack.
func TestFanoutAllocsPerMember(t *testing.T) {
	if builtWithRace() {
		t.Skip("sync.Pool drops items under the race detector: allocation counts mean nothing")
	}
	small := testing.AllocsPerRun(100, roomSender(t, 8))
	large := testing.AllocsPerRun(100, roomSender(t, 136))
	t.Logf("allocations per room message: %v with 8 members, %v with 136", small, large)
	if large-small > 16 {
		t.Fatalf("a room message allocates %v times with 8 members and %v with 136: the fan-out allocates per member", small, large)
	}
}

// roomSender starts a server with a room of members clients and one more
// client, the sender, and returns a function that sends one room message
// and returns once every member has read it and the sender its ack. The
// first message has been sent, to warm pools and buffers.
func roomSender(t *testing.T, members int) func() {
	t.Helper()
	ts := startTestServer(t, Config{Limits: limit.Config{MessagesPerSecond: -1, BytesPerSecond: -1}})
	frames, acks := newFrameCount(), newFrameCount()
	var wg sync.WaitGroup
	join := func(count *frameCount) net.Conn {
		nc, br := rawClient(t, ts.addr)
		readServerFrame(br) // welcome
		nc.Write(maskedText(`{"type":"join","room":"a"}`))
		if _, p, err := readServerFrame(br); err != nil || !bytes.Contains(p, []byte(`"ack"`)) {
			t.Fatalf("join: %s %v", p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			count.read(br)
		}()
		return nc
	}
	conns := make([]net.Conn, 0, members+1)
	t.Cleanup(func() { // before the server's cleanup stops it
		for _, nc := range conns {
			nc.Close()
		}
		wg.Wait()
	})
	for i := 0; i < members; i++ {
		conns = append(conns, join(frames))
	}
	sender := join(acks)
	conns = append(conns, sender)
	msg := maskedText(`{"type":"send","room":"a","id":1,"data":{"text":"hello"}}`)
	timeout := time.NewTimer(time.Hour)
	var sent int64
	send := func() {
		sent++
		// Presence is off: the members' frames are the messages, the
		// sender's the acks.
		frames.want.Store(sent * int64(members))
		acks.want.Store(sent)
		if _, err := sender.Write(msg); err != nil {
			t.Fatal(err)
		}
		timeout.Reset(10 * time.Second)
		for _, c := range []*frameCount{frames, acks} {
			select {
			case <-c.reached:
			case <-timeout.C:
				t.Fatalf("message %d: members read %d frames, the sender %d", sent, frames.n.Load(), acks.n.Load())
			}
		}
	}
	send()
	return send
}

// frameCount counts server frames read by clients and signals reached when
// the count becomes want.
type frameCount struct {
	n, want atomic.Int64
	reached chan struct{}
}

func newFrameCount() *frameCount { return &frameCount{reached: make(chan struct{}, 1)} }

// read counts every server frame read from br, without allocating per
// frame, until br fails.
func (c *frameCount) read(br *bufio.Reader) {
	var h [8]byte
	for {
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			return
		}
		size := int(h[1] & 0x7f)
		switch size {
		case 126:
			if _, err := io.ReadFull(br, h[:2]); err != nil {
				return
			}
			size = int(binary.BigEndian.Uint16(h[:2]))
		case 127:
			if _, err := io.ReadFull(br, h[:8]); err != nil {
				return
			}
			size = int(binary.BigEndian.Uint64(h[:8]))
		}
		if _, err := br.Discard(size); err != nil {
			return
		}
		if c.n.Add(1) == c.want.Load() {
			c.reached <- struct{}{}
		}
	}
}

// builtWithRace reports whether the test binary was built with -race.
func builtWithRace() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func TestInsertConnectionClose(t *testing.T) {
	b := []byte("prefixHTTP/1.1 400 Bad Request\r\nX: y\r\n\r\nbody")
	got := string(insertConnectionClose(b, len("prefix")))
	want := "prefixHTTP/1.1 400 Bad Request\r\nConnection: close\r\nX: y\r\n\r\nbody"
	if got != want {
		t.Fatalf("got %q", got)
	}
}

func TestParseHead(t *testing.T) {
	tests := []struct {
		name, head string
		path, q    string
		err        bool
	}{
		{"simple", "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "/ws", "", false},
		{"query", "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\r\n", "/socket.io/", "EIO=4&transport=websocket", false},
		{"absolute form", "GET http://h:1/healthz?x HTTP/1.1\r\n\r\n", "/healthz", "x", false},
		{"no path", "GET * HTTP/1.1\r\n\r\n", "", "", true},
		{"lowercase method", "get / HTTP/1.1\r\n\r\n", "", "", true},
		{"bad header", "GET / HTTP/1.1\r\nnocolon\r\n\r\n", "", "", true},
		{"http2", "GET / HTTP/2.0\r\n\r\n", "", "", true},
		{"garbage", "\x00\x01\r\n\r\n", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseHead([]byte(tt.head))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (string(r.Path) != tt.path || string(r.Query) != tt.q) {
				t.Fatalf("path %q query %q", r.Path, r.Query)
			}
		})
	}
	r, _ := parseHead([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"))
	if string(r.Header("x-forwarded-for")) != "1.2.3.4" || r.Header("Nope") != nil {
		t.Fatalf("Header lookup failed")
	}
}

// FuzzParseHead: the request-head parser never panics, and whatever it
// accepts has a path starting with '/' that lies inside the head.
func FuzzParseHead(f *testing.F) {
	f.Add([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"))
	f.Add([]byte("GET http://a/b?c HTTP/1.0\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headEnd(b)
		if n < 0 {
			return
		}
		r, err := parseHead(b[:n])
		if err != nil {
			return
		}
		if len(r.Path) == 0 || r.Path[0] != '/' {
			t.Fatalf("accepted path %q", r.Path)
		}
		_ = r.Header("Host")
	})
}

var _ = fmt.Sprint
