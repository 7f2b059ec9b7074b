package e2e

// Cases of the official protocol test suites, replayed request for request
// against the real binary: engine.io-protocol's and socket.io-protocol's
// test-suite/test-suite.js (github.com/socketio/engine.io-protocol,
// github.com/socketio/socket.io-protocol). Each test is named after its
// official case and runs in -sio-conformance mode (on /engine.io/ and
// /socket.io/, as the two suites do) and in chat mode, where the same
// Engine.IO rule holds. TestSocketIOConformance and TestPolling* cover the
// suites' other cases; the connection state recovery checks at the end
// tell a client's Engine.IO close (a transport close, recoverable) from
// leaving the namespace (a deliberate leave, not recoverable).

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// sioOfficialTarget is one endpoint an official case runs against.
type sioOfficialTarget struct {
	name string
	g    *gateway
	path string // "/engine.io/" (the Engine.IO echo) or "/socket.io/"
	chat bool   // chat mode: a CONNECT is answered without the "auth" event
}

// sioChatArgs start a chat-mode gateway whose pings come soon enough for
// the cases that wait for one, with a pong timeout that -race cannot
// trip.
var sioChatArgs = []string{"-sio-ping-interval", "500ms", "-sio-ping-timeout", "2s"}

// sioOfficialTargets starts a conformance gateway and a chat gateway and
// returns the endpoints an Engine.IO case runs against.
func sioOfficialTargets(t *testing.T) []sioOfficialTarget {
	t.Helper()
	conf := pollGateway(t, "-sio-conformance")
	chat := pollGateway(t, sioChatArgs...)
	return []sioOfficialTarget{
		{"conformance/engine.io", conf, "/engine.io/", false},
		{"conformance/socket.io", conf, "/socket.io/", false},
		{"chat/socket.io", chat, "/socket.io/", true},
	}
}

// sioParkGET makes a GET for p's session and returns once the gateway
// holds it. A GET answered with the server's ping (every 300 ms in
// conformance mode) is ponged and made again.
func sioParkGET(t *testing.T, p *pollClient) <-chan pollResult {
	t.Helper()
	for i := 0; i < 10; i++ {
		ch := pollAsyncGET(p.get, p.target(), nil)
		select {
		case res := <-ch:
			if res.err != nil || res.r.status != 200 || res.r.body != "2" {
				t.Fatalf("GET answered before anything was sent: %+v %v", res.r, res.err)
			}
			p.send("3")
		case <-time.After(100 * time.Millisecond):
			return ch
		}
	}
	t.Fatal("every GET was answered with a ping")
	return nil
}

// sioExpectHandshakeThenClose dials a WebSocket for sid and asserts that
// the gateway completes its handshake (101) and then closes it (1000)
// without sending anything.
func sioExpectHandshakeThenClose(t *testing.T, addr, path, sid string) {
	t.Helper()
	ws, status := pollWSDial(t, addr, path, sid)
	if status != 101 {
		t.Fatalf("WebSocket with the sid of an upgraded session answered %d, want 101 and then a close", status)
	}
	_ = ws.SetReadDeadline(time.Now().Add(pollWait))
	_, b, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("WebSocket with the sid of an upgraded session: read %q, %v; want a close frame", b, err)
	}
	if ce.Code != websocket.CloseNormalClosure {
		t.Errorf("close code %d, want %d", ce.Code, websocket.CloseNormalClosure)
	}
}

// sioRawNext reads the next WebSocket message as it comes, pings included.
func sioRawNext(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(pollWait))
	typ, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("no message: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("binary message %v, want text", b)
	}
	return string(b)
}

// sioConnectAnswer parses a CONNECT answer to "/" (40{"sid":…,"pid":…}).
func sioConnectAnswer(t *testing.T, pkt string) (sid, pid string) {
	t.Helper()
	var v struct{ SID, PID string }
	if !strings.HasPrefix(pkt, "40{") || json.Unmarshal([]byte(pkt[2:]), &v) != nil || v.SID == "" {
		t.Fatalf("CONNECT answer %q, want 40{\"sid\":…}", pkt)
	}
	return v.SID, v.PID
}

// sioWSConnect connects "/" on an Engine.IO WebSocket as the official
// suite's initSocketIOConnection does ("40", its answer, and in
// conformance mode the "auth" event) and returns the answer's sid and pid.
func sioWSConnect(t *testing.T, ws *websocket.Conn, packet string, chat bool) (sid, pid string) {
	t.Helper()
	pollWSWrite(t, ws, websocket.TextMessage, packet)
	_, pkt := pollWSRead(t, ws)
	sid, pid = sioConnectAnswer(t, pkt)
	if !chat {
		if _, s := pollWSRead(t, ws); s != `42["auth",{}]` {
			t.Fatalf("auth packet %q, want 42[\"auth\",{}]", s)
		}
	}
	return sid, pid
}

// sioWSOpen opens an Engine.IO session on a WebSocket and reads its open
// packet.
func sioWSOpen(t *testing.T, g *gateway, path string) *websocket.Conn {
	t.Helper()
	ws, status := pollWSDial(t, g.addr, path, "")
	if status != 101 {
		t.Fatalf("WebSocket handshake: %d", status)
	}
	if s := sioRawNext(t, ws); !strings.HasPrefix(s, "0{") {
		t.Fatalf("first packet %q, want the open packet", s)
	}
	return ws
}

// TestSioForcefullyClosesTheSession is "close › HTTP long-polling ›
// forcefully closes the session" (engine.io-protocol; "should forcefully
// close the session" in socket.io-protocol): the client sends a GET and a
// POST of a close packet at once. The GET is answered 200 with a noop
// ("6"), not a close packet, and the sid is forgotten (400). The two
// requests come on two connections, so the gateway may handle them in
// either order: "as the suite" repeats the case, and the other subtests
// fix each order.
func TestSioForcefullyClosesTheSession(t *testing.T) {
	for _, tg := range sioOfficialTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			// closeAndCheck POSTs "1" and checks the GET's answer and
			// that the sid is gone.
			closeAndCheck := func(t *testing.T, p *pollClient, get <-chan pollResult) {
				t.Helper()
				if r := p.post.do("POST", p.target(), nil, "1"); r.status != 200 || r.body != "ok" {
					t.Fatalf("POST 1: %d %q, want 200 ok", r.status, r.body)
				}
				if r := pollAwait(t, get, "GET"); r.status != 200 || r.body != "6" {
					t.Fatalf("GET: %d %q, want 200 \"6\"", r.status, r.body)
				}
				pollExpectUnknownSID(t, pollDial(t, tg.g.addr).do("GET", p.target(), nil, ""))
			}
			t.Run("as the suite", func(t *testing.T) {
				for i := 0; i < 20; i++ {
					p := pollOpen(t, tg.g.addr, tg.path)
					closeAndCheck(t, p, pollAsyncGET(p.get, p.target(), nil))
				}
			})
			t.Run("GET held before the close", func(t *testing.T) {
				p := pollOpen(t, tg.g.addr, tg.path)
				closeAndCheck(t, p, sioParkGET(t, p))
			})
			t.Run("GET handled after the close", func(t *testing.T) {
				p := pollOpen(t, tg.g.addr, tg.path)
				if r := p.post.do("POST", p.target(), nil, "1"); r.status != 200 || r.body != "ok" {
					t.Fatalf("POST 1: %d %q, want 200 ok", r.status, r.body)
				}
				if r := p.get.do("GET", p.target(), nil, ""); r.status != 200 || r.body != "6" {
					t.Fatalf("GET: %d %q, want 200 \"6\"", r.status, r.body)
				}
				pollExpectUnknownSID(t, pollDial(t, tg.g.addr).do("GET", p.target(), nil, ""))
				pollExpectUnknownSID(t, pollDial(t, tg.g.addr).do("POST", p.target(), nil, "40"))
			})
		})
	}
}

// TestSioIgnoresWebSocketWithSameSidAfterUpgrade is "upgrade › ignores
// WebSocket connection with same sid after upgrade" (engine.io-protocol;
// "should ignore …" in socket.io-protocol): after "2probe" and "5" on a
// first WebSocket, a second one for the sid is opened and closed, and the
// session goes on over the first.
func TestSioIgnoresWebSocketWithSameSidAfterUpgrade(t *testing.T) {
	for _, tg := range sioOfficialTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			p := pollOpen(t, tg.g.addr, tg.path)
			ws, status := pollWSDial(t, tg.g.addr, tg.path, p.sid)
			if status != 101 {
				t.Fatalf("upgrade WebSocket: %d", status)
			}
			pollWSWrite(t, ws, websocket.TextMessage, "2probe")
			pollWSWrite(t, ws, websocket.TextMessage, "5")

			sioExpectHandshakeThenClose(t, tg.g.addr, tg.path, p.sid)

			if _, s := pollWSRead(t, ws); s != "3probe" {
				t.Fatalf("probe answered with %q, want 3probe", s)
			}
			switch {
			case tg.path == "/engine.io/":
				pollWSWrite(t, ws, websocket.TextMessage, "4hello")
				if _, s := pollWSRead(t, ws); s != "4hello" {
					t.Fatalf("echo %q, want 4hello", s)
				}
			case tg.chat:
				sioWSConnect(t, ws, "40", true)
				pollWSWrite(t, ws, websocket.TextMessage, `421["ping"]`)
				if _, s := pollWSRead(t, ws); s != `431[{"ok":true}]` {
					t.Fatalf("ack %q, want 431[{\"ok\":true}]", s)
				}
			default:
				sioWSConnect(t, ws, "40", false)
				pollWSWrite(t, ws, websocket.TextMessage, `42["message","hello"]`)
				if _, s := pollWSRead(t, ws); s != `42["message-back","hello"]` {
					t.Fatalf("echo %q, want 42[\"message-back\",\"hello\"]", s)
				}
			}
		})
	}
}

// TestSioIgnoresWebSocketWithSameSidWhileProbing: as the reference
// server, a second WebSocket for a session that a first one is probing is
// opened and closed too; the first one completes the upgrade.
func TestSioIgnoresWebSocketWithSameSidWhileProbing(t *testing.T) {
	g := pollGateway(t)
	p := pollOpen(t, g.addr, "/socket.io/")
	ws, status := pollWSDial(t, g.addr, "/socket.io/", p.sid)
	if status != 101 {
		t.Fatalf("upgrade WebSocket: %d", status)
	}
	pollWSWrite(t, ws, websocket.TextMessage, "2probe")
	if _, s := pollWSRead(t, ws); s != "3probe" {
		t.Fatalf("probe answered with %q, want 3probe", s)
	}
	sioExpectHandshakeThenClose(t, g.addr, "/socket.io/", p.sid)
	pollWSWrite(t, ws, websocket.TextMessage, "5")
	sioWSConnect(t, ws, "40", true)
}

// TestSioDisconnectFromTheMainNamespace is "disconnect › should disconnect
// from the main namespace" (socket.io-protocol): after "41" the Engine.IO
// connection stays open, and the next frame the client sees is the
// server's ping. A CONNECT on it afterwards is served.
func TestSioDisconnectFromTheMainNamespace(t *testing.T) {
	for _, tg := range []struct {
		name string
		args []string
		chat bool
	}{
		{"conformance", []string{"-sio-conformance"}, false},
		{"chat", sioChatArgs, true},
	} {
		t.Run(tg.name, func(t *testing.T) {
			g := pollGateway(t, tg.args...)
			ws := sioWSOpen(t, g, "/socket.io/")
			first, _ := sioWSConnect(t, ws, "40", tg.chat)
			pollWSWrite(t, ws, websocket.TextMessage, "41")
			if s := sioRawNext(t, ws); s != "2" {
				t.Fatalf("after 41: %q, want the ping 2", s)
			}
			pollWSWrite(t, ws, websocket.TextMessage, "3")
			if again, _ := sioWSConnect(t, ws, "40", tg.chat); again == first {
				t.Errorf("a CONNECT after 41 got the old sid %s", first)
			}
		})
	}
}

// TestSioRecoveryAfterEngineIOClose: connection state recovery tells a
// client's Engine.IO close ("1": socket.io's "transport close") from
// leaving the namespace ("41"). After the first the client's pid resumes
// its session (its old sid); after the second it does not.
func TestSioRecoveryAfterEngineIOClose(t *testing.T) {
	g := pollGateway(t, sioChatArgs...)

	// resume CONNECTs with pid on a new session and returns the sid it
	// gets.
	resume := func(t *testing.T, pid string) string {
		t.Helper()
		if pid == "" {
			t.Fatal("CONNECT answer without a pid: is recovery on?")
		}
		ws := sioWSOpen(t, g, "/socket.io/")
		got, _ := sioWSConnect(t, ws, `40{"pid":"`+pid+`"}`, true)
		return got
	}
	// expectRecovered resumes until the old sid comes back: a WebSocket's
	// session ends once its connection has, after the client saw the
	// close frame, and a CONNECT before that finds nothing to recover.
	expectRecovered := func(t *testing.T, sid, pid string) {
		t.Helper()
		deadline := time.Now().Add(pollWait)
		for resume(t, pid) != sid {
			if time.Now().After(deadline) {
				t.Fatalf("session %s not recovered within %v", sid, pollWait)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// pollConnect connects "/" over polling and returns sid and pid.
	pollConnect := func(t *testing.T, p *pollClient) (sid, pid string) {
		t.Helper()
		p.send("40")
		return sioConnectAnswer(t, p.take("CONNECT answer", func(s string) bool { return strings.HasPrefix(s, "40") }))
	}

	t.Run("polling close with a held GET", func(t *testing.T) {
		p := pollOpen(t, g.addr, "/socket.io/")
		p.pong = true
		sid, pid := pollConnect(t, p)
		get := sioParkGET(t, p)
		p.send("1")
		if r := pollAwait(t, get, "held GET"); r.status != 200 || r.body != "6" {
			t.Fatalf("held GET: %d %q, want 200 \"6\"", r.status, r.body)
		}
		// The session ended before the POST's "ok": no waiting.
		if got := resume(t, pid); got != sid {
			t.Errorf("CONNECT with the pid got sid %s, want the recovered %s", got, sid)
		}
	})
	t.Run("websocket close", func(t *testing.T) {
		ws := sioWSOpen(t, g, "/socket.io/")
		sid, pid := sioWSConnect(t, ws, "40", true)
		pollWSWrite(t, ws, websocket.TextMessage, "1")
		sioExpectWSEnd(t, ws)
		expectRecovered(t, sid, pid)
	})
	t.Run("upgraded websocket close", func(t *testing.T) {
		p := pollOpen(t, g.addr, "/socket.io/")
		p.pong = true
		sid, pid := pollConnect(t, p)
		ws, status := pollWSDial(t, g.addr, "/socket.io/", p.sid)
		if status != 101 {
			t.Fatalf("upgrade WebSocket: %d", status)
		}
		pollUpgrade(t, ws)
		pollWSWrite(t, ws, websocket.TextMessage, `421["ping"]`)
		if _, s := pollWSRead(t, ws); s != `431[{"ok":true}]` {
			t.Fatalf("ack %q", s)
		}
		pollWSWrite(t, ws, websocket.TextMessage, "1")
		sioExpectWSEnd(t, ws)
		expectRecovered(t, sid, pid)
	})
	t.Run("41 is a deliberate leave", func(t *testing.T) {
		ws := sioWSOpen(t, g, "/socket.io/")
		sid, pid := sioWSConnect(t, ws, "40", true)
		pollWSWrite(t, ws, websocket.TextMessage, "41")
		pollWSWrite(t, ws, websocket.TextMessage, "1")
		sioExpectWSEnd(t, ws)
		// The chat session ended at "41", with its verdict: no waiting.
		if got := resume(t, pid); got == sid {
			t.Errorf("a session the client left with 41 was recovered (sid %s)", sid)
		}
	})
}

// sioExpectWSEnd reads ws, answering pings, until the gateway ends it.
func sioExpectWSEnd(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	deadline := time.Now().Add(pollWait)
	_ = ws.SetReadDeadline(deadline)
	for {
		typ, b, err := ws.ReadMessage()
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("WebSocket still open %v after the close packet", pollWait)
			}
			return
		}
		if typ != websocket.TextMessage || string(b) != "2" {
			t.Fatalf("got %q after the close packet", b)
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
	}
}
