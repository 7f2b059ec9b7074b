package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// The hardening of docs/security.md, checked against the real binary:
// JWT authentication (HS256 and key pairs; header, query and Socket.IO
// CONNECT), the origin allowlist, connection limits in all and per
// address, per-connection rate limits, room and size limits, slowloris
// and half-open connections. Every refusal is asserted to the exact HTTP
// status, close code or error code, and each test checks that clients
// that did nothing wrong were not affected. Slow consumers are in
// slowconsumer_test.go; socket.io-client's auth option in
// tests/node/auth.test.mjs.

// hdSecret is the HS256 key of the tests: 40 bytes, above the 32-byte
// minimum.
const hdSecret = "chatgate-e2e-hardening-0123456789abcdefg"

// hdWait bounds every single wait of these tests.
const hdWait = 5 * time.Second

// hdClaims returns the claims of a token for sub, valid for an hour.
func hdClaims(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// hdWith returns a copy of c with the given claims set (a nil value
// deletes the claim).
func hdWith(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// hdSign signs claims with method and key, as a token issuer would.
func hdSign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// hdHS256 signs claims with hdSecret.
func hdHS256(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	return hdSign(t, jwt.SigningMethodHS256, []byte(hdSecret), claims)
}

func hdBearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// hdDial opens a WebSocket to target (a path with its query) on g.
func hdDial(g *gateway, target string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: hdWait}
	return d.Dial("ws://"+g.addr+target, hdr)
}

// hdOpen connects a native client to target, expects the upgrade and the
// welcome, and returns the client and its welcome message.
func hdOpen(t *testing.T, g *gateway, target string, hdr http.Header) (*client, map[string]any) {
	t.Helper()
	ws, resp, err := hdDial(g, target, hdr)
	if err != nil {
		detail := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			detail = fmt.Sprintf(" (HTTP %d %q, WWW-Authenticate %q)", resp.StatusCode, b, resp.Header.Get("WWW-Authenticate"))
		}
		t.Fatalf("dial %s: %v%s", target, err, detail)
	}
	resp.Body.Close()
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	w := c.read()
	if w["type"] != "welcome" {
		t.Fatalf("first message %v, want welcome", w)
	}
	c.id, _ = w["id"].(string)
	if c.id == "" {
		t.Fatalf("welcome without id: %v", w)
	}
	return c, w
}

// hdRefused expects the WebSocket handshake at target to be refused with
// status, and returns the response and its body.
func hdRefused(t *testing.T, g *gateway, target string, hdr http.Header, status int) (*http.Response, string) {
	t.Helper()
	ws, resp, err := hdDial(g, target, hdr)
	if err == nil {
		ws.Close()
		t.Fatalf("%s: upgraded, want HTTP %d", target, status)
	}
	if resp == nil {
		t.Fatalf("%s: no HTTP response (%v), want HTTP %d", target, err, status)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s: HTTP %d %q, want %d", target, resp.StatusCode, b, status)
	}
	return resp, string(b)
}

// hdGet sends one GET on a fresh connection (no keep-alive, so that no idle
// connection counts against a limit afterwards) and returns the status and
// body.
func hdGet(t *testing.T, g *gateway, target string, hdr http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+g.addr+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	hc := http.Client{Timeout: hdWait, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hdPollingHandshake is the Engine.IO long-polling handshake.
const hdPollingHandshake = "/socket.io/?EIO=4&transport=polling"

// hdSessions reads the number of chat sessions from /stats.
func hdSessions(t *testing.T, g *gateway) int {
	t.Helper()
	return g.statInt(t, "sessions")
}

// hdWaitSessions waits until /stats counts want sessions: a connection a
// client closed ends on the gateway a moment later.
func hdWaitSessions(t *testing.T, g *gateway, want int) {
	t.Helper()
	deadline := time.Now().Add(hdWait)
	for {
		n := hdSessions(t, g)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("sessions = %d, want %d", n, want)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hdWaitConnections waits until the gateway's chatgate_connections gauge
// (open TCP connections, read on the admin listener) is want.
func hdWaitConnections(t *testing.T, g *gateway, want int) {
	t.Helper()
	deadline := time.Now().Add(hdWait)
	for {
		n := int(hdMetric(t, g, "chatgate_connections"))
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("chatgate_connections = %d, want %d", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hdKeys returns the sorted keys of m, for exact shape checks.
func hdKeys(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// hdExpectAck sends v as a request and fails unless it is acknowledged.
func hdExpectAck(c *client, v map[string]any) map[string]any {
	c.t.Helper()
	r := c.request(v)
	if r["type"] != "ack" {
		c.t.Fatalf("%v: got %v, want an ack", v, r)
	}
	return r
}

// hdExpectError sends v as a request and fails unless the reply is the
// error code, with the request's id echoed. It returns the reply.
func hdExpectError(c *client, v map[string]any, code string) map[string]any {
	c.t.Helper()
	r := c.request(v)
	if r["type"] != "error" || r["code"] != code {
		c.t.Fatalf("%v: got %v, want error %q", v, r, code)
	}
	return r
}

// hdMetric reads one series of the admin listener's /metrics (0 if absent).
func hdMetric(t *testing.T, g *gateway, series string) float64 {
	t.Helper()
	return scrape(t, g)[series]
}

// hdExpectMetricDelta checks that series grew by exactly want since before.
func hdExpectMetricDelta(t *testing.T, g *gateway, series string, before, want float64) {
	t.Helper()
	if d := hdMetric(t, g, series) - before; d != want {
		t.Errorf("%s grew by %v, want %v", series, d, want)
	}
}

// hdCloseError reads from ws until the server's close frame and returns it.
// Messages before it are passed to each (which may be nil).
func hdCloseError(t *testing.T, ws *websocket.Conn, within time.Duration, each func([]byte)) *websocket.CloseError {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(within))
	for {
		_, b, err := ws.ReadMessage()
		if err == nil {
			if each != nil {
				each(b)
			}
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		t.Fatalf("connection ended without a close frame: %v", err)
		return nil
	}
}

// ---------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------

// TestAuthTokenPlacement: an HS256 token is accepted from the
// Authorization header (scheme case-insensitive) and from ?token=, the
// header winning over the query and the first token parameter counting;
// the welcome carries the token's sub as "user". Without a token the client
// is anonymous (authentication is optional without -auth-required).
func TestAuthTokenPlacement(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret)
	alice := hdHS256(t, hdClaims("alice"))
	bob := hdHS256(t, hdClaims("bob"))
	for _, tc := range []struct {
		name   string
		target string
		hdr    http.Header
		user   string // "" = anonymous
	}{
		{"authorization header", "/ws", hdBearer(alice), "alice"},
		{"scheme case-insensitive", "/ws", http.Header{"Authorization": {"bEaReR " + alice}}, "alice"},
		{"query", "/ws?token=" + alice, nil, "alice"},
		{"query percent-encoded", "/ws?x=1&token=" + url.QueryEscape(alice) + "&y=2", nil, "alice"},
		{"first token parameter counts", "/ws?token=" + bob + "&token=garbage", nil, "bob"},
		{"header wins over query", "/ws?token=" + bob, hdBearer(alice), "alice"},
		{"no token: anonymous", "/ws", nil, ""},
		{"other scheme is no token", "/ws", http.Header{"Authorization": {"Basic YWxpY2U6c2VjcmV0"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, w := hdOpen(t, g, tc.target, tc.hdr)
			if tc.user == "" {
				if got := hdKeys(w); got != "id,session,type" {
					t.Fatalf("anonymous welcome %v has keys %s, want id,session,type", w, got)
				}
			} else if w["user"] != tc.user || hdKeys(w) != "id,session,type,user" {
				t.Errorf("welcome %v, want user %q", w, tc.user)
			}
			hdExpectAck(c, map[string]any{"type": "join", "room": "lobby"})
		})
	}
	// The first parameter counts the other way round too: garbage first is
	// an invalid token, refused even though a valid one follows.
	t.Run("invalid first token parameter", func(t *testing.T) {
		resp, _ := hdRefused(t, g, "/ws?token=garbage&token="+alice, nil, 401)
		if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
			t.Fatalf("WWW-Authenticate %q", got)
		}
	})
	// When the header carries a token it is the one judged: a valid token
	// in the query does not rescue an invalid one in the header.
	t.Run("invalid header, valid query", func(t *testing.T) {
		hdRefused(t, g, "/ws?token="+alice, hdBearer("not.a.token"), 401)
	})
}

// TestAuthRefusedTokens: every kind of invalid token gets 401 before the
// upgrade, with the RFC 6750 challenge naming the fault, from the header
// and from the query alike, even though authentication is optional; no
// session is ever created for them. Tokens within the 30 s leeway pass.
func TestAuthRefusedTokens(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret)
	watcher, _ := hdOpen(t, g, "/ws", nil)
	hdExpectAck(watcher, map[string]any{"type": "join", "room": "lobby"})

	now := time.Now()
	valid := hdClaims("mallory")
	otherSecret := []byte("another-secret-of-forty-bytes-0123456789")
	validToken := hdHS256(t, valid)
	parts := strings.Split(validToken, ".")
	forgedClaims, _ := json.Marshal(hdWith(valid, "sub", "root"))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forgedClaims) + "." + parts[2]
	critHeader := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, valid)
		tok.Header["crit"] = []string{"exp"}
		s, err := tok.SignedString([]byte(hdSecret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	// A token padded past the 4 KiB limit with an otherwise valid signature.
	oversize := hdHS256(t, hdWith(valid, "pad", strings.Repeat("p", 4200)))

	for _, tc := range []struct {
		name, token, reason string
	}{
		{"expired beyond the leeway", hdHS256(t, hdWith(valid, "exp", now.Add(-time.Minute).Unix())), "token expired"},
		{"not valid before, in the future", hdHS256(t, hdWith(valid, "nbf", now.Add(2*time.Minute).Unix())), "token not valid yet"},
		{"issued in the future", hdHS256(t, hdWith(valid, "iat", now.Add(2*time.Minute).Unix())), "token not valid yet"},
		{"bad signature", hdSign(t, jwt.SigningMethodHS256, otherSecret, valid), "bad signature"},
		{"tampered claims", tampered, "bad signature"},
		{"HS512", hdSign(t, jwt.SigningMethodHS512, []byte(hdSecret), valid), "signing algorithm not accepted"},
		{"HS384", hdSign(t, jwt.SigningMethodHS384, []byte(hdSecret), valid), "signing algorithm not accepted"},
		{"alg none", hdSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid), "signing algorithm not accepted"},
		{"no exp", hdHS256(t, hdWith(valid, "exp", nil)), "token has no exp claim"},
		{"no sub", hdHS256(t, hdWith(valid, "sub", nil)), "token has no sub claim"},
		{"sub with a bidi override", hdHS256(t, hdWith(valid, "sub", "admin\u202e")), "invalid claims"},
		{"crit header", critHeader, "malformed token"},
		{"not a JWT", "not-a-jwt", "malformed token"},
		{"over 4 KiB", oversize, "malformed token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantChallenge := `Bearer realm="chatgate", error="invalid_token", error_description="` + tc.reason + `"`
			for _, via := range []struct {
				name   string
				target string
				hdr    http.Header
			}{
				{"header", "/ws", hdBearer(tc.token)},
				{"query", "/ws?token=" + url.QueryEscape(tc.token), nil},
			} {
				resp, body := hdRefused(t, g, via.target, via.hdr, 401)
				if got := resp.Header.Get("WWW-Authenticate"); got != wantChallenge {
					t.Errorf("%s: WWW-Authenticate %q, want %q", via.name, got, wantChallenge)
				}
				if want := "unauthorized: " + tc.reason + "\n"; body != want {
					t.Errorf("%s: body %q, want %q", via.name, body, want)
				}
				if resp.Header.Get("Upgrade") != "" {
					t.Errorf("%s: a refusal carries Upgrade %q", via.name, resp.Header.Get("Upgrade"))
				}
			}
		})
	}

	t.Run("within the 30 s leeway", func(t *testing.T) {
		for name, claims := range map[string]jwt.MapClaims{
			"expired 10 s ago":   hdWith(valid, "sub", "leeway", "exp", now.Add(-10*time.Second).Unix()),
			"nbf in 10 s":        hdWith(valid, "sub", "leeway", "nbf", now.Add(10*time.Second).Unix()),
			"issued in 10 s":     hdWith(valid, "sub", "leeway", "iat", now.Add(10*time.Second).Unix()),
			"nbf and exp sound":  hdWith(valid, "sub", "leeway", "nbf", now.Add(-time.Minute).Unix()),
			"rooms claim absent": hdWith(valid, "sub", "leeway", "rooms", nil),
		} {
			_, w := hdOpen(t, g, "/ws", hdBearer(hdHS256(t, claims)))
			if w["user"] != "leeway" {
				t.Errorf("%s: welcome %v, want user leeway", name, w)
			}
		}
	})

	// No refused client became a session or showed up in the room (the
	// leeway clients were closed at the end of their subtest).
	hdWaitSessions(t, g, 1)
	m := hdExpectAck(watcher, map[string]any{"type": "members", "room": "lobby"})
	if members, _ := m["members"].([]any); len(members) != 1 {
		t.Errorf("lobby members %v, want the watcher alone", m["members"])
	}
}

// TestAuthRefusalCountedOnce: each refused handshake adds exactly one to
// chatgate_handshakes_failed_total under its reason (docs/metrics.md; the
// security checklist alerts on these series).
func TestAuthRefusalCountedOnce(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret, "-auth-required",
		"-allowed-origins", "https://chat.example.com",
		"-max-connections-per-ip", "1", "-trusted-proxies", "127.0.0.1/32")
	good := hdHS256(t, hdClaims("alice"))
	const (
		unauthorized = `chatgate_handshakes_failed_total{reason="unauthorized"}`
		forbidden    = `chatgate_handshakes_failed_total{reason="forbidden"}`
		overloaded   = `chatgate_handshakes_failed_total{reason="overloaded"}`
	)
	t.Run("401", func(t *testing.T) {
		before := hdMetric(t, g, unauthorized)
		hdRefused(t, g, "/ws", nil, 401)
		hdExpectMetricDelta(t, g, unauthorized, before, 1)
	})
	t.Run("403", func(t *testing.T) {
		before := hdMetric(t, g, forbidden)
		hdRefused(t, g, "/ws", http.Header{"Origin": {"https://evil.example.com"}}, 403)
		hdExpectMetricDelta(t, g, forbidden, before, 1)
	})
	t.Run("429", func(t *testing.T) {
		hdr := hdBearer(good)
		hdr.Set("X-Forwarded-For", "203.0.113.50")
		hdOpen(t, g, "/ws", hdr)
		before := hdMetric(t, g, overloaded)
		hdRefused(t, g, "/ws", hdr, 429)
		hdExpectMetricDelta(t, g, overloaded, before, 1)
	})
	t.Run("401 on the polling handshake", func(t *testing.T) {
		before := hdMetric(t, g, unauthorized)
		if st, _ := hdGet(t, g, hdPollingHandshake+"&token=garbage", nil); st != 401 {
			t.Fatalf("status %d, want 401", st)
		}
		hdExpectMetricDelta(t, g, unauthorized, before, 1)
	})
}

// TestAuthRequired: with -auth-required a client without a token gets 401
// and the bare challenge; Socket.IO clients may bring the token with
// CONNECT instead, and a CONNECT without a valid one is refused with
// CONNECT_ERROR "unauthorized" and creates no session.
func TestAuthRequired(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret, "-auth-required")
	good := hdHS256(t, hdClaims("alice"))
	expired := hdHS256(t, hdWith(hdClaims("alice"), "exp", time.Now().Add(-time.Hour).Unix()))

	t.Run("no token", func(t *testing.T) {
		resp, body := hdRefused(t, g, "/ws", nil, 401)
		if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="chatgate"` {
			t.Errorf("WWW-Authenticate %q, want the bare challenge", got)
		}
		if body != "unauthorized: no token\n" {
			t.Errorf("body %q", body)
		}
	})
	t.Run("empty token parameter", func(t *testing.T) {
		hdRefused(t, g, "/ws?token=", nil, 401)
	})
	t.Run("basic auth is no token", func(t *testing.T) {
		hdRefused(t, g, "/ws", http.Header{"Authorization": {"Basic YWxpY2U6c2VjcmV0"}}, 401)
	})

	native, w := hdOpen(t, g, "/ws", hdBearer(good))
	if w["user"] != "alice" {
		t.Errorf("welcome %v, want user alice", w)
	}
	hdExpectAck(native, map[string]any{"type": "join", "room": "lobby"})

	t.Run("socket.io token in query checked before the handshake", func(t *testing.T) {
		resp, _ := hdRefused(t, g, "/socket.io/?EIO=4&transport=websocket&token="+expired, nil, 401)
		if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error_description="token expired"`) {
			t.Errorf("WWW-Authenticate %q", got)
		}
		if st, body := hdGet(t, g, hdPollingHandshake+"&token="+expired, nil); st != 401 {
			t.Errorf("polling handshake with an expired token: %d %q, want 401", st, body)
		}
		hdRefused(t, g, "/socket.io/?EIO=4&transport=websocket", hdBearer("garbage"), 401)
	})

	t.Run("socket.io CONNECT without or with a bad token", func(t *testing.T) {
		// The Engine.IO handshake itself is allowed: the token may come
		// with CONNECT.
		if st, body := hdGet(t, g, hdPollingHandshake, nil); st != 200 || !strings.HasPrefix(body, "0{") {
			t.Fatalf("polling handshake without a token: %d %q, want 200 and the open packet", st, body)
		}
		s := hdSIODial(t, g, "", nil)
		for _, tc := range []struct{ connect, reason string }{
			{"40", "no token"},
			{`40{}`, "no token"},
			{`40{"token":null}`, "no token"},
			{`40{"token":""}`, "no token"},
			{`40{"token":"` + expired + `"}`, "token expired"},
			{`40{"token":"x.y.z"}`, "malformed token"},
			{`40{"token":12345}`, "malformed token"},
		} {
			s.send(tc.connect)
			want := `44{"message":"unauthorized","data":{"reason":"` + tc.reason + `"}}`
			if got := s.next(); got != want {
				t.Errorf("%s: got %q, want %q", tc.connect, got, want)
			}
		}
		// Events of a socket that is not connected are dropped: it cannot
		// join or speak.
		s.send(`42["join","lobby"]`)
		s.send(`420["message",{"room":"lobby","data":"sneaky"}]`)
		if n := hdSessions(t, g); n != 1 {
			t.Errorf("sessions = %d after refused CONNECTs, want 1", n)
		}
		m := hdExpectAck(native, map[string]any{"type": "members", "room": "lobby"})
		if members, _ := m["members"].([]any); len(members) != 1 {
			t.Errorf("lobby members %v, want only the native client", m["members"])
		}
		// The same connection may then connect with a valid token, in
		// the Bearer form socket.io-client users sometimes pass.
		s.send(`40{"token":"Bearer ` + good + `"}`)
		if got := s.next(); !strings.HasPrefix(got, `40{"sid":"`) {
			t.Fatalf("CONNECT with a valid token: %q", got)
		}
		s.send(`421["join","lobby"]`)
		if got := s.next(); !strings.HasPrefix(got, `431[{"room":"lobby","count":2,"offset":`) {
			t.Fatalf("join ack %q", got)
		}
		p := native.readType("presence")
		if p["event"] != "join" || p["user"] != "alice" {
			t.Errorf("presence %v, want the join of user alice", p)
		}
		if n := hdSessions(t, g); n != 2 {
			t.Errorf("sessions = %d, want 2", n)
		}
	})

	t.Run("socket.io token at the handshake is the identity", func(t *testing.T) {
		s := hdSIODial(t, g, "&token="+hdHS256(t, hdClaims("carol")), nil)
		// A CONNECT auth payload after it is not checked again.
		s.send(`40{"token":"garbage"}`)
		if got := s.next(); !strings.HasPrefix(got, `40{"sid":"`) {
			t.Fatalf("CONNECT after a handshake token: %q", got)
		}
		s.send(`421["join","lobby"]`)
		s.next()
		p := native.readType("presence")
		for p["event"] != "join" { // the previous subtest's socket left
			p = native.readType("presence")
		}
		if p["user"] != "carol" {
			t.Errorf("presence %v, want user carol (the handshake's token)", p)
		}
	})
}

// hdSIO is a minimal Engine.IO v4 client over WebSocket for the auth
// checks: it reads packets in order and skips the server's pings.
type hdSIO struct {
	t  *testing.T
	ws *websocket.Conn
}

// hdSIODial opens /socket.io/ with the extra query and header and reads
// the open packet.
func hdSIODial(t *testing.T, g *gateway, query string, hdr http.Header) *hdSIO {
	t.Helper()
	ws, resp, err := hdDial(g, "/socket.io/?EIO=4&transport=websocket"+query, hdr)
	if err != nil {
		t.Fatalf("dial /socket.io/: %v", err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	s := &hdSIO{t: t, ws: ws}
	if open := s.next(); !strings.HasPrefix(open, "0{") {
		t.Fatalf("first packet %q, want the open packet", open)
	}
	return s
}

func (s *hdSIO) send(p string) {
	s.t.Helper()
	if err := s.ws.WriteMessage(websocket.TextMessage, []byte(p)); err != nil {
		s.t.Fatalf("write: %v", err)
	}
}

// next returns the next packet other than a ping.
func (s *hdSIO) next() string {
	s.t.Helper()
	_ = s.ws.SetReadDeadline(time.Now().Add(hdWait))
	for {
		_, b, err := s.ws.ReadMessage()
		if err != nil {
			s.t.Fatalf("read: %v", err)
		}
		if string(b) != "2" {
			return string(b)
		}
	}
}

// TestAuthUserInMessagesAndMembers: an authenticated connection's sub is
// shown as "user" in its messages (room and direct), in presence events
// and in member lists, whatever nickname it picks; an anonymous one has no
// "user" at all.
func TestAuthUserInMessagesAndMembers(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret)
	alice, _ := hdOpen(t, g, "/ws", hdBearer(hdHS256(t, hdClaims("alice"))))
	anon, _ := hdOpen(t, g, "/ws", nil)
	// Impersonation by nickname: alice calls herself "bob", anon calls
	// himself "alice"; only "user" tells them apart.
	hdExpectAck(alice, map[string]any{"type": "nick", "name": "bob"})
	hdExpectAck(anon, map[string]any{"type": "nick", "name": "alice"})
	hdExpectAck(anon, map[string]any{"type": "join", "room": "lobby"})
	hdExpectAck(alice, map[string]any{"type": "join", "room": "lobby"})

	p := anon.readType("presence")
	if p["event"] != "join" || p["id"] != alice.id || p["user"] != "alice" || p["nick"] != "bob" {
		t.Errorf("join presence %v, want id %s user alice nick bob", p, alice.id)
	}

	hdExpectAck(alice, map[string]any{"type": "send", "room": "lobby", "data": "hi"})
	m := anon.readType("message")
	if m["from"] != alice.id || m["user"] != "alice" || m["nick"] != "bob" || m["data"] != "hi" {
		t.Errorf("room message %v, want from %s user alice nick bob", m, alice.id)
	}
	if hdKeys(m) != "data,from,nick,offset,room,ts,type,user" {
		t.Errorf("room message keys %s", hdKeys(m))
	}
	hdExpectAck(anon, map[string]any{"type": "send", "room": "lobby", "data": "hello"})
	m = alice.readType("message")
	if _, has := m["user"]; has || m["from"] != anon.id {
		t.Errorf("anonymous message %v must carry no user", m)
	}

	hdExpectAck(alice, map[string]any{"type": "send", "to": anon.id, "data": "psst"})
	m = anon.readType("message")
	if m["user"] != "alice" || m["data"] != "psst" {
		t.Errorf("direct message %v, want user alice", m)
	}

	list := hdExpectAck(anon, map[string]any{"type": "members", "room": "lobby"})
	members, _ := list["members"].([]any)
	if len(members) != 2 {
		t.Fatalf("members %v", list["members"])
	}
	for _, x := range members {
		e, _ := x.(map[string]any)
		switch e["id"] {
		case alice.id:
			if e["user"] != "alice" || e["nick"] != "bob" || hdKeys(e) != "id,nick,user" {
				t.Errorf("alice's entry %v", e)
			}
		case anon.id:
			if hdKeys(e) != "id,nick" || e["nick"] != "alice" {
				t.Errorf("anonymous entry %v must have no user", e)
			}
		default:
			t.Errorf("unexpected member %v", e)
		}
	}

	alice.ws.Close()
	p = anon.readType("presence")
	if p["event"] != "leave" || p["user"] != "alice" {
		t.Errorf("leave presence %v, want user alice", p)
	}
}

// TestAuthRoomsClaim: the token's rooms claim restricts joins, exactly or
// by prefix; a join outside it gets "forbidden" with the id echoed, and
// the connection stays open.
func TestAuthRoomsClaim(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret)
	limited, _ := hdOpen(t, g, "/ws", hdBearer(hdHS256(t, hdWith(hdClaims("alice"), "rooms", []string{"lobby", "team-*"}))))
	for _, room := range []string{"lobby", "team-", "team-red", "team-red/ops"} {
		hdExpectAck(limited, map[string]any{"type": "join", "room": room})
	}
	for _, room := range []string{"random", "Lobby", "lobby2", "team", "Team-red", "xteam-red", "*"} {
		r := hdExpectError(limited, map[string]any{"type": "join", "room": room}, "forbidden")
		if r["message"] != "room not allowed by token" {
			t.Errorf("join %q: message %q", room, r["message"])
		}
	}
	// Still open, and still in the allowed rooms.
	r := hdExpectAck(limited, map[string]any{"type": "rooms"})
	b, _ := json.Marshal(r["rooms"])
	if want := `[{"count":1,"room":"lobby"},{"count":1,"room":"team-"},{"count":1,"room":"team-red"},{"count":1,"room":"team-red/ops"}]`; string(b) != want {
		t.Errorf("rooms %s, want %s (a forbidden join creates no room)", b, want)
	}

	none, _ := hdOpen(t, g, "/ws", hdBearer(hdHS256(t, hdWith(hdClaims("nobody"), "rooms", []string{}))))
	hdExpectError(none, map[string]any{"type": "join", "room": "lobby"}, "forbidden")
	hdExpectAck(none, map[string]any{"type": "ping"})

	star, _ := hdOpen(t, g, "/ws", hdBearer(hdHS256(t, hdWith(hdClaims("admin"), "rooms", []string{"*"}))))
	hdExpectAck(star, map[string]any{"type": "join", "room": "random"})

	anon, _ := hdOpen(t, g, "/ws", nil)
	hdExpectAck(anon, map[string]any{"type": "join", "room": "random"})
}

// hdECKey generates an ECDSA P-256 key pair and writes the public key as a
// PKIX PEM file; it returns the private key and the file.
func hdECKey(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, hdWritePublic(t, &k.PublicKey)
}

func hdWritePublic(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "issuer.pub.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAuthPublicKey: with -jwt-public-key the gateway verifies ES256 or
// RS256 tokens of the issuer's private key, and refuses tokens of another
// key, of another algorithm, and HS256 tokens keyed with the public key
// (algorithm confusion).
func TestAuthPublicKey(t *testing.T) {
	ecKey, ecFile := hdECKey(t)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile := hdWritePublic(t, &rsaKey.PublicKey)
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		file      string
		method    jwt.SigningMethod
		key       any
		otherKey  any
		wrongAlg  jwt.SigningMethod
		wrongKey  any
		wrongName string
	}{
		{"ES256", ecFile, jwt.SigningMethodES256, ecKey, otherEC, jwt.SigningMethodRS256, rsaKey, "RS256"},
		{"RS256", rsaFile, jwt.SigningMethodRS256, rsaKey, otherRSA, jwt.SigningMethodES256, ecKey, "ES256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pemBytes, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			g := startGateway(t, "-jwt-public-key", tc.file, "-auth-required")
			if !strings.Contains(g.logs.String(), "algorithm="+tc.name) {
				t.Errorf("startup log does not name %s:\n%s", tc.name, g.logs.String())
			}
			claims := hdWith(hdClaims("alice"), "rooms", []string{"lobby"})
			c, w := hdOpen(t, g, "/ws", hdBearer(hdSign(t, tc.method, tc.key, claims)))
			if w["user"] != "alice" {
				t.Errorf("welcome %v, want user alice", w)
			}
			hdExpectAck(c, map[string]any{"type": "join", "room": "lobby"})
			hdExpectError(c, map[string]any{"type": "join", "room": "other"}, "forbidden")
			// The query works with key pairs too.
			hdOpen(t, g, "/ws?token="+hdSign(t, tc.method, tc.key, claims), nil)

			for _, bad := range []struct{ name, token, reason string }{
				{"another key", hdSign(t, tc.method, tc.otherKey, claims), "bad signature"},
				{tc.wrongName, hdSign(t, tc.wrongAlg, tc.wrongKey, claims), "signing algorithm not accepted"},
				{"HS256 keyed with the public key", hdSign(t, jwt.SigningMethodHS256, pemBytes, claims), "signing algorithm not accepted"},
				{"expired", hdSign(t, tc.method, tc.key, hdWith(claims, "exp", time.Now().Add(-time.Minute).Unix())), "token expired"},
				{"none", hdSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims), "signing algorithm not accepted"},
			} {
				resp, _ := hdRefused(t, g, "/ws", hdBearer(bad.token), 401)
				want := `Bearer realm="chatgate", error="invalid_token", error_description="` + bad.reason + `"`
				if got := resp.Header.Get("WWW-Authenticate"); got != want {
					t.Errorf("%s: WWW-Authenticate %q, want %q", bad.name, got, want)
				}
			}
			hdRefused(t, g, "/ws", nil, 401)
		})
	}
}

// TestAuthStartupRefusesBadConfig: configurations docs/security.md calls
// errors stop the gateway at startup with a message, instead of running
// with weaker protection than asked for.
func TestAuthStartupRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(dir, "issuer.pem")
	if err := os.WriteFile(private, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakFile := hdWritePublic(t, &weak.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384File := hdWritePublic(t, &p384.PublicKey)
	_, ecFile := hdECKey(t)

	for _, tc := range []struct {
		name string
		args []string
		want string // in the error output
	}{
		{"short HS256 secret", []string{"-jwt-secret", "only-31-bytes-of-secret-0123456"}, "at least 32"},
		{"auth required without a key", []string{"-auth-required"}, "-auth-required needs"},
		{"secret and public key", []string{"-jwt-secret", hdSecret, "-jwt-public-key", ecFile}, "not both"},
		{"private key as public key", []string{"-jwt-public-key", private}, "only the public key"},
		{"RSA under 2048 bits", []string{"-jwt-public-key", weakFile}, "2048"},
		{"ECDSA P-384", []string{"-jwt-public-key", p384File}, "P-256"},
		{"wildcard on a top-level domain", []string{"-allowed-origins", "https://*.com"}, "two labels"},
		{"null origin", []string{"-allowed-origins", "null"}, "null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, append([]string{"-addr", freeAddr(t), "-admin-addr", "", "-api-addr", ""}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the gateway started (killed after 10 s); output:\n%s", out)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("exit %v, want a non-zero exit; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output %q does not mention %q", out, tc.want)
			}
		})
	}
}

// TestAuthMintCommand runs the worked example of docs/security.md: the
// secret in CHATGATE_JWT_SECRET for both the gateway (-auth-required) and
// the documented `go run ./auth/cmd/mint` line, then connects with the
// token it prints.
func TestAuthMintCommand(t *testing.T) {
	t.Setenv("CHATGATE_JWT_SECRET", hdSecret)
	g := startGateway(t, "-auth-required")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mint := exec.CommandContext(ctx, "go", "run", "./auth/cmd/mint", "-sub", "alice", "-rooms", "lobby,team-*", "-ttl", "1h")
	mint.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	mint.Stderr = &stderr
	out, err := mint.Output()
	if err != nil {
		t.Fatalf("mint: %v\n%s", err, stderr.String())
	}
	token := strings.TrimSpace(string(out))
	if strings.Count(token, ".") != 2 || strings.ContainsAny(token, " \n") {
		t.Fatalf("mint printed %q, want one compact JWS", out)
	}

	c, w := hdOpen(t, g, "/ws?token="+token, nil)
	if w["user"] != "alice" {
		t.Errorf("welcome %v, want user alice", w)
	}
	if r := hdExpectAck(c, map[string]any{"type": "join", "room": "lobby", "id": 1}); r["count"] != float64(1) {
		t.Errorf("join lobby %v", r)
	}
	hdExpectAck(c, map[string]any{"type": "join", "room": "team-red"})
	r := hdExpectError(c, map[string]any{"type": "join", "room": "random"}, "forbidden")
	if r["message"] != "room not allowed by token" {
		t.Errorf("forbidden message %q", r["message"])
	}
	hdOpen(t, g, "/ws", hdBearer(token))
	hdRefused(t, g, "/ws", nil, 401)
}

// ---------------------------------------------------------------------------
// Origins
// ---------------------------------------------------------------------------

// TestHardeningOrigins: with -allowed-origins, listed origins (exact, or
// any subdomain of a wildcard) upgrade, every other browser origin gets
// 403 before anything else, and a request without Origin is allowed; the
// same holds on the Socket.IO WebSocket and long-polling handshakes.
func TestHardeningOrigins(t *testing.T) {
	g := startGateway(t, "-allowed-origins", "https://chat.example.com,https://*.example.org",
		"-jwt-secret", hdSecret)
	inRoom, _ := hdOpen(t, g, "/ws", nil)
	hdExpectAck(inRoom, map[string]any{"type": "join", "room": "lobby"})

	allowed := []string{
		"", // no Origin header: not a browser
		"https://chat.example.com",
		"https://CHAT.Example.com",
		"https://chat.example.com:443",
		"https://a.example.org",
		"https://a.b.example.org",
	}
	refused := []string{
		"https://evil.example.com",
		"https://example.org",
		"https://evil-example.org",
		"https://example.org.evil.com",
		"http://chat.example.com",
		"https://chat.example.com:8443",
		"http://a.example.org",
		"null",
		"https://chat.example.com.evil.com",
	}
	hdr := func(origin string) http.Header {
		if origin == "" {
			return nil
		}
		return http.Header{"Origin": {origin}}
	}
	for _, o := range allowed {
		t.Run("allowed "+o, func(t *testing.T) {
			hdOpen(t, g, "/ws", hdr(o))
			s := hdSIODial(t, g, "", hdr(o))
			s.ws.Close()
			if st, body := hdGet(t, g, hdPollingHandshake, hdr(o)); st != 200 || !strings.HasPrefix(body, "0{") {
				t.Errorf("polling handshake: %d %q", st, body)
			}
		})
	}
	for _, o := range refused {
		t.Run("refused "+o, func(t *testing.T) {
			_, body := hdRefused(t, g, "/ws", hdr(o), 403)
			if body != "origin not allowed\n" {
				t.Errorf("body %q", body)
			}
			hdRefused(t, g, "/socket.io/?EIO=4&transport=websocket", hdr(o), 403)
			if st, body := hdGet(t, g, hdPollingHandshake, hdr(o)); st != 403 {
				t.Errorf("polling handshake: %d %q, want 403", st, body)
			}
			// The origin is checked before the token: a valid token does
			// not let a hostile page in.
			h := hdr(o)
			h.Set("Authorization", "Bearer "+hdHS256(t, hdClaims("victim")))
			hdRefused(t, g, "/ws", h, 403)
			// A refused origin with a bad token is still a 403, not a 401.
			h.Set("Authorization", "Bearer garbage")
			hdRefused(t, g, "/ws", h, 403)
		})
	}
	if n := hdSessions(t, g); n != 1 {
		t.Errorf("sessions = %d, want 1", n)
	}
	hdExpectAck(inRoom, map[string]any{"type": "ping"})
}

// ---------------------------------------------------------------------------
// Connection limits
// ---------------------------------------------------------------------------

// hdReadStatus reads an HTTP response head from nc within d.
func hdReadStatus(t *testing.T, nc net.Conn, d time.Duration) (int, string) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// hdWaitDial retries the WebSocket handshake until it succeeds within
// hdWait: a slot freed by a close is released when the gateway sees the
// close, a moment later.
func hdWaitDial(t *testing.T, g *gateway, hdr http.Header) *client {
	t.Helper()
	deadline := time.Now().Add(hdWait)
	for {
		ws, resp, err := hdDial(g, "/ws", hdr)
		if err == nil {
			resp.Body.Close()
			c := &client{t: t, ws: ws}
			t.Cleanup(func() { ws.Close() })
			if w := c.read(); w["type"] != "welcome" {
				t.Fatalf("first message %v", w)
			}
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot within %v: %v", hdWait, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHardeningMaxConnections: with -max-connections 3, the 4th TCP
// connection, whatever its state, gets 503 at once, without having sent
// anything; the connections already open keep working, and closing one
// frees its slot.
func TestHardeningMaxConnections(t *testing.T) {
	g := startGateway(t, "-max-connections", "3")
	before := hdMetric(t, g, `chatgate_handshakes_failed_total{reason="overloaded"}`)
	a, b := dial(t, g), dial(t, g)
	hdExpectAck(a, map[string]any{"type": "join", "room": "r"})
	hdExpectAck(b, map[string]any{"type": "join", "room": "r"})
	idle, err := net.Dial("tcp", g.addr) // the third: a TCP connection that never speaks
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// Accepted connections reach their event loops asynchronously: wait
	// until the gateway counts the idle one, so that it is the 4th below
	// that is over the limit.
	hdWaitConnections(t, g, 3)

	for i := 0; i < 3; i++ {
		nc, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		st, body := hdReadStatus(t, nc, hdWait)
		nc.Close()
		if st != 503 || body != "too many connections\n" {
			t.Fatalf("connection over the limit: %d %q, want 503 \"too many connections\"", st, body)
		}
	}
	if _, resp, err := hdDial(g, "/ws", nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("WebSocket over the limit: %v %v, want 503", err, resp)
	}
	hdExpectMetricDelta(t, g, `chatgate_handshakes_failed_total{reason="overloaded"}`, before, 4)

	// The open connections are unaffected.
	hdExpectAck(a, map[string]any{"type": "send", "room": "r", "data": "still here"})
	if m := b.readType("message"); m["data"] != "still here" {
		t.Fatalf("message %v", m)
	}
	// Closing one frees a slot.
	idle.Close()
	c := hdWaitDial(t, g, nil)
	hdExpectAck(c, map[string]any{"type": "join", "room": "r"})
	if p := a.readType("presence"); p["event"] != "join" {
		t.Fatalf("presence %v", p)
	}
}

// TestHardeningPerIPBehindProxy: behind a trusted proxy, the per-address
// limit counts the X-Forwarded-For client: the 3rd session of 203.0.113.7
// gets 429 while another address and the proxy's own connections still
// get in, a client cannot dodge it by prepending addresses, and closing a
// session frees its slot.
func TestHardeningPerIPBehindProxy(t *testing.T) {
	g := startGateway(t, "-max-connections-per-ip", "2", "-trusted-proxies", "127.0.0.1/32")
	from := func(xff string) http.Header { return http.Header{"X-Forwarded-For": {xff}} }
	first, _ := hdOpen(t, g, "/ws", from("203.0.113.7"))
	second, _ := hdOpen(t, g, "/ws", from("203.0.113.7"))
	hdExpectAck(first, map[string]any{"type": "join", "room": "r"})
	hdExpectAck(second, map[string]any{"type": "join", "room": "r"})

	_, body := hdRefused(t, g, "/ws", from("203.0.113.7"), 429)
	if body != "too many connections from this address\n" {
		t.Errorf("429 body %q", body)
	}
	// Spoofing: the gateway reads right to left, so addresses a client
	// writes in front of its own change nothing.
	hdRefused(t, g, "/ws", from("198.51.100.1, 203.0.113.7"), 429)
	// The Socket.IO handshakes count against the same limit.
	hdRefused(t, g, "/socket.io/?EIO=4&transport=websocket", from("203.0.113.7"), 429)
	if st, _ := hdGet(t, g, hdPollingHandshake, from("203.0.113.7")); st != 429 {
		t.Errorf("polling handshake at the limit: %d, want 429", st)
	}

	// Other addresses, and the proxy's own connections without forwarding
	// information, are not affected.
	for i := 0; i < 2; i++ {
		hdOpen(t, g, "/ws", from("203.0.113.8"))
	}
	for i := 0; i < 3; i++ {
		hdOpen(t, g, "/ws", nil)
	}
	hdExpectAck(first, map[string]any{"type": "send", "room": "r", "data": 1})
	if m := second.readType("message"); m["data"] != float64(1) {
		t.Fatalf("message %v", m)
	}

	// Closing one frees its slot for the same address.
	first.ws.Close()
	third := hdWaitDial(t, g, from("203.0.113.7"))
	hdExpectAck(third, map[string]any{"type": "join", "room": "r"})
	hdRefused(t, g, "/ws", from("203.0.113.7"), 429)

	// IPv6 clients count per /64: rotating addresses within one does not
	// help, another /64 is another client.
	hdOpen(t, g, "/ws", from("2001:db8:1:2::1"))
	hdOpen(t, g, "/ws", from("2001:db8:1:2::ffff"))
	hdRefused(t, g, "/ws", from("2001:db8:1:2:abcd::7"), 429)
	hdOpen(t, g, "/ws", from("2001:db8:1:3::1"))
}

// TestHardeningPerIPIgnoresUntrustedHeaders: without -trusted-proxies the
// forwarding headers are not believed, so a client cannot use them to
// charge its connections to an address of its choosing: three clients
// claiming 203.0.113.7 are judged by their TCP peer (loopback, not
// counted), not refused as that address.
func TestHardeningPerIPIgnoresUntrustedHeaders(t *testing.T) {
	g := startGateway(t, "-max-connections-per-ip", "1")
	hdr := http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Real-Ip": {"203.0.113.7"}, "Forwarded": {"for=203.0.113.7"}}
	for i := 0; i < 3; i++ {
		hdOpen(t, g, "/ws", hdr)
	}
}

// hdSourceIPv4 returns a non-loopback IPv4 address of this host from which
// a connection to the gateway's loopback listener works, or skips the
// test: per-address limits exempt loopback peers.
func hdSourceIPv4(t *testing.T, g *gateway) string {
	t.Helper()
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil || ipn.IP.IsLoopback() {
			continue
		}
		nd := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: ipn.IP}}
		if nc, err := nd.Dial("tcp4", g.addr); err == nil {
			nc.Close()
			return ipn.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address reaches the loopback listener")
	return ""
}

// hdDialFrom dials a raw TCP connection to g from src.
func hdDialFrom(t *testing.T, g *gateway, src string) net.Conn {
	t.Helper()
	nd := net.Dialer{Timeout: hdWait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	nc, err := nd.Dial("tcp4", g.addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// hdWSFrom opens /ws from src; it returns the response when refused.
func hdWSFrom(g *gateway, src string) (*websocket.Conn, *http.Response, error) {
	return hdWSFromWith(g, src, nil)
}

// hdWSFromWith opens /ws from src with the header hdr.
func hdWSFromWith(g *gateway, src string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{
		HandshakeTimeout: hdWait,
		NetDialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			return nd.DialContext(ctx, "tcp4", addr)
		},
	}
	return d.Dial("ws://"+g.addr+"/ws", hdr)
}

// TestHardeningPerIPDirect: for clients connecting directly (no proxy),
// the per-address limit counts from accept (docs/security.md, "Slowloris"
// and "What a refused client sees"): sessions over the limit get 429, and
// so does a connection while the address already holds the limit in
// half-open connections that never sent a request head.
func TestHardeningPerIPDirect(t *testing.T) {
	g := startGateway(t, "-max-connections-per-ip", "2")
	src := hdSourceIPv4(t, g)
	// The probe connection of hdSourceIPv4 may hold a slot until the
	// gateway has seen it close.
	hdWaitConnections(t, g, 0)

	t.Run("sessions", func(t *testing.T) {
		var open []*websocket.Conn
		for i := 0; i < 2; i++ {
			ws, resp, err := hdWSFrom(g, src)
			if err != nil {
				t.Fatalf("session %d from %s: %v", i+1, src, err)
			}
			resp.Body.Close()
			open = append(open, ws)
		}
		_, resp, err := hdWSFrom(g, src)
		if err == nil || resp == nil || resp.StatusCode != 429 {
			t.Fatalf("3rd session from %s: %v (%v), want 429", src, err, resp)
		}
		hdOpen(t, g, "/ws", nil) // loopback is not counted
		for _, ws := range open {
			ws.Close()
		}
		deadline := time.Now().Add(hdWait)
		for {
			ws, resp, err := hdWSFrom(g, src)
			if err == nil {
				resp.Body.Close()
				ws.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("slots not freed after closing: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("a trusted proxy's own connections are not counted, its clients are", func(t *testing.T) {
		gp := startGateway(t, "-max-connections-per-ip", "1", "-trusted-proxies", src+"/32")
		for i := 0; i < 3; i++ {
			ws, resp, err := hdWSFromWith(gp, src, nil)
			if err != nil {
				status := 0
				if resp != nil {
					status = resp.StatusCode
				}
				t.Fatalf("connection %d of the proxy itself (no forwarding header): %v (HTTP %d)", i+1, err, status)
			}
			resp.Body.Close()
			defer ws.Close()
		}
		xff := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
		ws, resp, err := hdWSFromWith(gp, src, xff)
		if err != nil {
			t.Fatalf("first client through the proxy: %v", err)
		}
		resp.Body.Close()
		defer ws.Close()
		if _, resp, err := hdWSFromWith(gp, src, xff); err == nil || resp == nil || resp.StatusCode != 429 {
			t.Fatalf("second session of 203.0.113.7 through the proxy: %v %v, want 429", err, resp)
		}
	})

	t.Run("half-open connections count from accept", func(t *testing.T) {
		// Wait until the sessions of the subtest above are gone.
		hdWaitConnections(t, g, 0)
		hdDialFrom(t, g, src)
		hdDialFrom(t, g, src)
		hdWaitConnections(t, g, 2)
		third := hdDialFrom(t, g, src)
		_ = third.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(third), nil)
		if err != nil {
			t.Fatalf("3rd connection from %s while 2 half-open ones are held: no 429 at accept (%v); "+
				"one address can hold any number of half-open connections", src, err)
		}
		if resp.StatusCode != 429 {
			t.Fatalf("3rd connection: HTTP %d, want 429", resp.StatusCode)
		}
	})
}

// TestHardeningCheckOrder: the refusals come in the documented order: for
// a client behind a trusted proxy the per-address limit (429) before the
// origin (403) before the token (401).
func TestHardeningCheckOrder(t *testing.T) {
	g := startGateway(t, "-max-connections-per-ip", "1", "-trusted-proxies", "127.0.0.1/32",
		"-allowed-origins", "https://chat.example.com", "-jwt-secret", hdSecret, "-auth-required")
	good := hdHS256(t, hdClaims("alice"))
	h := func(xff, origin, token string) http.Header {
		hdr := http.Header{"X-Forwarded-For": {xff}}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		if token != "" {
			hdr.Set("Authorization", "Bearer "+token)
		}
		return hdr
	}
	hdOpen(t, g, "/ws", h("203.0.113.9", "https://chat.example.com", good))
	for _, tc := range []struct {
		name   string
		hdr    http.Header
		status int
	}{
		{"free address: bad origin before no token", h("203.0.113.10", "https://evil.example.com", ""), 403},
		{"free address: no token", h("203.0.113.10", "https://chat.example.com", ""), 401},
		{"free address: bad origin before bad token", h("203.0.113.10", "https://evil.example.com", "garbage"), 403},
		{"full address: 429 before a bad origin", h("203.0.113.9", "https://evil.example.com", ""), 429},
		{"full address: 429 before a missing token", h("203.0.113.9", "https://chat.example.com", ""), 429},
		{"full address: 429 before a bad token", h("203.0.113.9", "", "garbage"), 429},
		{"full address: 429 with everything right", h("203.0.113.9", "https://chat.example.com", good), 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := hdDial(g, "/ws", tc.hdr)
			if err == nil || resp == nil {
				t.Fatalf("%v, want HTTP %d", err, tc.status)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("HTTP %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------

// hdRefill waits until a connection's buckets are full again. The gateway
// refills on a coarse clock advanced by its sweep ticker (at most every
// second), so a little more than the time to refill is needed.
func hdRefill(d time.Duration) { time.Sleep(d + time.Second) }

// hdBurst sends reqs back to back and returns the replies by request id;
// each request must get exactly one reply (events in between are passed
// to events, which may be nil).
func hdBurst(t *testing.T, c *client, reqs []map[string]any, events func(map[string]any)) map[string]map[string]any {
	t.Helper()
	for _, r := range reqs {
		c.send(r)
	}
	replies := map[string]map[string]any{}
	for len(replies) < len(reqs) {
		m := c.read()
		if m["type"] != "ack" && m["type"] != "error" {
			if events != nil {
				events(m)
			}
			continue
		}
		id, _ := m["id"].(string)
		if id == "" {
			t.Fatalf("reply without the request id: %v", m)
		}
		if _, dup := replies[id]; dup {
			t.Fatalf("two replies to %s", id)
		}
		replies[id] = m
	}
	return replies
}

// hdFlood writes msgs to ws as fast as it can, until one write fails (the
// server closed the connection) or all are written. It returns a channel
// closed when it is done.
func hdFlood(ws *websocket.Conn, msgs [][]byte) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ws.SetWriteDeadline(time.Now().Add(hdWait))
		for _, m := range msgs {
			if err := ws.WriteMessage(websocket.TextMessage, m); err != nil {
				return
			}
		}
	}()
	return done
}

// hdAwait waits for ch within hdWait.
func hdAwait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hdWait):
		t.Fatalf("%s did not finish within %v", what, hdWait)
	}
}

// TestHardeningRateLimitMessages: with -rate-messages 5 -rate-burst 5 a
// burst of 20 requests gets the first 5 through and rate_limited replies
// (id echoed) for most of the rest, the connection staying open; other
// members receive exactly the messages that were accepted. Sustained
// flooding closes the connection with 1008 "rate limit exceeded" while the
// other members of the room keep chatting.
func TestHardeningRateLimitMessages(t *testing.T) {
	g := startGateway(t, "-rate-messages", "5", "-rate-burst", "5")
	a, b, c := dial(t, g), dial(t, g), dial(t, g)
	for _, x := range []*client{a, b, c} {
		hdExpectAck(x, map[string]any{"type": "join", "room": "r"})
	}
	b.readType("presence") // c joined
	hdRefill(time.Second)

	t.Run("burst of requests", func(t *testing.T) {
		var reqs []map[string]any
		for i := 0; i < 20; i++ {
			reqs = append(reqs, map[string]any{"type": "ping", "id": fmt.Sprintf("p%d", i)})
		}
		replies := hdBurst(t, a, reqs, nil)
		acks := 0
		for i := 0; i < 20; i++ {
			r := replies[fmt.Sprintf("p%d", i)]
			switch {
			case r["type"] == "ack":
				acks++
			case r["code"] == "rate_limited":
				if r["message"] != "too many messages, slow down" {
					t.Errorf("rate_limited message %q", r["message"])
				}
			default:
				t.Errorf("reply %v", r)
			}
			if i < 5 && r["type"] != "ack" {
				t.Errorf("request %d of the burst: %v, want an ack (burst 5)", i, r)
			}
		}
		// 5 from the burst, plus what the coarse clock refilled meanwhile
		// (at most one tick: 5/s × 1 s).
		if acks < 5 || acks > 10 {
			t.Errorf("%d of 20 acknowledged, want 5 (+ a refill tick)", acks)
		}
		t.Logf("burst of 20: %d acknowledged, %d rate_limited", acks, 20-acks)
	})

	t.Run("only accepted messages are delivered", func(t *testing.T) {
		hdRefill(time.Second)
		var reqs []map[string]any
		for i := 0; i < 20; i++ {
			reqs = append(reqs, map[string]any{"type": "send", "room": "r", "data": i, "id": fmt.Sprintf("s%d", i)})
		}
		replies := hdBurst(t, a, reqs, nil)
		var accepted []float64
		for i := 0; i < 20; i++ {
			if replies[fmt.Sprintf("s%d", i)]["type"] == "ack" {
				accepted = append(accepted, float64(i))
			} else if replies[fmt.Sprintf("s%d", i)]["code"] != "rate_limited" {
				t.Errorf("reply %v", replies[fmt.Sprintf("s%d", i)])
			}
		}
		hdRefill(time.Second)
		hdExpectAck(a, map[string]any{"type": "send", "room": "r", "data": "marker"})
		var got []float64
		for {
			m := b.readType("message")
			if m["data"] == "marker" {
				break
			}
			got = append(got, m["data"].(float64))
		}
		if fmt.Sprint(got) != fmt.Sprint(accepted) {
			t.Errorf("b received %v, want exactly the accepted %v", got, accepted)
		}
	})

	t.Run("flood closes with 1008", func(t *testing.T) {
		hdRefill(time.Second)
		closes := hdMetric(t, g, `chatgate_connections_closed_total{reason="rate_limited"}`)
		msgs := make([][]byte, 2000)
		for i := range msgs {
			msgs[i] = []byte(fmt.Sprintf(`{"type":"send","room":"r","data":"flood %d","id":%d}`, i, i))
		}
		start := time.Now()
		done := hdFlood(a.ws, msgs)
		limited, acked := 0, 0
		ce := hdCloseError(t, a.ws, hdWait, func(b []byte) {
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			switch {
			case m["code"] == "rate_limited":
				limited++
				if _, ok := m["id"].(float64); !ok {
					t.Errorf("rate_limited without the request id: %s", b)
				}
			case m["type"] == "ack":
				acked++
			}
		})
		hdAwait(t, done, "the flood")
		if ce.Code != 1008 || ce.Text != "rate limit exceeded" {
			t.Fatalf("close %d %q, want 1008 \"rate limit exceeded\"", ce.Code, ce.Text)
		}
		if limited == 0 || acked > 10 {
			t.Errorf("before the close: %d acknowledged, %d rate_limited", acked, limited)
		}
		t.Logf("flood: closed after %v; %d acknowledged, %d rate_limited before the close", time.Since(start), acked, limited)

		// b saw the flooder's few accepted messages and its departure, and
		// keeps chatting with c.
		for {
			m := b.read()
			if m["type"] == "presence" && m["event"] == "leave" && m["id"] == a.id {
				break
			}
			if m["type"] != "message" || m["from"] != a.id {
				t.Fatalf("b got %v while the flooder was cut", m)
			}
		}
		t0 := time.Now()
		hdExpectAck(b, map[string]any{"type": "ping"})
		if rtt := time.Since(t0); rtt > 500*time.Millisecond {
			t.Errorf("b's round trip after the flood: %v", rtt)
		}
		hdExpectAck(c, map[string]any{"type": "send", "room": "r", "data": "after"})
		if m := b.readType("message"); m["data"] != "after" || m["from"] != c.id {
			t.Errorf("b got %v, want c's message", m)
		}
		hdExpectMetricDelta(t, g, `chatgate_connections_closed_total{reason="rate_limited"}`, closes, 1)
	})
}

// TestHardeningRateLimitBytes: -rate-bytes limits inbound payload bytes
// the same way: a burst past twice the rate gets rate_limited, a message
// larger than the burst passes when the bucket is full, and a sustained
// flood closes with 1008 while another member keeps receiving.
func TestHardeningRateLimitBytes(t *testing.T) {
	g := startGateway(t, "-rate-bytes", "1000") // burst: 2000 bytes
	a, b := dial(t, g), dial(t, g)
	hdExpectAck(a, map[string]any{"type": "join", "room": "r"})
	hdExpectAck(b, map[string]any{"type": "join", "room": "r"})
	pad := strings.Repeat("b", 560)
	hdRefill(2 * time.Second)

	var reqs []map[string]any
	for i := 0; i < 10; i++ {
		reqs = append(reqs, map[string]any{"type": "send", "room": "r", "data": pad, "id": fmt.Sprintf("s%d", i)})
	}
	replies := hdBurst(t, a, reqs, nil)
	acks := 0
	for i := 0; i < 10; i++ {
		r := replies[fmt.Sprintf("s%d", i)]
		switch {
		case r["type"] == "ack":
			acks++
		case r["code"] != "rate_limited":
			t.Errorf("reply %v", r)
		}
		if i < 3 && r["type"] != "ack" {
			t.Errorf("message %d (about 600 bytes, 3 fit in 2000): %v", i, r)
		}
	}
	if acks < 3 || acks > 6 {
		t.Errorf("%d of 10 messages of ~600 bytes acknowledged, want 3 (+ a refill tick)", acks)
	}
	for i := 0; i < acks; i++ {
		if m := b.readType("message"); m["data"] != pad {
			t.Fatalf("b got %v", m)
		}
	}

	// One message larger than the whole burst passes when the bucket is
	// full, and leaves it in debt.
	hdRefill(2 * time.Second)
	big := strings.Repeat("B", 3000)
	hdExpectAck(a, map[string]any{"type": "send", "room": "r", "data": big})
	if m := b.readType("message"); m["data"] != big {
		t.Fatalf("b did not get the large message")
	}
	hdExpectError(a, map[string]any{"type": "send", "room": "r", "data": "x"}, "rate_limited")

	msgs := make([][]byte, 2000)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf(`{"type":"send","room":"r","data":"%s","id":%d}`, pad, i))
	}
	done := hdFlood(a.ws, msgs)
	ce := hdCloseError(t, a.ws, hdWait, nil)
	hdAwait(t, done, "the flood")
	if ce.Code != 1008 || ce.Text != "rate limit exceeded" {
		t.Fatalf("close %d %q, want 1008 \"rate limit exceeded\"", ce.Code, ce.Text)
	}
	if p := b.readType("presence"); p["event"] != "leave" || p["id"] != a.id {
		t.Fatalf("b got %v, want a's leave", p)
	}
	c := dial(t, g)
	hdExpectAck(c, map[string]any{"type": "join", "room": "r"})
	hdExpectAck(c, map[string]any{"type": "send", "room": "r", "data": "after"})
	for {
		m := b.read()
		if m["type"] == "message" {
			if m["data"] != "after" {
				t.Fatalf("b got %v", m)
			}
			break
		}
	}
}

// hdFrame is one server frame read by hdReadFrame.
type hdFrame struct {
	op      byte
	payload []byte
}

// hdReadFrame reads one unmasked server frame.
func hdReadFrame(br *bufio.Reader) (hdFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return hdFrame{}, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return hdFrame{}, err
		}
		n = int(e[0])<<8 | int(e[1])
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return hdFrame{}, err
		}
		n = 0
		for _, b := range e {
			n = n<<8 | int(b)
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return hdFrame{}, err
	}
	return hdFrame{op: h[0] & 0x0f, payload: p}, nil
}

// closeCode returns the status code and reason of a close frame.
func (f hdFrame) closeCode() (int, string) {
	if len(f.payload) < 2 {
		return 1005, ""
	}
	return int(f.payload[0])<<8 | int(f.payload[1]), string(f.payload[2:])
}

// hdRawWS is a hand-driven WebSocket client on a raw TCP connection, for
// floods and for clients that misbehave at the frame level.
type hdRawWS struct {
	nc net.Conn
	br *bufio.Reader
	id string
}

// hdRawOpen upgrades a raw connection to /ws and reads the welcome.
func hdRawOpen(t *testing.T, g *gateway) *hdRawWS {
	t.Helper()
	nc, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &hdRawWS{nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
	_ = nc.SetDeadline(time.Now().Add(hdWait))
	if _, err := nc.Write([]byte(upgradeRequest)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", err, resp)
	}
	f, err := hdReadFrame(r.br)
	if err != nil || f.op != 1 {
		t.Fatalf("welcome: %v %v", err, f)
	}
	var w struct{ Type, ID string }
	if json.Unmarshal(f.payload, &w); w.Type != "welcome" {
		t.Fatalf("first message %s", f.payload)
	}
	r.id = w.ID
	_ = nc.SetDeadline(time.Time{})
	return r
}

// TestHardeningPingFlood: WebSocket pings count as messages: a flood of
// them is answered with at most a burst's worth of pongs and then closed
// with 1008, and while ten connections flood at once, other clients'
// round trips stay fast.
func TestHardeningPingFlood(t *testing.T) {
	g := startGateway(t, "-rate-messages", "5", "-rate-burst", "5")
	var probes []*client
	for i := 0; i < 4; i++ { // spread over both event loops
		c := dial(t, g)
		hdExpectAck(c, map[string]any{"type": "join", "room": "r"})
		probes = append(probes, c)
	}
	const flooders, pings = 10, 5000
	var fl []*hdRawWS
	for i := 0; i < flooders; i++ {
		fl = append(fl, hdRawOpen(t, g))
	}
	hdRefill(time.Second)
	flood := bytes.Repeat(clientFrame(true, 0x9, []byte("are you there?")), pings)

	// Probes: one chat ping per client every 250 ms (4/s, under the
	// limit), during the floods and after.
	var maxRTT atomic.Int64
	stop := make(chan struct{})
	probeErr := make(chan error, len(probes))
	var wg sync.WaitGroup
	for _, c := range probes {
		wg.Add(1)
		go func(c *client) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					probeErr <- nil
					return
				case <-time.After(250 * time.Millisecond):
				}
				t0 := time.Now()
				_ = c.ws.SetWriteDeadline(time.Now().Add(hdWait))
				if err := c.ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"ping","id":%d}`, i))); err != nil {
					probeErr <- err
					return
				}
				_ = c.ws.SetReadDeadline(time.Now().Add(hdWait))
				var b []byte
				for !bytes.HasPrefix(b, []byte(`{"type":"ack"`)) {
					var err error
					if _, b, err = c.ws.ReadMessage(); err != nil {
						probeErr <- err
						return
					}
					if bytes.HasPrefix(b, []byte(`{"type":"error"`)) {
						probeErr <- fmt.Errorf("probe reply %s", b)
						return
					}
				}
				rtt := time.Since(t0).Nanoseconds()
				for {
					old := maxRTT.Load()
					if rtt <= old || maxRTT.CompareAndSwap(old, rtt) {
						break
					}
				}
			}
		}(c)
	}
	time.Sleep(600 * time.Millisecond) // a couple of probes before

	type result struct {
		pongs  int
		code   int
		reason string
		err    error
		took   time.Duration
	}
	results := make(chan result, flooders)
	for _, f := range fl {
		go func(f *hdRawWS) {
			start := time.Now()
			_ = f.nc.SetDeadline(time.Now().Add(hdWait))
			go func() { _, _ = f.nc.Write(flood) }() // fails once the server closes
			res := result{}
			for {
				fr, err := hdReadFrame(f.br)
				if err != nil {
					res.err = err
					break
				}
				if fr.op == 0xA {
					res.pongs++
				}
				if fr.op == 0x8 {
					res.code, res.reason = fr.closeCode()
					break
				}
			}
			res.took = time.Since(start)
			results <- res
		}(f)
	}
	for i := 0; i < flooders; i++ {
		var r result
		select {
		case r = <-results:
		case <-time.After(2 * hdWait):
			t.Fatal("a flooder was not closed")
		}
		if r.err != nil {
			t.Errorf("flooder: read ended with %v before a close frame (%d pongs)", r.err, r.pongs)
			continue
		}
		if r.code != 1008 || r.reason != "rate limit exceeded" {
			t.Errorf("flooder closed with %d %q, want 1008 \"rate limit exceeded\"", r.code, r.reason)
		}
		if r.pongs < 1 || r.pongs > 10 {
			t.Errorf("flooder got %d pongs for %d pings, want the burst (5, + a refill tick)", r.pongs, pings)
		}
		if i == 0 {
			t.Logf("flooder: %d pongs, closed after %v", r.pongs, r.took)
		}
	}
	time.Sleep(600 * time.Millisecond) // a couple of probes after
	close(stop)
	wg.Wait()
	for range probes {
		if err := <-probeErr; err != nil {
			t.Errorf("probe: %v", err)
		}
	}
	rtt := time.Duration(maxRTT.Load())
	t.Logf("slowest probe round trip during the ping floods: %v", rtt)
	if rtt > 250*time.Millisecond {
		t.Errorf("a probe's round trip took %v during the ping floods: the loop stalled", rtt)
	}
	hdWaitSessions(t, g, len(probes)) // the flooders are gone
}

// ---------------------------------------------------------------------------
// Room and size limits, slowloris, half-open connections
// ---------------------------------------------------------------------------

// TestHardeningMaxRooms: with -max-rooms 3 the 4th join gets
// too_many_rooms and the connection stays open; joining a room again, or
// after leaving one, works.
func TestHardeningMaxRooms(t *testing.T) {
	g := startGateway(t, "-max-rooms", "3")
	c := dial(t, g)
	for _, room := range []string{"a", "b", "c"} {
		hdExpectAck(c, map[string]any{"type": "join", "room": room})
	}
	r := hdExpectError(c, map[string]any{"type": "join", "room": "d"}, "too_many_rooms")
	if r["message"] != "too many rooms joined" {
		t.Errorf("message %q", r["message"])
	}
	hdExpectAck(c, map[string]any{"type": "join", "room": "a"}) // already in: fine
	hdExpectAck(c, map[string]any{"type": "leave", "room": "b"})
	hdExpectAck(c, map[string]any{"type": "join", "room": "d"})
	hdExpectError(c, map[string]any{"type": "join", "room": "e"}, "too_many_rooms")
	// Another connection has its own allowance.
	o := dial(t, g)
	for _, room := range []string{"a", "e", "f"} {
		hdExpectAck(o, map[string]any{"type": "join", "room": room})
	}
	list := hdExpectAck(c, map[string]any{"type": "rooms"})
	b, _ := json.Marshal(list["rooms"])
	if want := `[{"count":2,"room":"a"},{"count":1,"room":"c"},{"count":1,"room":"d"},{"count":1,"room":"e"},{"count":1,"room":"f"}]`; string(b) != want {
		t.Errorf("rooms %s, want %s", b, want)
	}
}

// TestHardeningMaxMessage: with -max-message 1024 a message of 1024 bytes
// passes; one byte more, a frame header announcing more, or fragments
// adding up to more close the connection with 1009, and others are not
// affected.
func TestHardeningMaxMessage(t *testing.T) {
	g := startGateway(t, "-max-message", "1024")
	other := dial(t, g)
	hdExpectAck(other, map[string]any{"type": "join", "room": "r"})
	msg := func(n int) []byte {
		head, tail := `{"type":"send","room":"r","data":"`, `"}`
		return []byte(head + strings.Repeat("m", n-len(head)-len(tail)) + tail)
	}

	t.Run("1024 bytes pass", func(t *testing.T) {
		c := dial(t, g)
		hdExpectAck(c, map[string]any{"type": "join", "room": "r"})
		other.readType("presence")
		c.sendRaw(string(msg(1024)))
		if r := c.readType("ack"); r["type"] != "ack" {
			t.Fatalf("reply %v", r)
		}
		if m := other.readType("message"); len(m["data"].(string)) != 1024-len(`{"type":"send","room":"r","data":""}`) {
			t.Fatalf("delivered %v", m)
		}
	})
	t.Run("1025 bytes close 1009", func(t *testing.T) {
		c := dial(t, g)
		c.sendRaw(string(msg(1025)))
		ce := hdCloseError(t, c.ws, hdWait, nil)
		if ce.Code != 1009 || ce.Text != "message too big" {
			t.Fatalf("close %d %q, want 1009 \"message too big\"", ce.Code, ce.Text)
		}
	})
	t.Run("header announcing 1 TiB closes 1009 at once", func(t *testing.T) {
		r := hdRawOpen(t, g)
		hdr := []byte{0x81, 0x80 | 127, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4} // masked, 2^40 bytes, no body
		_ = r.nc.SetDeadline(time.Now().Add(hdWait))
		if _, err := r.nc.Write(hdr); err != nil {
			t.Fatal(err)
		}
		f, err := hdReadFrame(r.br)
		if err != nil || f.op != 8 {
			t.Fatalf("want a close frame, got %v %v", f, err)
		}
		if code, reason := f.closeCode(); code != 1009 || reason != "message too big" {
			t.Fatalf("close %d %q, want 1009", code, reason)
		}
	})
	t.Run("fragments adding up to 1200 bytes close 1009", func(t *testing.T) {
		r := hdRawOpen(t, g)
		_ = r.nc.SetDeadline(time.Now().Add(hdWait))
		part := bytes.Repeat([]byte("f"), 600)
		r.nc.Write(clientFrame(false, 0x1, part))
		r.nc.Write(clientFrame(true, 0x0, part))
		for {
			f, err := hdReadFrame(r.br)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			if f.op == 8 {
				if code, _ := f.closeCode(); code != 1009 {
					t.Fatalf("close %d, want 1009", code)
				}
				break
			}
		}
	})
	hdExpectAck(other, map[string]any{"type": "ping"})
	hdWaitSessions(t, g, 1)
}

// TestHardeningMaxHeaderBytes: with -max-header-bytes 1024 a longer request
// head gets 431, also while it is still arriving; a shorter one upgrades.
func TestHardeningMaxHeaderBytes(t *testing.T) {
	g := startGateway(t, "-max-header-bytes", "1024")
	withPad := func(n int) string {
		req := strings.Replace(upgradeRequest, "\r\n\r\n", "\r\nX-Pad: "+strings.Repeat("p", n)+"\r\n\r\n", 1)
		return req
	}
	t.Run("1500-byte head", func(t *testing.T) {
		r := dialRaw(t, g)
		r.write([]byte(withPad(1500 - len(upgradeRequest))))
		st, body := hdReadStatus(t, r.nc, hdWait)
		if st != 431 || body != "request head too large\n" {
			t.Fatalf("%d %q, want 431", st, body)
		}
	})
	t.Run("incomplete head over the limit", func(t *testing.T) {
		r := dialRaw(t, g)
		r.write([]byte("GET /ws HTTP/1.1\r\nX-Pad: " + strings.Repeat("p", 1100)))
		start := time.Now()
		st, _ := hdReadStatus(t, r.nc, 2*time.Second)
		if st != 431 {
			t.Fatalf("status %d, want 431", st)
		}
		t.Logf("431 after %v", time.Since(start))
	})
	t.Run("900-byte head upgrades", func(t *testing.T) {
		r := dialRaw(t, g)
		r.write([]byte(withPad(900 - len(upgradeRequest))))
		resp, err := http.ReadResponse(r.br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("%v %v, want 101", err, resp)
		}
	})
}

// TestHardeningSlowloris: with -handshake-timeout 500ms a client trickling
// its request head a byte at a time gets 408 and is closed, while other
// clients connect and chat meanwhile.
func TestHardeningSlowloris(t *testing.T) {
	g := startGateway(t, "-handshake-timeout", "500ms")
	const n = 20
	type result struct {
		status int
		took   time.Duration
		closed bool
		err    error
	}
	results := make(chan result, n)
	for i := 0; i < n; i++ {
		nc, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		go func() {
			start := time.Now()
			stop := make(chan struct{})
			go func() { // a byte every 50 ms, for ever
				head := "GET /ws HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 1000)
				for i := 0; i < len(head); i++ {
					if _, err := nc.Write([]byte{head[i]}); err != nil {
						return
					}
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}()
			defer close(stop)
			_ = nc.SetReadDeadline(time.Now().Add(hdWait))
			br := bufio.NewReader(nc)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				results <- result{err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			res := result{status: resp.StatusCode, took: time.Since(start)}
			if string(b) != "request timeout\n" {
				res.err = fmt.Errorf("body %q", b)
			}
			_, err = br.ReadByte()
			res.closed = errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
			results <- res
		}()
	}
	// Meanwhile, others get in and chat.
	a, b := dial(t, g), dial(t, g)
	hdExpectAck(a, map[string]any{"type": "join", "room": "r"})
	hdExpectAck(b, map[string]any{"type": "join", "room": "r"})
	hdExpectAck(a, map[string]any{"type": "send", "room": "r", "data": "hi"})
	b.readType("message")

	for i := 0; i < n; i++ {
		var r result
		select {
		case r = <-results:
		case <-time.After(2 * hdWait):
			t.Fatal("a slowloris connection was never answered")
		}
		if r.err != nil || r.status != 408 || !r.closed {
			t.Fatalf("slowloris: status %d, closed %v, err %v; want 408 and closed", r.status, r.closed, r.err)
		}
		// The gateway stamps deadlines with a coarse clock advanced by its
		// sweep (a quarter of the shortest timeout, 125 ms here), so the
		// 408 may come up to one sweep early or late.
		if r.took < 350*time.Millisecond || r.took > 2*time.Second {
			t.Errorf("408 after %v, want about 500ms", r.took)
		}
	}
	hdExpectAck(a, map[string]any{"type": "ping"})
}

// TestHardeningHalfOpen: with -ping-interval 400ms -ping-timeout 400ms a
// client that never answers is pinged, then closed with 1001 "ping
// timeout" after interval + timeout; a client that answers pings stays.
func TestHardeningHalfOpen(t *testing.T) {
	const interval, timeout = 400 * time.Millisecond, 400 * time.Millisecond
	g := startGateway(t, "-ping-interval", interval.String(), "-ping-timeout", timeout.String())

	alive := hdRawOpen(t, g)
	aliveDone := make(chan error, 1)
	stop := make(chan struct{})
	go func() { // answers every ping, nothing else
		pongs := 0
		for {
			_ = alive.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			f, err := hdReadFrame(alive.br)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				select {
				case <-stop:
					if pongs == 0 {
						aliveDone <- errors.New("the live client was never pinged")
					} else {
						aliveDone <- nil
					}
					return
				default:
					continue
				}
			}
			if err != nil {
				aliveDone <- fmt.Errorf("live client: %w", err)
				return
			}
			switch f.op {
			case 0x9:
				pongs++
				if _, err := alive.nc.Write(clientFrame(true, 0xA, f.payload)); err != nil {
					aliveDone <- err
					return
				}
			case 0x8:
				code, reason := f.closeCode()
				aliveDone <- fmt.Errorf("live client closed: %d %q", code, reason)
				return
			}
		}
	}()

	silent := hdRawOpen(t, g)
	start := time.Now()
	_ = silent.nc.SetReadDeadline(time.Now().Add(hdWait))
	var pingAt time.Duration
	for {
		f, err := hdReadFrame(silent.br)
		if err != nil {
			t.Fatalf("silent client: %v before a close frame", err)
		}
		if f.op == 0x9 && pingAt == 0 {
			pingAt = time.Since(start)
		}
		if f.op == 0x8 {
			took := time.Since(start)
			code, reason := f.closeCode()
			if code != 1001 || reason != "ping timeout" {
				t.Fatalf("close %d %q, want 1001 \"ping timeout\"", code, reason)
			}
			// Up to one sweep (100 ms here) early or late: the gateway
			// stamps activity with a coarse clock advanced by its sweep.
			if pingAt < interval-150*time.Millisecond {
				t.Errorf("pinged after %v, want after the %v interval", pingAt, interval)
			}
			if took < interval+timeout-150*time.Millisecond || took > interval+timeout+1500*time.Millisecond {
				t.Errorf("closed after %v, want about %v", took, interval+timeout)
			}
			t.Logf("silent client: pinged after %v, closed after %v", pingAt, took)
			break
		}
	}
	if _, err := hdReadFrame(silent.br); err == nil {
		t.Errorf("the silent connection stayed open after its close frame")
	}
	time.Sleep(interval + timeout) // another full period for the live one
	close(stop)
	select {
	case err := <-aliveDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hdWait):
		t.Fatal("live client reader did not stop")
	}
	_ = alive.nc.SetDeadline(time.Now().Add(hdWait))
	alive.nc.Write(clientFrame(true, 0x1, []byte(`{"type":"ping","id":7}`)))
	for {
		f, err := hdReadFrame(alive.br)
		if err != nil {
			t.Fatalf("live client after %v: %v", 2*(interval+timeout), err)
		}
		if f.op == 0x1 {
			if string(f.payload) != `{"type":"ack","id":7}` {
				t.Fatalf("reply %s", f.payload)
			}
			break
		}
		if f.op == 0x9 {
			alive.nc.Write(clientFrame(true, 0xA, f.payload))
		}
	}
}

// TestHardeningSocketIOFlood: on /socket.io/ the rate limits count every
// Socket.IO packet, Engine.IO pings included (docs/security.md,
// -rate-messages): a burst of events gets rate_limited acknowledgements,
// and floods of events, of Engine.IO pings or of CONNECT/DISCONNECT
// cycles are closed with 1008 while a native member keeps chatting.
func TestHardeningSocketIOFlood(t *testing.T) {
	g := startGateway(t, "-rate-messages", "5", "-rate-burst", "5")
	native := dial(t, g)
	hdExpectAck(native, map[string]any{"type": "join", "room": "r"})

	connect := func(t *testing.T) *hdSIO {
		s := hdSIODial(t, g, "", nil)
		s.send("40")
		if got := s.next(); !strings.HasPrefix(got, `40{"sid":"`) {
			t.Fatalf("CONNECT: %q", got)
		}
		return s
	}
	// flood writes packets as fast as it can and reads until the close
	// frame, or until 3 s have passed; it returns the close (nil if the
	// connection stayed open) and how many of each packet kind came back.
	flood := func(t *testing.T, s *hdSIO, packets []string) (*websocket.CloseError, map[string]int) {
		msgs := make([][]byte, len(packets))
		for i, p := range packets {
			msgs[i] = []byte(p)
		}
		done := hdFlood(s.ws, msgs)
		defer hdAwait(t, done, "the flood")
		seen := map[string]int{}
		_ = s.ws.SetReadDeadline(time.Now().Add(3 * time.Second))
		for {
			_, b, err := s.ws.ReadMessage()
			var ce *websocket.CloseError
			var ne net.Error
			switch {
			case errors.As(err, &ce):
				return ce, seen
			case errors.As(err, &ne) && ne.Timeout():
				return nil, seen
			case err != nil:
				t.Fatalf("connection ended without a close frame: %v", err)
			case string(b) == "3":
				seen["pong"]++
			case bytes.Contains(b, []byte(`"rate_limited"`)):
				seen["rate_limited"]++
			case bytes.HasPrefix(b, []byte("40")):
				seen["connect"]++
			case bytes.HasPrefix(b, []byte("43")):
				seen["ack"]++
			}
		}
	}
	// expect1008 checks the close of a flood.
	expect1008 := func(t *testing.T, ce *websocket.CloseError, what string, seen map[string]int) {
		t.Helper()
		switch {
		case ce == nil:
			t.Errorf("%s: the connection is still open 3 s later (replies: %v), want close 1008 \"rate limit exceeded\"", what, seen)
		case ce.Code != 1008 || ce.Text != "rate limit exceeded":
			t.Errorf("%s: close %d %q, want 1008 \"rate limit exceeded\"", what, ce.Code, ce.Text)
		}
	}
	hdRefill(time.Second)

	t.Run("burst of events", func(t *testing.T) {
		s := connect(t)
		for i := 0; i < 20; i++ {
			s.send(fmt.Sprintf(`42%d["ping"]`, i))
		}
		acks, limited := 0, 0
		for i := 0; i < 20; i++ {
			got := s.next()
			want := fmt.Sprintf(`43%d[`, i)
			switch {
			case got == want+`{"ok":true}]`:
				acks++
			case got == want+`{"error":{"code":"rate_limited","message":"too many messages, slow down"}}]`:
				limited++
			default:
				t.Fatalf("reply %d: %q", i, got)
			}
		}
		// The burst is 5; the CONNECT just before may have taken one.
		if acks < 4 || acks > 10 || limited < 10 {
			t.Errorf("%d acknowledged, %d rate_limited of 20", acks, limited)
		}
	})
	t.Run("events", func(t *testing.T) {
		s := connect(t)
		packets := make([]string, 2000)
		for i := range packets {
			packets[i] = fmt.Sprintf(`42%d["ping"]`, i)
		}
		ce, seen := flood(t, s, packets)
		expect1008(t, ce, "2000 events", seen)
	})
	t.Run("Engine.IO pings", func(t *testing.T) {
		s := connect(t)
		packets := make([]string, 2000)
		for i := range packets {
			packets[i] = "2"
		}
		ce, seen := flood(t, s, packets)
		expect1008(t, ce, "2000 Engine.IO pings", seen)
		if seen["pong"] > 10 {
			t.Errorf("%d Engine.IO pings of 2000 answered, want the burst (5)", seen["pong"])
		}
	})
	t.Run("CONNECT and DISCONNECT cycles", func(t *testing.T) {
		s := connect(t)
		packets := make([]string, 0, 2000)
		for len(packets) < 2000 {
			packets = append(packets, "41", "40")
		}
		ce, seen := flood(t, s, packets)
		expect1008(t, ce, "1000 CONNECT/DISCONNECT cycles", seen)
		if seen["connect"] > 10 {
			t.Errorf("%d chat sessions opened by 1000 CONNECTs, want the burst (5)", seen["connect"])
		}
	})
	hdExpectAck(native, map[string]any{"type": "ping"})
	hdWaitSessions(t, g, 1)
}
