package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The Socket.IO endpoint seen by a hand-driven Engine.IO v4 client
// (gorilla/websocket). TestSocketIOConformance follows the cases of the
// official socket.io-protocol test suite, with EIO=4, against a gateway in
// -sio-conformance mode; the other tests check chat mode next to native
// clients. The Node.js tests (tests/node/socketio.test.mjs) drive the same
// endpoint with the real socket.io-client.

// Timings that -sio-conformance fixes, as the official suite expects them.
const (
	sioPingInterval   = 300 * time.Millisecond
	sioPingTimeout    = 200 * time.Millisecond
	sioConnectTimeout = time.Second
	// sioSlack covers the gateway's timeout sweep (it fires up to a
	// quarter of the shortest timeout late), scheduling and -race.
	sioSlack = time.Second
)

// sioMsg is one WebSocket message from the server.
type sioMsg struct {
	binary bool
	data   []byte
}

// sioClient is a raw Engine.IO v4 client over WebSocket. A goroutine reads
// every message: it answers the server's "2" pings with "3" when pong is
// set, counts them, and queues everything else. gorilla delivers whole
// messages, so packets written back to back in one TCP segment still
// arrive one by one.
type sioClient struct {
	t     *testing.T
	ws    *websocket.Conn
	open  map[string]any // the handshake data of the open packet
	msgs  chan sioMsg    // closed when the connection ends; then err is set
	err   error
	wmu   sync.Mutex // gorilla allows one writer at a time
	mu    sync.Mutex
	pings int
	pong  bool
}

func sioURL(g *gateway, query string) string {
	return "ws://" + g.addr + "/socket.io/?" + query
}

// sioDial opens an Engine.IO session and reads its open packet.
func sioDial(t *testing.T, g *gateway, pong bool) *sioClient {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(sioURL(g, "EIO=4&transport=websocket"), nil)
	if err != nil {
		t.Fatalf("dial /socket.io/: %v", err)
	}
	resp.Body.Close()
	c := &sioClient{t: t, ws: ws, msgs: make(chan sioMsg, 64), pong: pong}
	t.Cleanup(func() { ws.Close() })
	go c.readLoop()
	first := c.nextText()
	if !strings.HasPrefix(first, "0") {
		t.Fatalf("first packet %q, want an open packet", first)
	}
	if err := json.Unmarshal([]byte(first[1:]), &c.open); err != nil {
		t.Fatalf("open packet %q: %v", first, err)
	}
	return c
}

func (c *sioClient) readLoop() {
	defer close(c.msgs)
	for {
		typ, b, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		if typ == websocket.TextMessage && string(b) == "2" {
			c.mu.Lock()
			c.pings++
			pong := c.pong
			c.mu.Unlock()
			if pong {
				c.wmu.Lock()
				_ = c.ws.WriteMessage(websocket.TextMessage, []byte("3"))
				c.wmu.Unlock()
			}
			continue
		}
		c.msgs <- sioMsg{binary: typ == websocket.BinaryMessage, data: b}
	}
}

// pingCount returns how many pings the server has sent so far.
func (c *sioClient) pingCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pings
}

func (c *sioClient) write(typ int, b []byte) {
	c.t.Helper()
	c.wmu.Lock()
	err := c.ws.WriteMessage(typ, b)
	c.wmu.Unlock()
	if err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *sioClient) send(packet string)  { c.t.Helper(); c.write(websocket.TextMessage, []byte(packet)) }
func (c *sioClient) sendBinary(b []byte) { c.t.Helper(); c.write(websocket.BinaryMessage, b) }

// next returns the next message other than a ping.
func (c *sioClient) next() sioMsg {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatalf("connection closed while a message was expected: %v", c.err)
		}
		return m
	case <-time.After(5 * time.Second):
		c.t.Fatal("no message within 5s")
	}
	return sioMsg{}
}

func (c *sioClient) nextText() string {
	c.t.Helper()
	m := c.next()
	if m.binary {
		c.t.Fatalf("got binary message %v, want text", m.data)
	}
	return string(m.data)
}

func (c *sioClient) nextBinary() []byte {
	c.t.Helper()
	m := c.next()
	if !m.binary {
		c.t.Fatalf("got text message %q, want binary", m.data)
	}
	return m.data
}

// expect reads the next text packet and compares it with want.
func (c *sioClient) expect(want string) {
	c.t.Helper()
	if got := withoutPosition(c.t, c.nextText()); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// joinPosition is the history position a join ack carries.
var joinPosition = regexp.MustCompile(`,"offset":[0-9]+,"epoch":"[0-9a-f]+"\}\]$`)

// roomEventEnd is how a room message event ends with connection state
// recovery on: its offset in the object and, as socket.io does, last.
var roomEventEnd = regexp.MustCompile(`,"offset":([0-9]+)\},"([0-9]+)"\]$`)

// withoutPosition returns a join ack without the history position it
// carries (offset and epoch), which the chat tests that are not about
// history leave aside; other packets are returned unchanged.
func withoutPosition(t *testing.T, pkt string) string {
	t.Helper()
	if !strings.Contains(pkt, `"count":`) {
		return pkt
	}
	return joinPosition.ReplaceAllString(pkt, "}]")
}

// connect connects namespace nsp with the CONNECT packet sent (such as
// "40" or `40/custom,{"token":"x"}`) and returns the sid of its answer,
// checking that the answer carries exactly the key "sid", and "pid" (the
// session token of connection state recovery, on by default) naming it.
func (c *sioClient) connect(packet, nsp string) string {
	c.t.Helper()
	c.send(packet)
	prefix := "40"
	if nsp != "/" {
		prefix += nsp + ","
	}
	got := c.nextText()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("CONNECT answer %q, want prefix %q", got, prefix)
	}
	var hs map[string]any
	if err := json.Unmarshal([]byte(got[len(prefix):]), &hs); err != nil {
		c.t.Fatalf("CONNECT answer %q: %v", got, err)
	}
	sid, ok := hs["sid"].(string)
	pid, hasPID := hs["pid"].(string)
	if _, any := hs["pid"]; any && (!hasPID || !strings.HasPrefix(pid, sid+".")) {
		c.t.Fatalf("CONNECT answer %q: pid must be a string naming the sid", got)
	}
	if len(hs) != 1+btoi(hasPID) || !ok || sid == "" {
		c.t.Fatalf("CONNECT answer %q, want exactly a string sid (and pid)", got)
	}
	return sid
}

// connectAuth connects like the official suite's initSocketIOConnection:
// CONNECT to nsp, then its "auth" event, which echoes the CONNECT payload.
func (c *sioClient) connectAuth(packet, nsp, auth string) {
	c.t.Helper()
	c.connect(packet, nsp)
	ev := "42"
	if nsp != "/" {
		ev += nsp + ","
	}
	c.expect(ev + `["auth",` + auth + `]`)
}

// expectClosed asserts that the server ends the connection within d
// without sending anything but pings first, and returns how long it took
// and the close code (1006 when the connection ended without a close
// frame).
func (c *sioClient) expectClosed(d time.Duration) (time.Duration, int) {
	c.t.Helper()
	start := time.Now()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-c.msgs:
			if ok {
				c.t.Fatalf("got %q while waiting for the close", m.data)
			}
			// The reader has no deadline: whatever ended it (a close
			// frame, EOF, a reset) came from the server.
			var ce *websocket.CloseError
			if errors.As(c.err, &ce) {
				return time.Since(start), ce.Code
			}
			return time.Since(start), websocket.CloseAbnormalClosure
		case <-timer.C:
			c.t.Fatalf("connection still open after %v", d)
		}
	}
}

// expectOpen asserts that nothing but pings arrives for d and the
// connection stays open.
func (c *sioClient) expectOpen(d time.Duration) {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if ok {
			c.t.Fatalf("unexpected message %q", m.data)
		}
		c.t.Fatalf("connection closed: %v", c.err)
	case <-time.After(d):
	}
}

// placeholders2 is the payload tail of the official suite's binary cases.
const placeholders2 = `{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}`

func TestSocketIOConformance(t *testing.T) {
	g := startGateway(t, "-sio-conformance")
	bin1, bin2 := []byte{1, 2, 3}, []byte{4, 5, 6}

	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		// Engine.IO protocol.
		{"engine.io/open packet", func(t *testing.T) {
			c := sioDial(t, g, true)
			keys := make([]string, 0, len(c.open))
			for k := range c.open {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if want := []string{"maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"}; !slices.Equal(keys, want) {
				t.Fatalf("open packet keys %v, want %v", keys, want)
			}
			if sid, ok := c.open["sid"].(string); !ok || sid == "" {
				t.Errorf("sid %v, want a non-empty string", c.open["sid"])
			}
			if up, ok := c.open["upgrades"].([]any); !ok || len(up) != 0 {
				t.Errorf("upgrades %v, want []", c.open["upgrades"])
			}
			for key, want := range map[string]float64{"pingInterval": 300, "pingTimeout": 200, "maxPayload": 1000000} {
				if c.open[key] != want {
					t.Errorf("%s %v, want %v", key, c.open[key], want)
				}
			}
			other := sioDial(t, g, true)
			if other.open["sid"] == c.open["sid"] {
				t.Errorf("two sessions share the sid %v", c.open["sid"])
			}
		}},
		{"engine.io/handshake refused with 400", func(t *testing.T) {
			for _, q := range []string{
				"transport=websocket", "EIO=abc&transport=websocket", "EIO=3&transport=websocket", // EIO
				"EIO=4", "EIO=4&transport=abc", // transport
			} {
				resp, err := http.Get("http://" + g.addr + "/socket.io/?" + q)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 400 {
					t.Errorf("?%s: status %d, want 400", q, resp.StatusCode)
				}
				var e struct {
					Code    *int   `json:"code"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Code == nil || e.Message == "" {
					t.Errorf("?%s: body %q, want {code, message}", q, body)
				}
				// The WebSocket handshake is refused the same way.
				ws, resp, err := websocket.DefaultDialer.Dial(sioURL(g, q), nil)
				if err == nil {
					ws.Close()
					t.Fatalf("?%s: WebSocket upgrade accepted", q)
				}
				if resp == nil || resp.StatusCode != 400 {
					t.Errorf("?%s: upgrade answered %v, want 400", q, resp)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}},
		{"engine.io/ping pong", func(t *testing.T) {
			c := sioDial(t, g, true)
			// Clients do not ping in v4, but the server answers one.
			for i := 0; i < 3; i++ {
				c.send("2")
				c.expect("3")
			}
			c.send("2probe")
			c.expect("3probe")
		}},
		{"engine.io/heartbeat keeps an answering client", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			start := time.Now()
			for c.pingCount() < 4 {
				if time.Since(start) > 4*sioPingInterval+sioSlack {
					t.Fatalf("%d pings in %v, want one every %v", c.pingCount(), time.Since(start), sioPingInterval)
				}
				time.Sleep(10 * time.Millisecond)
			}
			c.send(`42["message","still here"]`)
			c.expect(`42["message-back","still here"]`)
		}},
		{"engine.io/ping timeout closes", func(t *testing.T) {
			c := sioDial(t, g, false)
			c.connectAuth("40", "/", "{}")
			took, _ := c.expectClosed(sioPingInterval + sioPingTimeout + sioSlack)
			if c.pingCount() == 0 {
				t.Error("closed without a ping")
			}
			t.Logf("closed %v after CONNECT", took)
		}},
		{"engine.io/close packet", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.send("1")
			if _, code := c.expectClosed(5 * time.Second); code != websocket.CloseNormalClosure {
				t.Errorf("close code %d, want %d", code, websocket.CloseNormalClosure)
			}
		}},

		// Socket.IO protocol: connect.
		{"connect/main namespace", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
		}},
		{"connect/main namespace with a payload", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth(`40{"token":"123"}`, "/", `{"token":"123"}`)
		}},
		{"connect/custom namespace", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40/custom,", "/custom", "{}")
		}},
		{"connect/custom namespace without a comma", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40/custom", "/custom", "{}")
		}},
		{"connect/custom namespace with a payload", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth(`40/custom,{"token":"abc"}`, "/custom", `{"token":"abc"}`)
		}},
		{"connect/unknown namespace refused", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.send("40/random")
			c.expect(`44/random,{"message":"Invalid namespace"}`)
			// The connection stays usable.
			c.connectAuth("40", "/", "{}")
		}},
		{"connect/invalid handshake closes", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.send("4abc")
			c.expectClosed(5 * time.Second)
		}},
		{"connect/no CONNECT in time closes", func(t *testing.T) {
			c := sioDial(t, g, true) // pongs, so that only the connect timeout applies
			start := time.Now()
			c.expectClosed(sioConnectTimeout + sioSlack)
			// Lower bound with room for the coarse clock (one sweep).
			if took := time.Since(start); took < sioConnectTimeout-300*time.Millisecond {
				t.Errorf("closed after %v, before the connect timeout of %v", took, sioConnectTimeout)
			}
		}},

		// Socket.IO protocol: disconnect.
		{"disconnect/main namespace keeps the connection", func(t *testing.T) {
			// The reference server keeps the Engine.IO connection: the
			// next frame is a ping (TestSioDisconnectFromTheMainNamespace
			// checks that frame by frame).
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			c.send("41")
			pings := c.pingCount()
			deadline := time.Now().Add(sioPingInterval + sioSlack)
			for c.pingCount() == pings {
				if time.Now().After(deadline) {
					t.Fatalf("no ping within %v after 41", sioPingInterval+sioSlack)
				}
				time.Sleep(10 * time.Millisecond)
			}
			c.connectAuth("40", "/", "{}")
		}},
		{"disconnect/custom namespace keeps the main one", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			c.connectAuth("40/custom", "/custom", "{}")
			c.send("41/custom")
			c.send(`42["message","message to main namespace"]`)
			c.expect(`42["message-back","message to main namespace"]`)
		}},

		// Socket.IO protocol: messages.
		{"message/plain text", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			c.send(`42["message",1,"2",{"3":[true]}]`)
			c.expect(`42["message-back",1,"2",{"3":[true]}]`)
		}},
		{"message/binary attachments", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			c.send(`452-["message",` + placeholders2 + `]`)
			c.sendBinary(bin1)
			c.sendBinary(bin2)
			c.expect(`452-["message-back",` + placeholders2 + `]`)
			if b := c.nextBinary(); !bytes.Equal(b, bin1) {
				t.Errorf("first attachment %v, want %v", b, bin1)
			}
			if b := c.nextBinary(); !bytes.Equal(b, bin2) {
				t.Errorf("second attachment %v, want %v", b, bin2)
			}
		}},
		{"message/ack", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			c.send(`42456["message-with-ack",1,"2",{"3":[false]}]`)
			c.expect(`43456[1,"2",{"3":[false]}]`)
		}},
		{"message/binary attachments and ack", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			c.send(`452-789["message-with-ack",` + placeholders2 + `]`)
			c.sendBinary(bin1)
			c.sendBinary(bin2)
			c.expect(`462-789[` + placeholders2 + `]`)
			if b := c.nextBinary(); !bytes.Equal(b, bin1) {
				t.Errorf("first attachment %v, want %v", b, bin1)
			}
			if b := c.nextBinary(); !bytes.Equal(b, bin2) {
				t.Errorf("second attachment %v, want %v", b, bin2)
			}
		}},
		{"message/packets written back to back", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			for i := 0; i < 20; i++ {
				c.send(`42["message",` + strconv.Itoa(i) + `]`)
			}
			for i := 0; i < 20; i++ {
				c.expect(`42["message-back",` + strconv.Itoa(i) + `]`)
			}
		}},
		{"message/unknown packet type closes", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			c.send("4abc")
			c.expectClosed(5 * time.Second)
		}},
		{"message/invalid payload format closes", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			c.send("42{}")
			c.expectClosed(5 * time.Second)
		}},
		{"message/invalid ack id closes", func(t *testing.T) {
			c := sioDial(t, g, true)
			c.connectAuth("40", "/", "{}")
			c.send(`42abc["message-with-ack",1,"2",{"3":[false]}]`)
			c.expectClosed(5 * time.Second)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// TestSocketIOChatWithNative checks chat mode on the wire: the CONNECT
// answer's sid is the id native clients see, messages cross between the
// two protocols, binary reaches a native client as base64, and a refused
// or left namespace keeps the connection.
func TestSocketIOChatWithNative(t *testing.T) {
	g := startGateway(t)
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "mix"})

	s := sioDial(t, g, true)
	if s.open["pingInterval"] != float64(25000) || s.open["pingTimeout"] != float64(20000) {
		t.Errorf("default heartbeat %v/%v, want 25000/20000", s.open["pingInterval"], s.open["pingTimeout"])
	}
	s.send("40/custom,") // served only in conformance mode
	s.expect(`44/custom,{"message":"Invalid namespace"}`)
	sid := s.connect("40", "/")
	s.send(`421["nick","sio"]`)
	s.expect(`431[{"ok":true,"name":"sio"}]`)
	s.send(`422["join","mix"]`)
	s.expect(`432[{"room":"mix","count":2}]`)
	p := native.readType("presence")
	if p["id"] != sid || p["nick"] != "sio" || p["event"] != "join" {
		t.Fatalf("presence %v, want a join of %s", p, sid)
	}
	m := native.request(map[string]any{"type": "members", "room": "mix"})
	ids := []string{}
	for _, x := range m["members"].([]any) {
		ids = append(ids, x.(map[string]any)["id"].(string))
	}
	sort.Strings(ids)
	want := []string{native.id, sid}
	sort.Strings(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("native member list %v, want %v", ids, want)
	}

	// Native → Socket.IO, data byte for byte.
	native.sendRaw(`{"type":"send","room":"mix","data":{"k":[1,"2",null]}}`)
	got := s.nextText()
	wantPrefix := `42["message",{"room":"mix","from":"` + native.id + `","nick":"","data":{"k":[1,"2",null]},"ts":`
	if !strings.HasPrefix(got, wantPrefix) || !roomEventEnd.MatchString(got) {
		t.Fatalf("got %q, want %s…,\"offset\":N},\"N\"]", got, wantPrefix)
	}

	// Socket.IO binary → native, inlined as base64.
	s.send(`453-3["message",{"room":"mix","data":{"a":{"_placeholder":true,"num":0},"b":[{"_placeholder":true,"num":2},{"_placeholder":true,"num":1}]}}]`)
	s.sendBinary([]byte{0xff, 0x00})
	s.sendBinary([]byte("hi"))
	s.sendBinary(nil)
	s.expect(`433[{"ok":true}]`)
	msg := native.readType("message")
	if msg["from"] != sid {
		t.Errorf("from %v, want %s", msg["from"], sid)
	}
	data, _ := json.Marshal(msg["data"])
	if want := `{"a":{"_binary":"/wA="},"b":[{"_binary":""},{"_binary":"aGk="}]}`; string(data) != want {
		t.Errorf("native data %s, want %s", data, want)
	}

	// Direct message to the socket id; an error ack for an unknown one.
	native.request(map[string]any{"type": "send", "to": sid, "data": "psst"})
	got = s.nextText()
	if wantPrefix := `42["message",{"from":"` + native.id + `","nick":"","data":"psst","ts":`; !strings.HasPrefix(got, wantPrefix) {
		t.Fatalf("got %q, want prefix %s", got, wantPrefix)
	}
	s.send(`424["message",{"to":"ghost","data":1}]`)
	s.expect(`434[{"error":{"code":"no_such_connection","message":"no such connection"}}]`)

	// "41" ends the chat session but not the connection; "40" opens a new
	// one with a new id.
	s.send("41")
	if p := native.readType("presence"); p["event"] != "leave" || p["id"] != sid {
		t.Fatalf("presence %v, want a leave of %s", p, sid)
	}
	s.send(`42["ping"]`) // not connected to "/": dropped
	sid2 := s.connect("40", "/")
	if sid2 == sid {
		t.Errorf("reconnected with the same id %s", sid)
	}
	s.send(`425["ping"]`)
	s.expect(`435[{"ok":true}]`)
}

// TestSocketIOTimeoutFlags checks the heartbeat and connect timeout flags
// in chat mode.
func TestSocketIOTimeoutFlags(t *testing.T) {
	g := startGateway(t, "-sio-ping-interval", "300ms", "-sio-ping-timeout", "200ms", "-sio-connect-timeout", "700ms")
	idle := sioDial(t, g, true)
	if idle.open["pingInterval"] != float64(300) || idle.open["pingTimeout"] != float64(200) {
		t.Errorf("heartbeat %v/%v, want 300/200", idle.open["pingInterval"], idle.open["pingTimeout"])
	}
	live := sioDial(t, g, true)
	live.connect("40", "/")
	mute := sioDial(t, g, false)
	mute.connect("40", "/")

	_, code := mute.expectClosed(300*time.Millisecond + 200*time.Millisecond + sioSlack)
	if code != websocket.CloseGoingAway {
		t.Errorf("ping timeout close code %d, want %d", code, websocket.CloseGoingAway)
	}
	_, code = idle.expectClosed(700*time.Millisecond + sioSlack)
	if code != websocket.ClosePolicyViolation {
		t.Errorf("connect timeout close code %d, want %d", code, websocket.ClosePolicyViolation)
	}
	live.expectOpen(500 * time.Millisecond)
	if live.pingCount() < 3 {
		t.Errorf("%d pings, want one every 300ms", live.pingCount())
	}
	live.send(`421["ping"]`)
	live.expect(`431[{"ok":true}]`)
}

// TestSocketIOPongBetweenAttachments sends an Engine.IO pong between a
// BINARY_EVENT and its attachment. Engine.IO packets are a layer below
// Socket.IO: the reference server handles ping, pong and noop in
// engine.io, and only message packets reach socket.io-parser's attachment
// reassembly. Clients whose heartbeat runs on another thread than their
// emits (python-socketio, for one) can interleave a pong like this.
func TestSocketIOPongBetweenAttachments(t *testing.T) {
	g := startGateway(t)
	native := dial(t, g)
	s := sioDial(t, g, true)
	s.connect("40", "/")
	s.send(`451-1["message",{"to":"` + native.id + `","data":{"_placeholder":true,"num":0}}]`)
	s.send("3")
	s.sendBinary([]byte{7, 7})
	s.expect(`431[{"ok":true}]`)
	if m := native.readType("message"); m["data"].(map[string]any)["_binary"] != "Bwc=" {
		t.Errorf("native got %v, want data {\"_binary\":\"Bwc=\"}", m)
	}
}

// TestSocketIOConnectTimeoutAfterRefusedConnect: a refused CONNECT (here
// an unknown namespace) does not stop the connect timeout. The reference
// server clears its connect timer only once a namespace is joined, so a
// client that is never admitted cannot hold its connection open just by
// answering pings.
func TestSocketIOConnectTimeoutAfterRefusedConnect(t *testing.T) {
	g := startGateway(t, "-sio-connect-timeout", "500ms")
	c := sioDial(t, g, true)
	c.send("40/nope")
	c.expect(`44/nope,{"message":"Invalid namespace"}`)
	c.expectClosed(500*time.Millisecond + sioSlack)
}

// btoi is 1 for true.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
