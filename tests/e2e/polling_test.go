package e2e

// Engine.IO v4 HTTP long-polling on /socket.io/ (and on /engine.io/, the
// plain Engine.IO echo endpoint of -sio-conformance), driven by HTTP/1.1
// requests written by hand on raw TCP connections: each test decides which
// requests share a connection and when a GET is in flight. gorilla/websocket
// clients play the probing WebSocket of an upgrade, and native /ws clients
// watch the chat side. tests/node/polling.test.mjs drives the same endpoint
// with the real socket.io-client.
//
// Every read has a deadline (pollWait), so a broken gateway fails a test
// instead of hanging it.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	pollWait = 5 * time.Second // bound of every single wait
	pollRS   = "\x1e"          // record separator between packets of a payload
)

// pollGateway starts the gateway and, at the end of the test, fails it if
// the gateway logged a data race (CHATGATE_E2E_RACE=1) or a panic, which
// the tests' own checks may not notice.
func pollGateway(t *testing.T, args ...string) *gateway {
	t.Helper()
	g := startGateway(t, args...)
	t.Cleanup(func() { // runs before startGateway's cleanup stops g
		if logs := g.logs.String(); strings.Contains(logs, "WARNING: DATA RACE") || strings.Contains(logs, "panic:") {
			t.Errorf("the gateway logged a data race or a panic")
		}
	})
	return g
}

// pollConn is one HTTP/1.1 connection on which requests are written by hand
// and sent one at a time (the gateway does not pipeline).
type pollConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// pollResp is one HTTP response, body read whole.
type pollResp struct {
	status int
	header http.Header
	body   string
	close  bool // the response said Connection: close
}

func pollDial(t *testing.T, addr string) *pollConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, pollWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &pollConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// roundTrip sends one request and reads its response. header holds extra
// "Name: value" lines. A POST always carries a Content-Length. It does not
// touch t, so goroutines may call it.
func (c *pollConn) roundTrip(method, target string, header []string, body string) (pollResp, error) {
	_ = c.nc.SetDeadline(time.Now().Add(pollWait))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: localhost\r\n", method, target)
	for _, h := range header {
		b.WriteString(h + "\r\n")
	}
	if method == "POST" || body != "" {
		fmt.Fprintf(&b, "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	if _, err := io.WriteString(c.nc, b.String()); err != nil {
		return pollResp{}, err
	}
	return c.readResponse()
}

func (c *pollConn) readResponse() (pollResp, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(pollWait))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return pollResp{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return pollResp{}, err
	}
	return pollResp{status: resp.StatusCode, header: resp.Header, body: string(data), close: resp.Close}, nil
}

func (c *pollConn) do(method, target string, header []string, body string) pollResp {
	c.t.Helper()
	r, err := c.roundTrip(method, target, header, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

// expectEOF asserts that the gateway closes the connection.
func (c *pollConn) expectEOF() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(pollWait))
	if n, err := c.br.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		c.t.Fatalf("connection still open (read %d bytes, err %v), want it closed", n, err)
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// pollHandshake is the first request of a session.
func pollHandshake(path string) string { return path + "?EIO=4&transport=polling" }

// pollClient is the client side of one Engine.IO polling session: GETs on
// one connection, POSTs on another, as browsers do. Packets received and not
// yet consumed wait in queue.
type pollClient struct {
	t     *testing.T
	addr  string
	path  string // "/socket.io/" or "/engine.io/"
	sid   string
	open  map[string]any // the open packet's handshake data
	get   *pollConn
	post  *pollConn
	queue []string
	pong  bool // answer the server's pings ("2") with "3" and drop them
}

// pollOpen makes the handshake and returns the session.
func pollOpen(t *testing.T, addr, path string) *pollClient {
	t.Helper()
	p := &pollClient{t: t, addr: addr, path: path, get: pollDial(t, addr), post: pollDial(t, addr)}
	r := p.get.do("GET", pollHandshake(path), nil, "")
	if r.status != 200 || !strings.HasPrefix(r.body, "0{") {
		t.Fatalf("handshake: %d %q, want 200 and an open packet", r.status, r.body)
	}
	if err := json.Unmarshal([]byte(r.body[1:]), &p.open); err != nil {
		t.Fatalf("open packet %q: %v", r.body, err)
	}
	p.sid, _ = p.open["sid"].(string)
	if p.sid == "" {
		t.Fatalf("open packet without sid: %q", r.body)
	}
	return p
}

func (p *pollClient) target() string {
	return pollHandshake(p.path) + "&sid=" + url.QueryEscape(p.sid)
}

// send POSTs packets as one payload and expects "ok".
func (p *pollClient) send(packets ...string) {
	p.t.Helper()
	r := p.post.do("POST", p.target(), nil, strings.Join(packets, pollRS))
	if r.status != 200 || r.body != "ok" {
		p.t.Fatalf("POST %q: %d %q, want 200 ok", packets, r.status, r.body)
	}
}

// poll makes one GET and returns its packets.
func (p *pollClient) poll() []string {
	p.t.Helper()
	r := p.get.do("GET", p.target(), nil, "")
	if r.status != 200 {
		p.t.Fatalf("GET: %d %q, want 200", r.status, r.body)
	}
	if r.close {
		p.t.Fatalf("GET answered with Connection: close")
	}
	return strings.Split(r.body, pollRS)
}

// take returns the first packet, queued or polled for, that match accepts,
// leaving the others queued in order.
func (p *pollClient) take(what string, match func(string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(pollWait)
	for {
		for i, pkt := range p.queue {
			if match(pkt) {
				p.queue = append(p.queue[:i], p.queue[i+1:]...)
				return pkt
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %s within %v; queued: %q", what, pollWait, p.queue)
		}
		for _, pkt := range p.poll() {
			if p.pong && pkt == "2" {
				p.send("3")
				continue
			}
			p.queue = append(p.queue, pkt)
		}
	}
}

// next returns the next packet.
func (p *pollClient) next() string {
	p.t.Helper()
	return p.take("packet", func(string) bool { return true })
}

// connect connects namespace "/" and returns the socket id.
func (p *pollClient) connect() string {
	p.t.Helper()
	p.send("40")
	pkt := p.take("CONNECT answer", func(s string) bool { return strings.HasPrefix(s, "40") })
	var v struct{ SID string }
	if err := json.Unmarshal([]byte(pkt[2:]), &v); err != nil || v.SID == "" {
		p.t.Fatalf("CONNECT answer %q, want 40{\"sid\":…}", pkt)
	}
	return v.SID
}

// emit sends event with ack id and returns the acknowledgement's argument.
func (p *pollClient) emit(id int, args string) map[string]any {
	p.t.Helper()
	p.send(fmt.Sprintf("42%d%s", id, args))
	return p.ack(id)
}

func (p *pollClient) ack(id int) map[string]any {
	p.t.Helper()
	prefix := fmt.Sprintf("43%d[", id)
	pkt := p.take("ack "+strconv.Itoa(id), func(s string) bool { return strings.HasPrefix(s, prefix) })
	var arr []map[string]any
	if err := json.Unmarshal([]byte(pkt[len(prefix)-1:]), &arr); err != nil || len(arr) != 1 {
		p.t.Fatalf("ack %q: want a one-object array (%v)", pkt, err)
	}
	return arr[0]
}

// event returns the argument of the next event called name.
func (p *pollClient) event(name string) map[string]any {
	p.t.Helper()
	pkt := p.take(name+" event", func(s string) bool { return strings.HasPrefix(s, `42["`+name+`"`) })
	return pollEventArg(p.t, pkt[2:])
}

// pollEventArg decodes the object argument of an event payload
// ["name",{…}], or ["name",{…},"<offset>"] for a room event with its
// history offset (connection state recovery).
func pollEventArg(t *testing.T, payload string) map[string]any {
	t.Helper()
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(payload), &arr); err != nil || len(arr) < 2 || len(arr) > 3 {
		t.Fatalf("event %q: want [name, object] or [name, object, offset] (%v)", payload, err)
	}
	if len(arr) == 3 {
		var off string
		if err := json.Unmarshal(arr[2], &off); err != nil || off == "" || strings.Trim(off, "0123456789") != "" {
			t.Fatalf("event %q: the third argument must be the offset, a string of digits", payload)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(arr[1], &m); err != nil {
		t.Fatalf("event %q: %v", payload, err)
	}
	return m
}

// pollExpectError asserts an Engine.IO error response: status and a JSON
// body with the error code (any code when code is pollAnyCode).
func pollExpectError(t *testing.T, r pollResp, status, code int) {
	t.Helper()
	var v struct {
		Code    *int
		Message string
	}
	if r.status != status || json.Unmarshal([]byte(r.body), &v) != nil || v.Code == nil || (code != pollAnyCode && *v.Code != code) || v.Message == "" {
		t.Fatalf("got %d %q, want %d with JSON error code %d", r.status, r.body, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
}

const pollUnknownSID = `{"code":1,"message":"Session ID unknown"}`

// pollAnyCode accepts any Engine.IO error code where the protocol fixes
// none (the reference server, for one, answers a polling request for an
// upgraded session with "Bad request", 3).
const pollAnyCode = -1

// pollExpectUnknownSID asserts the answer to a request for a sid the
// gateway does not know (any more).
func pollExpectUnknownSID(t *testing.T, r pollResp) {
	t.Helper()
	if r.status != 400 || r.body != pollUnknownSID {
		t.Fatalf("got %d %q, want 400 %s", r.status, r.body, pollUnknownSID)
	}
}

// pollWSDial opens the WebSocket of an upgrade for sid. It returns the
// HTTP status when the gateway refuses it.
func pollWSDial(t *testing.T, addr, path, sid string) (*websocket.Conn, int) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: pollWait}
	u := "ws://" + addr + path + "?EIO=4&transport=websocket"
	if sid != "" {
		u += "&sid=" + url.QueryEscape(sid)
	}
	ws, resp, err := d.Dial(u, nil)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial %s: %v", u, err)
		}
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return ws, 101
}

func pollWSWrite(t *testing.T, ws *websocket.Conn, typ int, s string) {
	t.Helper()
	_ = ws.SetWriteDeadline(time.Now().Add(pollWait))
	if err := ws.WriteMessage(typ, []byte(s)); err != nil {
		t.Fatalf("ws write: %v", err)
	}
}

// pollWSRead returns the next message other than a ping, which it answers.
func pollWSRead(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	for {
		_ = ws.SetReadDeadline(time.Now().Add(pollWait))
		typ, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("ws read: %v", err)
		}
		if typ == websocket.TextMessage && string(b) == "2" {
			pollWSWrite(t, ws, websocket.TextMessage, "3")
			continue
		}
		return typ, string(b)
	}
}

// pollUpgrade probes ws for the session and switches to it, as
// engine.io-client does once no GET is in flight any more.
func pollUpgrade(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	pollWSWrite(t, ws, websocket.TextMessage, "2probe")
	if _, s := pollWSRead(t, ws); s != "3probe" {
		t.Fatalf("probe answered with %q, want 3probe", s)
	}
	pollWSWrite(t, ws, websocket.TextMessage, "5")
}

// pollAsyncGET starts a GET on c in a goroutine.
func pollAsyncGET(c *pollConn, target string, header []string) <-chan pollResult {
	ch := make(chan pollResult, 1)
	go func() {
		r, err := c.roundTrip("GET", target, header, "")
		ch <- pollResult{r, err}
	}()
	return ch
}

type pollResult struct {
	r   pollResp
	err error
}

func pollAwait(t *testing.T, ch <-chan pollResult, what string) pollResp {
	t.Helper()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("%s: %v", what, res.err)
		}
		return res.r
	case <-time.After(pollWait):
		t.Fatalf("%s: no response within %v", what, pollWait)
	}
	return pollResp{}
}

// pollExpectParked asserts that a GET stays open for d.
func pollExpectParked(t *testing.T, ch <-chan pollResult, d time.Duration) {
	t.Helper()
	select {
	case res := <-ch:
		t.Fatalf("GET answered after less than %v with nothing to send: %+v", d, res)
	case <-time.After(d):
	}
}

// pollWaitStat polls /stats until key has the value want.
func pollWaitStat(t *testing.T, g *gateway, key string, want int) {
	t.Helper()
	deadline := time.Now().Add(pollWait)
	for {
		got := g.statInt(t, key)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %s = %d, want %d", key, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pollNativePresence skips native messages until a presence event of id.
func pollNativePresence(t *testing.T, c *client, event, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(pollWait)
	for time.Now().Before(deadline) {
		m := c.read()
		if m["type"] == "presence" && m["event"] == event && m["id"] == id {
			return m
		}
	}
	t.Fatalf("no presence %s of %s within %v", event, id, pollWait)
	return nil
}

func TestPollingHandshake(t *testing.T) {
	g := pollGateway(t, "-sio-ping-interval", "1500ms", "-sio-ping-timeout", "1200ms")

	t.Run("open packet", func(t *testing.T) {
		c := pollDial(t, g.addr)
		r := c.do("GET", pollHandshake("/socket.io/"), nil, "")
		if r.status != 200 || !strings.HasPrefix(r.body, "0") {
			t.Fatalf("handshake: %d %q", r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
			t.Errorf("Content-Type %q, want text/plain; charset=UTF-8", ct)
		}
		var open map[string]json.RawMessage
		if err := json.Unmarshal([]byte(r.body[1:]), &open); err != nil {
			t.Fatalf("open packet %q: %v", r.body, err)
		}
		keys := make([]string, 0, len(open))
		for k := range open {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if want := []string{"maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"}; !reflect.DeepEqual(keys, want) {
			t.Fatalf("open packet keys %v, want exactly %v", keys, want)
		}
		for k, want := range map[string]string{
			"upgrades": `["websocket"]`, "pingInterval": "1500", "pingTimeout": "1200", "maxPayload": "65536",
		} {
			if string(open[k]) != want {
				t.Errorf("%s = %s, want %s", k, open[k], want)
			}
		}
		var sid string
		if json.Unmarshal(open["sid"], &sid) != nil || sid == "" {
			t.Fatalf("sid %s, want a non-empty string", open["sid"])
		}
		// The connection stays open for the session's next request.
		r2 := c.do("POST", pollHandshake("/socket.io/")+"&sid="+url.QueryEscape(sid), nil, "40")
		if r2.status != 200 || r2.body != "ok" {
			t.Fatalf("the session's POST on the same connection: %d %q", r2.status, r2.body)
		}
		// But it opens no second session: -max-sessions-per-connection
		// is 1 by default.
		r3 := c.do("GET", pollHandshake("/socket.io/"), nil, "")
		if r3.status != 429 {
			t.Fatalf("second handshake on one connection: %d %q, want 429", r3.status, r3.body)
		}
	})

	upgradeHeaders := []string{"Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"}
	tests := []struct {
		name, method, target string
		header               []string
		code                 int
	}{
		{"protocol 3", "GET", "/socket.io/?EIO=3&transport=polling", nil, 5},
		{"no protocol", "GET", "/socket.io/?transport=polling", nil, 5},
		{"unknown transport", "GET", "/socket.io/?EIO=4&transport=carrier-pigeon", nil, 0},
		{"POST handshake", "POST", "/socket.io/?EIO=4&transport=polling", nil, 2},
		{"GET unknown sid", "GET", "/socket.io/?EIO=4&transport=polling&sid=nope", nil, 1},
		{"POST unknown sid", "POST", "/socket.io/?EIO=4&transport=polling&sid=nope", nil, 1},
		{"WebSocket unknown sid", "GET", "/socket.io/?EIO=4&transport=websocket&sid=nope", upgradeHeaders, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := pollDial(t, g.addr)
			r := c.do(tt.method, tt.target, tt.header, "")
			pollExpectError(t, r, 400, tt.code)
			if tt.code == 1 {
				pollExpectUnknownSID(t, r)
			}
		})
	}
}

// TestPollingKeepAlive runs a whole session, preflight included, over ONE
// TCP connection, then ends it with Connection: close.
func TestPollingKeepAlive(t *testing.T) {
	g := pollGateway(t)
	c := pollDial(t, g.addr)
	step := func(name, method, target string, header []string, body string, status int, want string) pollResp {
		t.Helper()
		r := c.do(method, target, header, body)
		if r.status != status || (want != "" && r.body != want) {
			t.Fatalf("%s: %d %q, want %d %q", name, r.status, r.body, status, want)
		}
		if r.close {
			t.Fatalf("%s: Connection: close on a keep-alive request", name)
		}
		return r
	}
	r := step("handshake", "GET", pollHandshake("/socket.io/"), nil, "", 200, "")
	var open struct{ SID string }
	if err := json.Unmarshal([]byte(r.body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	target := pollHandshake("/socket.io/") + "&sid=" + open.SID
	step("connect", "POST", target, nil, "40", 200, "ok")
	if r := step("connect answer", "GET", target, nil, "", 200, ""); !strings.HasPrefix(r.body, `40{"sid":"`) {
		t.Fatalf("connect answer %q", r.body)
	}
	step("join", "POST", target, nil, `421["join","keep"]`, 200, "ok")
	if r := step("join ack", "GET", target, nil, "", 200, ""); !strings.HasPrefix(r.body, `431[{"room":"keep","count":1,"offset":`) {
		t.Fatalf("join ack %q", r.body)
	}
	step("preflight", "OPTIONS", target, []string{"Access-Control-Request-Method: POST"}, "", 204, "")
	step("two packets", "POST", target, nil, `422["rooms"]`+pollRS+`423["ping"]`, 200, "ok")
	step("two acks", "GET", target, nil, "", 200, `432[{"rooms":[{"room":"keep","count":1}]}]`+pollRS+`433[{"ok":true}]`)

	// A POST whose body arrives in a later segment than its head.
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\n", target)
	if _, err := io.WriteString(c.nc, head+`424["pi`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if _, err := io.WriteString(c.nc, `ng"]`); err != nil {
		t.Fatal(err)
	}
	if r, err := c.readResponse(); err != nil || r.status != 200 || r.body != "ok" {
		t.Fatalf("split POST: %+v %v", r, err)
	}
	step("split POST ack", "GET", target, nil, "", 200, `434[{"ok":true}]`)

	// The client's Connection: close is honoured.
	r = c.do("POST", target, []string{"Connection: close"}, `425["ping"]`)
	if r.status != 200 || !r.close {
		t.Fatalf("POST with Connection: close: %d, close=%v", r.status, r.close)
	}
	c.expectEOF()

	// HTTP/1.0 closes after the response unless the client asks for
	// keep-alive (RFC 9112, section 9.3).
	t.Run("HTTP/1.0 without keep-alive", func(t *testing.T) {
		c := pollDial(t, g.addr)
		req := "GET " + pollHandshake("/socket.io/") + " HTTP/1.0\r\nHost: localhost\r\n\r\n"
		if _, err := io.WriteString(c.nc, req); err != nil {
			t.Fatal(err)
		}
		r, err := c.readResponse()
		if err != nil {
			t.Fatal(err)
		}
		if r.status != 200 || !r.close {
			t.Errorf("HTTP/1.0 handshake: %d, close=%v; want 200 and the connection closed", r.status, r.close)
		}
		c.expectEOF()
	})

	t.Run("chunked body refused", func(t *testing.T) {
		c := pollDial(t, g.addr)
		req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n425[\"p\r\n0\r\n\r\n", target)
		if _, err := io.WriteString(c.nc, req); err != nil {
			t.Fatal(err)
		}
		r, err := c.readResponse()
		if err != nil {
			t.Fatal(err)
		}
		if r.status != 411 {
			t.Fatalf("chunked POST: %d %q, want 411", r.status, r.body)
		}
	})
}

func TestPollingCORS(t *testing.T) {
	const allowed = "http://allowed.example"
	g := pollGateway(t, "-sio-cors-origins", allowed)
	p := pollOpen(t, g.addr, "/socket.io/")
	tests := []struct {
		name, method, target string
		origin               string
		status               int
		echoed               bool
	}{
		{"handshake allowed", "GET", pollHandshake("/socket.io/"), allowed, 200, true},
		{"handshake other origin", "GET", pollHandshake("/socket.io/"), "http://evil.example", 200, false},
		{"handshake without origin", "GET", pollHandshake("/socket.io/"), "", 200, false},
		{"POST allowed", "POST", p.target(), allowed, 200, true},
		{"POST other origin", "POST", p.target(), "http://evil.example", 200, false},
		{"preflight allowed", "OPTIONS", p.target(), allowed, 204, true},
		{"preflight other origin", "OPTIONS", p.target(), "http://evil.example", 204, false},
		{"error allowed", "GET", pollHandshake("/socket.io/") + "&sid=nope", allowed, 400, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := pollDial(t, g.addr)
			h := []string{"Access-Control-Request-Method: POST", "Access-Control-Request-Headers: content-type"}
			if tt.origin != "" {
				h = append(h, "Origin: "+tt.origin)
			}
			body := ""
			if tt.method == "POST" {
				body = "6"
			}
			r := c.do(tt.method, tt.target, h, body)
			if r.status != tt.status {
				t.Fatalf("status %d %q, want %d", r.status, r.body, tt.status)
			}
			acao, acac := r.header.Get("Access-Control-Allow-Origin"), r.header.Get("Access-Control-Allow-Credentials")
			if tt.echoed && (acao != tt.origin || acac != "true") {
				t.Fatalf("ACAO %q, ACAC %q: want %q and true", acao, acac, tt.origin)
			}
			if !tt.echoed && (acao != "" || acac != "") {
				t.Fatalf("ACAO %q, ACAC %q for origin %q: want none", acao, acac, tt.origin)
			}
			if tt.method == "OPTIONS" {
				if m := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "GET") || !strings.Contains(m, "POST") {
					t.Fatalf("Allow-Methods %q, want GET and POST", m)
				}
				if r.body != "" {
					t.Fatalf("preflight body %q", r.body)
				}
			}
		})
	}

	// A GET answered later, on the session's home loop, keeps its origin's
	// headers.
	t.Run("parked GET allowed", func(t *testing.T) {
		c := pollDial(t, g.addr)
		ch := pollAsyncGET(c, p.target(), []string{"Origin: " + allowed})
		pollExpectParked(t, ch, 100*time.Millisecond)
		p.send("40")
		r := pollAwait(t, ch, "parked GET")
		if r.status != 200 || !strings.HasPrefix(r.body, "40{") || r.header.Get("Access-Control-Allow-Origin") != allowed {
			t.Fatalf("parked GET: %d %q, ACAO %q", r.status, r.body, r.header.Get("Access-Control-Allow-Origin"))
		}
	})
}

// TestPollingGETHeldOpen: a GET with nothing to send waits for something.
func TestPollingGETHeldOpen(t *testing.T) {
	g := pollGateway(t) // pings every 25 s: none during the test
	p := pollOpen(t, g.addr, "/socket.io/")
	p.connect()
	ch := pollAsyncGET(p.get, p.target(), nil)
	pollExpectParked(t, ch, 400*time.Millisecond)
	sent := time.Now()
	p.send(`427["ping"]`)
	r := pollAwait(t, ch, "parked GET")
	if r.status != 200 || r.body != `437[{"ok":true}]` {
		t.Fatalf("parked GET: %d %q, want the ack", r.status, r.body)
	}
	if d := time.Since(sent); d > time.Second {
		t.Errorf("parked GET answered %v after the POST", d)
	}
}

// TestPollingConcurrentGET: a second GET while one is in flight ends the
// session (engine.io-protocol v4): the first gets a close packet, the
// second 400, and the sid is forgotten.
func TestPollingConcurrentGET(t *testing.T) {
	g := pollGateway(t)
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "twice"})
	p := pollOpen(t, g.addr, "/socket.io/")
	id := p.connect()
	if a := p.emit(1, `["join","twice"]`); a["count"] != 2.0 {
		t.Fatalf("join ack %v", a)
	}
	pollNativePresence(t, native, "join", id)

	first := pollAsyncGET(p.get, p.target(), nil)
	pollExpectParked(t, first, 100*time.Millisecond)
	second := pollDial(t, g.addr).do("GET", p.target(), nil, "")
	pollExpectError(t, second, 400, pollAnyCode)
	if r := pollAwait(t, first, "first GET"); r.status != 200 || r.body != "1" {
		t.Fatalf("first GET: %d %q, want 200 \"1\"", r.status, r.body)
	}
	pollNativePresence(t, native, "leave", id)
	pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", p.target(), nil, ""))
	pollExpectUnknownSID(t, pollDial(t, g.addr).do("POST", p.target(), nil, "6"))
}

// TestPollingClientClose: a close packet from the client ends the session;
// a parked GET gets a noop, as from the reference server (a close packet
// is for a session the server ends).
func TestPollingClientClose(t *testing.T) {
	g := pollGateway(t)
	p := pollOpen(t, g.addr, "/socket.io/")
	p.connect()
	ch := pollAsyncGET(p.get, p.target(), nil)
	pollExpectParked(t, ch, 100*time.Millisecond)
	p.send("1")
	if r := pollAwait(t, ch, "parked GET"); r.status != 200 || r.body != "6" {
		t.Fatalf("parked GET: %d %q, want 200 \"6\"", r.status, r.body)
	}
	pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", p.target(), nil, ""))
	pollExpectUnknownSID(t, pollDial(t, g.addr).do("POST", p.target(), nil, "40"))
	pollWaitStat(t, g, "sessions", 0)
}

// TestPollingMaxPayload: POST bodies are bounded by the maxPayload of the
// open packet, which is -max-message.
func TestPollingMaxPayload(t *testing.T) {
	tests := []struct {
		name string
		args []string
		max  int
	}{
		{"default", nil, 64 << 10},
		{"max-message 1000", []string{"-max-message", "1000"}, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := pollGateway(t, tt.args...)
			p := pollOpen(t, g.addr, "/socket.io/")
			if p.open["maxPayload"] != float64(tt.max) {
				t.Fatalf("maxPayload %v, want %d", p.open["maxPayload"], tt.max)
			}
			p.connect()
			p.emit(1, `["join","big"]`)
			// A body of exactly maxPayload bytes is taken.
			pre, post := `422["message",{"room":"big","data":"`, `"}]`
			body := pre + strings.Repeat("x", tt.max-len(pre)-len(post)) + post
			if len(body) != tt.max {
				t.Fatal("bad test body")
			}
			p.send(body)
			if a := p.ack(2); a["ok"] != true {
				t.Fatalf("ack of a maxPayload body: %v", a)
			}
			// One byte more is refused from the head, before the body.
			c := pollDial(t, g.addr)
			head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", p.target(), tt.max+1)
			if _, err := io.WriteString(c.nc, head); err != nil {
				t.Fatal(err)
			}
			r, err := c.readResponse()
			if err != nil {
				t.Fatal(err)
			}
			if r.status != 413 || !r.close {
				t.Fatalf("oversize POST: %d %q close=%v, want 413 and close", r.status, r.body, r.close)
			}
			c.expectEOF()
		})
	}
}

// TestPollingHeartbeat: GETs bring the pings; pongs by POST keep the
// session over several intervals.
func TestPollingHeartbeat(t *testing.T) {
	g := pollGateway(t, "-sio-ping-interval", "300ms", "-sio-ping-timeout", "200ms")
	p := pollOpen(t, g.addr, "/socket.io/")
	p.connect()
	start := time.Now()
	for i := 0; i < 6; i++ { // 1.8 s: more than three times interval + timeout
		r := p.get.do("GET", p.target(), nil, "")
		if r.status != 200 || r.body != "2" {
			t.Fatalf("GET %d: %d %q, want a ping", i, r.status, r.body)
		}
		if d := time.Since(start); d > 300*time.Millisecond+400*time.Millisecond {
			t.Fatalf("ping %d came %v after the previous pong, want about 300ms", i, d)
		}
		p.send("3")
		start = time.Now()
	}
	if a := p.emit(1, `["ping"]`); a["ok"] != true {
		t.Fatalf("session not usable after pongs: %v", a)
	}
}

// TestPollingVanishedClientReaped: a client that stops polling and ponging
// is closed after pingInterval + pingTimeout, leaving its rooms.
func TestPollingVanishedClientReaped(t *testing.T) {
	g := pollGateway(t, "-sio-ping-interval", "300ms", "-sio-ping-timeout", "200ms")
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "shared"})
	p := pollOpen(t, g.addr, "/socket.io/")
	p.pong = true
	id := p.connect()
	p.emit(1, `["join","shared"]`)
	p.emit(2, `["join","alone"]`)
	pollNativePresence(t, native, "join", id)
	pollWaitStat(t, g, "rooms", 2)
	pollWaitStat(t, g, "sessions", 2)

	// Answer one more ping, then vanish.
	p.pong = false
	p.take("ping", func(s string) bool { return s == "2" })
	p.send("3")
	vanished := time.Now()
	pollNativePresence(t, native, "leave", id)
	d := time.Since(vanished)
	// A ping is due 300 ms after the pong, the session closes 200 ms later
	// (the coarse clock and sweep may shift either by some tens of ms).
	if d < 350*time.Millisecond || d > 500*time.Millisecond+time.Second {
		t.Fatalf("reaped %v after the last pong, want about 500ms", d)
	}
	pollWaitStat(t, g, "rooms", 1)
	pollWaitStat(t, g, "sessions", 1)
	pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", p.target(), nil, ""))
}

// TestPollingSlowConsumer: a session that does not poll while packets pile
// up past -max-pending is closed.
func TestPollingSlowConsumer(t *testing.T) {
	g := pollGateway(t, "-max-pending", "8192")
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "flood"})
	p := pollOpen(t, g.addr, "/socket.io/")
	id := p.connect()
	p.emit(1, `["join","flood"]`)
	pollNativePresence(t, native, "join", id)
	big := strings.Repeat("z", 1000)
	for i := 0; i < 20; i++ {
		native.send(map[string]any{"type": "send", "room": "flood", "data": big})
	}
	pollNativePresence(t, native, "leave", id)
	pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", p.target(), nil, ""))
}

// TestPollingChat: polling sessions are full chat members next to a native
// client: nick, rooms, acks, messages both ways, DMs, member lists,
// presence, binary attachments, broadcasts queued until the next GET.
func TestPollingChat(t *testing.T) {
	g := pollGateway(t)
	native := dial(t, g)
	native.request(map[string]any{"type": "nick", "name": "nat"})
	native.request(map[string]any{"type": "join", "room": "lobby"})

	alice := pollOpen(t, g.addr, "/socket.io/")
	bob := pollOpen(t, g.addr, "/socket.io/")
	aid, bid := alice.connect(), bob.connect()
	if aid == bid || aid == alice.sid {
		t.Fatalf("socket ids %q %q (engine sid %q): want distinct ids", aid, bid, alice.sid)
	}
	if a := alice.emit(1, `["nick","alice"]`); a["ok"] != true || a["name"] != "alice" {
		t.Fatalf("nick ack %v", a)
	}
	bob.emit(1, `["nick","bob"]`)
	if a := alice.emit(2, `["join","lobby"]`); a["room"] != "lobby" || a["count"] != 2.0 {
		t.Fatalf("join ack %v", a)
	}
	if p := pollNativePresence(t, native, "join", aid); p["nick"] != "alice" || p["count"] != 2.0 {
		t.Fatalf("native presence %v", p)
	}
	if a := bob.emit(2, `["join","lobby"]`); a["count"] != 3.0 {
		t.Fatalf("join ack %v", a)
	}
	if p := alice.event("presence"); p["event"] != "join" || p["id"] != bid || p["nick"] != "bob" || p["count"] != 3.0 {
		t.Fatalf("alice's presence %v", p)
	}

	// Native → polling members, data byte for byte.
	native.sendRaw(`{"type":"send","room":"lobby","data":{"n":[1,2.50,"é"]}}`)
	for _, p := range []*pollClient{alice, bob} {
		pkt := p.take("message", func(s string) bool { return strings.HasPrefix(s, `42["message"`) })
		if want := `42["message",{"room":"lobby","from":"` + native.id + `","nick":"nat","data":{"n":[1,2.50,"é"]},"ts":`; !strings.HasPrefix(pkt, want) {
			t.Fatalf("got %q, want prefix %s", pkt, want)
		}
	}
	// Polling → the others, with an ack; the sender gets no copy.
	if a := alice.emit(3, `["message",{"room":"lobby","data":"hi all"}]`); a["ok"] != true {
		t.Fatalf("message ack %v", a)
	}
	if m := native.readType("message"); m["from"] != aid || m["nick"] != "alice" || m["data"] != "hi all" || m["room"] != "lobby" {
		t.Fatalf("native got %v", m)
	}
	if m := bob.event("message"); m["from"] != aid || m["data"] != "hi all" {
		t.Fatalf("bob got %v", m)
	}
	// Direct messages both ways, and an error ack.
	native.request(map[string]any{"type": "send", "to": bid, "data": "psst"})
	if m := bob.event("message"); m["from"] != native.id || m["data"] != "psst" || m["room"] != nil {
		t.Fatalf("bob's DM %v", m)
	}
	bob.emit(3, `["message",{"to":"`+native.id+`","data":{"re":"psst"}}]`)
	if m := native.readType("message"); m["from"] != bid || m["room"] != nil {
		t.Fatalf("native's DM %v", m)
	}
	if a := bob.emit(4, `["message",{"room":"nowhere","data":1}]`); a["error"] == nil {
		t.Fatalf("message to a room bob is not in: %v", a)
	}
	// Rooms and members.
	if a := alice.emit(4, `["rooms"]`); fmt.Sprint(a["rooms"]) != "[map[count:3 room:lobby]]" {
		t.Fatalf("rooms %v", a)
	}
	a := alice.emit(5, `["members","lobby"]`)
	var ids []string
	for _, m := range a["members"].([]any) {
		ids = append(ids, m.(map[string]any)["id"].(string))
	}
	want := []string{native.id, aid, bid}
	sort.Strings(want)
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("members %v, want %v", ids, want)
	}

	// Binary: a BINARY_EVENT and its attachment in one POST; bob gets both
	// in one payload, the attachment as b<base64>; native gets it inline.
	alice.send(`451-6["message",{"room":"lobby","data":{"_placeholder":true,"num":0}}]`, "b"+base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 0xff}))
	alice.ack(6)
	for len(bob.queue) > 0 { // whatever came before the binary event
		bob.next()
	}
	payload := bob.poll()
	if len(payload) != 2 || !strings.HasPrefix(payload[0], `451-["message",{"room":"lobby","from":"`+aid+`"`) ||
		!strings.Contains(payload[0], `"data":{"_placeholder":true,"num":0}`) || payload[1] != "bAQID/w==" {
		t.Fatalf("bob's payload %q, want the binary event and bAQID/w==", payload)
	}
	if m := native.readType("message"); fmt.Sprint(m["data"]) != "map[_binary:AQID/w==]" {
		t.Fatalf("native got %v", m)
	}

	// Broadcasts to a member that is not polling wait for its next GET,
	// which takes them all at once, in order.
	for i := 0; i < 3; i++ {
		native.request(map[string]any{"type": "send", "room": "lobby", "data": i})
	}
	time.Sleep(50 * time.Millisecond) // the mailbox pass that queues them
	for len(alice.queue) > 0 {
		alice.next()
	}
	start := time.Now()
	got := alice.poll()
	if time.Since(start) > time.Second {
		t.Errorf("GET with queued packets took %v", time.Since(start))
	}
	if len(got) != 3 {
		t.Fatalf("one GET returned %q, want the 3 queued messages", got)
	}
	for i, pkt := range got {
		if m := pollEventArg(t, pkt[2:]); m["data"] != float64(i) {
			t.Fatalf("queued message %d: %q", i, pkt)
		}
	}

	// Leaving the room and disconnecting send presence.
	alice.emit(7, `["leave","lobby"]`)
	pollNativePresence(t, native, "leave", aid)
	bob.send("41")
	pollNativePresence(t, native, "leave", bid)
}

// TestPollingUpgrade: probe, noop for the parked GET, switch, and the
// refusals after it.
func TestPollingUpgrade(t *testing.T) {
	g := pollGateway(t)
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "up"})
	p := pollOpen(t, g.addr, "/socket.io/")
	id := p.connect()
	p.emit(1, `["join","up"]`)
	pollNativePresence(t, native, "join", id)

	parked := pollAsyncGET(p.get, p.target(), nil)
	pollExpectParked(t, parked, 100*time.Millisecond)
	ws, status := pollWSDial(t, g.addr, "/socket.io/", p.sid)
	if status != 101 {
		t.Fatalf("upgrade WebSocket refused with %d", status)
	}
	// A second WebSocket for the session is opened and closed at once.
	sioExpectHandshakeThenClose(t, g.addr, "/socket.io/", p.sid)
	pollWSWrite(t, ws, websocket.TextMessage, "2probe")
	if _, s := pollWSRead(t, ws); s != "3probe" {
		t.Fatalf("probe answered with %q", s)
	}
	if r := pollAwait(t, parked, "parked GET"); r.status != 200 || r.body != "6" {
		t.Fatalf("parked GET released with %d %q, want 200 \"6\"", r.status, r.body)
	}
	pollWSWrite(t, ws, websocket.TextMessage, "5")

	pollWSWrite(t, ws, websocket.TextMessage, `422["rooms"]`)
	if _, s := pollWSRead(t, ws); s != `432[{"rooms":[{"room":"up","count":2}]}]` {
		t.Fatalf("ack over the WebSocket: %q", s)
	}
	native.sendRaw(`{"type":"send","room":"up","data":"via ws"}`)
	if _, s := pollWSRead(t, ws); !strings.HasPrefix(s, `42["message",{"room":"up","from":"`+native.id+`"`) {
		t.Fatalf("message over the WebSocket: %q", s)
	}
	pollWSWrite(t, ws, websocket.TextMessage, `42["message",{"room":"up","data":"from ws"}]`)
	if m := native.readType("message"); m["from"] != id || m["data"] != "from ws" {
		t.Fatalf("native got %v", m)
	}

	pollExpectError(t, pollDial(t, g.addr).do("GET", p.target(), nil, ""), 400, pollAnyCode)
	pollExpectError(t, pollDial(t, g.addr).do("POST", p.target(), nil, "6"), 400, pollAnyCode)
	sioExpectHandshakeThenClose(t, g.addr, "/socket.io/", p.sid)

	// The session now lives and dies with the WebSocket.
	ws.Close()
	pollNativePresence(t, native, "leave", id)
	pollWaitStat(t, g, "sessions", 1)
}

// TestPollingUpgradeFailedProbe: a probing WebSocket that goes away
// leaves the session on polling, and another may probe.
func TestPollingUpgradeFailedProbe(t *testing.T) {
	g := pollGateway(t)
	p := pollOpen(t, g.addr, "/socket.io/")
	p.connect()
	ws, status := pollWSDial(t, g.addr, "/socket.io/", p.sid)
	if status != 101 {
		t.Fatalf("probe WebSocket: %d", status)
	}
	pollWSWrite(t, ws, websocket.TextMessage, "2probe")
	if _, s := pollWSRead(t, ws); s != "3probe" {
		t.Fatalf("probe answered with %q", s)
	}
	ws.Close()
	if a := p.emit(1, `["ping"]`); a["ok"] != true {
		t.Fatalf("polling after a failed probe: %v", a)
	}
	deadline := time.Now().Add(pollWait)
	for {
		ws2, st := pollWSDial(t, g.addr, "/socket.io/", p.sid)
		if st != 101 {
			t.Fatalf("second probe WebSocket: %d", st)
		}
		pollWSWrite(t, ws2, websocket.TextMessage, "2probe")
		_ = ws2.SetReadDeadline(time.Now().Add(pollWait))
		if _, b, err := ws2.ReadMessage(); err == nil {
			if string(b) != "3probe" {
				t.Fatalf("second probe answered with %q", b)
			}
			pollWSWrite(t, ws2, websocket.TextMessage, "5")
			pollWSWrite(t, ws2, websocket.TextMessage, `422["ping"]`)
			if _, s := pollWSRead(t, ws2); s != `432[{"ok":true}]` {
				t.Fatalf("after the second probe: %q", s)
			}
			return
		} else if !errorsAs(err, new(*websocket.CloseError)) {
			t.Fatalf("second probe: %v", err)
		}
		// Opened and closed: the first WebSocket's close reaches the
		// session's loop asynchronously, and until then the session is
		// still taken.
		if time.Now().After(deadline) {
			t.Fatalf("second probe still closed after %v", pollWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pollNumbers extracts the numbered data of "message" events, in order.
func pollNumbers(t *testing.T, pkts []string) []int {
	t.Helper()
	var out []int
	for _, pkt := range pkts {
		if !strings.HasPrefix(pkt, `42["message"`) {
			continue
		}
		m := pollEventArg(t, pkt[2:])
		n, ok := m["data"].(float64)
		if !ok {
			t.Fatalf("message without a number: %q", pkt)
		}
		out = append(out, int(n))
	}
	return out
}

func pollCheckSequence(t *testing.T, got []int, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d messages, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("message %d is %d, want %d (lost, repeated or reordered)", i, v, i)
		}
	}
}

// TestPollingUpgradeKeepsServerOrder: messages a native client sends
// before, during and after the upgrade all reach the polling client once,
// in order, split between the GETs and the WebSocket.
func TestPollingUpgradeKeepsServerOrder(t *testing.T) {
	const total = 300
	g := pollGateway(t)
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "seq"})
	p := pollOpen(t, g.addr, "/socket.io/")
	id := p.connect()
	p.emit(1, `["join","seq"]`)
	pollNativePresence(t, native, "join", id)
	for len(p.queue) > 0 {
		p.next()
	}

	var sendErr atomic.Value
	sendRange := func(from, to int) {
		for i := from; i < to; i++ {
			msg := fmt.Sprintf(`{"type":"send","room":"seq","data":%d}`, i)
			if err := native.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				sendErr.Store(err)
				return
			}
			if i%10 == 0 {
				time.Sleep(200 * time.Microsecond)
			}
		}
	}

	// GETs run in a goroutine until the upgrade pauses them, as in
	// engine.io-client: the GET in flight at that moment still completes.
	var (
		mu      sync.Mutex
		viaPoll []string
		paused  atomic.Bool
	)
	pollDone := make(chan error, 1)
	go func() {
		for {
			r, err := p.get.roundTrip("GET", p.target(), nil, "")
			if err != nil {
				pollDone <- err
				return
			}
			if r.status != 200 {
				pollDone <- fmt.Errorf("GET: %d %q", r.status, r.body)
				return
			}
			mu.Lock()
			viaPoll = append(viaPoll, strings.Split(r.body, pollRS)...)
			mu.Unlock()
			if paused.Load() {
				pollDone <- nil
				return
			}
		}
	}()
	sendRange(0, 100)
	deadline := time.Now().Add(pollWait)
	for {
		mu.Lock()
		n := len(viaPoll)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing arrived by polling")
		}
		time.Sleep(time.Millisecond)
	}

	ws, status := pollWSDial(t, g.addr, "/socket.io/", p.sid)
	if status != 101 {
		t.Fatalf("upgrade WebSocket: %d", status)
	}
	pollWSWrite(t, ws, websocket.TextMessage, "2probe")
	if _, s := pollWSRead(t, ws); s != "3probe" {
		t.Fatalf("probe answered with %q", s)
	}
	paused.Store(true)
	// Messages while the client pauses polling: some go out on the last
	// GET, the rest wait in the session for the switch.
	senderB := make(chan struct{})
	go func() { sendRange(100, 200); close(senderB) }()
	select {
	case err := <-pollDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(pollWait):
		t.Fatal("the GET in flight did not complete after the probe")
	}
	pollWSWrite(t, ws, websocket.TextMessage, "5")
	<-senderB
	sendRange(200, total)
	if err, _ := sendErr.Load().(error); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	got := pollNumbers(t, viaPoll)
	mu.Unlock()
	nPoll := len(got)
	for len(got) < total {
		_, s := pollWSRead(t, ws)
		got = append(got, pollNumbers(t, []string{s})...)
	}
	t.Logf("%d messages by polling, %d over the WebSocket", nPoll, len(got)-nPoll)
	pollCheckSequence(t, got, total)
}

// TestPollingUpgradeKeepsClientOrder: numbered messages the polling client
// sends by POST, then over the WebSocket after the switch, reach a native
// client once, in order.
func TestPollingUpgradeKeepsClientOrder(t *testing.T) {
	const total = 300
	g := pollGateway(t)
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "seq"})
	p := pollOpen(t, g.addr, "/socket.io/")
	id := p.connect()
	p.emit(1, `["join","seq"]`)
	pollNativePresence(t, native, "join", id)

	msg := func(i int) string { return fmt.Sprintf(`42["message",{"room":"seq","data":%d}]`, i) }
	postRange := func(from, to int) {
		for i := from; i < to; i += 5 { // five packets per POST
			var pkts []string
			for j := i; j < to && j < i+5; j++ {
				pkts = append(pkts, msg(j))
			}
			p.send(pkts...)
		}
	}
	postRange(0, 100)
	ws, status := pollWSDial(t, g.addr, "/socket.io/", p.sid)
	if status != 101 {
		t.Fatalf("upgrade WebSocket: %d", status)
	}
	pollWSWrite(t, ws, websocket.TextMessage, "2probe")
	if _, s := pollWSRead(t, ws); s != "3probe" {
		t.Fatalf("probe answered with %q", s)
	}
	postRange(100, 150) // still polling until the switch
	pollWSWrite(t, ws, websocket.TextMessage, "5")
	for i := 150; i < total; i++ {
		pollWSWrite(t, ws, websocket.TextMessage, msg(i))
	}

	var got []int
	for len(got) < total {
		m := native.readType("message")
		if m["from"] != id {
			t.Fatalf("message from %v", m["from"])
		}
		got = append(got, int(m["data"].(float64)))
	}
	pollCheckSequence(t, got, total)
}

// TestPollingEngineIOEcho: in conformance mode /engine.io/ is a plain
// Engine.IO endpoint sending every message packet back unchanged.
func TestPollingEngineIOEcho(t *testing.T) {
	g := pollGateway(t, "-sio-conformance")

	t.Run("websocket", func(t *testing.T) {
		ws, status := pollWSDial(t, g.addr, "/engine.io/", "")
		if status != 101 {
			t.Fatalf("dial: %d", status)
		}
		if _, s := pollWSRead(t, ws); !strings.HasPrefix(s, `0{"sid":"`) || !strings.Contains(s, `"upgrades":[]`) {
			t.Fatalf("open packet %q", s)
		}
		pollWSWrite(t, ws, websocket.TextMessage, "4hello")
		if typ, s := pollWSRead(t, ws); typ != websocket.TextMessage || s != "4hello" {
			t.Fatalf("echo %d %q, want text 4hello", typ, s)
		}
		pollWSWrite(t, ws, websocket.BinaryMessage, "\x01\x02\x03")
		if typ, s := pollWSRead(t, ws); typ != websocket.BinaryMessage || s != "\x01\x02\x03" {
			t.Fatalf("echo %d %q, want binary 010203", typ, s)
		}
	})

	t.Run("polling", func(t *testing.T) {
		p := pollOpen(t, g.addr, "/engine.io/")
		p.pong = true // pings every 300 ms here
		if p.open["maxPayload"] != 1e6 || fmt.Sprint(p.open["upgrades"]) != "[websocket]" {
			t.Fatalf("open packet %v", p.open)
		}
		p.send("4hello", "bAQID")
		if a, b := p.next(), p.next(); a != "4hello" || b != "bAQID" {
			t.Fatalf("echo %q %q, want 4hello bAQID", a, b)
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		p := pollOpen(t, g.addr, "/engine.io/")
		p.send("4waiting") // its echo waits for a GET, then the switch
		ws, status := pollWSDial(t, g.addr, "/engine.io/", p.sid)
		if status != 101 {
			t.Fatalf("upgrade WebSocket: %d", status)
		}
		pollUpgrade(t, ws)
		if _, s := pollWSRead(t, ws); s != "4waiting" {
			t.Fatalf("first packet after the switch %q, want 4waiting", s)
		}
		pollWSWrite(t, ws, websocket.TextMessage, "4after")
		if _, s := pollWSRead(t, ws); s != "4after" {
			t.Fatalf("echo %q, want 4after", s)
		}
		pollWSWrite(t, ws, websocket.BinaryMessage, "\x00\xff")
		if typ, s := pollWSRead(t, ws); typ != websocket.BinaryMessage || s != "\x00\xff" {
			t.Fatalf("binary echo %d %q", typ, s)
		}
		pollExpectError(t, pollDial(t, g.addr).do("GET", p.target(), nil, ""), 400, pollAnyCode)
	})
}

// TestPollingAbandonedGET: a client that drops the connection of its
// parked GET (an aborted XHR) may poll again on another.
func TestPollingAbandonedGET(t *testing.T) {
	g := pollGateway(t)
	p := pollOpen(t, g.addr, "/socket.io/")
	p.connect()
	ch := pollAsyncGET(p.get, p.target(), nil)
	pollExpectParked(t, ch, 100*time.Millisecond)
	p.get.nc.Close()
	<-ch
	time.Sleep(50 * time.Millisecond) // the close reaches the session's loop
	p.get = pollDial(t, g.addr)
	ch = pollAsyncGET(p.get, p.target(), nil)
	pollExpectParked(t, ch, 100*time.Millisecond)
	p.send(`421["ping"]`)
	if r := pollAwait(t, ch, "new GET"); r.status != 200 || r.body != `431[{"ok":true}]` {
		t.Fatalf("GET after an abandoned one: %d %q", r.status, r.body)
	}
}

// TestPollingInvalidPOST: a POST that is not a valid payload ends the
// session with 400, as the reference server does.
func TestPollingInvalidPOST(t *testing.T) {
	g := pollGateway(t)
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "bad"})
	tests := []struct{ name, body string }{
		{"empty", ""},
		{"empty record", `42["ping"]` + pollRS + pollRS + `42["ping"]`},
		{"trailing separator", `42["ping"]` + pollRS},
		{"bad base64", "b!!!"},
		{"unknown packet type", "9"},
		{"malformed socket.io packet", `42["ping"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pollOpen(t, g.addr, "/socket.io/")
			id := p.connect()
			p.emit(1, `["join","bad"]`)
			pollNativePresence(t, native, "join", id)
			r := pollDial(t, g.addr).do("POST", p.target(), nil, tt.body)
			pollExpectError(t, r, 400, pollAnyCode)
			pollNativePresence(t, native, "leave", id)
			pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", p.target(), nil, ""))
		})
	}
}

// TestPollingProbeClosedWithSession: a WebSocket opened for an upgrade
// that never completed is closed when its session ends, whether it probed
// or stayed silent.
func TestPollingProbeClosedWithSession(t *testing.T) {
	g := pollGateway(t)
	for _, probe := range []bool{true, false} {
		name := "silent"
		if probe {
			name = "probed"
		}
		t.Run(name, func(t *testing.T) {
			p := pollOpen(t, g.addr, "/socket.io/")
			p.connect()
			ws, status := pollWSDial(t, g.addr, "/socket.io/", p.sid)
			if status != 101 {
				t.Fatalf("probe WebSocket: %d", status)
			}
			if probe {
				pollWSWrite(t, ws, websocket.TextMessage, "2probe")
				if _, s := pollWSRead(t, ws); s != "3probe" {
					t.Fatalf("probe answered with %q", s)
				}
			}
			p.send("1")
			_ = ws.SetReadDeadline(time.Now().Add(pollWait))
			if _, b, err := ws.ReadMessage(); err == nil {
				t.Fatalf("WebSocket got %q after its session ended", b)
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("WebSocket still open %v after its session ended", pollWait)
			}
		})
	}
}

// TestPollingUpgradedHeartbeat: after the switch the session's pings go
// over the WebSocket; pongs keep it, silence ends it.
func TestPollingUpgradedHeartbeat(t *testing.T) {
	g := pollGateway(t, "-sio-ping-interval", "300ms", "-sio-ping-timeout", "200ms")
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "hb"})
	p := pollOpen(t, g.addr, "/socket.io/")
	id := p.connect()
	p.emit(1, `["join","hb"]`)
	pollNativePresence(t, native, "join", id)
	ws, status := pollWSDial(t, g.addr, "/socket.io/", p.sid)
	if status != 101 {
		t.Fatalf("upgrade WebSocket: %d", status)
	}
	pollUpgrade(t, ws)
	pings := 0
	for start := time.Now(); time.Since(start) < 1200*time.Millisecond; {
		_ = ws.SetReadDeadline(time.Now().Add(pollWait))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("upgraded session ended while ponging: %v", err)
		}
		if string(b) == "2" {
			pings++
			pollWSWrite(t, ws, websocket.TextMessage, "3")
		}
	}
	if pings < 3 {
		t.Fatalf("%d pings over the WebSocket in 1.2 s, want at least 3", pings)
	}
	// Stop answering: the session and its WebSocket end.
	silent := time.Now()
	pollNativePresence(t, native, "leave", id)
	if d := time.Since(silent); d > 1500*time.Millisecond {
		t.Fatalf("silent upgraded session ended after %v", d)
	}
	_ = ws.SetReadDeadline(time.Now().Add(pollWait))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("WebSocket still open after its session ended")
			}
			break
		}
	}
}

// TestPollingDrain: on SIGTERM a parked GET is answered with a close packet
// and the gateway exits without waiting for the drain timeout.
func TestPollingDrain(t *testing.T) {
	g := pollGateway(t, "-drain-timeout", "6s")
	p := pollOpen(t, g.addr, "/socket.io/")
	p.connect()
	ch := pollAsyncGET(p.get, p.target(), nil)
	pollExpectParked(t, ch, 100*time.Millisecond)
	start := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := <-ch // bounded by the connection deadline
	if res.err != nil {
		t.Errorf("parked GET on drain: %v, want 200 \"1\"", res.err)
	} else if res.r.status != 200 || res.r.body != "1" {
		t.Errorf("parked GET on drain: %d %q, want 200 \"1\"", res.r.status, res.r.body)
	}
	select {
	case <-g.done:
	case <-time.After(8 * time.Second):
		t.Fatal("gateway did not exit")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("drain with a polling client took %v, want well under the 6 s drain timeout", d)
	}
}

// TestPollingUpgradedSlowConsumer: an upgraded session whose client stops
// reading is closed as a slow consumer past -max-pending, like any
// WebSocket, and the gateway keeps serving.
func TestPollingUpgradedSlowConsumer(t *testing.T) {
	g := pollGateway(t, "-max-pending", "65536")
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "flood"})
	p := pollOpen(t, g.addr, "/socket.io/")
	id := p.connect()
	p.emit(1, `["join","flood"]`)
	pollNativePresence(t, native, "join", id)

	// A small receive buffer, so the gateway's backlog grows quickly.
	d := websocket.Dialer{HandshakeTimeout: pollWait, NetDialContext: (&net.Dialer{
		Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		},
	}).DialContext}
	ws, resp, err := d.Dial("ws://"+g.addr+"/socket.io/?EIO=4&transport=websocket&sid="+url.QueryEscape(p.sid), nil)
	if err != nil {
		t.Fatalf("upgrade WebSocket: %v", err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	pollUpgrade(t, ws)
	pollWSWrite(t, ws, websocket.TextMessage, `422["ping"]`)
	if _, s := pollWSRead(t, ws); s != `432[{"ok":true}]` {
		t.Fatalf("after the switch: %q", s)
	}
	// The client reads no more; the native client floods the room until
	// the gateway cuts the upgraded session. How much of the backlog the
	// kernel's send buffer absorbs first depends on TCP autotuning (up to
	// tcp_wmem's maximum, 4 MiB by default), so the flood goes on until
	// the leave arrives, bounded at 40 MB.
	msg := []byte(`{"type":"send","room":"flood","data":"` + strings.Repeat("f", 8000) + `"}`)
	stop := make(chan struct{})
	flooded := make(chan int, 1)
	go func() {
		n := 0
		defer func() { flooded <- n }()
		for ; n < 5000; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if native.ws.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
	}()
	pollNativePresence(t, native, "leave", id)
	close(stop)
	t.Logf("cut after at most %d messages of 8 KB", <-flooded)
	if r, err := http.Get("http://" + g.addr + "/healthz"); err != nil {
		t.Fatalf("gateway gone after closing a slow upgraded session: %v", err)
	} else {
		r.Body.Close()
	}
}

// TestPollingGETAfterProbe: a GET that arrives after the probe (the client
// sent it before it saw "3probe") must not stay parked, or the client,
// which waits for that GET before it sends "5" and holds its writes
// meanwhile, stalls until the next ping. The reference server answers such
// a GET with a noop (it re-sends one every 100 ms while upgrading).
func TestPollingGETAfterProbe(t *testing.T) {
	g := pollGateway(t) // the next ping is 25 s away
	p := pollOpen(t, g.addr, "/socket.io/")
	p.connect()
	ws, status := pollWSDial(t, g.addr, "/socket.io/", p.sid)
	if status != 101 {
		t.Fatalf("probe WebSocket: %d", status)
	}
	pollWSWrite(t, ws, websocket.TextMessage, "2probe")
	if _, s := pollWSRead(t, ws); s != "3probe" {
		t.Fatalf("probe answered with %q", s)
	}
	time.Sleep(20 * time.Millisecond) // the probe has reached the session
	start := time.Now()
	ch := pollAsyncGET(p.get, p.target(), nil)
	select {
	case res := <-ch:
		if res.err != nil || res.r.status != 200 || res.r.body != "6" {
			t.Fatalf("GET after the probe: %+v %v, want 200 \"6\"", res.r, res.err)
		}
	case <-time.After(time.Second):
		t.Fatalf("GET after the probe still parked after 1 s: the upgrading client stalls until the next ping")
	}
	t.Logf("GET after the probe answered in %v", time.Since(start))
	pollWSWrite(t, ws, websocket.TextMessage, "5")
	pollWSWrite(t, ws, websocket.TextMessage, `421["ping"]`)
	if _, s := pollWSRead(t, ws); s != `431[{"ok":true}]` {
		t.Fatalf("after the switch: %q", s)
	}
}

// TestPollingConnectTimeout: a polling session that never connects a
// namespace is closed after -sio-connect-timeout; its parked GET gets the
// close packet.
func TestPollingConnectTimeout(t *testing.T) {
	g := pollGateway(t, "-sio-connect-timeout", "300ms")
	p := pollOpen(t, g.addr, "/socket.io/")
	opened := time.Now()
	r := p.get.do("GET", p.target(), nil, "")
	if r.status != 200 || r.body != "1" {
		t.Fatalf("GET of a session that never connects: %d %q, want 200 \"1\"", r.status, r.body)
	}
	if d := time.Since(opened); d < 200*time.Millisecond || d > 300*time.Millisecond+time.Second {
		t.Fatalf("closed %v after the handshake, want about 300ms", d)
	}
	pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", p.target(), nil, ""))
}
