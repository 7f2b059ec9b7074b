package e2e

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// The backend proxy (-proxy-*-url, docs in proxy/proxy.go and
// chat/backend.go) against the real binary and a real HTTP backend
// (httptest, a loopback listener in the test process): application events
// (native rpc, Socket.IO events) and their acks, the commands of an
// answer, the backend's errors passed through, publish and join asked of
// the backend, per-connection order and the queue bound, every failure a
// backend can produce, signatures, disconnect reports and the metrics.
// (proxy_test.go is about nginx and haproxy in front of the gateway.)
//
// The memory measurement with 10,000 waiting calls and the throughput
// benchmark are at the end of the file; both are opt-in.
//
// Every wait is bounded (pbWait) and waits on something observable: a
// reply, a message, the backend's record of calls. Where a test asserts
// that nothing was delivered, it sends a marker afterwards along the same
// path and checks that the marker is the next thing to arrive.

// pbWait bounds every single wait of these tests.
const pbWait = 5 * time.Second

// pbJWTSecret signs the tokens of the tests that need users (HS256).
const pbJWTSecret = "chatgate-e2e-proxy-backend-0123456789abcdef"

// pbCall is one request the backend received.
type pbCall struct {
	Path      string          `json:"-"`
	Sig       string          `json:"-"`
	Keys      []string        `json:"-"` // top-level keys, sorted
	Client    string          `json:"client"`
	User      string          `json:"user"`
	Nick      string          `json:"nick"`
	Data      json.RawMessage `json:"data"`
	Rooms     []string        `json:"rooms"`
	Namespace string          `json:"namespace"`
	Room      string          `json:"room"`
	Event     string          `json:"event"`
	Args      json.RawMessage `json:"args"`
}

// pbDisc is one disconnect report.
type pbDisc struct {
	Client string   `json:"client"`
	User   string   `json:"user"`
	Rooms  []string `json:"rooms"`
	Reason string   `json:"reason"`
}

// pbAnswer is the backend's HTTP answer.
type pbAnswer struct {
	status int
	body   string
}

func pbOK(body string) pbAnswer { return pbAnswer{200, body} }

// pbBackend is the application's backend: /event, /publish, /join and
// /disconnect on one httptest server. It records every call, the calls in
// flight per client (and their maximum), and checks signatures when a
// secret is set.
type pbBackend struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	quit   chan struct{} // closed at cleanup: every held handler returns

	mu        sync.Mutex
	calls     []*pbCall // in arrival order, every path but /disconnect
	inflight  map[string]int
	maxPer    map[string]int
	inAll     int
	maxAll    int
	badSigs   []string
	sigs      int // requests with a valid signature
	discPosts int
	discs     []pbDisc
	hold      chan struct{} // "hold" events wait until it is closed
	publish   func(c *pbCall) pbAnswer
	join      func(c *pbCall) pbAnswer
}

// newPBBackend starts a backend; it stops at the end of the test, after
// the gateway (cleanups run last-registered first, so start it before the
// gateway).
func newPBBackend(t *testing.T, secret string) *pbBackend {
	t.Helper()
	b := &pbBackend{t: t, secret: secret, quit: make(chan struct{}), inflight: map[string]int{},
		maxPer: map[string]int{}, hold: make(chan struct{})}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		close(b.quit)
		b.srv.Close()
	})
	return b
}

func (b *pbBackend) url(path string) string { return b.srv.URL + path }

func (b *pbBackend) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	sig := r.Header.Get("X-Chatgate-Signature")
	if b.secret != "" {
		m := hmac.New(sha256.New, []byte(b.secret))
		m.Write(body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		b.mu.Lock()
		if hmac.Equal([]byte(sig), []byte(want)) {
			b.sigs++
		} else {
			b.badSigs = append(b.badSigs, r.URL.Path+": "+sig)
		}
		b.mu.Unlock()
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a JSON POST", 400)
		return
	}
	if r.URL.Path == "/disconnect" {
		var batch struct {
			Disconnects []pbDisc `json:"disconnects"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		b.mu.Lock()
		b.discPosts++
		b.discs = append(b.discs, batch.Disconnects...)
		b.mu.Unlock()
		io.WriteString(w, `{"result":{}}`)
		return
	}
	c := &pbCall{Path: r.URL.Path, Sig: sig}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, c); err != nil || json.Unmarshal(body, &keys) != nil {
		http.Error(w, "bad body", 400)
		return
	}
	for k := range keys {
		c.Keys = append(c.Keys, k)
	}
	sort.Strings(c.Keys)
	b.mu.Lock()
	b.calls = append(b.calls, c)
	b.inflight[c.Client]++
	b.maxPer[c.Client] = max(b.maxPer[c.Client], b.inflight[c.Client])
	b.inAll++
	b.maxAll = max(b.maxAll, b.inAll)
	publish, join := b.publish, b.join
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inflight[c.Client]--
		b.inAll--
		b.mu.Unlock()
	}()
	var a pbAnswer
	switch r.URL.Path {
	case "/event":
		a = b.event(r.Context(), c)
	case "/publish":
		a = pbOK(`{"result":{}}`)
		if publish != nil {
			a = publish(c)
		}
	case "/join":
		a = pbOK(`{"result":{}}`)
		if join != nil {
			a = join(c)
		}
	default:
		a = pbAnswer{404, "no such path"}
	}
	if a.status == 0 { // the request was given up
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// event answers an application event by its name:
//
//	echo           ack = the event's args
//	do [cmds]      commands = cmds, ack = ["done"]
//	raw [body, s]  answers body as it is, with HTTP status s (default 200)
//	big            a valid answer of more than 1 MiB
//	hold           answers ["held"] once release is called
//	hang           never answers (until the gateway gives up)
//	slow [k, …]    answers its args after 5 ms of "work"; with k = 0 it
//	               first waits for a call of another client
func (b *pbBackend) event(ctx context.Context, c *pbCall) pbAnswer {
	var args []json.RawMessage
	_ = json.Unmarshal(c.Args, &args)
	switch c.Event {
	case "echo":
		return pbOK(`{"result":{"ack":` + string(c.Args) + `}}`)
	case "do":
		cmds := "[]"
		if len(args) > 0 {
			cmds = string(args[0])
		}
		return pbOK(`{"result":{"ack":["done"],"commands":` + cmds + `}}`)
	case "raw":
		var body string
		status := 200
		if len(args) > 0 {
			_ = json.Unmarshal(args[0], &body)
		}
		if len(args) > 1 {
			_ = json.Unmarshal(args[1], &status)
		}
		return pbAnswer{status, body}
	case "big":
		return pbOK(`{"result":{"ack":["` + strings.Repeat("x", 1<<20) + `"]}}`)
	case "hold":
		b.mu.Lock()
		hold := b.hold
		b.mu.Unlock()
		select {
		case <-hold:
			return pbOK(`{"result":{"ack":["held"]}}`)
		case <-ctx.Done():
		case <-b.quit:
		}
		return pbAnswer{}
	case "hang":
		select {
		case <-ctx.Done():
		case <-b.quit:
		}
		return pbAnswer{}
	case "slow":
		// A call whose first arg is 0 waits (bounded) until calls of two
		// clients are in flight: the gateway must run different clients'
		// calls side by side.
		if len(args) > 0 && string(args[0]) == "0" {
			deadline := time.Now().Add(pbWait)
			for b.clientsInFlight() < 2 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		// Work that takes a while, so that two calls of one client in
		// flight at once would overlap here and show in maxPer.
		select {
		case <-time.After(5 * time.Millisecond):
		case <-b.quit:
		}
		return pbOK(`{"result":{"ack":` + string(c.Args) + `}}`)
	}
	return pbOK(`{"error":{"code":"no_such_event","message":"unknown event ` + c.Event + `"}}`)
}

// release answers every held call, and those still to come.
func (b *pbBackend) release() {
	b.mu.Lock()
	close(b.hold)
	b.mu.Unlock()
}

// count returns how many calls to path (all paths if "") were received,
// optionally only those of client.
func (b *pbBackend) count(path, client string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.calls {
		if (path == "" || c.Path == path) && (client == "" || c.Client == client) {
			n++
		}
	}
	return n
}

// last returns the last call received on path.
func (b *pbBackend) last(path string) *pbCall {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.calls) - 1; i >= 0; i-- {
		if b.calls[i].Path == path {
			return b.calls[i]
		}
	}
	b.t.Fatalf("the backend received no call on %s", path)
	return nil
}

// clientsInFlight returns how many clients have a call in flight.
func (b *pbBackend) clientsInFlight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, k := range b.inflight {
		if k > 0 {
			n++
		}
	}
	return n
}

func (b *pbBackend) inFlight(client string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inflight[client]
}

// pbUntil polls cond every 5 ms until it holds, failing after within.
func pbUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pbGateway starts a gateway whose application events go to b, with extra
// flags.
func pbGateway(t *testing.T, b *pbBackend, extra ...string) *gateway {
	t.Helper()
	return startGateway(t, append([]string{"-proxy-event-url", b.url("/event")}, extra...)...)
}

// pbToken returns an HS256 token for sub.
func pbToken(t *testing.T, sub string) string {
	t.Helper()
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix()}).SignedString([]byte(pbJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pbDialUser opens a native client authenticated as sub.
func pbDialUser(t *testing.T, g *gateway, sub string) *client {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: pbWait}
	ws, resp, err := d.Dial("ws://"+g.addr+"/ws", http.Header{"Authorization": {"Bearer " + pbToken(t, sub)}})
	if err != nil {
		t.Fatalf("dial as %s: %v", sub, err)
	}
	resp.Body.Close()
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	w := c.read()
	if w["type"] != "welcome" || w["user"] != sub {
		t.Fatalf("first message %v, want a welcome for %s", w, sub)
	}
	c.id = w["id"].(string)
	return c
}

var pbSeq struct {
	sync.Mutex
	n int
}

// pbID returns a fresh request id.
func pbID() string {
	pbSeq.Lock()
	defer pbSeq.Unlock()
	pbSeq.n++
	return fmt.Sprintf("pb%d", pbSeq.n)
}

// pbRPC sends an rpc and returns its reply (ack or error) and the other
// messages that arrived before it.
func pbRPC(c *client, event string, args ...any) (map[string]any, []map[string]any) {
	c.t.Helper()
	if args == nil {
		args = []any{}
	}
	return pbRequest(c, map[string]any{"type": "rpc", "event": event, "args": args})
}

// pbRequest sends v with a fresh id and returns its reply and the other
// messages before it.
func pbRequest(c *client, v map[string]any) (map[string]any, []map[string]any) {
	c.t.Helper()
	id := pbID()
	v["id"] = id
	c.send(v)
	return pbReplyTo(c, id)
}

// pbReplyTo reads until the reply with id and returns it and the messages
// before it.
func pbReplyTo(c *client, id any) (map[string]any, []map[string]any) {
	c.t.Helper()
	var before []map[string]any
	for i := 0; i < 1000; i++ {
		m := c.read()
		if (m["type"] == "ack" || m["type"] == "error") && reflect.DeepEqual(m["id"], id) {
			return m, before
		}
		before = append(before, m)
	}
	c.t.Fatalf("no reply to %v", id)
	return nil, nil
}

// pbAck sends an rpc and fails unless it is acked; it returns the ack's
// args as JSON.
func pbAck(c *client, event string, args ...any) string {
	c.t.Helper()
	r, _ := pbRPC(c, event, args...)
	if r["type"] != "ack" {
		c.t.Fatalf("rpc %s %v: got %v, want an ack", event, args, r)
	}
	return pbJSON(r["args"])
}

// pbFail sends an rpc and fails unless the reply is the error code; it
// returns the reply.
func pbFail(c *client, code, event string, args ...any) map[string]any {
	c.t.Helper()
	r, _ := pbRPC(c, event, args...)
	if r["type"] != "error" || r["code"] != code {
		c.t.Fatalf("rpc %s %v: got %v, want error %q", event, args, r, code)
	}
	return r
}

// pbDo asks the backend to answer with cmds (raw JSON) and returns the
// reply and the messages before it.
func pbDo(c *client, cmds string) (map[string]any, []map[string]any) {
	c.t.Helper()
	return pbRPC(c, "do", json.RawMessage(cmds))
}

// pbDoOK runs cmds and fails unless they are acked with ["done"]; it
// returns the messages that arrived before the ack.
func pbDoOK(c *client, cmds string) []map[string]any {
	c.t.Helper()
	r, before := pbDo(c, cmds)
	if r["type"] != "ack" || pbJSON(r["args"]) != `["done"]` {
		c.t.Fatalf("commands %s: got %v, want the ack [\"done\"]", cmds, r)
	}
	return before
}

func pbJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// pbEvent reads until an "event" message (skipping presence and other
// messages) and returns it.
func pbEvent(c *client) map[string]any {
	c.t.Helper()
	return c.readType("event")
}

// pbEventAfter returns the first event among before (messages that came
// before a reply), or else the next event c receives.
func pbEventAfter(c *client, before []map[string]any) map[string]any {
	c.t.Helper()
	for _, m := range before {
		if m["type"] == "event" {
			return m
		}
	}
	return pbEvent(c)
}

// pbMarker has from's backend call emit the event "marker-<n>" to c and
// reads c up to it, failing if anything before it is an event (or a
// message whose data is) named in forbidden. Pushes to one session are
// delivered in order, so whatever was sent to c earlier is among them.
func pbMarker(from, c *client, forbidden ...string) {
	c.t.Helper()
	name := "marker-" + pbID()
	cmd := fmt.Sprintf(`[{"emit":{"event":%q,"to":{"client":%q}}}]`, name, c.id)
	before := pbDoOK(from, cmd)
	if from == c {
		pbCheckNone(c.t, before, forbidden)
	}
	for i := 0; i < 1000; i++ {
		m := c.read()
		if m["type"] == "event" && m["event"] == name {
			return
		}
		pbCheckNone(c.t, []map[string]any{m}, forbidden)
	}
	c.t.Fatalf("no %s", name)
}

func pbCheckNone(t *testing.T, msgs []map[string]any, forbidden []string) {
	t.Helper()
	for _, m := range msgs {
		for _, f := range forbidden {
			if m["event"] == f || m["data"] == f {
				t.Fatalf("got %v, which should not have been delivered", m)
			}
		}
	}
}

// pbMembers returns the members of room as id → nick, asked by c.
func pbMembers(c *client, room string) map[string]string {
	c.t.Helper()
	r, _ := pbRequest(c, map[string]any{"type": "members", "room": room})
	if r["type"] != "ack" {
		c.t.Fatalf("members %s: %v", room, r)
	}
	out := map[string]string{}
	for _, m := range r["members"].([]any) {
		mm := m.(map[string]any)
		out[mm["id"].(string)], _ = mm["nick"].(string)
	}
	return out
}

// pbJoin joins c to room (built-in join) and fails unless acked.
func pbJoin(c *client, room string) {
	c.t.Helper()
	r, _ := pbRequest(c, map[string]any{"type": "join", "room": room})
	if r["type"] != "ack" {
		c.t.Fatalf("join %s: %v", room, r)
	}
}

// pbPing fails unless c's ping is acked.
func pbPing(c *client) {
	c.t.Helper()
	r, _ := pbRequest(c, map[string]any{"type": "ping"})
	if r["type"] != "ack" {
		c.t.Fatalf("ping: %v", r)
	}
}

// pbMetricDelta returns how much each series grew between two scrapes.
func pbMetricDelta(before, after map[string]float64, series string) float64 {
	return after[series] - before[series]
}

func pbCalls(kind, result string) string {
	return fmt.Sprintf(`chatgate_proxy_calls_total{kind=%q,result=%q}`, kind, result)
}

// TestProxyBackendRPC: a native rpc and a Socket.IO event reach the
// backend with the documented body, and the backend's ack args come back
// as they are; a {"disconnect":…} answer closes the connection with its
// code; the calls are counted in the metrics.
func TestProxyBackendRPC(t *testing.T) {
	b := newPBBackend(t, "")
	g := pbGateway(t, b)
	before := scrape(t, g)

	a := dial(t, g)
	if r, _ := pbRequest(a, map[string]any{"type": "nick", "name": "alice"}); r["type"] != "ack" {
		t.Fatalf("nick: %v", r)
	}
	pbJoin(a, "r1")
	pbJoin(a, "r2")

	// The ack carries the backend's args, byte for byte as JSON values.
	a.sendRaw(`{"type":"rpc","id":7,"event":"echo","args":[1,"two",{"x":true},null,[]]}`)
	r, _ := pbReplyTo(a, float64(7))
	if r["type"] != "ack" || pbJSON(r["args"]) != `[1,"two",{"x":true},null,[]]` {
		t.Fatalf("rpc echo: %v", r)
	}
	c := b.last("/event")
	if c.Client != a.id || c.User != "" || c.Nick != "alice" || c.Namespace != "/" || c.Event != "echo" ||
		!slices.Equal(c.Rooms, []string{"r1", "r2"}) || string(c.Args) != `[1,"two",{"x":true},null,[]]` {
		t.Fatalf("the backend received %+v", c)
	}
	// No data yet: the body has exactly these keys.
	if want := []string{"args", "client", "event", "namespace", "nick", "rooms", "user"}; !slices.Equal(c.Keys, want) {
		t.Fatalf("body keys %v, want %v", c.Keys, want)
	}

	// An rpc without args sends [] and an id that is a string comes back.
	a.sendRaw(`{"type":"rpc","id":"s-1","event":"echo"}`)
	if r, _ := pbReplyTo(a, "s-1"); r["type"] != "ack" || pbJSON(r["args"]) != `[]` {
		t.Fatalf("rpc without args: %v", r)
	}
	if got := string(b.last("/event").Args); got != "[]" {
		t.Fatalf("args without args: %s", got)
	}
	// An ack of nothing: the backend's result without "ack".
	if got := pbAck(a, "raw", `{"result":{}}`); got != `[]` {
		t.Fatalf("empty result: ack args %s", got)
	}

	// A malformed rpc never reaches the backend.
	hits := b.count("/event", "")
	a.sendRaw(`{"type":"rpc","id":"m1"}`)
	if r, _ := pbReplyTo(a, "m1"); r["code"] != "missing_field" {
		t.Fatalf("rpc without event: %v", r)
	}
	a.sendRaw(`{"type":"rpc","id":"m2","event":"echo","args":{"not":"an array"}}`)
	if r, _ := pbReplyTo(a, "m2"); r["code"] != "missing_field" {
		t.Fatalf("rpc with object args: %v", r)
	}
	if n := b.count("/event", ""); n != hits {
		t.Fatalf("malformed rpcs reached the backend: %d calls, want %d", n, hits)
	}

	// The backend's own error passes through unchanged.
	r = pbFail(a, "nope", "raw", `{"error":{"code":"nope","message":"not today <&>"}}`)
	if r["message"] != "not today <&>" || r["id"] == nil {
		t.Fatalf("backend error: %v", r)
	}

	// Socket.IO: the event with an ack id; the backend's args are the ack.
	s := sioDial(t, g, true)
	sid := s.connect("40", "/")
	s.send(`421["echo","a",2,{"b":[true]}]`)
	s.expect(`431["a",2,{"b":[true]}]`)
	c = b.last("/event")
	if c.Client != sid || c.Namespace != "/" || c.Event != "echo" || string(c.Args) != `["a",2,{"b":[true]}]` {
		t.Fatalf("the backend received %+v from Socket.IO (sid %s)", c, sid)
	}
	// An event without arguments, and the backend's error as the ack's
	// one argument.
	s.send(`42["echo"]`) // no ack asked for: the backend is still called
	pbUntil(t, pbWait, "the Socket.IO event without ack at the backend", func() bool { return b.count("/event", sid) == 2 })
	s.send(`422["raw","{\"error\":{\"code\":\"nope\",\"message\":\"not today\"}}"]`)
	s.expect(`432[{"error":{"code":"nope","message":"not today"}}]`)
	s.send(`423["no-such-event"]`)
	s.expect(`433[{"error":{"code":"no_such_event","message":"unknown event no-such-event"}}]`)
	// A binary event: the backend gets the attachment inline, as
	// {"_binary":"<base64>"}.
	s.send(`451-4["echo",{"_placeholder":true,"num":0},"t"]`)
	s.sendBinary([]byte{1, 2, 3})
	s.expect(`434[{"_binary":"AQID"},"t"]`)
	if got := string(b.last("/event").Args); got != `[{"_binary":"AQID"},"t"]` {
		t.Fatalf("binary event args at the backend: %s", got)
	}

	// {"disconnect":…} closes the connection with the backend's code;
	// another client carries on.
	d := dial(t, g)
	d.send(map[string]any{"type": "rpc", "id": 1, "event": "raw", "args": []any{`{"disconnect":{"code":4403,"reason":"banned"}}`}})
	if code := d.readClose(); code != 4403 {
		t.Fatalf("close code %d, want 4403", code)
	}
	pbPing(a)
	// The same for a Socket.IO client: a DISCONNECT packet, then its
	// WebSocket closes with the code.
	s2 := sioDial(t, g, true)
	s2.connect("40", "/")
	s2.send(`42["raw","{\"disconnect\":{\"code\":4403,\"reason\":\"banned\"}}"]`)
	s2.expect("41")
	if _, code := s2.expectClosed(pbWait); code != 4403 {
		t.Fatalf("Socket.IO close code %d, want 4403", code)
	}

	after := scrape(t, g)
	for series, want := range map[string]float64{
		pbCalls("event", "ok"):         6, // echo ×2 and raw {} (native), echo ×3 (Socket.IO)
		pbCalls("event", "error"):      3, // nope (native), nope and no_such_event (Socket.IO)
		pbCalls("event", "disconnect"): 2,
	} {
		if d := pbMetricDelta(before, after, series); d != want {
			t.Errorf("%s grew by %v, want %v", series, d, want)
		}
	}
	if d := pbMetricDelta(before, after, `chatgate_proxy_duration_seconds_count{kind="event"}`); d != 11 {
		t.Errorf("chatgate_proxy_duration_seconds_count{kind=\"event\"} grew by %v, want 11", d)
	}
}

// TestProxyBackendCommands: the commands of an answer, each seen from the
// clients: join (the caller is a member), leave, emit to a room with and
// without except_self, to a client, to a user (all of the user's
// connections) and to all, set nick (visible to others) and data (sent
// with the next call), disconnect (the connection closes with the code).
// Commands run in order, before the ack.
func TestProxyBackendCommands(t *testing.T) {
	b := newPBBackend(t, "")
	g := pbGateway(t, b, "-jwt-secret", pbJWTSecret)
	a := pbDialUser(t, g, "u-alice")
	a2 := pbDialUser(t, g, "u-alice") // alice's second connection
	bob := pbDialUser(t, g, "u-bob")
	carol := dial(t, g) // anonymous

	t.Run("join", func(t *testing.T) {
		pbDoOK(a, `[{"join":"cmd-room"}]`)
		if m := pbMembers(a, "cmd-room"); len(m) != 1 || m[a.id] != "" {
			t.Fatalf("members of cmd-room after the join command: %v", m)
		}
		// A command acts on the caller only; bob joins by himself.
		pbJoin(bob, "cmd-room")
		if m := pbMembers(bob, "cmd-room"); len(m) != 2 {
			t.Fatalf("members: %v", m)
		}
		if got := b.last("/event").Rooms; len(got) != 0 {
			t.Fatalf("rooms sent before the join ran: %v", got)
		}
		pbAck(a, "echo")
		if got := b.last("/event").Rooms; !slices.Equal(got, []string{"cmd-room"}) {
			t.Fatalf("rooms sent after the join: %v", got)
		}
	})

	t.Run("emit to a room except self", func(t *testing.T) {
		pbJoin(carol, "cmd-room") // alice, bob, carol and a Socket.IO client
		sio := sioDial(t, g, true)
		sio.connect("40", "/")
		sio.send(`420["join","cmd-room"]`)
		sio.expect(`430[{"room":"cmd-room","count":4}]`)
		before := pbDoOK(a, `[{"emit":{"event":"news","args":[1,"x",{"y":null}],"to":{"room":"cmd-room"},"except_self":true}}]`)
		pbCheckNone(t, before, []string{"news"})
		for _, c := range []*client{bob, carol} {
			ev := pbEvent(c)
			if off, ok := ev["offset"].(float64); !ok || off < 1 {
				t.Fatalf("%s got %v, want a room event with its history offset", c.id, ev)
			}
			delete(ev, "offset")
			if ev["event"] != "news" || pbJSON(ev["args"]) != `[1,"x",{"y":null}]` || len(ev) != 3 {
				t.Fatalf("%s got %v, want the event news", c.id, ev)
			}
		}
		// The Socket.IO member gets it as that event with those args, and
		// the history offset last (connection state recovery).
		if got := sio.nextText(); !strings.HasPrefix(got, `42["news",1,"x",{"y":null},"`) {
			t.Fatalf("Socket.IO member got %q, want the event news with its args and offset", got)
		}
		sio.send(`421["leave","cmd-room"]`)
		sio.expect(`431[{"room":"cmd-room","count":3}]`)
		pbMarker(a, a, "news")
		pbMarker(a, a2, "news") // not a member: nothing either
	})

	t.Run("emit to a room", func(t *testing.T) {
		before := pbDoOK(bob, `[{"emit":{"event":"news2","to":{"room":"cmd-room"}}}]`)
		// bob is a member and except_self is off: bob gets it too. The
		// command ran before the ack was written, but the caller's own
		// copy is a push like any other and arrives after the ack.
		if ev := pbEventAfter(bob, before); ev["event"] != "news2" {
			t.Fatalf("bob got %v, want news2", ev)
		}
		for _, c := range []*client{a, carol} {
			if ev := pbEvent(c); ev["event"] != "news2" || pbJSON(ev["args"]) != `[]` {
				t.Fatalf("%s got %v, want news2 with no args", c.id, ev)
			}
		}
	})

	t.Run("emit to a client", func(t *testing.T) {
		pbDoOK(a, fmt.Sprintf(`[{"emit":{"event":"dm","args":["hi"],"to":{"client":%q}}}]`, carol.id))
		if ev := pbEvent(carol); ev["event"] != "dm" || pbJSON(ev["args"]) != `["hi"]` {
			t.Fatalf("carol got %v", ev)
		}
		pbMarker(a, bob, "dm")
		pbMarker(a, a2, "dm")
		pbMarker(a, a, "dm")
		// To oneself with except_self: nothing.
		pbDoOK(a, fmt.Sprintf(`[{"emit":{"event":"dm-self","to":{"client":%q},"except_self":true}}]`, a.id))
		pbMarker(a, a, "dm-self")
	})

	t.Run("emit to a user", func(t *testing.T) {
		pbDoOK(bob, `[{"emit":{"event":"for-alice","args":[42],"to":{"user":"u-alice"}}}]`)
		for _, c := range []*client{a, a2} {
			if ev := pbEvent(c); ev["event"] != "for-alice" || pbJSON(ev["args"]) != `[42]` {
				t.Fatalf("%s got %v", c.id, ev)
			}
		}
		pbMarker(bob, bob, "for-alice")
		pbMarker(bob, carol, "for-alice")
		// except_self from one of alice's connections: only the other one.
		pbDoOK(a, `[{"emit":{"event":"for-alice-2","to":{"user":"u-alice"},"except_self":true}}]`)
		if ev := pbEvent(a2); ev["event"] != "for-alice-2" {
			t.Fatalf("a2 got %v", ev)
		}
		pbMarker(a, a, "for-alice-2")
	})

	t.Run("emit to all", func(t *testing.T) {
		before := pbDoOK(carol, `[{"emit":{"event":"everyone","args":["!"],"to":{"all":true}}}]`)
		if ev := pbEventAfter(carol, before); ev["event"] != "everyone" {
			t.Fatalf("carol got %v, want everyone", ev)
		}
		for _, c := range []*client{a, a2, bob} {
			if ev := pbEvent(c); ev["event"] != "everyone" || pbJSON(ev["args"]) != `["!"]` {
				t.Fatalf("%s got %v", c.id, ev)
			}
		}
		pbDoOK(carol, `[{"emit":{"event":"everyone-else","to":{"all":true},"except_self":true}}]`)
		for _, c := range []*client{a, a2, bob} {
			if ev := pbEvent(c); ev["event"] != "everyone-else" {
				t.Fatalf("%s got %v", c.id, ev)
			}
		}
		pbMarker(carol, carol, "everyone-else")
	})

	t.Run("set nick and data", func(t *testing.T) {
		pbDoOK(a, `[{"set":{"nick":"zed"}}]`)
		if m := pbMembers(bob, "cmd-room"); m[a.id] != "zed" {
			t.Fatalf("bob sees alice as %q, want zed (members %v)", m[a.id], m)
		}
		// Her messages carry it too.
		pbRequest(a, map[string]any{"type": "send", "room": "cmd-room", "data": "hello"})
		if m := bob.readType("message"); m["nick"] != "zed" || m["from"] != a.id || m["user"] != "u-alice" {
			t.Fatalf("bob got %v", m)
		}
		carol.readType("message")
		pbDoOK(a, `[{"set":{"data":{"role":"mod","n":1}}}]`)
		pbAck(a, "echo")
		c := b.last("/event")
		if c.Nick != "zed" || string(c.Data) != `{"role":"mod","n":1}` || c.User != "u-alice" {
			t.Fatalf("the next call carries %+v", c)
		}
		// The data is the connection's: alice's other connection has none.
		pbAck(a2, "echo")
		if c := b.last("/event"); c.Client != a2.id || c.Data != nil || c.Nick != "" {
			t.Fatalf("a2's call carries %+v", c)
		}
		// set with nick and data at once, data null clears.
		pbDoOK(a, `[{"set":{"nick":"zed2","data":null}}]`)
		pbAck(a, "echo")
		if c := b.last("/event"); c.Nick != "zed2" || (c.Data != nil && string(c.Data) != "null") {
			t.Fatalf("after set data null: %+v", c)
		}
	})

	t.Run("in order before the ack", func(t *testing.T) {
		// join, emit to the room just joined, leave: bob (a member) gets
		// presence join, the event, presence leave, in that order.
		pbJoin(bob, "seq-room")
		pbDoOK(a, `[{"join":"seq-room"},{"emit":{"event":"inside","to":{"room":"seq-room"},"except_self":true}},{"leave":"seq-room"}]`)
		var got []string
		for len(got) < 3 {
			m := bob.read()
			switch m["type"] {
			case "presence":
				if m["room"] == "seq-room" {
					got = append(got, "presence-"+m["event"].(string))
				}
			case "event":
				got = append(got, m["event"].(string))
			}
		}
		if want := []string{"presence-join", "inside", "presence-leave"}; !slices.Equal(got, want) {
			t.Fatalf("bob saw %v, want %v", got, want)
		}
		if m := pbMembers(bob, "seq-room"); len(m) != 1 {
			t.Fatalf("members of seq-room after join+leave: %v", m)
		}
	})

	t.Run("disconnect", func(t *testing.T) {
		d := pbDialUser(t, g, "u-dave")
		pbJoin(d, "cmd-room")
		d.send(map[string]any{"type": "rpc", "id": 1, "event": "do", "args": []any{json.RawMessage(`[{"disconnect":{"code":4321,"reason":"bye"}}]`)}})
		if code := d.readClose(); code != 4321 {
			t.Fatalf("close code %d, want 4321", code)
		}
		// The others see dave leave.
		for {
			m := bob.readType("presence")
			if m["event"] == "leave" && m["id"] == d.id {
				break
			}
		}
		pbPing(bob)
	})
}

// TestProxyBackendPublishAndJoin: with -proxy-publish-url a room message
// is allowed ({}), rewritten ({"data":…}) or refused (the backend's error,
// passed to the sender unchanged, and nothing delivered); with
// -proxy-join-url a join is allowed or refused. Direct messages and
// leaves are not asked about.
func TestProxyBackendPublishAndJoin(t *testing.T) {
	b := newPBBackend(t, "")
	b.publish = func(c *pbCall) pbAnswer {
		switch string(c.Data) {
		case `"bad words"`:
			return pbOK(`{"error":{"code":"moderated","message":"no swearing"}}`)
		case `"rewrite me"`:
			return pbOK(`{"result":{"data":{"text":"[redacted]","by":"bot"}}}`)
		}
		return pbOK(`{"result":{}}`)
	}
	b.join = func(c *pbCall) pbAnswer {
		if c.Room == "vip" {
			return pbOK(`{"error":{"code":"forbidden","message":"members only"}}`)
		}
		return pbOK(`{"result":{}}`)
	}
	g := pbGateway(t, b, "-proxy-publish-url", b.url("/publish"), "-proxy-join-url", b.url("/join"), "-jwt-secret", pbJWTSecret)
	before := scrape(t, g)
	a := pbDialUser(t, g, "u-alice")
	bob := dial(t, g)
	carol := dial(t, g)

	// Joins asked of the backend, allowed: the usual ack.
	for i, c := range []*client{a, bob, carol} {
		r, _ := pbRequest(c, map[string]any{"type": "join", "room": "pub"})
		if r["type"] != "ack" || r["room"] != "pub" || r["count"] != float64(i+1) {
			t.Fatalf("join pub: %v", r)
		}
		if j := b.last("/join"); j.Client != c.id || j.Room != "pub" {
			t.Fatalf("the join backend received %+v", j)
		}
	}
	if j := b.last("/join"); !slices.Equal(j.Keys, []string{"client", "room", "user"}) {
		t.Fatalf("join body keys %v", j.Keys)
	}

	// Refused: the backend's code and message, and no membership.
	r, _ := pbRequest(a, map[string]any{"type": "join", "room": "vip"})
	if r["type"] != "error" || r["code"] != "forbidden" || r["message"] != "members only" {
		t.Fatalf("join vip: %v", r)
	}
	if r, _ := pbRequest(a, map[string]any{"type": "members", "room": "vip"}); r["code"] != "not_member" {
		t.Fatalf("members of vip after a refused join: %v", r)
	}
	if r, _ := pbRequest(a, map[string]any{"type": "rooms"}); pbJSON(r["rooms"]) != `[{"count":3,"room":"pub"}]` {
		t.Fatalf("rooms after a refused join: %v", r)
	}

	// A refused message: the sender gets the backend's error, nobody
	// receives it (the next message bob and carol get is the allowed one).
	r, _ = pbRequest(a, map[string]any{"type": "send", "room": "pub", "data": "bad words"})
	if r["type"] != "error" || r["code"] != "moderated" || r["message"] != "no swearing" {
		t.Fatalf("send bad words: %v", r)
	}
	if p := b.last("/publish"); p.Client != a.id || p.User != "u-alice" || p.Room != "pub" || string(p.Data) != `"bad words"` ||
		!slices.Equal(p.Keys, []string{"client", "data", "room", "user"}) {
		t.Fatalf("the publish backend received %+v", p)
	}
	if r, _ := pbRequest(a, map[string]any{"type": "send", "room": "pub", "data": "hello"}); r["type"] != "ack" {
		t.Fatalf("send hello: %v", r)
	}
	for _, c := range []*client{bob, carol} {
		if m := c.readType("message"); m["data"] != "hello" || m["from"] != a.id {
			t.Fatalf("%s got %v, want hello (the refused message must not arrive)", c.id, m)
		}
	}

	// A rewritten message: the backend's data replaces the client's.
	if r, _ := pbRequest(a, map[string]any{"type": "send", "room": "pub", "data": "rewrite me"}); r["type"] != "ack" {
		t.Fatalf("send rewrite me: %v", r)
	}
	for _, c := range []*client{bob, carol} {
		if m := c.readType("message"); pbJSON(m["data"]) != `{"by":"bot","text":"[redacted]"}` || m["user"] != "u-alice" {
			t.Fatalf("%s got %v, want the rewritten data", c.id, m)
		}
	}

	// Direct messages and leaves are not asked about; neither are
	// messages the sender may not send (not a member).
	pubs, joins := b.count("/publish", ""), b.count("/join", "")
	if r, _ := pbRequest(a, map[string]any{"type": "send", "to": bob.id, "data": "bad words"}); r["type"] != "ack" {
		t.Fatalf("direct send: %v", r)
	}
	if m := bob.readType("message"); m["data"] != "bad words" || m["room"] != nil {
		t.Fatalf("bob got %v", m)
	}
	if r, _ := pbRequest(a, map[string]any{"type": "send", "room": "elsewhere", "data": "x"}); r["code"] != "not_member" {
		t.Fatalf("send to a room not joined: %v", r)
	}
	if r, _ := pbRequest(carol, map[string]any{"type": "leave", "room": "pub"}); r["type"] != "ack" {
		t.Fatalf("leave: %v", r)
	}
	if p, j := b.count("/publish", ""), b.count("/join", ""); p != pubs || j != joins {
		t.Fatalf("backend calls for a direct message, a non-member send and a leave: publish %d→%d, join %d→%d", pubs, p, joins, j)
	}

	// Socket.IO's built-in join and message go to the same backend.
	s := sioDial(t, g, true)
	sid := s.connect("40", "/")
	s.send(`421["join","vip"]`)
	s.expect(`431[{"error":{"code":"forbidden","message":"members only"}}]`)
	s.send(`422["join","pub"]`)
	s.expect(`432[{"room":"pub","count":3}]`)
	s.send(`423["message",{"room":"pub","data":"bad words"}]`)
	s.expect(`433[{"error":{"code":"moderated","message":"no swearing"}}]`)
	if p := b.last("/publish"); p.Client != sid {
		t.Fatalf("publish from Socket.IO: %+v", p)
	}
	if b.count("/event", "") != 0 {
		t.Fatalf("the event backend was called %d times", b.count("/event", ""))
	}

	after := scrape(t, g)
	for series, want := range map[string]float64{
		pbCalls("publish", "ok"):    2, // hello, rewrite me
		pbCalls("publish", "error"): 2, // bad words ×2
		pbCalls("join", "ok"):       4,
		pbCalls("join", "error"):    2,
	} {
		if d := pbMetricDelta(before, after, series); d != want {
			t.Errorf("%s grew by %v, want %v", series, d, want)
		}
	}
}

// TestProxyBackendBuiltinsWin: Socket.IO events with a built-in name (nick,
// join, leave, message, rooms, members, ping) and native operations are
// never sent to the event backend; any other event name is.
func TestProxyBackendBuiltinsWin(t *testing.T) {
	b := newPBBackend(t, "")
	g := pbGateway(t, b)
	s := sioDial(t, g, true)
	s.connect("40", "/")
	for _, p := range [][2]string{
		{`420["nick","sio"]`, `430[{"ok":true,"name":"sio"}]`},
		{`421["join","r"]`, `431[{"room":"r","count":1}]`},
		{`422["members","r"]`, ""},
		{`423["rooms"]`, `433[{"rooms":[{"room":"r","count":1}]}]`},
		{`424["message",{"room":"r","data":1}]`, `434[{"ok":true}]`},
		{`425["ping"]`, `435[{"ok":true}]`},
		{`426["leave","r"]`, `436[{"room":"r","count":0}]`},
		{`427["join"]`, `437[{"error":{"code":"missing_field","message":"missing \"room\""}}]`},
	} {
		s.send(p[0])
		got := withoutPosition(t, s.nextText())
		if p[1] != "" && got != p[1] {
			t.Fatalf("%s: got %q, want %q", p[0], got, p[1])
		}
		if p[1] == "" && !strings.HasPrefix(got, "432[") {
			t.Fatalf("%s: got %q", p[0], got)
		}
	}
	n := dial(t, g)
	for _, v := range []string{`{"type":"nick","name":"n","id":1}`, `{"type":"join","room":"r","id":2}`, `{"type":"ping","id":3}`,
		`{"type":"rooms","id":4}`, `{"type":"members","room":"r","id":5}`, `{"type":"send","room":"r","data":1,"id":6}`,
		`{"type":"leave","room":"r","id":7}`, `{"type":"join","event":"x","args":[],"id":8}`} {
		n.sendRaw(v)
		var m map[string]any
		_ = json.Unmarshal([]byte(v), &m)
		pbReplyTo(n, m["id"])
	}
	if got := b.count("/event", ""); got != 0 {
		t.Fatalf("built-in operations reached the event backend %d times", got)
	}
	// The control: any other name goes to the backend, one call each.
	s.send(`428["joinx"]`)
	s.expect(`438[{"error":{"code":"no_such_event","message":"unknown event joinx"}}]`)
	s.send(`429["JOIN"]`)
	s.nextText()
	if got := b.count("/event", ""); got != 2 {
		t.Fatalf("the event backend was called %d times, want 2", got)
	}
}

// TestProxyBackendOrder: 10 rpcs sent back to back by each of two clients
// are acked in order, and the backend sees each client's calls one at a
// time (never two of one client in flight) while the two clients' calls
// do run side by side.
func TestProxyBackendOrder(t *testing.T) {
	b := newPBBackend(t, "")
	g := pbGateway(t, b)
	cs := []*client{dial(t, g), dial(t, g)}
	const n = 10
	for k := 0; k < n; k++ {
		for _, c := range cs {
			c.send(map[string]any{"type": "rpc", "id": k, "event": "slow", "args": []any{k, c.id}})
		}
	}
	for _, c := range cs {
		for k := 0; k < n; k++ {
			m := c.read()
			if m["type"] != "ack" || m["id"] != float64(k) || pbJSON(m["args"]) != fmt.Sprintf(`[%d,%q]`, k, c.id) {
				t.Fatalf("reply %d of %s: %v", k, c.id, m)
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var order []int
	for _, call := range b.calls {
		if call.Client == cs[0].id {
			var args []any
			_ = json.Unmarshal(call.Args, &args)
			order = append(order, int(args[0].(float64)))
		}
	}
	if !slices.Equal(order, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("the backend received the calls in the order %v", order)
	}
	for _, c := range cs {
		if b.maxPer[c.id] != 1 {
			t.Errorf("%s had %d calls in flight at once, want 1", c.id, b.maxPer[c.id])
		}
	}
	if b.maxAll != 2 {
		t.Errorf("%d calls in flight at once, want 2 (one per client)", b.maxAll)
	}
}

// TestProxyBackendQueueBound: one call in flight per connection and 16
// waiting; past that a call is refused at once with rate_limited, while
// the backend still holds the first. Built-in requests are not queued
// behind the backend, and other clients carry on.
func TestProxyBackendQueueBound(t *testing.T) {
	b := newPBBackend(t, "")
	g := pbGateway(t, b)
	a, other := dial(t, g), dial(t, g)
	before := scrape(t, g)
	const sent, accepted = 30, 1 + 16
	for k := 0; k < sent; k++ {
		a.send(map[string]any{"type": "rpc", "id": k, "event": "hold", "args": []any{k}})
	}
	// While the backend holds call 0: 13 refusals, at once, in order.
	for k := accepted; k < sent; k++ {
		m := a.read()
		if m["type"] != "error" || m["code"] != "rate_limited" || m["id"] != float64(k) {
			t.Fatalf("reply %v while the backend holds the first call, want rate_limited for id %d", m, k)
		}
	}
	pbUntil(t, pbWait, "the first call at the backend", func() bool { return b.inFlight(a.id) == 1 })
	if n := b.count("/event", a.id); n != 1 {
		t.Fatalf("the backend received %d calls of a, want 1", n)
	}
	// a's own ping, and another client's ping and rpc, are answered.
	pbPing(a)
	pbPing(other)
	if got := pbAck(other, "echo", "still here"); got != `["still here"]` {
		t.Fatalf("other's echo: %s", got)
	}
	// A refused call is not remembered: once there is room, a new call is
	// queued again (it is the 18th accepted).
	b.release()
	for k := 0; k < accepted; k++ {
		m := a.read()
		if m["type"] != "ack" || m["id"] != float64(k) || pbJSON(m["args"]) != `["held"]` {
			t.Fatalf("reply %d after the release: %v", k, m)
		}
	}
	if n := b.count("/event", a.id); n != accepted {
		t.Fatalf("the backend received %d calls of a, want %d", n, accepted)
	}
	if got := pbAck(a, "echo", "after"); got != `["after"]` {
		t.Fatalf("echo after the queue drained: %s", got)
	}
	after := scrape(t, g)
	if d := pbMetricDelta(before, after, pbCalls("event", "ok")); d != accepted+2 {
		t.Errorf("%s grew by %v, want %d", pbCalls("event", "ok"), d, accepted+2)
	}
}

// TestProxyBackendErrorsCounted: every error a client gets is counted in
// chatgate_errors_total{code}, as without a backend: the queue bound's
// rate_limited and the refusals the gateway makes before asking the
// backend (not a member, missing event).
func TestProxyBackendErrorsCounted(t *testing.T) {
	b := newPBBackend(t, "")
	g := pbGateway(t, b, "-proxy-publish-url", b.url("/publish"))
	a := dial(t, g)
	before := scrape(t, g)
	for k := 0; k < 20; k++ {
		a.send(map[string]any{"type": "rpc", "id": k, "event": "hold"})
	}
	for k := 17; k < 20; k++ {
		if m, _ := pbReplyTo(a, float64(k)); m["code"] != "rate_limited" {
			t.Fatalf("reply %d: %v", k, m)
		}
	}
	a.sendRaw(`{"type":"send","room":"not-joined","data":1,"id":"nm"}`)
	if m, _ := pbReplyTo(a, "nm"); m["code"] != "not_member" {
		t.Fatalf("send to a room not joined: %v", m)
	}
	b.release()
	if m, _ := pbReplyTo(a, float64(16)); m["type"] != "ack" {
		t.Fatalf("reply 16: %v", m)
	}
	after := scrape(t, g)
	for series, want := range map[string]float64{
		`chatgate_errors_total{code="rate_limited"}`: 3,
		`chatgate_errors_total{code="not_member"}`:   1,
	} {
		if d := pbMetricDelta(before, after, series); d != want {
			t.Errorf("%s grew by %v, want %v", series, d, want)
		}
	}
}

// TestProxyBackendBadAnswers: every way a backend can fail becomes one of
// the documented errors for the client, the connection stays open, and
// nothing of a rejected answer runs:
//
//   - not JSON, a non-2xx status, more than 1 MiB, no envelope, a null
//     result, "ack" not an array → backend_error;
//   - an unknown command, a command with two names, an emit without a
//     target, a disconnect code outside 4000–4999, one valid command next
//     to one invalid one → backend_error, and none of the commands ran
//     (no join happened, nobody got the emit, the connection is open);
//   - a command addressing a room nobody is in, a client id or a user that
//     does not exist, or a leave of a room the caller is not in → the
//     call succeeds (the ack ["done"]), and nothing is delivered to
//     anyone: such a target is simply empty, as for the server API;
//   - a backend that never answers → backend_timeout after -proxy-timeout
//     (500 ms here), while other clients, and the caller's own built-in
//     requests, are answered meanwhile;
//   - a backend that is down → backend_unavailable (a second gateway).
func TestProxyBackendBadAnswers(t *testing.T) {
	b := newPBBackend(t, "")
	g := pbGateway(t, b, "-proxy-timeout", "500ms")
	before := scrape(t, g)
	a, other := dial(t, g), dial(t, g)
	pbJoin(other, "room-of-other")

	backendErrors := []struct {
		name string
		args []any
	}{
		{"not JSON", []any{"raw", `<html>oops</html>`}},
		{"truncated JSON", []any{"raw", `{"result":{"ack":[1`}},
		{"HTTP 500 with a valid body", []any{"raw", `{"result":{"ack":[]}}`, 500}},
		{"HTTP 404", []any{"raw", `not here`, 404}},
		{"HTTP 302", []any{"raw", ``, 302}},
		{"over 1 MiB", []any{"big"}},
		{"no envelope", []any{"raw", `{}`}},
		{"a null result", []any{"raw", `{"result":null}`}},
		{"a JSON array", []any{"raw", `[1,2]`}},
		{"ack not an array", []any{"raw", `{"result":{"ack":"yes"}}`}},
		{"result not an object", []any{"raw", `{"result":[1]}`}},
	}
	for _, tc := range backendErrors {
		r, _ := pbRPC(a, tc.args[0].(string), tc.args[1:]...)
		if r["type"] != "error" || r["code"] != "backend_error" {
			t.Errorf("%s: got %v, want backend_error", tc.name, r)
		}
	}

	badCommands := []struct{ name, cmds string }{
		{"an unknown command", `[{"join":"joined-by-bad"},{"frobnicate":true}]`},
		{"an unknown key in a command", `[{"join":"joined-by-bad","also":1}]`},
		{"two names in one command", `[{"join":"joined-by-bad","leave":"x"}]`},
		{"an empty command", `[{}]`},
		{"an emit without a target", `[{"join":"joined-by-bad"},{"emit":{"event":"bad-emit","to":{}}}]`},
		{"an emit with two targets", `[{"emit":{"event":"bad-emit","to":{"all":true,"room":"room-of-other"}}}]`},
		{"an emit without an event", `[{"emit":{"to":{"all":true}}}]`},
		{"emit args not an array", `[{"emit":{"event":"bad-emit","args":{"a":1},"to":{"all":true}}}]`},
		{"a valid emit then a disconnect code 1000", `[{"emit":{"event":"bad-emit","to":{"room":"room-of-other"}}},{"disconnect":{"code":1000}}]`},
		{"a disconnect code 5000", `[{"disconnect":{"code":5000}}]`},
		{"an empty room", `[{"join":""}]`},
		{"a room of 129 bytes", `[{"join":"` + strings.Repeat("r", 129) + `"}]`},
		{"a nick of 33 characters", `[{"set":{"nick":"` + strings.Repeat("n", 33) + `"}}]`},
		{"set data not an object", `[{"set":{"nick":"bad-nick","data":[1]}}]`},
		{"commands not a list", `{"join":"joined-by-bad"}`},
		{"257 commands", "[" + strings.TrimSuffix(strings.Repeat(`{"join":"joined-by-bad"},`, 257), ",") + "]"},
	}
	for _, tc := range badCommands {
		r, _ := pbDo(a, tc.cmds)
		if r["type"] != "error" || r["code"] != "backend_error" {
			t.Errorf("%s: got %v, want backend_error", tc.name, r)
		}
	}
	// Nothing of those ran: a joined no room and kept its nick, nobody got
	// an emit, the connection is open.
	if r, _ := pbRequest(a, map[string]any{"type": "rooms"}); pbJSON(r["rooms"]) != `[{"count":1,"room":"room-of-other"}]` {
		t.Fatalf("rooms after rejected commands: %v", r)
	}
	pbAck(a, "echo")
	if c := b.last("/event"); len(c.Rooms) != 0 || c.Nick != "" {
		t.Fatalf("a after rejected commands: %+v", c)
	}
	pbMarker(a, other, "bad-emit")
	pbMarker(a, a, "bad-emit")

	// Targets that do not exist: the call succeeds, nothing is delivered.
	pbDoOK(a, `[{"emit":{"event":"ghost","to":{"room":"nobody-here"}}},`+
		`{"emit":{"event":"ghost","to":{"client":"no-such-client"}}},`+
		`{"emit":{"event":"ghost","to":{"user":"no-such-user"}}},`+
		`{"leave":"never-joined"}]`)
	pbMarker(a, other, "ghost")
	pbMarker(a, a, "ghost")

	// A backend that never answers: backend_timeout after about 500 ms;
	// meanwhile the caller's ping and other clients are answered.
	a.send(map[string]any{"type": "rpc", "id": "hang", "event": "hang"})
	start := time.Now()
	pbUntil(t, pbWait, "the hanging call at the backend", func() bool { return b.inFlight(a.id) == 1 })
	pbPing(other)
	if got := pbAck(other, "echo", 1); got != `[1]` {
		t.Fatalf("other's echo while a waits: %s", got)
	}
	pbPing(a)
	r, _ := pbReplyTo(a, "hang")
	took := time.Since(start)
	if r["type"] != "error" || r["code"] != "backend_timeout" {
		t.Fatalf("hang: got %v, want backend_timeout", r)
	}
	if took < 450*time.Millisecond || took > 3*time.Second {
		t.Fatalf("backend_timeout after %v, want about 500 ms", took)
	}
	t.Logf("backend_timeout after %v (-proxy-timeout 500ms)", took)
	pbUntil(t, pbWait, "the gateway giving the hanging request up", func() bool { return b.inFlight(a.id) == 0 })
	if got := pbAck(a, "echo", "after"); got != `["after"]` {
		t.Fatalf("echo after the timeout: %s", got)
	}

	after := scrape(t, g)
	for series, want := range map[string]float64{
		// The proxy's own failures: not JSON (incl. truncated and an
		// array, which is no envelope object), the three statuses, over
		// 1 MiB, no envelope, a null result. "ack" not an array and a
		// result not an object are well-formed answers the hub rejects.
		pbCalls("event", "backend_error"):               9,
		pbCalls("event", "timeout"):                     1,
		`chatgate_errors_total{code="backend_error"}`:   float64(len(backendErrors) + len(badCommands)),
		`chatgate_errors_total{code="backend_timeout"}`: 1,
	} {
		if d := pbMetricDelta(before, after, series); d != want {
			t.Errorf("%s grew by %v, want %v", series, d, want)
		}
	}

	// A backend that is down: backend_unavailable, at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/event"
	l.Close()
	g2 := startGateway(t, "-proxy-event-url", down, "-proxy-timeout", "500ms")
	c := dial(t, g2)
	start = time.Now()
	r, _ = pbRPC(c, "echo", 1)
	if r["type"] != "error" || r["code"] != "backend_unavailable" {
		t.Fatalf("backend down: got %v, want backend_unavailable", r)
	}
	t.Logf("backend_unavailable after %v", time.Since(start))
	pbPing(c)
	if d := scrape(t, g2)[pbCalls("event", "unavailable")]; d != 1 {
		t.Errorf("%s = %v, want 1", pbCalls("event", "unavailable"), d)
	}
}

// TestProxyBackendTimeoutIncludesQueue: a client waits at most about
// -proxy-timeout for its answer, however busy the proxy's workers are: the
// deadline starts when the call is queued, not when a worker takes it.
func TestProxyBackendTimeoutIncludesQueue(t *testing.T) {
	b := newPBBackend(t, "")
	g := pbGateway(t, b, "-proxy-timeout", "500ms", "-proxy-concurrency", "1")
	cs := []*client{dial(t, g), dial(t, g), dial(t, g), dial(t, g)}
	start := time.Now()
	for _, c := range cs {
		c.send(map[string]any{"type": "rpc", "id": 1, "event": "hang"})
	}
	for _, c := range cs {
		r, _ := pbReplyTo(c, float64(1))
		took := time.Since(start)
		if r["code"] != "backend_timeout" {
			t.Fatalf("got %v, want backend_timeout", r)
		}
		if took > 1200*time.Millisecond {
			t.Errorf("backend_timeout after %v with -proxy-timeout 500ms", took)
		}
	}
}

// TestProxyBackendSignature: with a secret (here CHATGATE_PROXY_SECRET,
// the way the flag's help recommends) every request — event, publish,
// join, disconnect report — carries X-Chatgate-Signature: sha256=<hex
// HMAC-SHA256 of the body>, which the backend verifies; without a secret
// there is no header.
func TestProxyBackendSignature(t *testing.T) {
	const secret = "backend-shared-secret-for-the-e2e-test"
	b := newPBBackend(t, secret)
	t.Setenv("CHATGATE_PROXY_SECRET", secret)
	g := pbGateway(t, b, "-proxy-publish-url", b.url("/publish"), "-proxy-join-url", b.url("/join"),
		"-proxy-disconnect-url", b.url("/disconnect"))
	a, c := dial(t, g), dial(t, g)
	pbJoin(a, "signed")
	pbJoin(c, "signed")
	pbRequest(a, map[string]any{"type": "send", "room": "signed", "data": map[string]any{"text": "ünïcødé \u2028 <&>"}})
	pbAck(a, "echo", "x", map[string]any{"y": []int{1, 2}})
	pbDoOK(a, `[{"set":{"nick":"signed-nick"}}]`)
	c.ws.Close()
	pbUntil(t, pbWait, "the disconnect report", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.discs) == 1
	})
	b.mu.Lock()
	sigs, bad, calls, posts := b.sigs, b.badSigs, len(b.calls), b.discPosts
	var sample string
	if len(b.calls) > 0 {
		sample = b.calls[0].Sig
	}
	b.mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("bad signatures: %v", bad)
	}
	if want := calls + posts; sigs != want || calls != 5 {
		t.Fatalf("%d valid signatures, want one for each of %d calls and %d reports (5 calls)", sigs, calls, posts)
	}
	if len(sample) != len("sha256=")+64 || !strings.HasPrefix(sample, "sha256=") {
		t.Fatalf("signature header %q", sample)
	}

	// Without a secret: no header.
	t.Setenv("CHATGATE_PROXY_SECRET", "")
	b2 := newPBBackend(t, "")
	g2 := pbGateway(t, b2)
	pbAck(dial(t, g2), "echo")
	if sig := b2.last("/event").Sig; sig != "" {
		t.Fatalf("a gateway without a secret sent %q", sig)
	}
}

// TestProxyBackendDisconnectReports: closed connections are reported to
// -proxy-disconnect-url in batches ({"disconnects":[…]}, several per
// request), each with the client, user, rooms (in join order) and the
// close reason: 30 clients closed at once are reported in fewer than 30
// requests.
func TestProxyBackendDisconnectReports(t *testing.T) {
	b := newPBBackend(t, "")
	g := pbGateway(t, b, "-proxy-disconnect-url", b.url("/disconnect"), "-jwt-secret", pbJWTSecret)
	before := scrape(t, g)
	const n = 30
	want := map[string]pbDisc{}
	var cs []*client
	for i := 0; i < n; i++ {
		var c *client
		user := ""
		if i%2 == 0 {
			user = fmt.Sprintf("u-%d", i)
			c = pbDialUser(t, g, user)
		} else {
			c = dial(t, g)
		}
		rooms := []string{fmt.Sprintf("d-%d", i%3), "d-all"}
		if i%5 == 0 {
			rooms = nil // in no room: "rooms":[]
		}
		for _, r := range rooms {
			pbJoin(c, r)
		}
		if rooms == nil {
			rooms = []string{}
		}
		want[c.id] = pbDisc{Client: c.id, User: user, Rooms: rooms}
		cs = append(cs, c)
	}
	// One closed by the backend's command, one with a close frame, the
	// rest by dropping the TCP connection.
	d := cs[1]
	d.send(map[string]any{"type": "rpc", "id": 1, "event": "do", "args": []any{json.RawMessage(`[{"disconnect":{"code":4321}}]`)}})
	if code := d.readClose(); code != 4321 {
		t.Fatalf("close code %d", code)
	}
	_ = cs[2].ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(pbWait))
	for i, c := range cs {
		if i != 1 && i != 2 {
			c.ws.Close()
		}
	}
	pbUntil(t, pbWait, "30 disconnect reports", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.discs) >= n
	})
	b.mu.Lock()
	discs, posts := append([]pbDisc(nil), b.discs...), b.discPosts
	b.mu.Unlock()
	if len(discs) != n {
		t.Fatalf("%d reports, want %d", len(discs), n)
	}
	reasons := map[string]int{}
	for _, got := range discs {
		w, ok := want[got.Client]
		if !ok {
			t.Fatalf("report of an unknown or repeated client: %+v", got)
		}
		delete(want, got.Client)
		if got.User != w.User || !slices.Equal(got.Rooms, w.Rooms) || got.Reason == "" {
			t.Errorf("report %+v, want %+v with a reason", got, w)
		}
		reasons[got.Reason]++
		switch got.Client {
		case cs[1].id:
			if got.Reason != "server" {
				t.Errorf("the backend's disconnect reported as %q, want server", got.Reason)
			}
		case cs[2].id:
			if got.Reason != "1000" {
				t.Errorf("a close 1000 reported as %q", got.Reason)
			}
		}
	}
	if posts >= n {
		t.Errorf("%d reports came in %d requests: not batched", n, posts)
	}
	t.Logf("%d reports in %d requests, reasons %v", n, posts, reasons)
	// The gateway counts a batch once the backend's answer is in: after
	// the backend recorded it.
	pbUntil(t, pbWait, pbCalls("disconnect", "ok")+" counting 30", func() bool {
		return pbMetricDelta(before, scrape(t, g), pbCalls("disconnect", "ok")) == n
	})
}

// --- Memory: 10,000 connections, each with one call waiting -------------

// pbRawWS is a bare native connection for the many-connection
// measurement: no gorilla buffers, one small reader.
type pbRawWS struct {
	nc net.Conn
	br *bufio.Reader
}

// pbRawOpen dials g from src, upgrades, and reads the welcome.
func pbRawOpen(g *gateway, src string) (*pbRawWS, error) {
	nd := net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	nc, err := nd.Dial("tcp4", g.addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(nc, upgradeRequest); err != nil {
		nc.Close()
		return nil, err
	}
	c := &pbRawWS{nc: nc, br: bufio.NewReaderSize(nc, 256)}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != 101 {
		nc.Close()
		return nil, fmt.Errorf("upgrade: %v %v", resp, err)
	}
	p, err := c.next()
	if err != nil || !strings.Contains(string(p), `"welcome"`) {
		nc.Close()
		return nil, fmt.Errorf("welcome: %q %v", p, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// next reads one unfragmented, unmasked server frame and returns its
// payload.
func (c *pbRawWS) next() ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(c.br, e[:]); err != nil {
			return nil, err
		}
		n = int(e[0])<<8 | int(e[1])
	case 127:
		return nil, fmt.Errorf("frame too large")
	}
	p := make([]byte, n)
	_, err := io.ReadFull(c.br, p)
	return p, err
}

// pbStatus reads a field of /proc/<pid>/status in KiB.
func pbStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			var v int64
			fmt.Sscanf(strings.TrimSpace(line[len(field)+1:]), "%d", &v)
			return v
		}
	}
	return -1
}

func pbFDs(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

// TestProxyBackendMemory10k measures the gateway's memory with 10,000
// native connections each waiting for one backend call: the backend holds
// every request it gets until released (at most -proxy-concurrency are at
// the backend, the rest wait in the proxy's queue). VmRSS is read from
// /proc before any connection, with the connections idle, while every
// call waits, after the release (all acked), and after a forced GC
// (/debug/pprof/heap?gc=1 on the admin listener).
//
// Opt-in (CHATGATE_E2E_PROXY_10K=1): it needs 10,000+ descriptors in this
// process and in the gateway, which the ordinary suite, run under -race
// next to other tests, should not take. CHATGATE_E2E_PROXY_10K_N and
// CHATGATE_E2E_PROXY_10K_CONCURRENCY change the connection count and
// -proxy-concurrency. The bound it asserts is generous (64 KiB per
// waiting connection over the idle figure) and only catches a leak of
// whole buffers per call; the figures are in docs/benchmarks.md.
func TestProxyBackendMemory10k(t *testing.T) {
	if os.Getenv("CHATGATE_E2E_PROXY_10K") != "1" {
		t.Skip("opt-in: CHATGATE_E2E_PROXY_10K=1")
	}
	n := 10000
	if v := os.Getenv("CHATGATE_E2E_PROXY_10K_N"); v != "" {
		fmt.Sscanf(v, "%d", &n)
	}
	concurrency := "64"
	if v := os.Getenv("CHATGATE_E2E_PROXY_10K_CONCURRENCY"); v != "" {
		concurrency = v
	}
	b := newPBBackend(t, "")
	g := pbGateway(t, b, "-proxy-timeout", "2m", "-proxy-concurrency", concurrency, "-ping-interval", "10m",
		"-max-connections", "-1", "-max-connections-per-ip", "-1")
	pid := g.cmd.Process.Pid
	type sample struct {
		what     string
		rss, fds int
		heap     float64
	}
	var samples []sample
	measure := func(what string) {
		m := scrape(t, g)
		samples = append(samples, sample{what, int(pbStatus(pid, "VmRSS")), pbFDs(pid), m["go_memstats_heap_inuse_bytes"]})
		s := samples[len(samples)-1]
		t.Logf("%-28s VmRSS %7.1f MiB  heap in use %7.1f MiB  fds %d", what, float64(s.rss)/1024, s.heap/(1<<20), s.fds)
	}
	measure("started")

	// Open n connections from 127.0.0.2–.5, 64 dials at a time.
	srcs := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	conns := make([]*pbRawWS, n)
	start := time.Now()
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	next := make(chan int)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := pbRawOpen(g, srcs[i%len(srcs)])
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					errMu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.nc.Close()
			}
		}
	})
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	t.Logf("%d connections open in %v", n, time.Since(start).Round(time.Millisecond))
	measure(fmt.Sprintf("%d connections idle", n))

	// Every connection sends one rpc; one reader per connection waits
	// for its ack.
	received := scrape(t, g)["chatgate_messages_received_total"]
	frame := clientFrame(true, 1, []byte(`{"type":"rpc","id":1,"event":"hold","args":[]}`))
	acked := make(chan error, n)
	for _, c := range conns {
		if _, err := c.nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		go func(c *pbRawWS) {
			_ = c.nc.SetReadDeadline(time.Now().Add(2 * time.Minute))
			p, err := c.next()
			if err == nil && string(p) != `{"type":"ack","id":1,"args":["held"]}` {
				err = fmt.Errorf("reply %s", p)
			}
			acked <- err
		}(c)
	}
	atBackend := min(n, pbAtoi(concurrency))
	pbUntil(t, time.Minute, "every rpc received and the backend holding its share", func() bool {
		return scrape(t, g)["chatgate_messages_received_total"]-received == float64(n) && b.count("/event", "") == atBackend
	})
	measure(fmt.Sprintf("%d calls waiting", n))
	waiting := samples[len(samples)-1]

	b.release()
	for i := 0; i < n; i++ {
		select {
		case err := <-acked:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%d of %d acks after a minute", i, n)
		}
	}
	measure("all acked")
	if resp, err := http.Get("http://" + g.admin + "/debug/pprof/heap?gc=1"); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	measure("after a forced GC")
	t.Logf("peak VmRSS (VmHWM) %.1f MiB", float64(pbStatus(pid, "VmHWM"))/1024)
	idle := samples[1]
	perConn := float64(waiting.rss-idle.rss) * 1024 / float64(n)
	t.Logf("waiting calls cost %.0f bytes of RSS per connection over idle (%.0f bytes of heap)", perConn,
		(waiting.heap-idle.heap)/float64(n))
	if perConn > 64<<10 {
		t.Errorf("a waiting call costs %.0f bytes of RSS per connection, over the 64 KiB bound", perConn)
	}
}

func pbAtoi(s string) int {
	var v int
	fmt.Sscanf(s, "%d", &v)
	return v
}

// --- Throughput: events/s through -proxy-event-url -----------------------

// BenchmarkProxyEvents measures application events through the gateway to
// a trivial backend (httptest in this process, answering at once with the
// time it spent, {"result":{"ack":[<ns>]}}): PB_BENCH_CONNS native
// connections (default 64) each send rpcs in a closed loop, one in flight,
// b.N events in all. The "ping" case is the baseline: the same loop with
// built-in pings, which never leave the gateway. Run it with a fixed
// count:
//
//	go test ./tests/e2e -run '^$' -bench BenchmarkProxyEvents -benchtime 50000x
//
// It reports events/s, the added latency (the client's round trip minus
// the backend's own time, p50 and p99, µs) and the gateway's CPU per
// event (utime+stime from /proc/<pid>/stat, µs). The clients, the backend
// and the gateway share the machine: the figures are for the whole loop.
func BenchmarkProxyEvents(b *testing.B) {
	conns := 64
	if v := os.Getenv("PB_BENCH_CONNS"); v != "" {
		conns = pbAtoi(v)
	}
	b.Run("rpc", func(b *testing.B) { pbBench(b, conns, false) })
	b.Run("ping", func(b *testing.B) { pbBench(b, conns, true) })
}

// pbBench runs BenchmarkProxyEvents with rpcs, or with pings.
func pbBench(b *testing.B, conns int, ping bool) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"result":{"ack":[%d]}}`, time.Since(start).Nanoseconds())
	}))
	defer backend.Close()
	g := pbLaunch(b, "-proxy-event-url", backend.URL+"/event", "-log-level", "warn")
	defer g.stop()

	cs := make([]*websocket.Conn, conns)
	for i := range cs {
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+g.addr+"/ws", nil)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		defer ws.Close()
		if _, _, err := ws.ReadMessage(); err != nil { // welcome
			b.Fatal(err)
		}
		cs[i] = ws
	}
	// Warm up: one call per connection (keep-alive connections to the
	// backend, buffers).
	for _, ws := range cs {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"rpc","id":0,"event":"warm"}`))
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	per := (b.N + conns - 1) / conns
	added := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	// PB_BENCH_CPUPROFILE=<file>: a 3 s CPU profile of the gateway during
	// the run (from its admin listener's /debug/pprof), in <file>.rpc or
	// <file>.ping.
	profiled := make(chan struct{})
	if path := os.Getenv("PB_BENCH_CPUPROFILE"); path != "" && b.N > 1 {
		if ping {
			path += ".ping"
		} else {
			path += ".rpc"
		}
		go func() {
			defer close(profiled)
			resp, err := http.Get("http://" + g.admin + "/debug/pprof/profile?seconds=3")
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if f, err := os.Create(path); err == nil {
				_, _ = io.Copy(f, resp.Body)
				f.Close()
			}
		}()
	} else {
		close(profiled)
	}
	defer func() { <-profiled }()
	cpu0 := pbCPUTicks(g.pid)
	b.ResetTimer()
	start := time.Now()
	for i, ws := range cs {
		wg.Add(1)
		go func(i int, ws *websocket.Conn) {
			defer wg.Done()
			lat := make([]time.Duration, 0, per)
			var reply struct {
				Type string  `json:"type"`
				ID   int     `json:"id"`
				Args []int64 `json:"args"`
			}
			for k := 1; k <= per; k++ {
				t0 := time.Now()
				msg := `{"type":"rpc","id":` + fmt.Sprint(k) + `,"event":"bench","args":[1]}`
				if ping {
					msg = `{"type":"ping","id":` + fmt.Sprint(k) + `}`
				}
				if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					errs <- err
					return
				}
				_, p, err := ws.ReadMessage()
				rtt := time.Since(t0)
				if err != nil {
					errs <- err
					return
				}
				reply.Args = nil
				if err := json.Unmarshal(p, &reply); err != nil || reply.Type != "ack" || reply.ID != k || len(reply.Args) != 1 && !ping {
					errs <- fmt.Errorf("reply %s", p)
					return
				}
				if ping {
					lat = append(lat, rtt)
				} else {
					lat = append(lat, rtt-time.Duration(reply.Args[0]))
				}
			}
			added[i] = lat
		}(i, ws)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := pbCPUTicks(g.pid) - cpu0
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	var all []time.Duration
	for _, l := range added {
		all = append(all, l...)
	}
	slices.Sort(all)
	events := float64(len(all))
	b.ReportMetric(events/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-added-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-added-µs")
	b.ReportMetric(float64(cpu)*1e6/pbClkTck/events, "gw-cpu-µs/event")
	b.ReportMetric(0, "ns/op") // wall time per event is events/s
}

// pbClkTck is USER_HZ, the unit of /proc/<pid>/stat's times (100 on
// Linux everywhere that matters; getconf CLK_TCK says so here).
const pbClkTck = 100

// pbCPUTicks returns utime+stime of pid, in clock ticks.
func pbCPUTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var u, s int64
	fmt.Sscanf(f[11], "%d", &u)
	fmt.Sscanf(f[12], "%d", &s)
	return u + s
}

// pbProc is a gateway started for a benchmark (startGateway needs a
// *testing.T).
type pbProc struct {
	cmd   *exec.Cmd
	pid   int
	addr  string
	admin string
}

func (p *pbProc) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// pbLaunch starts the gateway under test with args and waits for
// /healthz.
func pbLaunch(tb testing.TB, args ...string) *pbProc {
	tb.Helper()
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	p := &pbProc{addr: free(), admin: free()}
	p.cmd = exec.Command(binary, append([]string{"-addr", p.addr, "-admin-addr", p.admin, "-api-addr", "",
		"-rate-messages", "-1", "-rate-bytes", "-1"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p.pid = p.cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			tb.Fatalf("gateway did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
