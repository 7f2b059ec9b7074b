package e2e

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Identity text and HTTP syntax (docs/protocol.md "Names, strings and
// data", docs/security.md "Identity text", "HTTP request heads", "Behind
// a proxy"), each finding reproduced against the real binary.

// idBadNames are names with a control or format character, written as
// they go on the wire (JSON string contents).
var idBadNames = map[string]string{
	"NUL":              `a\u0000b`,
	"ANSI escape":      `\u001b[31mred\u001b[0m`,
	"RLO":              `\u202eevil`,
	"RLO raw":          "\u202eevil",
	"zero-width space": `ad\u200bmin`,
	"ZWJ":              "a\u200db",
	"BOM":              `\ufeffalice`,
	"C1":               `a\u0085b`,
	"isolate":          `\u2066a\u2069`,
}

// idReply sends one raw native request with id 1 and returns its reply.
func idReply(c *client, raw string) map[string]any {
	c.t.Helper()
	c.sendRaw(raw)
	for i := 0; i < 100; i++ {
		if m := c.read(); m["id"] == float64(1) {
			return m
		}
	}
	c.t.Fatalf("no reply to %s", raw)
	return nil
}

func idWantCode(t *testing.T, what string, m map[string]any, code string) {
	t.Helper()
	if m["type"] != "error" || m["code"] != code {
		t.Errorf("%s: reply %v, want error %s", what, m, code)
	}
}

func TestIdentityNickControlCharacters(t *testing.T) {
	g := startGateway(t)
	c := dial(t, g)
	for what, name := range idBadNames {
		idWantCode(t, "nick "+what, idReply(c, `{"type":"nick","id":1,"name":"`+name+`"}`), "invalid_name")
	}
	// Socket.IO goes through the same rule.
	s := sioDial(t, g, true)
	s.connect("40", "/")
	s.send(`421["nick","\u202eevil"]`)
	s.expect(`431[{"error":{"code":"invalid_name","message":"nickname must be valid text without control or format characters"}}]`)
	// Text that merely looks unusual is fine, U+FFFD included.
	if m := idReply(c, `{"type":"nick","id":1,"name":"\ufffd café 😀"}`); m["type"] != "ack" || m["name"] != "\ufffd café 😀" {
		t.Errorf("nick with U+FFFD: %v", m)
	}
}

func TestIdentityRoomControlCharacters(t *testing.T) {
	g := startGateway(t)
	c := dial(t, g)
	for what, room := range idBadNames {
		idWantCode(t, "join "+what, idReply(c, `{"type":"join","id":1,"room":"`+room+`"}`), "invalid_room")
		idWantCode(t, "send "+what, idReply(c, `{"type":"send","id":1,"room":"`+room+`","data":1}`), "invalid_room")
	}
	if m := c.request(map[string]any{"type": "rooms"}); len(m["rooms"].([]any)) != 0 {
		t.Errorf("rooms after refused joins: %v", m["rooms"])
	}
	// The server API applies the same rule.
	resp, err := http.Post("http://"+g.api+"/api/publish", "application/json", strings.NewReader(`{"room":"\u202eevil","data":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("API publish to a room with RLO: HTTP %d, want 400", resp.StatusCode)
	}
}

// TestIdentityLoneSurrogateRoom: "\ud800" and "\udfff" are refused, not
// collapsed to U+FFFD, so they never reach the room "\ufffd".
func TestIdentityLoneSurrogateRoom(t *testing.T) {
	g := startGateway(t)
	a, b := dial(t, g), dial(t, g)
	if m := idReply(a, `{"type":"join","id":1,"room":"\ufffd"}`); m["type"] != "ack" || m["count"] != float64(1) {
		t.Fatalf("join U+FFFD: %v", m)
	}
	for _, room := range []string{`\ud800`, `\udfff`, `x\udbff`, `\udc00\ud800`} {
		idWantCode(t, "join "+room, idReply(b, `{"type":"join","id":1,"room":"`+room+`"}`), "invalid_room")
		idWantCode(t, "send "+room, idReply(b, `{"type":"send","id":1,"room":"`+room+`","data":1}`), "invalid_room")
	}
	idWantCode(t, "nick", idReply(b, `{"type":"nick","id":1,"name":"\ud800"}`), "invalid_name")
	idWantCode(t, "to", idReply(b, `{"type":"send","id":1,"to":"\ud800","data":1}`), "bad_json")
	m := a.request(map[string]any{"type": "members", "room": "\ufffd"})
	if ms, _ := m["members"].([]any); len(ms) != 1 {
		t.Errorf("members of U+FFFD: %v, want only the one that joined it", m)
	}
	// Escaped pairs are text.
	if m := idReply(b, `{"type":"join","id":1,"room":"\ud83d\ude00"}`); m["type"] != "ack" || m["room"] != "😀" {
		t.Errorf("join of an escaped pair: %v", m)
	}
}

// TestIdentityRoomNFC: with -room-nfc the two spellings of "café" are one
// room.
func TestIdentityRoomNFC(t *testing.T) {
	g := startGateway(t, "-room-nfc")
	a, b := dial(t, g), dial(t, g)
	a.request(map[string]any{"type": "join", "room": "caf\u00e9"})
	m := b.request(map[string]any{"type": "join", "room": "cafe\u0301"})
	if m["type"] != "ack" || m["count"] != float64(2) || m["room"] != "caf\u00e9" {
		t.Fatalf("decomposed join: %v, want the composed room with 2 members", m)
	}
}

// TestIdentityMaxJSONDepth: data deeper than -max-json-depth is bad_json.
func TestIdentityMaxJSONDepth(t *testing.T) {
	g := startGateway(t, "-max-json-depth", "3")
	c := dial(t, g)
	c.request(map[string]any{"type": "join", "room": "r"})
	if m := idReply(c, `{"type":"send","id":1,"room":"r","data":[[["ok"]]]}`); m["type"] != "ack" {
		t.Errorf("depth 3: %v", m)
	}
	idWantCode(t, "depth 4", idReply(c, `{"type":"send","id":1,"room":"r","data":[[[[1]]]]}`), "bad_json")
}

// idHTTP sends raw bytes to the gateway and returns the response status.
func idHTTP(t *testing.T, addr, raw string) int {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestIdentityHeaderFieldSyntax: RFC 9112 §5.1 requires a 400 for
// whitespace between a field name and its colon; obs-fold and NUL/CR/LF in
// values are refused the same way.
func TestIdentityHeaderFieldSyntax(t *testing.T) {
	g := startGateway(t)
	for what, head := range map[string]string{
		"Host : x":     "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
		"obs-fold":     "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
		"NUL in value": "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
		"bare LF":      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\nX-B: b\r\n\r\n",
		"upgrade":      "GET /ws HTTP/1.1\r\nHost : x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	} {
		if st := idHTTP(t, g.addr, head); st != 400 {
			t.Errorf("%s: HTTP %d, want 400", what, st)
		}
	}
	if st := idHTTP(t, g.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); st != 200 {
		t.Errorf("well-formed head: HTTP %d, want 200", st)
	}
}

// TestIdentityGarbageForwardedFor: from a trusted proxy, X-Forwarded-For
// values that name no client count against the proxy's own address, so
// its third such session is refused with -max-connections-per-ip 2. The
// proxy's address comes from a PROXY header: loopback is never counted.
func TestIdentityGarbageForwardedFor(t *testing.T) {
	g := startGateway(t, "-max-connections-per-ip", "2", "-trusted-proxies", "192.0.2.0/24", "-proxy-protocol", "optional")
	upgrade := func(src, xff string) int {
		return idHTTP(t, g.addr, "PROXY TCP4 "+src+" 127.0.0.1 40000 80\r\n"+
			"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
			"X-Forwarded-For: "+xff+"\r\n\r\n")
	}
	for i, xff := range []string{"garbage", "", "1.2.3", "unknown"} {
		src := []string{"192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13"}[i]
		for n := 1; n <= 2; n++ {
			if st := upgrade(src, xff); st != 101 {
				t.Fatalf("X-Forwarded-For %q via %s, session %d: HTTP %d, want 101", xff, src, n, st)
			}
		}
		if st := upgrade(src, xff); st != 429 {
			t.Errorf("X-Forwarded-For %q via %s, session 3: HTTP %d, want 429 (counted against the proxy)", xff, src, st)
		}
	}
	// A named client is still counted as itself, not as the proxy.
	for n := 1; n <= 2; n++ {
		if st := upgrade("192.0.2.20", "203.0.113.7"); st != 101 {
			t.Fatalf("client session %d: HTTP %d", n, st)
		}
	}
	if st := upgrade("192.0.2.20", "203.0.113.8"); st != 101 {
		t.Errorf("another client through the same proxy: HTTP %d, want 101", st)
	}
}
