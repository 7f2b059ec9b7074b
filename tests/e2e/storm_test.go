package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHandshakeRateRefusesPastTheBurst: with -handshake-rate, the node
// admits its burst of new sessions and then answers every kind of
// handshake (a /ws upgrade, an Engine.IO polling open, a Socket.IO
// WebSocket upgrade) with 503 and a Retry-After, counted as rate_limited;
// sessions already open and plain HTTP go on; the per-address limit still
// holds (it is checked after the rate, so a hostile client ignoring
// Retry-After is refused by both).
func TestHandshakeRateRefusesPastTheBurst(t *testing.T) {
	// 0.001/s: no token comes back during the test.
	g := startGateway(t, "-handshake-rate", "0.001", "-handshake-burst", "4",
		"-trusted-proxies", "127.0.0.1/32", "-max-connections-per-ip", "2")
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	hostile := http.Header{"X-Forwarded-For": {"203.0.113.9"}}
	upgrade := func(path string, h http.Header) (*websocket.Conn, int, string) {
		t.Helper()
		c, resp, err := d.Dial("ws://"+g.addr+path, h)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c, 101, ""
		}
		if resp == nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, resp.StatusCode, resp.Header.Get("Retry-After")
	}
	// The burst: two sessions of the hostile address, its third refused by
	// the per-address limit (429; it took a token), one more from loopback.
	for i := range 2 {
		if _, st, _ := upgrade("/ws", hostile); st != 101 {
			t.Fatalf("hostile session %d: status %d, want 101", i, st)
		}
	}
	if _, st, _ := upgrade("/ws", hostile); st != 429 {
		t.Fatalf("third hostile session: status %d, want 429 (per-address limit)", st)
	}
	c, st, _ := upgrade("/ws", nil)
	if st != 101 {
		t.Fatalf("last session of the burst: status %d", st)
	}

	// Past the burst, every handshake kind is refused with Retry-After.
	checkRefused := func(what string, st int, ra string) {
		t.Helper()
		n, err := strconv.Atoi(ra)
		if st != 503 || err != nil || n < 1 || n > 61 {
			t.Fatalf("%s past the burst: status %d Retry-After %q, want 503 with 1..61 s", what, st, ra)
		}
	}
	_, st, ra := upgrade("/ws", nil)
	checkRefused("/ws upgrade", st, ra)
	_, st, ra = upgrade("/socket.io/?EIO=4&transport=websocket", nil)
	checkRefused("Socket.IO WebSocket upgrade", st, ra)
	resp, err := http.Get("http://" + g.addr + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	checkRefused("Engine.IO polling open", resp.StatusCode, resp.Header.Get("Retry-After"))
	// A client ignoring Retry-After gets the same answer every time.
	const hammer = 50
	for i := range hammer {
		if _, st, _ := upgrade("/ws", hostile); st != 503 {
			t.Fatalf("hammering attempt %d: status %d, want 503", i, st)
		}
	}

	// What is already open goes on.
	if st := httpStatus(t, "http://"+g.addr+"/healthz"); st != 200 {
		t.Fatalf("/healthz = %d while limiting", st)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":1}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("open session while limiting: %v", err)
		}
		if string(b) != "" && b[0] == '{' && bytes.Contains(b, []byte(`"type":"ack"`)) {
			break
		}
	}

	m := scrape(t, g)
	if got, want := m[`chatgate_handshakes_failed_total{reason="rate_limited"}`], float64(3+hammer); got != want {
		t.Fatalf("rate_limited = %v, want %v", got, want)
	}
	if got := m[`chatgate_handshakes_failed_total{reason="overloaded"}`]; got != 1 {
		t.Fatalf("overloaded = %v, want 1 (the per-address refusal)", got)
	}
}
