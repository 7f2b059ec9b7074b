package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/metrics"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// A route on the default mux, which must not leak onto the admin port.
func init() {
	http.DefaultServeMux.HandleFunc("/admin-test-leak", func(http.ResponseWriter, *http.Request) {})
}

// get serves one request from h and returns status and body.
func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

func TestEndpoints(t *testing.T) {
	a := New(DefaultAddr, metrics.New(metrics.Options{}), quiet)
	tests := []struct {
		name   string
		method string
		path   string
		status int
		body   string // substring expected in the body
	}{
		{"healthz", "GET", "/healthz", 200, "ok"},
		{"healthz head", "HEAD", "/healthz", 200, ""},
		{"healthz post", "POST", "/healthz", 405, ""},
		{"metrics", "GET", "/metrics", 200, "chatgate_build_info{"},
		{"metrics go collector", "GET", "/metrics", 200, "go_goroutines "},
		{"pprof index", "GET", "/debug/pprof/", 200, "goroutine"},
		{"pprof goroutine", "GET", "/debug/pprof/goroutine?debug=1", 200, "goroutine profile:"},
		{"pprof heap", "GET", "/debug/pprof/heap?debug=1", 200, "heap profile:"},
		{"pprof cmdline", "GET", "/debug/pprof/cmdline", 200, ""},
		{"pprof symbol", "GET", "/debug/pprof/symbol", 200, "num_symbols"},
		{"index", "GET", "/", 200, "/readyz"},
		{"unknown", "GET", "/nope", 404, ""},
		{"default mux not served", "GET", "/admin-test-leak", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, a.Handler(), tt.method, tt.path)
			if status != tt.status {
				t.Fatalf("%s %s: status %d, want %d (%q)", tt.method, tt.path, status, tt.status, body)
			}
			if !strings.Contains(body, tt.body) {
				t.Errorf("%s %s: body %q lacks %q", tt.method, tt.path, body, tt.body)
			}
		})
	}
}

// scrapeValue returns the value of one unlabelled series from /metrics.
func scrapeValue(t *testing.T, h http.Handler, name string) string {
	t.Helper()
	_, body := get(t, h, "GET", "/metrics")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s not in scrape", name)
	return ""
}

func TestReadiness(t *testing.T) {
	a := New("", metrics.New(metrics.Options{}), quiet)
	h := a.Handler()
	steps := []struct {
		name     string
		do       func()
		status   int
		body     string
		ready    string
		draining string
	}{
		{"before start", func() {}, 503, "not ready\n", "0", "0"},
		{"ready", func() { a.SetReady(true) }, 200, "ready\n", "1", "0"},
		{"draining", func() { a.SetDraining(true) }, 503, "draining\n", "0", "1"},
		{"ready again while draining", func() { a.SetReady(true) }, 503, "draining\n", "0", "1"},
		{"drain cancelled", func() { a.SetDraining(false) }, 200, "ready\n", "1", "0"},
		{"not ready", func() { a.SetReady(false) }, 503, "not ready\n", "0", "0"},
	}
	for _, s := range steps {
		s.do()
		status, body := get(t, h, "GET", "/readyz")
		if status != s.status || body != s.body {
			t.Errorf("%s: /readyz = %d %q, want %d %q", s.name, status, body, s.status, s.body)
		}
		if got := a.Ready(); got != (s.status == 200) {
			t.Errorf("%s: Ready() = %v", s.name, got)
		}
		if v := scrapeValue(t, h, "chatgate_ready"); v != s.ready {
			t.Errorf("%s: chatgate_ready = %s, want %s", s.name, v, s.ready)
		}
		if v := scrapeValue(t, h, "chatgate_draining"); v != s.draining {
			t.Errorf("%s: chatgate_draining = %s, want %s", s.name, v, s.draining)
		}
	}
}

func TestStartShutdown(t *testing.T) {
	a := New("127.0.0.1:0", metrics.New(metrics.Options{}), quiet)
	if a.Addr() != nil {
		t.Fatal("Addr before Start")
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v, want ErrStarted", err)
	}
	a.SetReady(true)
	base := "http://" + a.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/debug/pprof/": 200} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("admin still serving after Shutdown")
	}
}

func TestStartBindError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a := New(ln.Addr().String(), nil, quiet)
	err = a.Start()
	if err == nil {
		t.Fatal("Start on a taken port succeeded")
	}
	if !strings.HasPrefix(err.Error(), "admin: listen ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
	if a.Addr() != nil {
		t.Error("Addr after a failed Start")
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after a failed Start: %v", err)
	}
}

func TestDisabled(t *testing.T) {
	m := metrics.New(metrics.Options{})
	a := New("", m, nil)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if a.Addr() != nil {
		t.Error("disabled admin has an address")
	}
	a.SetReady(true)
	if v := scrapeValue(t, m.Handler(), "chatgate_ready"); v != "1" {
		t.Errorf("chatgate_ready = %s with admin disabled, want 1", v)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestNilMetricsAndAdmin(t *testing.T) {
	a := New("", nil, quiet)
	a.SetReady(true)
	a.SetDraining(true)
	if status, _ := get(t, a.Handler(), "GET", "/metrics"); status != 404 {
		t.Errorf("/metrics without metrics: %d, want 404", status)
	}
	if status, _ := get(t, a.Handler(), "GET", "/healthz"); status != 200 {
		t.Errorf("/healthz without metrics: %d, want 200", status)
	}

	var none *Admin
	none.SetReady(true)
	none.SetDraining(true)
	if none.Ready() || none.Addr() != nil || none.Handler() != nil {
		t.Error("nil Admin reports state")
	}
	if err := none.Start(); err != nil {
		t.Error(err)
	}
	if err := none.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}
