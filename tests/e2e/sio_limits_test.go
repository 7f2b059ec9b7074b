package e2e

// Engine.IO sessions under the gateway's limits and checks, whatever
// transport carries them (docs/security.md, "Socket.IO sessions"):
//
//   - a long-polling session is admitted as a session of its own: it holds
//     a slot of -max-connections-per-ip and of -max-connections however
//     many sessions share one keep-alive TCP connection, and one connection
//     may have at most -max-sessions-per-connection sessions open (429);
//   - a session that never connects a namespace is reaped after
//     -sio-connect-timeout (10 s by default);
//   - the sid is a bearer secret: every request that names it (a poll, a
//     POST, the upgrade) passes the handshake's origin check (403) and,
//     with authentication on, its token rules (401), and no log line
//     carries it.
//
// The requests are written by hand on raw TCP connections (polling_test.go's
// pollConn), so each test decides which requests share a connection. Every
// wait is bounded. Loopback addresses are never counted against
// -max-connections-per-ip, so the per-address tests name their client
// through a trusted proxy's X-Forwarded-For.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	sioGoodOrigin = "https://good.example"
	sioEvilOrigin = "https://evil.example"
)

// sioOpen makes a polling handshake on c with extra header lines and
// returns the new session's sid; the response must be 200 with an open
// packet, and the connection must stay open.
func sioOpen(t *testing.T, c *pollConn, target string, header ...string) string {
	t.Helper()
	r := c.do("GET", target, header, "")
	if r.status != 200 || !strings.HasPrefix(r.body, "0{") || r.close {
		t.Fatalf("handshake: %d %q (close %v), want 200 and an open packet", r.status, r.body, r.close)
	}
	var open struct{ SID string }
	if err := json.Unmarshal([]byte(r.body[1:]), &open); err != nil || open.SID == "" {
		t.Fatalf("open packet %q: %v", r.body, err)
	}
	return open.SID
}

// sioRefused asserts a refusal: status, body, and the connection closed.
func sioRefused(t *testing.T, c *pollConn, r pollResp, status int, body string) {
	t.Helper()
	if r.status != status || (body != "" && r.body != body) {
		t.Fatalf("got %d %q, want %d %q", r.status, r.body, status, body)
	}
	c.expectEOF()
}

// sioTarget is the polling target of sid, with extra query parameters.
func sioTarget(sid, extra string) string {
	return pollHandshake("/socket.io/") + "&sid=" + url.QueryEscape(sid) + extra
}

// sioConnect connects namespace "/" of sid (auth payload optional) over
// fresh connections and returns the socket id.
func sioConnect(t *testing.T, addr, sid, authJSON string, header ...string) string {
	t.Helper()
	c := pollDial(t, addr)
	if r := c.do("POST", sioTarget(sid, ""), header, "40"+authJSON); r.status != 200 || r.body != "ok" {
		t.Fatalf("CONNECT: %d %q, want 200 ok", r.status, r.body)
	}
	r := c.do("GET", sioTarget(sid, ""), header, "")
	if r.status != 200 || !strings.HasPrefix(r.body, `40{"sid":"`) {
		t.Fatalf("CONNECT answer: %d %q, want 40{\"sid\":…}", r.status, r.body)
	}
	var v struct{ SID string }
	if err := json.Unmarshal([]byte(r.body[2:]), &v); err != nil || v.SID == "" {
		t.Fatalf("CONNECT answer %q: %v", r.body, err)
	}
	return v.SID
}

// sioPing sends a chat ping event for sid over c and expects its ack,
// proving the session alive and served.
func sioPing(t *testing.T, c *pollConn, sid string, id int, header ...string) {
	t.Helper()
	if r := c.do("POST", sioTarget(sid, ""), header, fmt.Sprintf(`42%d["ping"]`, id)); r.status != 200 || r.body != "ok" {
		t.Fatalf("POST ping: %d %q, want 200 ok", r.status, r.body)
	}
	want := fmt.Sprintf(`43%d[{"ok":true}]`, id)
	if r := c.do("GET", sioTarget(sid, ""), header, ""); r.status != 200 || r.body != want {
		t.Fatalf("GET ping ack: %d %q, want 200 %q", r.status, r.body, want)
	}
}

// sioClose ends sid with an Engine.IO close packet.
func sioClose(t *testing.T, addr, sid string) {
	t.Helper()
	if r := pollDial(t, addr).do("POST", sioTarget(sid, ""), nil, "1"); r.status != 200 {
		t.Fatalf("POST close: %d %q", r.status, r.body)
	}
}

// sioLongGET sends a GET on c and waits up to d for its answer (a held GET
// may take longer than pollWait).
func sioLongGET(t *testing.T, c *pollConn, target string, d time.Duration) pollResp {
	t.Helper()
	req := "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n"
	_ = c.nc.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c.nc, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("GET %s: no answer within %v: %v", target, d, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return pollResp{status: resp.StatusCode, header: resp.Header, body: string(b), close: resp.Close}
}

// sioWaitConnections waits until the gateway has n open connections
// (the admin listener's gauge, which counts none of its own).
func sioWaitConnections(t *testing.T, g *gateway, n int) {
	t.Helper()
	deadline := time.Now().Add(pollWait)
	for {
		got := hdMetric(t, g, "chatgate_connections")
		if got == float64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("chatgate_connections = %v, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sioUpgradeDial opens the WebSocket of an upgrade for sid with extra
// query parameters and headers; it returns the HTTP status of a refusal.
func sioUpgradeDial(t *testing.T, addr, sid, extra string, hdr http.Header) (*websocket.Conn, int) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: pollWait}
	u := "ws://" + addr + "/socket.io/?EIO=4&transport=websocket&sid=" + url.QueryEscape(sid) + extra
	ws, resp, err := d.Dial(u, hdr)
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

// TestSIOLimitsSessionsPerConnection: one keep-alive connection may have
// at most -max-sessions-per-connection sessions open (default 1); the next
// handshake on it gets 429 and the connection closes, while the sessions
// it opened go on. A session that ends gives its connection the slot back.
// A trusted proxy's connections, which carry many clients, are not bounded.
func TestSIOLimitsSessionsPerConnection(t *testing.T) {
	const refusal = "too many sessions on this connection\n"
	t.Run("default 1", func(t *testing.T) {
		g := pollGateway(t)
		c := pollDial(t, g.addr)
		first := sioOpen(t, c, pollHandshake("/socket.io/"))
		sioRefused(t, c, c.do("GET", pollHandshake("/socket.io/"), nil, ""), 429, refusal)
		// The session it opened is unharmed, and served elsewhere.
		sioConnect(t, g.addr, first, "")
		sioPing(t, pollDial(t, g.addr), first, 1)

		// Live sessions count, not handshakes: once its session has
		// ended, a connection may open another.
		d := pollDial(t, g.addr)
		s := sioOpen(t, d, pollHandshake("/socket.io/"))
		sioClose(t, g.addr, s)
		// A POST: a GET would get the one noop of a sid its client
		// has just closed (engineio closeLinger).
		pollExpectUnknownSID(t, pollDial(t, g.addr).do("POST", sioTarget(s, ""), nil, "6"))
		sioOpen(t, d, pollHandshake("/socket.io/"))
		sioRefused(t, d, d.do("GET", pollHandshake("/socket.io/"), nil, ""), 429, refusal)
	})
	t.Run("flag", func(t *testing.T) {
		g := pollGateway(t, "-max-sessions-per-connection", "3")
		c := pollDial(t, g.addr)
		for i := 0; i < 3; i++ {
			sioOpen(t, c, pollHandshake("/socket.io/"))
		}
		sioRefused(t, c, c.do("GET", pollHandshake("/socket.io/"), nil, ""), 429, refusal)
	})
	t.Run("unlimited", func(t *testing.T) {
		g := pollGateway(t, "-max-sessions-per-connection", "-1")
		c := pollDial(t, g.addr)
		for i := 0; i < 20; i++ {
			sioOpen(t, c, pollHandshake("/socket.io/"))
		}
	})
	t.Run("trusted proxy not bounded", func(t *testing.T) {
		g := pollGateway(t, "-trusted-proxies", "127.0.0.1/32")
		c := pollDial(t, g.addr)
		for i := 0; i < 5; i++ {
			sioOpen(t, c, pollHandshake("/socket.io/"), fmt.Sprintf("X-Forwarded-For: 203.0.113.%d", 10+i))
		}
	})
}

// TestSIOLimitsSessionsCountAgainstLimits: long-polling sessions hold a
// slot of -max-connections and of -max-connections-per-ip each, whatever
// connection they came on, and give it back when they end.
func TestSIOLimitsSessionsCountAgainstLimits(t *testing.T) {
	t.Run("max-connections", func(t *testing.T) {
		g := pollGateway(t, "-max-connections", "4", "-max-sessions-per-connection", "-1")
		// No other connection holds a slot: the harness's /healthz
		// probe may still be idle in the client's pool.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		sioWaitConnections(t, g, 0)
		// One keep-alive connection (a slot) opens sessions (a slot each).
		c := pollDial(t, g.addr)
		var sids []string
		for i := 0; i < 3; i++ {
			sids = append(sids, sioOpen(t, c, pollHandshake("/socket.io/")))
		}
		sioRefused(t, c, c.do("GET", pollHandshake("/socket.io/"), nil, ""), 503, "too many connections\n")
		// With c gone, a new connection gets in and ends one session,
		// whose slot a new session then takes; the one after is refused.
		sioWaitConnections(t, g, 0)
		d := pollDial(t, g.addr)
		if r := d.do("POST", sioTarget(sids[0], ""), nil, "1"); r.status != 200 {
			t.Fatalf("POST close: %d %q", r.status, r.body)
		}
		sioOpen(t, d, pollHandshake("/socket.io/"))
		sioRefused(t, d, d.do("GET", pollHandshake("/socket.io/"), nil, ""), 503, "too many connections\n")
		sioWaitConnections(t, g, 0)
		e := pollDial(t, g.addr)
		// A POST: a GET would get the one noop of a sid its client
		// has just closed (engineio closeLinger).
		pollExpectUnknownSID(t, e.do("POST", sioTarget(sids[0], ""), nil, "6"))
		// The other sessions are unharmed (served over one connection:
		// every other slot is taken).
		sioWaitConnections(t, g, 0)
		e = pollDial(t, g.addr)
		for _, sid := range sids[1:] {
			if r := e.do("POST", sioTarget(sid, ""), nil, "40"); r.status != 200 {
				t.Fatalf("CONNECT: %d %q", r.status, r.body)
			}
			if r := e.do("GET", sioTarget(sid, ""), nil, ""); !strings.HasPrefix(r.body, `40{"sid":"`) {
				t.Fatalf("CONNECT answer: %d %q", r.status, r.body)
			}
		}
	})
	t.Run("max-connections-per-ip", func(t *testing.T) {
		// Behind a trusted proxy (one keep-alive connection carrying
		// every request, as nginx's upstream keepalive does), each
		// session counts against its client's address.
		g := pollGateway(t, "-max-connections-per-ip", "3", "-trusted-proxies", "127.0.0.1/32")
		xff := "X-Forwarded-For: 203.0.113.9"
		c := pollDial(t, g.addr)
		var sids []string
		for i := 0; i < 3; i++ {
			sids = append(sids, sioOpen(t, c, pollHandshake("/socket.io/"), xff))
		}
		sioRefused(t, c, c.do("GET", pollHandshake("/socket.io/"), []string{xff}, ""), 429, "too many connections from this address\n")
		// The address's other connections count against the same limit.
		if st, _ := hdGet(t, g, hdPollingHandshake, http.Header{"X-Forwarded-For": {"203.0.113.9"}}); st != 429 {
			t.Fatalf("another connection's handshake for the address: %d, want 429", st)
		}
		hdRefused(t, g, "/ws", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, 429)
		// Another address is not affected, and an ended session frees
		// its slot.
		sioOpen(t, pollDial(t, g.addr), pollHandshake("/socket.io/"), "X-Forwarded-For: 203.0.113.10")
		sioClose(t, g.addr, sids[0])
		sioOpen(t, pollDial(t, g.addr), pollHandshake("/socket.io/"), xff)
		r := pollDial(t, g.addr).do("GET", pollHandshake("/socket.io/"), []string{xff}, "")
		if r.status != 429 {
			t.Fatalf("handshake over the limit again: %d %q, want 429", r.status, r.body)
		}
	})
}

// TestSIOLimitsConnectTimeout: a session that never connects a namespace
// is reaped after -sio-connect-timeout (default 10 s): its held GET gets
// the close packet, its sid is forgotten and its slots come back.
func TestSIOLimitsConnectTimeout(t *testing.T) {
	t.Run("default 10s", func(t *testing.T) {
		g := pollGateway(t)
		sid := sioOpen(t, pollDial(t, g.addr), pollHandshake("/socket.io/"))
		opened := time.Now()
		// Nothing comes before the reap: the first ping is due at 25 s.
		r := sioLongGET(t, pollDial(t, g.addr), sioTarget(sid, ""), 14*time.Second)
		if r.status != 200 || r.body != "1" {
			t.Fatalf("held GET of a session that never connects: %d %q, want 200 \"1\"", r.status, r.body)
		}
		if d := time.Since(opened); d < 9*time.Second || d > 12*time.Second {
			t.Fatalf("reaped %v after the handshake, want about 10s", d)
		}
		pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", sioTarget(sid, ""), nil, ""))
	})
	t.Run("flag", func(t *testing.T) {
		g := pollGateway(t, "-sio-connect-timeout", "400ms")
		c := pollDial(t, g.addr)
		sid := sioOpen(t, c, pollHandshake("/socket.io/"))
		opened := time.Now()
		r := sioLongGET(t, pollDial(t, g.addr), sioTarget(sid, ""), pollWait)
		if r.status != 200 || r.body != "1" {
			t.Fatalf("held GET of a session that never connects: %d %q, want 200 \"1\"", r.status, r.body)
		}
		if d := time.Since(opened); d < 300*time.Millisecond || d > 400*time.Millisecond+time.Second {
			t.Fatalf("reaped %v after the handshake, want about 400ms", d)
		}
		pollExpectUnknownSID(t, pollDial(t, g.addr).do("GET", sioTarget(sid, ""), nil, ""))
		// Its connection's slot came back with it.
		sioOpen(t, c, pollHandshake("/socket.io/"))
	})
}

// TestSIOLimitsOriginOnEveryRequest: with -allowed-origins, a request that
// names a sid — poll, POST or upgrade — from another origin gets 403 and
// changes nothing, known sid or not; the allowed origin and requests
// without Origin (non-browser clients) go on.
func TestSIOLimitsOriginOnEveryRequest(t *testing.T) {
	g := pollGateway(t, "-allowed-origins", sioGoodOrigin, "-sio-cors-origins", sioGoodOrigin)
	good, evil := "Origin: "+sioGoodOrigin, "Origin: "+sioEvilOrigin
	sid := sioOpen(t, pollDial(t, g.addr), pollHandshake("/socket.io/"), good)
	const refusal = "origin not allowed\n"

	for _, tt := range []struct {
		name, method, body, origin string
	}{
		{"GET", "GET", "", evil},
		{"POST CONNECT", "POST", "40", evil},
		{"POST event", "POST", `42["ping"]`, evil},
		{"POST close", "POST", "1", evil},
		{"GET null origin", "GET", "", "Origin: null"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := pollDial(t, g.addr)
			r := c.do(tt.method, sioTarget(sid, ""), []string{tt.origin}, tt.body)
			if r.header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("refusal carries CORS headers for %s", tt.origin)
			}
			sioRefused(t, c, r, 403, refusal)
		})
	}
	t.Run("unknown sid", func(t *testing.T) {
		c := pollDial(t, g.addr)
		sioRefused(t, c, c.do("GET", sioTarget("nope", ""), []string{evil}, ""), 403, refusal)
	})
	t.Run("upgrade", func(t *testing.T) {
		if _, st := sioUpgradeDial(t, g.addr, sid, "", http.Header{"Origin": {sioEvilOrigin}}); st != 403 {
			t.Fatalf("upgrade from another origin: %d, want 403", st)
		}
	})

	// None of the refused requests reached the session: it is not
	// connected (the refused CONNECT), not closed (the refused close
	// packet), and serves the allowed origin — with CORS — and clients
	// without Origin.
	c := pollDial(t, g.addr)
	if r := c.do("POST", sioTarget(sid, ""), []string{good}, "40"); r.status != 200 || r.body != "ok" ||
		r.header.Get("Access-Control-Allow-Origin") != sioGoodOrigin {
		t.Fatalf("CONNECT from the allowed origin: %d %q %v", r.status, r.body, r.header)
	}
	if r := c.do("GET", sioTarget(sid, ""), []string{good}, ""); r.status != 200 || !strings.HasPrefix(r.body, `40{"sid":"`) {
		t.Fatalf("first packet after the refusals: %d %q, want the CONNECT answer", r.status, r.body)
	}
	sioPing(t, c, sid, 1)
	ws, st := sioUpgradeDial(t, g.addr, sid, "", http.Header{"Origin": {sioGoodOrigin}})
	if st != 101 {
		t.Fatalf("upgrade from the allowed origin: %d, want 101", st)
	}
	pollUpgrade(t, ws)
	pollWSWrite(t, ws, websocket.TextMessage, `422["ping"]`)
	if _, s := pollWSRead(t, ws); s != `432[{"ok":true}]` {
		t.Fatalf("after the upgrade: %q", s)
	}
}

// TestSIOLimitsTokenOnEveryRequest: with authentication on, a token on a
// later request must be the handshake's, or verify and name the session's
// user (401 otherwise); under -auth-required a session admitted with a
// token at its handshake needs one on every later request, the upgrade
// included. A refused request changes nothing in the session.
func TestSIOLimitsTokenOnEveryRequest(t *testing.T) {
	alice := hdHS256(t, hdClaims("alice"))
	alice2 := hdHS256(t, hdWith(hdClaims("alice"), "jti", "second")) // another token of alice
	bob := hdHS256(t, hdClaims("bob"))
	expired := hdHS256(t, hdWith(hdClaims("alice"), "exp", time.Now().Add(-time.Hour).Unix(), "iat", time.Now().Add(-2*time.Hour).Unix()))
	bearer := func(tok string) string { return "Authorization: Bearer " + tok }
	query := func(tok string) string { return "&token=" + url.QueryEscape(tok) }

	expect401 := func(t *testing.T, addr, method, target string, header []string, body string) {
		t.Helper()
		c := pollDial(t, addr)
		r := c.do(method, target, header, body)
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without a Bearer challenge: %v", r.header)
		}
		sioRefused(t, c, r, 401, "")
	}

	t.Run("optional", func(t *testing.T) {
		g := pollGateway(t, "-jwt-secret", hdSecret)
		// A session admitted with alice's token in the query, as
		// socket.io-client's query option sends it on every request.
		sid := sioOpen(t, pollDial(t, g.addr), pollHandshake("/socket.io/")+query(alice))
		for _, tt := range []struct {
			name, method, extra, body string
			header                    []string
		}{
			{"GET with bob's token", "GET", query(bob), "", nil},
			{"POST with bob's token", "POST", "", "40", []string{bearer(bob)}},
			{"GET with a forged token", "GET", query(alice + "x"), "", nil},
			{"GET with an expired token", "GET", "", "", []string{bearer(expired)}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				expect401(t, g.addr, tt.method, sioTarget(sid, tt.extra), tt.header, tt.body)
			})
		}
		t.Run("upgrade with bob's token", func(t *testing.T) {
			if _, st := sioUpgradeDial(t, g.addr, sid, query(bob), nil); st != 401 {
				t.Fatalf("upgrade with another user's token: %d, want 401", st)
			}
			if _, st := sioUpgradeDial(t, g.addr, sid, "", hdBearer(bob)); st != 401 {
				t.Fatalf("upgrade with another user's bearer token: %d, want 401", st)
			}
		})
		// The handshake's token, another of alice's, or none: served.
		c := pollDial(t, g.addr)
		if r := c.do("POST", sioTarget(sid, query(alice)), nil, "40"); r.status != 200 {
			t.Fatalf("CONNECT with the handshake's token: %d %q", r.status, r.body)
		}
		if r := c.do("GET", sioTarget(sid, ""), []string{bearer(alice2)}, ""); r.status != 200 || !strings.HasPrefix(r.body, `40{"sid":"`) {
			t.Fatalf("GET with another token of alice: %d %q, want the CONNECT answer", r.status, r.body)
		}
		sioPing(t, c, sid, 1)
		ws, st := sioUpgradeDial(t, g.addr, sid, query(alice), nil)
		if st != 101 {
			t.Fatalf("upgrade with alice's token: %d, want 101", st)
		}
		pollUpgrade(t, ws)
		pollWSWrite(t, ws, websocket.TextMessage, `422["ping"]`)
		if _, s := pollWSRead(t, ws); s != `432[{"ok":true}]` {
			t.Fatalf("after the upgrade: %q", s)
		}

		// An anonymous session takes no token later: it has no user.
		anon := sioOpen(t, pollDial(t, g.addr), pollHandshake("/socket.io/"))
		expect401(t, g.addr, "GET", sioTarget(anon, query(alice)), nil, "")
		if _, st := sioUpgradeDial(t, g.addr, anon, query(alice), nil); st != 401 {
			t.Fatalf("upgrade of an anonymous session with a token: %d, want 401", st)
		}
		// A session whose token came with CONNECT: later tokens must
		// name that user.
		byConnect := sioOpen(t, pollDial(t, g.addr), pollHandshake("/socket.io/"))
		sioConnect(t, g.addr, byConnect, `{"token":"`+alice+`"}`)
		expect401(t, g.addr, "GET", sioTarget(byConnect, query(bob)), nil, "")
		sioPing(t, pollDial(t, g.addr), byConnect, 2, bearer(alice2))
		sioPing(t, pollDial(t, g.addr), byConnect, 3)
	})

	t.Run("required", func(t *testing.T) {
		g := pollGateway(t, "-jwt-secret", hdSecret, "-auth-required")
		sid := sioOpen(t, pollDial(t, g.addr), pollHandshake("/socket.io/"), bearer(alice))
		// Admitted with a token: its sid alone does not stand in for it.
		expect401(t, g.addr, "POST", sioTarget(sid, ""), nil, "40")
		expect401(t, g.addr, "GET", sioTarget(sid, ""), nil, "")
		if _, st := sioUpgradeDial(t, g.addr, sid, "", nil); st != 401 {
			t.Fatalf("upgrade without a token: %d, want 401", st)
		}
		if _, st := sioUpgradeDial(t, g.addr, sid, query(bob), nil); st != 401 {
			t.Fatalf("upgrade with bob's token: %d, want 401", st)
		}
		sioConnect(t, g.addr, sid, "", bearer(alice))
		sioPing(t, pollDial(t, g.addr), sid, 1, bearer(alice2))
		ws, st := sioUpgradeDial(t, g.addr, sid, query(alice), nil)
		if st != 101 {
			t.Fatalf("upgrade with alice's token: %d, want 101", st)
		}
		pollUpgrade(t, ws)
		pollWSWrite(t, ws, websocket.TextMessage, `422["ping"]`)
		if _, s := pollWSRead(t, ws); s != `432[{"ok":true}]` {
			t.Fatalf("after the upgrade: %q", s)
		}
		// Token in the CONNECT auth payload only (socket.io-client's auth
		// option): no later request carries it, and none needs to.
		byConnect := sioOpen(t, pollDial(t, g.addr), pollHandshake("/socket.io/"))
		sioConnect(t, g.addr, byConnect, `{"token":"`+alice+`"}`)
		sioPing(t, pollDial(t, g.addr), byConnect, 2)
	})
}

// TestSIOLimitsNoSidInLogs: the sid is a bearer secret, so no log line
// carries it, at debug level, whatever happens to the session: handshake,
// CONNECT, events, refusals (origin, token, unknown sid, limits), a bad
// packet, the upgrade and its socket's close, the connect timeout, the
// client's close.
func TestSIOLimitsNoSidInLogs(t *testing.T) {
	g := pollGateway(t, "-log-level", "debug", "-allowed-origins", sioGoodOrigin, "-jwt-secret", hdSecret,
		"-sio-connect-timeout", "300ms")
	alice := hdHS256(t, hdClaims("alice"))
	bob := hdHS256(t, hdClaims("bob"))
	var sids []string
	open := func() (*pollConn, string) {
		c := pollDial(t, g.addr)
		sid := sioOpen(t, c, pollHandshake("/socket.io/")+"&token="+alice)
		sids = append(sids, sid)
		return c, sid
	}

	// A chat session over polling, refused requests for it, then its
	// upgrade and the close of its WebSocket.
	c, chatSID := open()
	sioRefused(t, c, c.do("GET", pollHandshake("/socket.io/"), nil, ""), 429, "")
	sioConnect(t, g.addr, chatSID, "")
	sioPing(t, pollDial(t, g.addr), chatSID, 1)
	for _, h := range [][]string{{"Origin: " + sioEvilOrigin}, {"Authorization: Bearer " + bob}} {
		r := pollDial(t, g.addr).do("GET", sioTarget(chatSID, ""), h, "")
		if r.status != 403 && r.status != 401 {
			t.Fatalf("refused request: %d %q", r.status, r.body)
		}
	}
	if _, st := sioUpgradeDial(t, g.addr, chatSID, "&token="+url.QueryEscape(bob), nil); st != 401 {
		t.Fatalf("upgrade with bob's token: %d", st)
	}
	ws, st := sioUpgradeDial(t, g.addr, chatSID, "", nil)
	if st != 101 {
		t.Fatalf("upgrade: %d", st)
	}
	pollUpgrade(t, ws)
	pollWSWrite(t, ws, websocket.TextMessage, `422["ping"]`)
	if _, s := pollWSRead(t, ws); s != `432[{"ok":true}]` {
		t.Fatalf("after the upgrade: %q", s)
	}
	pollWSWrite(t, ws, websocket.TextMessage, "4garbage") // a bad packet: closes with 1008
	_ = ws.SetReadDeadline(time.Now().Add(pollWait))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}

	// A probe whose socket is closed before the switch, then a bad POST.
	_, probeSID := open()
	ws2, st := sioUpgradeDial(t, g.addr, probeSID, "", nil)
	if st != 101 {
		t.Fatalf("probe: %d", st)
	}
	pollWSWrite(t, ws2, websocket.TextMessage, "2probe")
	if _, s := pollWSRead(t, ws2); s != "3probe" {
		t.Fatalf("probe answer %q", s)
	}
	ws2.Close()
	sioConnect(t, g.addr, probeSID, "")
	if r := pollDial(t, g.addr).do("POST", sioTarget(probeSID, ""), nil, "4x"); r.status != 400 {
		t.Fatalf("bad POST: %d %q", r.status, r.body)
	}

	// A session reaped by the connect timeout, and one closed by its
	// client.
	_, idleSID := open()
	if r := sioLongGET(t, pollDial(t, g.addr), sioTarget(idleSID, ""), pollWait); r.body != "1" {
		t.Fatalf("held GET of an idle session: %d %q", r.status, r.body)
	}
	_, closedSID := open()
	sioConnect(t, g.addr, closedSID, "")
	sioClose(t, g.addr, closedSID)
	// An upgrade attempt of an ended session (unknown sid).
	if _, st := sioUpgradeDial(t, g.addr, closedSID, "", nil); st != 400 {
		t.Fatalf("upgrade of an ended session: %d, want 400", st)
	}

	// Every session above has ended, each with its debug line (written
	// before the chat session closes, then copied from the gateway's
	// output asynchronously).
	pollWaitStat(t, g, "sessions", 0)
	deadline := time.Now().Add(pollWait)
	logs := g.logs.String()
	for strings.Count(logs, `msg="socket.io session closed"`) < len(sids) {
		if time.Now().After(deadline) {
			t.Fatalf("fewer session-closed debug lines than the %d sessions; is debug logging on?\n%s", len(sids), logs)
		}
		time.Sleep(10 * time.Millisecond)
		logs = g.logs.String()
	}
	for _, line := range strings.Split(logs, "\n") {
		for _, sid := range sids {
			if strings.Contains(line, sid) {
				t.Errorf("a log line carries the sid %s: %s", sid, line)
			}
		}
	}
}
