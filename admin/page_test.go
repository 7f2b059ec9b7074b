package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chatgate/chatgate/api"
	"github.com/chatgate/chatgate/metrics"
)

// fakeAPI stands in for *api.Server: fixed lists, and a record of calls.
type fakeAPI struct {
	conns   []connInfo
	rooms   []roomInfo
	failing string // a method that answers an error

	mu    sync.Mutex
	calls []string // "method params"
}

func (f *fakeAPI) Do(_ context.Context, method string, params []byte) (any, *api.Error) {
	f.mu.Lock()
	f.calls = append(f.calls, method+" "+string(params))
	f.mu.Unlock()
	if method == f.failing {
		return nil, &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeInternal, Message: "node n2 did not answer"}
	}
	switch method {
	case "info":
		return map[string]any{"nodes": []nodeInfo{{Node: "n1", Version: "1.2.3", Uptime: 61.5, Connections: len(f.conns), Rooms: len(f.rooms)}}}, nil
	case "rooms":
		return map[string]any{"rooms": f.rooms}, nil
	case "connections":
		return map[string]any{"connections": f.conns}, nil
	case "disconnect":
		var p struct {
			Client string `json:"client"`
		}
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: err.Error()}
		}
		n := 0
		if slices.ContainsFunc(f.conns, func(c connInfo) bool { return c.Client == p.Client }) {
			n = 1
		}
		return map[string]int{"disconnected": n}, nil
	}
	return nil, &api.Error{Status: http.StatusNotFound, Code: api.CodeUnknownMethod, Message: "unknown method"}
}

func (f *fakeAPI) called(method string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, method+" ") {
			out = append(out, c)
		}
	}
	return out
}

func newFake() *fakeAPI {
	return &fakeAPI{
		conns: []connInfo{
			{Client: "n1b", User: "bob", Nick: "Bobby", Rooms: []string{"lobby"}, Transport: "websocket", RemoteAddr: "10.0.0.2:4000", Node: "n1"},
			{Client: "n1a", User: "alice", Nick: "<img src=x onerror=alert(1)>", Rooms: []string{"lobby", "dev"}, Transport: "socket.io", RemoteAddr: "10.0.0.1:4000", Node: "n1"},
			{Client: "n1c", Nick: "carol", Transport: "websocket", Node: "n1"}, // rooms nil, as an empty list marshals from Go
		},
		rooms: []roomInfo{{Room: "dev", Count: 1}, {Room: "lobby", Count: 2}, {Room: "art", Count: 1}},
	}
}

// serve runs one request through h.
func serve(h http.Handler, method, path, auth, contentType, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func getState(t *testing.T, h http.Handler, path string) state {
	t.Helper()
	rec := serve(h, "GET", path, "", "", "")
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	var st state
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, rec.Body)
	}
	return st
}

func TestPageServed(t *testing.T) {
	a := New("", metrics.New(metrics.Options{}), quiet)
	files := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/admin/admin.js"></script>`},
		{"/admin/admin.js", "text/javascript; charset=utf-8", "/admin/state"},
		{"/admin/admin.css", "text/css; charset=utf-8", ".topbar"},
	}
	for _, f := range files {
		rec := serve(a.Handler(), "GET", f.path, "", "", "")
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d", f.path, rec.Code)
		}
		h := rec.Header()
		if got := h.Get("Content-Type"); got != f.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", f.path, got, f.contentType)
		}
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", f.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q allows unsafe sources", f.path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", f.path)
		}
		if !strings.Contains(rec.Body.String(), f.contains) {
			t.Errorf("GET %s: body lacks %q", f.path, f.contains)
		}
	}

	html := serve(a.Handler(), "GET", "/", "", "", "").Body.String()
	// No inline script or style (the CSP would block them), no resource
	// from elsewhere, and the operator's other endpoints are linked.
	if n, m := strings.Count(html, "<script"), strings.Count(html, `<script type="module" src="/`); n != 1 || m != 1 {
		t.Errorf("page has %d script elements, %d of them the module: want only the module", n, m)
	}
	for _, bad := range []string{" style=", "<style", " onclick=", `src="http`, `href="http`, `src="//`, `href="//`} {
		if strings.Contains(html, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, link := range []string{`href="/metrics"`, `href="/healthz"`, `href="/readyz"`, `href="/debug/pprof/"`} {
		if !strings.Contains(html, link) {
			t.Errorf("page lacks the link %s", link)
		}
	}
	// The script renders data as text only.
	js := serve(a.Handler(), "GET", "/admin/admin.js", "", "", "").Body.String()
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(js, bad) {
			t.Errorf("admin.js uses %s", bad)
		}
	}
	if status, _ := get(t, a.Handler(), "HEAD", "/"); status != 200 {
		t.Errorf("HEAD /: %d", status)
	}
}

func TestStateWithoutAPI(t *testing.T) {
	m := metrics.New(metrics.Options{})
	a := New("", m, quiet)
	m.MessagesReceived(3)
	m.MessagesDelivered(7)
	m.BytesSent(100)
	st := getState(t, a.Handler(), "/admin/state")
	if st.API || st.Actions {
		t.Errorf("api %v, actions %v without an API", st.API, st.Actions)
	}
	if st.Time <= 0 {
		t.Errorf("time %d", st.Time)
	}
	want := map[string]float64{"messages_received": 3, "messages_delivered": 7, "sent_bytes": 100, "received_bytes": 0, "connections_opened": 0}
	if fmt.Sprint(st.Counters) != fmt.Sprint(want) {
		t.Errorf("counters %v, want %v", st.Counters, want)
	}
	// The lists are empty arrays, never null, so the page need not check.
	raw := serve(a.Handler(), "GET", "/admin/state", "", "", "").Body.String()
	for _, field := range []string{`"nodes":[]`, `"rooms":[]`, `"connections":[]`, `"errors":[]`} {
		if !strings.Contains(raw, field) {
			t.Errorf("state %s lacks %s", raw, field)
		}
	}

	// Without metrics there are no counters; the page still loads.
	bare := New("", nil, quiet)
	if st := getState(t, bare.Handler(), "/admin/state"); st.Counters != nil {
		t.Errorf("counters %v without metrics", st.Counters)
	}
	if rec := serve(bare.Handler(), "GET", "/", "", "", ""); rec.Code != 200 {
		t.Errorf("GET / without metrics: %d", rec.Code)
	}

	// SetAPI(nil) keeps it unavailable.
	a.SetAPI(nil, "k")
	if st := getState(t, a.Handler(), "/admin/state"); st.API {
		t.Error("api after SetAPI(nil)")
	}
	var none *Admin
	none.SetAPI(newFake(), "k") // no panic
}

func TestStateShape(t *testing.T) {
	a := New("", metrics.New(metrics.Options{}), quiet)
	f := newFake()
	a.SetAPI(f, "")
	st := getState(t, a.Handler(), "/admin/state")
	if !st.API || st.Actions {
		t.Errorf("api %v, actions %v with an API and no key", st.API, st.Actions)
	}
	if len(st.Errors) != 0 {
		t.Errorf("errors %v", st.Errors)
	}
	if len(st.Nodes) != 1 || st.Nodes[0] != (nodeInfo{"n1", "1.2.3", 61.5, 3, 3}) {
		t.Errorf("nodes %+v", st.Nodes)
	}
	// Rooms: busiest first, then by name.
	if got := fmt.Sprint(st.Rooms); got != "[{lobby 2} {art 1} {dev 1}]" || st.RoomsTotal != 3 {
		t.Errorf("rooms %s (total %d)", got, st.RoomsTotal)
	}
	// Connections: sorted by id, every field carried, rooms never null.
	var ids []string
	for _, c := range st.Connections {
		ids = append(ids, c.Client)
	}
	if fmt.Sprint(ids) != "[n1a n1b n1c]" || st.ConnectionsTotal != 3 || st.ConnectionsMatched != 3 {
		t.Errorf("connections %v, total %d, matched %d", ids, st.ConnectionsTotal, st.ConnectionsMatched)
	}
	if c := st.Connections[0]; c.User != "alice" || c.Nick != "<img src=x onerror=alert(1)>" || c.Transport != "socket.io" ||
		c.RemoteAddr != "10.0.0.1:4000" || c.Node != "n1" || fmt.Sprint(c.Rooms) != "[lobby dev]" {
		t.Errorf("connection %+v", c)
	}
	raw := serve(a.Handler(), "GET", "/admin/state", "", "", "").Body.String()
	if !strings.Contains(raw, `"client":"n1c","user":"","nick":"carol","rooms":[]`) {
		t.Errorf("a connection without rooms: %s", raw)
	}
	// Only read-only methods, without a key, each once.
	for m, params := range map[string]string{"info": "{}", "rooms": `{"limit":1000}`, "connections": "{}"} {
		if got := f.called(m); len(got) != 2 || got[0] != m+" "+params {
			t.Errorf("%s calls %q", m, got)
		}
	}
	if got := f.called("disconnect"); len(got) != 0 {
		t.Errorf("state called %q", got)
	}

	// The filter: a case-insensitive substring of id, user, nickname or room.
	for q, want := range map[string]string{
		"n1b": "[n1b]", "ALICE": "[n1a]", "bobby": "[n1b]", "lob": "[n1a n1b]", "dev": "[n1a]",
		"carol": "[n1c]", "n1": "[n1a n1b n1c]", "nobody": "[]", "10.0.0.1": "[]", // the address is not searched
	} {
		st := getState(t, a.Handler(), "/admin/state?q="+q)
		var ids []string
		for _, c := range st.Connections {
			ids = append(ids, c.Client)
		}
		if got := fmt.Sprint(ids); got != want {
			t.Errorf("q=%s: %s, want %s", q, got, want)
		}
		if st.ConnectionsTotal != 3 || st.ConnectionsMatched != len(ids) {
			t.Errorf("q=%s: total %d, matched %d", q, st.ConnectionsTotal, st.ConnectionsMatched)
		}
	}
}

func TestStateCapsLists(t *testing.T) {
	f := &fakeAPI{}
	for i := range maxListed + 500 {
		f.conns = append(f.conns, connInfo{Client: fmt.Sprintf("c%05d", i), User: fmt.Sprintf("u%d", i%2)})
		f.rooms = append(f.rooms, roomInfo{Room: fmt.Sprintf("r%05d", i), Count: i})
	}
	a := New("", nil, quiet)
	a.SetAPI(f, "k")
	st := getState(t, a.Handler(), "/admin/state")
	if len(st.Connections) != maxListed || st.ConnectionsMatched != maxListed+500 || st.ConnectionsTotal != maxListed+500 {
		t.Errorf("listed %d, matched %d, total %d", len(st.Connections), st.ConnectionsMatched, st.ConnectionsTotal)
	}
	if st.Connections[0].Client != "c00000" || st.Connections[maxListed-1].Client != fmt.Sprintf("c%05d", maxListed-1) {
		t.Errorf("not the first connections by id: %s … %s", st.Connections[0].Client, st.Connections[maxListed-1].Client)
	}
	if len(st.Rooms) != maxListed || st.RoomsTotal != maxListed+500 || st.Rooms[0].Count != maxListed+499 {
		t.Errorf("rooms: listed %d, total %d, first %+v", len(st.Rooms), st.RoomsTotal, st.Rooms[0])
	}
	// The filter applies before the cap: the 750 matches of u1 run past
	// the first 1000 connections.
	st = getState(t, a.Handler(), "/admin/state?q=u1")
	if len(st.Connections) != 750 || st.ConnectionsMatched != 750 || st.ConnectionsTotal != maxListed+500 {
		t.Errorf("q=u1: listed %d, matched %d, total %d", len(st.Connections), st.ConnectionsMatched, st.ConnectionsTotal)
	}
	if st.Connections[len(st.Connections)-1].Client != fmt.Sprintf("c%05d", maxListed+499) {
		t.Errorf("q=u1: the last match is %s: the filter ran after the cap", st.Connections[len(st.Connections)-1].Client)
	}
}

func TestStateAPIError(t *testing.T) {
	f := newFake()
	f.failing = "connections"
	a := New("", nil, quiet)
	a.SetAPI(f, "")
	st := getState(t, a.Handler(), "/admin/state")
	if len(st.Errors) != 1 || !strings.HasPrefix(st.Errors[0], "connections: ") || !strings.Contains(st.Errors[0], "node n2 did not answer") {
		t.Errorf("errors %q", st.Errors)
	}
	if len(st.Connections) != 0 || len(st.Nodes) != 1 || len(st.Rooms) != 3 {
		t.Errorf("the other lists are served: %d nodes, %d rooms, %d connections", len(st.Nodes), len(st.Rooms), len(st.Connections))
	}
}

func TestActions(t *testing.T) {
	const key = "s3cret-key"
	const body = `{"client":"n1a"}`
	type answer struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Result struct {
			Disconnected *int `json:"disconnected"`
		} `json:"result"`
	}
	tests := []struct {
		name        string
		setup       func(a *Admin, f *fakeAPI)
		method      string
		path        string
		auth        string
		contentType string
		body        string
		status      int
		code        string // error code expected
		message     string // substring of the error message
		reached     bool   // the disconnect reached the API
	}{
		{"no API", func(*Admin, *fakeAPI) {}, "POST", "/admin/disconnect", "apikey " + key, "application/json", body, 503, "unavailable", "API unavailable", false},
		{"no key configured", func(a *Admin, f *fakeAPI) { a.SetAPI(f, "") }, "POST", "/admin/disconnect", "apikey " + key, "application/json", body, 403, "forbidden", "set -api-key to enable actions", false},
		{"no key configured, none sent", func(a *Admin, f *fakeAPI) { a.SetAPI(f, "") }, "POST", "/admin/disconnect", "", "application/json", body, 403, "forbidden", "set -api-key", false},
		{"no key configured, auth check", func(a *Admin, f *fakeAPI) { a.SetAPI(f, "") }, "POST", "/admin/auth", "apikey ", "application/json", "{}", 403, "forbidden", "set -api-key", false},
		{"missing key", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/disconnect", "", "application/json", body, 401, "unauthorized", "API key", false},
		{"wrong key", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/disconnect", "apikey wrong", "application/json", body, 401, "unauthorized", "API key", false},
		{"key prefix", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/disconnect", "apikey " + key[:5], "application/json", body, 401, "unauthorized", "", false},
		{"key with suffix", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/disconnect", "apikey " + key + "x", "application/json", body, 401, "unauthorized", "", false},
		{"other scheme", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/disconnect", "Bearer " + key, "application/json", body, 401, "unauthorized", "", false},
		{"wrong key, auth check", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/auth", "apikey nope", "application/json", "{}", 401, "unauthorized", "", false},
		{"right key, auth check", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/auth", "apikey " + key, "application/json", "{}", 204, "", "", false},
		{"form post", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/disconnect", "apikey " + key, "application/x-www-form-urlencoded", "client=n1a", 415, "bad_request", "application/json", false},
		{"bad body", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/disconnect", "apikey " + key, "application/json", `{"user":"alice"}`, 400, "bad_request", "client", false},
		{"empty client", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/disconnect", "apikey " + key, "application/json", `{"client":""}`, 400, "bad_request", "client", false},
		{"GET", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "GET", "/admin/disconnect", "apikey " + key, "", "", 405, "", "", false},
		{"disconnect", func(a *Admin, f *fakeAPI) { a.SetAPI(f, key) }, "POST", "/admin/disconnect", "apikey " + key, "application/json; charset=utf-8", body, 200, "", "", true},
		{"key set after the server started", func(a *Admin, f *fakeAPI) { a.SetAPI(f, ""); a.SetAPI(f, key) }, "POST", "/admin/disconnect", "apikey " + key, "application/json", body, 200, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New("", nil, quiet)
			f := newFake()
			tt.setup(a, f)
			rec := serve(a.Handler(), tt.method, tt.path, tt.auth, tt.contentType, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tt.status)
			}
			var ans answer
			if tt.code != "" {
				if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
					t.Fatalf("%v: %s", err, rec.Body)
				}
				if ans.Error.Code != tt.code || !strings.Contains(ans.Error.Message, tt.message) {
					t.Errorf("error %+v, want code %s and a message with %q", ans.Error, tt.code, tt.message)
				}
			}
			calls := f.called("disconnect")
			if !tt.reached {
				if len(calls) != 0 {
					t.Errorf("the API was called: %q", calls)
				}
				return
			}
			if len(calls) != 1 || calls[0] != `disconnect {"client":"n1a"}` {
				t.Errorf("disconnect calls %q", calls)
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || ans.Result.Disconnected == nil || *ans.Result.Disconnected != 1 {
				t.Errorf("answer %s (%v)", rec.Body, err)
			}
		})
	}
}

// An API connected while pages poll: no data race between SetAPI and the
// handlers (run with -race).
func TestSetAPIWhileServing(t *testing.T) {
	a := New("", metrics.New(metrics.Options{}), quiet)
	f := newFake()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				serve(a.Handler(), "GET", "/admin/state", "", "", "")
				serve(a.Handler(), "POST", "/admin/auth", "apikey k", "application/json", "{}")
			}
		})
	}
	for i := range 20 {
		a.SetAPI(f, []string{"", "k"}[i%2])
	}
	wg.Wait()
	if st := getState(t, a.Handler(), "/admin/state"); !st.API || !st.Actions {
		t.Errorf("after SetAPI(f, k): api %v, actions %v", st.API, st.Actions)
	}
}
