package load

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestAppendPublishBody(t *testing.T) {
	body := appendPublish(nil, 0, 123456789, 4, 64)
	var p struct {
		Room string          `json:"room"`
		Data json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // the API refuses unknown fields
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if p.Room != "r0" || len(p.Data) != 64 {
		t.Fatalf("room %q, %d bytes of data: %s", p.Room, len(p.Data), body)
	}
	// What a native member receives: the data relayed byte for byte.
	msg := []byte(`{"type":"message","room":"r0","from":"","data":` + string(p.Data) + `,"ts":1}`)
	if !isMessage(Native, msg) {
		t.Fatalf("not taken for a delivery: %s", msg)
	}
	if ts, k, ok := parseData(msg); !ok || ts != 123456789 || k != 4 {
		t.Fatalf("parseData = %d, %d, %v", ts, k, ok)
	}
}

func TestPublishURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:9091":             "http://127.0.0.1:9091/api/publish",
		"http://127.0.0.1:9091/":            "http://127.0.0.1:9091/api/publish",
		"http://127.0.0.1:9091/api/publish": "http://127.0.0.1:9091/api/publish",
		"http://127.0.0.1:9091/prefix":      "http://127.0.0.1:9091/prefix/api/publish",
	} {
		if got := publishURL(in); got != want {
			t.Errorf("publishURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeAPI answers publishes: 200, except every fifth request (500) and
// requests without the key (401). It checks each request's form and
// records how many were in flight at most.
type fakeAPI struct {
	t                  *testing.T
	key                string
	mu                 sync.Mutex
	bodies             [][]byte
	requests, failed   atomic.Int64
	inFlight, maxFlght atomic.Int64
	conns              sync.Map // remote addresses seen
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxFlght.Load()
		if n <= m || f.maxFlght.CompareAndSwap(m, n) {
			break
		}
	}
	f.conns.Store(r.RemoteAddr, true)
	i := f.requests.Add(1)
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/api/publish" || r.Header.Get("Content-Type") != "application/json" || !json.Valid(body) {
		f.t.Errorf("bad request %s %s %q %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"), body)
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // let requests overlap
	switch {
	case r.Header.Get("Authorization") != "apikey "+f.key:
		f.failed.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"code":"unauthorized","message":"bad key"}}`)
	case i%5 == 0:
		f.failed.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"code":"internal","message":"boom"}}`)
	default:
		_, _ = io.WriteString(w, `{"result":{}}`)
	}
}

// runAPIStep runs one API publishing step of a bare worker (no clients)
// and returns the worker's final event.
func runAPIStep(t *testing.T, url, key string, conc int, rate float64, dur time.Duration) (Event, *Worker) {
	t.Helper()
	var out bytes.Buffer
	w := NewWorker(&out)
	defer w.closeAll()
	w.prepare(7)
	w.run(context.Background(), RunCmd{
		Step:       7,
		Duration:   dur,
		Size:       64,
		RatePerPub: rate,
		Members:    []int{10},
		Slack:      2 * time.Millisecond,
		API:        &APIRun{URL: url, Key: key, Concurrency: conc},
	})
	var ev Event
	if err := json.Unmarshal(out.Bytes(), &ev); err != nil || ev.Ev != evSent {
		t.Fatalf("worker output %q: %v", out.String(), err)
	}
	return ev, w
}

func TestAPIPublisherCountsAnswers(t *testing.T) {
	f := &fakeAPI{t: t, key: "sekrit"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	const conc = 3
	ev, _ := runAPIStep(t, srv.URL, "sekrit", conc, 400, 300*time.Millisecond)
	total := f.requests.Load()
	// 400/s for 0.3 s: 120 due; the slots may hold a few back at the
	// end of a step on a busy machine, never add any.
	if total < 60 || total > 120 {
		t.Fatalf("%d requests, want about 120", total)
	}
	failed := f.failed.Load()
	if ev.Sent != uint64(total-failed) || ev.ServerErrs != uint64(failed) || ev.SendErrors != 0 {
		t.Fatalf("sent %d, error replies %d, send errors %d; server answered %d of %d with an error",
			ev.Sent, ev.ServerErrs, ev.SendErrors, failed, total)
	}
	if failed == 0 || !strings.Contains(strings.Join(ev.Errors, "\n"), "HTTP 500") {
		t.Fatalf("errors %q (%d failed)", ev.Errors, failed)
	}
	// The API is not a member: every member is owed each message.
	if ev.Expected != 10*ev.Sent {
		t.Fatalf("expected %d deliveries for %d messages to 10 members", ev.Expected, ev.Sent)
	}
	if m := f.maxFlght.Load(); m > conc || m < 1 {
		t.Fatalf("%d requests in flight at most, want 1..%d", m, conc)
	}
	n := 0
	f.conns.Range(func(_, _ any) bool { n++; return true })
	if n > conc {
		t.Fatalf("%d connections for %d requests in flight: not kept alive", n, conc)
	}
	// Every body is a publish of this step's data to room r0.
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.bodies {
		if _, k, ok := parseData(b); !ok || k != 7 || !bytes.HasPrefix(b, []byte(`{"room":"r0","data":`)) {
			t.Fatalf("body %s", b)
		}
	}
	// Publishing stopped with the step: nothing arrives afterwards.
	time.Sleep(50 * time.Millisecond)
	if got := f.requests.Load(); got != total {
		t.Fatalf("%d requests after the step ended, %d when it did", got, total)
	}
}

func TestAPIPublisherWrongKey(t *testing.T) {
	f := &fakeAPI{t: t, key: "right"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ev, _ := runAPIStep(t, srv.URL, "wrong", 2, 100, 100*time.Millisecond)
	if ev.Sent != 0 || ev.Expected != 0 || ev.ServerErrs == 0 || ev.ServerErrs != uint64(f.requests.Load()) {
		t.Fatalf("sent %d expected %d error replies %d of %d requests", ev.Sent, ev.Expected, ev.ServerErrs, f.requests.Load())
	}
	if !strings.Contains(strings.Join(ev.Errors, "\n"), "HTTP 401") {
		t.Fatalf("errors %q", ev.Errors)
	}
	// The step result charges them to the step.
	acc := newStepAcc(7, 1)
	ev.Worker = 0
	acc.add(ev)
	r := acc.result(100, 0.1, 0.1, 0)
	r.judge(50 * time.Millisecond)
	if r.Pass || r.ServerErrors != ev.ServerErrs || !strings.Contains(r.Why, "error replies") {
		t.Fatalf("step %+v", r)
	}
}

func TestAPIPublisherUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	ev, _ := runAPIStep(t, url, "", 2, 50, 100*time.Millisecond)
	if ev.Sent != 0 || ev.SendErrors == 0 || ev.ServerErrs != 0 {
		t.Fatalf("sent %d send errors %d error replies %d", ev.Sent, ev.SendErrors, ev.ServerErrs)
	}
}

func TestAPIPublisherConfig(t *testing.T) {
	cfg := Config{Scenario: ScenarioRooms, Addr: "127.0.0.1:1", Conns: 10, Publisher: PublisherAPI}
	if err := cfg.setDefaults(); err == nil {
		t.Fatal("rooms with -publisher api accepted")
	}
	cfg = Config{Scenario: ScenarioFanout, Addr: "127.0.0.1:1", Conns: 10, Publisher: "carrier-pigeon"}
	if err := cfg.setDefaults(); err == nil {
		t.Fatal("unknown publisher accepted")
	}
	cfg = Config{Scenario: ScenarioFanout, Addr: "127.0.0.1:1", Conns: 10, Publisher: PublisherAPI}
	if err := cfg.setDefaults(); err != nil || cfg.APIURL != DefaultAPIURL || cfg.APIConcurrency != 8 {
		t.Fatalf("defaults: %v, %q, %d", err, cfg.APIURL, cfg.APIConcurrency)
	}
	cfg = Config{Scenario: ScenarioFanout, Addr: "127.0.0.1:1", Conns: 10}
	if err := cfg.setDefaults(); err != nil || cfg.Publisher != PublisherWS {
		t.Fatalf("default publisher: %v, %q", err, cfg.Publisher)
	}
}
