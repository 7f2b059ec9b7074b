package netpoll

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/metrics"
)

// rateLimitedCount reads chatgate_handshakes_failed_total{reason="rate_limited"}.
func rateLimitedCount(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, `chatgate_handshakes_failed_total{reason="rate_limited"} `); ok {
			return v
		}
	}
	t.Fatal("no rate_limited series")
	return ""
}

// TestHandshakeRate: past the burst (the rate is far too low to refill
// during the test), an upgrade at /ws gets 503 with a Retry-After, counted
// as rate_limited; a /ws?limited=close client gets close 1013 with the
// delay in its reason instead.
func TestHandshakeRate(t *testing.T) {
	m := metrics.New(metrics.Options{})
	ts := startTestServer(t, Config{Metrics: m, Limits: limit.Config{HandshakeRate: 0.001, HandshakeBurst: 2}})
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for i := range 2 {
		c, _, err := d.Dial("ws://"+ts.addr+"/ws", nil)
		if err != nil {
			t.Fatalf("upgrade %d of the burst: %v", i, err)
		}
		defer c.Close()
	}
	_, resp, err := d.Dial("ws://"+ts.addr+"/ws", nil)
	if err == nil || resp == nil {
		t.Fatalf("upgrade past the burst: err %v, response %v; want a 503", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 {
		t.Fatalf("upgrade past the burst: status %d %q, want 503", resp.StatusCode, body)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > int(limit.MaxRetryAfter/time.Second)+1 {
		t.Fatalf("Retry-After %q, want whole seconds within the horizon", resp.Header.Get("Retry-After"))
	}
	if got := rateLimitedCount(t, m); got != "1" {
		t.Fatalf("rate_limited counted %s, want 1", got)
	}

	c, resp, err := d.Dial("ws://"+ts.addr+"/ws?limited=close", nil)
	if err != nil {
		t.Fatalf("limited=close: the upgrade should complete, got %v (status %v)", err, resp)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseTryAgainLater || !strings.HasPrefix(ce.Text, "retry-after=") {
		t.Fatalf("limited=close: read %v, want close 1013 retry-after=<ms>", err)
	}
	if ms, err := strconv.Atoi(strings.TrimPrefix(ce.Text, "retry-after=")); err != nil || ms < 1000 {
		t.Fatalf("limited=close: reason %q, want retry-after=<ms ≥ 1000>", ce.Text)
	}
	if got := rateLimitedCount(t, m); got != "2" {
		t.Fatalf("rate_limited counted %s, want 2", got)
	}
}

// TestHandshakeRateOffByDefault: with no rate, a burst of upgrades all pass.
func TestHandshakeRateOffByDefault(t *testing.T) {
	ts := startTestServer(t, Config{})
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for i := range 50 {
		c, _, err := d.Dial("ws://"+ts.addr+"/ws", nil)
		if err != nil {
			t.Fatalf("upgrade %d: %v", i, err)
		}
		c.Close()
	}
}

// TestRateLimitedResponsesShared: the prebuilt refusals are capped, so a
// protocol appending its own header lines never writes into the shared
// array.
func TestRateLimitedResponsesShared(t *testing.T) {
	rs := rateLimitedResponses()
	for i := 1; i < len(rs); i++ {
		r := rs[i]
		if r.Status != 503 || r.retryAfter != i || len(r.Header) != 1 || cap(r.Header) != 1 ||
			r.Header[0] != "Retry-After: "+strconv.Itoa(i) {
			t.Fatalf("refusal %d: %+v", i, r)
		}
	}
}

// TestHandshakeRateRefusalAllocatesNothing: in a storm, the check and the
// refusal it picks allocate nothing (the refusals are built once).
func TestHandshakeRateRefusalAllocatesNothing(t *testing.T) {
	if builtWithRace() {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	ts := startTestServer(t, Config{Limits: limit.Config{HandshakeRate: 0.001, HandshakeBurst: 1}})
	s := ts.srv
	s.handshakeRate() // the one token
	if allocs := testing.AllocsPerRun(1000, func() {
		if r := s.handshakeRate(); r == nil || r.Status != 503 {
			t.Fatal("not refused")
		}
	}); allocs != 0 {
		t.Fatalf("a refused handshake's check allocates %v times, want 0", allocs)
	}
}
