package metrics

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// scrape serves one GET /metrics from m and returns every sample of the
// text exposition, keyed by its series as printed (name{labels}).
func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape: content type %q, want text exposition", ct)
	}
	samples := make(map[string]float64)
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("scrape: malformed line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

func TestScrapeValues(t *testing.T) {
	conns, sessions, rooms := 7, 5, 3
	m := New(Options{
		Version:     "v1.2.3",
		Connections: func() int { return conns },
		Sessions:    func() int { return sessions },
		Rooms:       func() int { return rooms },
	})

	before := scrape(t, m)
	// Every fixed label value is exported at 0 before anything happens, so
	// that rate() and alerts work from the first event.
	for _, series := range []string{
		`chatgate_connections_opened_total`,
		`chatgate_connections_closed_total{reason="tcp"}`,
		`chatgate_connections_closed_total{reason="1011"}`,
		`chatgate_connections_closed_total{reason="1012"}`,
		`chatgate_connections_closed_total{reason="other"}`,
		`chatgate_handshakes_total{transport="polling"}`,
		`chatgate_handshakes_failed_total{reason="proxy_protocol"}`,
		`chatgate_errors_total{code="rate_limited"}`,
		`chatgate_errors_total{code="other"}`,
		`chatgate_slow_consumers_total{action="closed"}`,
		`chatgate_slow_consumers_total{action="dropped"}`,
		`chatgate_messages_delivered_total`,
		`chatgate_ready`,
		`chatgate_draining`,
		`chatgate_room_members`,
		`chatgate_broadcast_fanout_size_count`,
		`chatgate_delivery_latency_seconds_count`,
	} {
		v, ok := before[series]
		if !ok {
			t.Errorf("series %s missing before any event", series)
		} else if v != 0 {
			t.Errorf("series %s = %v before any event, want 0", series, v)
		}
	}

	m.Opened()
	m.Opened()
	m.Opened()
	m.Closed(CloseCode(1000))
	m.Closed(CloseCode(4001))
	m.Closed(CloseTimeout)
	m.Handshake(TransportWebSocket)
	m.Handshake(TransportSocketIO)
	m.Handshake(TransportSocketIO)
	m.HandshakeFailed(HandshakeStatus(431))
	m.HandshakeFailed(HandshakeDraining)
	m.Joined()
	m.Joined()
	m.Left()
	m.MessagesReceived(4)
	m.MessagesDelivered(1000)
	m.BytesReceived(512)
	m.BytesSent(65536)
	m.Broadcast(3)
	m.Broadcast(30000)
	m.ObserveDeliveryLatency(300 * time.Microsecond)
	m.SlowConsumerClosed()
	m.SlowConsumerDropped()
	m.SlowConsumerDropped()
	m.Error("not_member")
	m.Error("no_such_key")
	m.SetReady(true)
	m.SetDraining(true)
	conns, sessions, rooms = 8, 6, 4

	got := scrape(t, m)
	want := map[string]float64{
		`chatgate_connections`:                                                        8,
		`chatgate_sessions`:                                                           6,
		`chatgate_rooms`:                                                              4,
		`chatgate_connections_opened_total`:                                           3,
		`chatgate_connections_closed_total{reason="1000"}`:                            1,
		`chatgate_connections_closed_total{reason="other"}`:                           1,
		`chatgate_connections_closed_total{reason="timeout"}`:                         1,
		`chatgate_connections_closed_total{reason="tcp"}`:                             0,
		`chatgate_handshakes_total{transport="websocket"}`:                            1,
		`chatgate_handshakes_total{transport="socketio"}`:                             2,
		`chatgate_handshakes_failed_total{reason="too_large"}`:                        1,
		`chatgate_handshakes_failed_total{reason="draining"}`:                         1,
		`chatgate_room_members`:                                                       1,
		`chatgate_messages_received_total`:                                            4,
		`chatgate_messages_delivered_total`:                                           1000,
		`chatgate_received_bytes_total`:                                               512,
		`chatgate_sent_bytes_total`:                                                   65536,
		`chatgate_broadcast_fanout_size_count`:                                        2,
		`chatgate_broadcast_fanout_size_sum`:                                          30003,
		`chatgate_broadcast_fanout_size_bucket{le="5"}`:                               1,
		`chatgate_broadcast_fanout_size_bucket{le="20000"}`:                           1,
		`chatgate_broadcast_fanout_size_bucket{le="50000"}`:                           2,
		`chatgate_broadcast_fanout_size_bucket{le="+Inf"}`:                            2,
		`chatgate_delivery_latency_seconds_count`:                                     1,
		`chatgate_delivery_latency_seconds_bucket{le="0.00025"}`:                      0,
		`chatgate_delivery_latency_seconds_bucket{le="0.0005"}`:                       1,
		`chatgate_slow_consumers_total{action="closed"}`:                              1,
		`chatgate_slow_consumers_total{action="dropped"}`:                             2,
		`chatgate_errors_total{code="not_member"}`:                                    1,
		`chatgate_errors_total{code="other"}`:                                         1,
		`chatgate_errors_total{code="bad_json"}`:                                      0,
		`chatgate_ready`:                                                              1,
		`chatgate_draining`:                                                           1,
		`chatgate_build_info{goversion="` + runtime.Version() + `",version="v1.2.3"}`: 1,
	}
	for series, w := range want {
		v, ok := got[series]
		if !ok {
			t.Errorf("series %s missing", series)
			continue
		}
		if v != w {
			t.Errorf("%s = %v, want %v", series, v, w)
		}
	}
	if v := got[`chatgate_delivery_latency_seconds_sum`]; v < 0.0002999 || v > 0.0003001 {
		t.Errorf("chatgate_delivery_latency_seconds_sum = %v, want 0.0003", v)
	}

	// The Go runtime and process collectors share the registry.
	for _, series := range []string{"go_goroutines", "go_threads", "process_open_fds", "process_max_fds", "process_resident_memory_bytes"} {
		if _, ok := got[series]; !ok && (runtime.GOOS == "linux" || strings.HasPrefix(series, "go_")) {
			t.Errorf("series %s missing", series)
		}
	}
	if _, ok := got[`go_sched_latencies_seconds_count`]; !ok {
		t.Error("scheduler latency histogram missing")
	}
}

func TestScrapeFuncsOptional(t *testing.T) {
	got := scrape(t, New(Options{}))
	for _, name := range []string{"chatgate_connections", "chatgate_sessions", "chatgate_rooms"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s exported without its func", name)
		}
	}
	found := false
	for series := range got {
		if strings.HasPrefix(series, `chatgate_build_info{`) {
			found = true
			if !strings.Contains(series, `version="`) || strings.Contains(series, `version=""`) {
				t.Errorf("build info without a version: %s", series)
			}
		}
	}
	if !found {
		t.Error("chatgate_build_info missing")
	}
}

// TestLint checks the names, types and help texts against the Prometheus
// conventions (promlint: units as suffixes, _total on counters, ...).
func TestLint(t *testing.T) {
	m := New(Options{
		Connections: func() int { return 0 },
		Sessions:    func() int { return 0 },
		Rooms:       func() int { return 0 },
	})
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, namespace+"_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Opened()
	m.Closed(CloseNormal)
	m.Handshake(TransportWebSocket)
	m.HandshakeFailed(HandshakeBadRequest)
	m.Joined()
	m.Left()
	m.MessagesReceived(1)
	m.MessagesDelivered(1)
	m.BytesReceived(1)
	m.BytesSent(1)
	m.Broadcast(1)
	m.ObserveDeliveryLatency(time.Millisecond)
	m.SlowConsumerClosed()
	m.SlowConsumerDropped()
	m.Error("bad_json")
	m.SetReady(true)
	m.SetDraining(true)
	if m.Registry() != nil {
		t.Error("nil Metrics has a registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Metrics handler: status %d, want 404", rec.Code)
	}
}

// TestOutOfRange checks that values outside the fixed sets neither panic nor
// create series: they count as "other" or are ignored.
func TestOutOfRange(t *testing.T) {
	m := New(Options{})
	m.Closed(CloseReason(200))
	m.HandshakeFailed(HandshakeFailure(200))
	m.Handshake(Transport(200))
	m.MessagesDelivered(-5)
	m.BytesSent(0)
	m.Broadcast(-1)
	m.ObserveDeliveryLatency(-time.Second)
	got := scrape(t, m)
	if v := got[`chatgate_connections_closed_total{reason="other"}`]; v != 1 {
		t.Errorf("closed other = %v, want 1", v)
	}
	if v := got[`chatgate_handshakes_failed_total{reason="other"}`]; v != 1 {
		t.Errorf("handshakes failed other = %v, want 1", v)
	}
	for series, v := range got {
		if v != 0 && (strings.HasPrefix(series, "chatgate_handshakes_total") ||
			strings.HasPrefix(series, "chatgate_messages_delivered_total") ||
			strings.HasPrefix(series, "chatgate_sent_bytes_total") ||
			strings.HasPrefix(series, "chatgate_broadcast_fanout_size_count") ||
			strings.HasPrefix(series, "chatgate_delivery_latency_seconds_count")) {
			t.Errorf("%s = %v, want 0", series, v)
		}
	}
}

func TestCloseCode(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{1000, "1000"}, {1001, "1001"}, {1002, "1002"}, {1003, "1003"},
		{1005, "1005"}, {1006, "tcp"}, {1007, "1007"}, {1008, "1008"},
		{1009, "1009"}, {1010, "other"}, {1011, "1011"}, {1012, "1012"}, {1015, "other"},
		{3008, "other"}, {4000, "other"}, {0, "other"}, {-1, "other"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			if got := CloseCode(tt.code).String(); got != tt.want {
				t.Errorf("CloseCode(%d) = %q, want %q", tt.code, got, tt.want)
			}
		})
	}
}

func TestHandshakeStatus(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{
		{400, "bad_request"}, {405, "bad_request"}, {411, "bad_request"}, {505, "bad_request"},
		{401, "unauthorized"}, {403, "forbidden"}, {404, "not_found"},
		{408, "timeout"}, {413, "too_large"}, {414, "too_large"},
		{431, "too_large"}, {426, "bad_upgrade"}, {429, "overloaded"},
		{503, "overloaded"}, {500, "other"}, {418, "other"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			if got := HandshakeStatus(tt.status).String(); got != tt.want {
				t.Errorf("HandshakeStatus(%d) = %q, want %q", tt.status, got, tt.want)
			}
		})
	}
}

func TestErrorIndex(t *testing.T) {
	for i, code := range errorCodes[:errOther] {
		t.Run(code, func(t *testing.T) {
			if got := errorIndex(code); got != i {
				t.Errorf("errorIndex(%q) = %d, want %d", code, got, i)
			}
		})
	}
	for _, code := range []string{"", "other", "BAD_JSON", "bad_json "} {
		if got := errorIndex(code); got != errOther {
			t.Errorf("errorIndex(%q) = %d, want other", code, got)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"websocket", TransportWebSocket.String(), "websocket"},
		{"socketio", TransportSocketIO.String(), "socketio"},
		{"polling", TransportPolling.String(), "polling"},
		{"transport out of range", Transport(9).String(), "unknown"},
		{"zero reason", CloseReason(0).String(), "tcp"},
		{"http", CloseHTTP.String(), "http"},
		{"reason out of range", CloseReason(99).String(), "other"},
		{"proxy", HandshakeProxyProtocol.String(), "proxy_protocol"},
		{"handshake rate", HandshakeRateLimited.String(), "rate_limited"},
		{"failure out of range", HandshakeFailure(99).String(), "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// TestConcurrent updates from many goroutines while scraping, for -race.
func TestConcurrent(t *testing.T) {
	m := New(Options{Sessions: func() int { return 1 }})
	const workers, n = 8, 1000
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range n {
				m.MessagesDelivered(2)
				m.BytesSent(10)
				m.Closed(CloseReason(i % int(numCloseReasons)))
				m.Broadcast(i)
			}
		}()
	}
	for range 3 {
		scrape(t, m)
	}
	for range workers {
		<-done
	}
	got := scrape(t, m)
	if v := got[`chatgate_messages_delivered_total`]; v != 2*workers*n {
		t.Errorf("messages delivered = %v, want %d", v, 2*workers*n)
	}
	if v := got[`chatgate_broadcast_fanout_size_count`]; v != workers*n {
		t.Errorf("broadcasts = %v, want %d", v, workers*n)
	}
}
