package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chatgate/chatgate/apiclient"
	"github.com/chatgate/chatgate/proxy"
	"github.com/chatgate/chatgate/sioclient"
)

// fakeAPI is the gateway's server API with fixed rooms, members and
// connections; it records the calls that change something.
type fakeAPI struct {
	mu      sync.Mutex
	members map[string][]apiclient.Member
	conns   []apiclient.Connection
	calls   []string // "method body", in order
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "apikey k" {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"unauthorized","message":"bad key"}}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	f.mu.Lock()
	defer f.mu.Unlock()
	var result any = struct{}{}
	switch method {
	case "rooms":
		rooms := []apiclient.Room{}
		for _, name := range []string{"attic", "kitchen"} {
			if n := len(f.members[name]); n > 0 {
				rooms = append(rooms, apiclient.Room{Room: name, Count: n})
			}
		}
		result = map[string]any{"rooms": rooms}
	case "members":
		var p struct{ Room string }
		json.Unmarshal(body, &p)
		m := f.members[p.Room]
		if m == nil {
			m = []apiclient.Member{}
		}
		result = map[string]any{"members": m}
	case "connections":
		result = map[string]any{"connections": f.conns}
	case "batch":
		f.calls = append(f.calls, method+" "+string(body))
		result = map[string]any{"replies": []any{map[string]any{"result": map[string]any{"delivered": 1}}}}
	default:
		f.calls = append(f.calls, method+" "+string(body))
	}
	json.NewEncoder(w).Encode(map[string]any{"result": result})
}

func newTestApp(t *testing.T, f *fakeAPI, secret string) (*app, http.Handler) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	a := newApp(apiclient.New(srv.URL, "k"), secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(a.close)
	h, err := a.routes(t.TempDir(), "http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	return a, h
}

func post(h http.Handler, path, secret, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if secret != "" {
		r.Header.Set("X-Chatgate-Signature", proxy.Sign(secret, []byte(body)))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestSignature(t *testing.T) {
	body := []byte(`{"client":"c1"}`)
	good := proxy.Sign("s3cret", body)
	for _, c := range []struct {
		header string
		want   bool
	}{
		{good, true},
		{"", false},
		{strings.TrimPrefix(good, "sha256="), false},
		{proxy.Sign("other", body), false},
		{"sha256=zz", false},
	} {
		if got := validSignature([]byte("s3cret"), body, c.header); got != c.want {
			t.Errorf("validSignature(%q) = %v, want %v", c.header, got, c.want)
		}
	}
	_, h := newTestApp(t, &fakeAPI{}, "s3cret")
	ev := `{"client":"c1","event":"nickname","args":["bo"]}`
	if w := post(h, "/chatgate/event", "", ev); w.Code != http.StatusUnauthorized {
		t.Errorf("unsigned: %d", w.Code)
	}
	if w := post(h, "/chatgate/event", "wrong", ev); w.Code != http.StatusUnauthorized {
		t.Errorf("signed with another secret: %d", w.Code)
	}
	if w := post(h, "/chatgate/event", "s3cret", ev); w.Code != http.StatusOK {
		t.Errorf("signed: %d %s", w.Code, w.Body)
	}
}

func TestEvents(t *testing.T) {
	f := &fakeAPI{members: map[string][]apiclient.Member{
		"kitchen": {{Client: "c2", Nick: "bob"}},
	}}
	_, h := newTestApp(t, f, "")
	for _, c := range []struct{ name, body, want string }{
		{"enter_room", `{"client":"c1","nick":"alice","event":"enter_room","args":["kitchen"]}`,
			`{"result":{"ack":[],"commands":[{"join":"kitchen"},` +
				`{"emit":{"event":"welcome","args":["alice",2],"to":{"room":"kitchen"},"except_self":true}},` +
				`{"emit":{"event":"room_change","args":[["kitchen"]],"to":{"all":true}}}]}}`},
		{"enter_room of a new room, no nickname", `{"client":"c1","event":"enter_room","args":["attic"]}`,
			`{"result":{"ack":[],"commands":[{"join":"attic"},` +
				`{"emit":{"event":"welcome","args":["Anon",1],"to":{"room":"attic"},"except_self":true}},` +
				`{"emit":{"event":"room_change","args":[["attic","kitchen"]],"to":{"all":true}}}]}}`},
		{"enter_room of a bad name", `{"client":"c1","event":"enter_room","args":[""]}`,
			`{"error":{"code":"invalid_room","message":"a room name is 1 to 128 bytes of text"}}`},
		{"new_message", `{"client":"c1","nick":"alice","rooms":["kitchen"],"event":"new_message","args":["hi","kitchen"]}`,
			`{"result":{"ack":[],"commands":[{"emit":{"event":"new_message","args":["alice: hi"],"to":{"room":"kitchen"},"except_self":true}}]}}`},
		{"new_message outside the room", `{"client":"c1","nick":"alice","event":"new_message","args":["hi","kitchen"]}`,
			`{"error":{"code":"not_member","message":"not a member of this room"}}`},
		{"nickname", `{"client":"c1","event":"nickname","args":["alice"]}`,
			`{"result":{"ack":[],"commands":[{"set":{"nick":"alice"}}]}}`},
		{"nickname too long", `{"client":"c1","event":"nickname","args":["` + strings.Repeat("é", 33) + `"]}`,
			`{"error":{"code":"invalid_nick","message":"a nickname is 1 to 32 characters"}}`},
		{"another event", `{"client":"c1","event":"dance","args":[]}`,
			`{"error":{"code":"unknown_event","message":"no handler for the event \"dance\""}}`},
	} {
		w := post(h, "/chatgate/event", "", c.body)
		if got := strings.TrimSpace(w.Body.String()); w.Code != http.StatusOK || got != c.want {
			t.Errorf("%s: %d\n got %s\nwant %s", c.name, w.Code, got, c.want)
		}
	}
}

func TestDisconnect(t *testing.T) {
	// c2 (bob) closed, in the kitchen and the attic. The API still lists
	// him in the attic, alone (the close is reported before the gateway
	// has taken him out of his rooms): the attic counts as empty.
	f := &fakeAPI{
		members: map[string][]apiclient.Member{
			"kitchen": {{Client: "c1", Nick: "alice"}},
			"attic":   {{Client: "c2", Nick: "bob"}},
		},
		conns: []apiclient.Connection{{Client: "c1"}, {Client: "c2"}, {Client: "c3"}},
	}
	a, h := newTestApp(t, f, "")
	post(h, "/chatgate/event", "", `{"client":"c2","event":"nickname","args":["bob"]}`)
	w := post(h, "/chatgate/disconnect", "",
		`{"disconnects":[{"client":"c2","user":"","rooms":["kitchen","attic"],"reason":"1001"},{"client":"c9","user":"","rooms":[],"reason":"timeout"}]}`)
	if w.Code != http.StatusOK {
		t.Fatalf("disconnect: %d %s", w.Code, w.Body)
	}
	a.close() // waits for the batch to be handled
	send := func(client string) string {
		return `{"method":"send","params":{"client":"` + client + `","data":["kitchen"],"event":"room_change"}}`
	}
	want := []string{
		`publish {"room":"kitchen","data":"bob","event":"bye"}`,
		`publish {"room":"attic","data":"bob","event":"bye"}`,
		`batch {"commands":[` + send("c1") + `,` + send("c3") + `]}`,
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Join(f.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("API calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	if len(a.nicks) != 0 {
		t.Errorf("nicknames kept after the close: %v", a.nicks)
	}
}

// fakeGateway answers /socket.io/<name> as the gateway's sioclient
// package does (ETag, 304 for a matching If-None-Match, gzip on request)
// and records what reached it.
type fakeGateway struct {
	mu   sync.Mutex
	seen []*http.Request
}

const fakeETag = `"4.8.4"`

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.seen = append(g.seen, r.Clone(r.Context()))
	g.mu.Unlock()
	name, ok := strings.CutPrefix(r.URL.Path, "/socket.io/")
	if !ok || !slices.Contains(sioclient.Files, name) {
		http.Error(w, "not the bundle", http.StatusTeapot)
		return
	}
	h := w.Header()
	h.Set("ETag", fakeETag)
	h.Set("Cache-Control", "public, max-age=0")
	h.Set("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == fakeETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/javascript; charset=utf-8")
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		io.WriteString(w, "gzip of "+name)
		return
	}
	io.WriteString(w, "bundle "+name)
}

func (g *fakeGateway) requests() []*http.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.seen)
}

// TestClientFiles: the backend forwards the names the gateway serves.
func TestClientFiles(t *testing.T) {
	if !slices.Equal(clientFiles, sioclient.Files) {
		t.Errorf("clientFiles = %q, the gateway serves %q", clientFiles, sioclient.Files)
	}
}

// TestClientBundle: /socket.io/socket.io.js (and the other bundle files)
// on the backend's origin is the gateway's answer, headers and all, and
// nothing else under /socket.io/ reaches the gateway.
func TestClientBundle(t *testing.T) {
	g := &fakeGateway{}
	gw := httptest.NewServer(g)
	t.Cleanup(gw.Close)
	a := newApp(apiclient.New("http://127.0.0.1:1", "k"), "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(a.close)
	// A path in -gateway-url is the page's namespace, not a prefix.
	h, err := a.routes(t.TempDir(), gw.URL+"/chat")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, method, path string
		header             map[string]string
		status             int
		body               string
		forwarded          bool
		wantHeader         map[string]string
	}{
		{name: "GET socket.io.js", method: "GET", path: "/socket.io/socket.io.js",
			status: 200, body: "bundle socket.io.js", forwarded: true,
			wantHeader: map[string]string{"ETag": fakeETag, "Cache-Control": "public, max-age=0", "Content-Type": "application/javascript; charset=utf-8"}},
		{name: "GET a source map", method: "GET", path: "/socket.io/socket.io.min.js.map",
			status: 200, body: "bundle socket.io.min.js.map", forwarded: true},
		{name: "GET with a query", method: "GET", path: "/socket.io/socket.io.min.js?v=1",
			status: 200, body: "bundle socket.io.min.js", forwarded: true},
		{name: "HEAD", method: "HEAD", path: "/socket.io/socket.io.js",
			status: 200, forwarded: true, wantHeader: map[string]string{"ETag": fakeETag}},
		{name: "revalidation", method: "GET", path: "/socket.io/socket.io.js", header: map[string]string{"If-None-Match": fakeETag},
			status: 304, forwarded: true, wantHeader: map[string]string{"ETag": fakeETag}},
		{name: "stale validator", method: "GET", path: "/socket.io/socket.io.js", header: map[string]string{"If-None-Match": `"4.7.0"`},
			status: 200, body: "bundle socket.io.js", forwarded: true},
		{name: "gzip passes through", method: "GET", path: "/socket.io/socket.io.esm.min.js", header: map[string]string{"Accept-Encoding": "gzip"},
			status: 200, body: "gzip of socket.io.esm.min.js", forwarded: true,
			wantHeader: map[string]string{"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}},
		{name: "another name", method: "GET", path: "/socket.io/socket.io.cjs", status: 404},
		{name: "the Engine.IO endpoint", method: "GET", path: "/socket.io/?EIO=4&transport=polling", status: 404},
		{name: "POST", method: "POST", path: "/socket.io/socket.io.js", status: 405},
		{name: "the old copy is gone", method: "GET", path: "/socket.io-client/socket.io.min.js", status: 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(g.requests())
			r := httptest.NewRequest(c.method, "http://app.example"+c.path, nil)
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			if c.body != "" && w.Body.String() != c.body {
				t.Errorf("body %q, want %q", w.Body, c.body)
			}
			if c.status == 304 || c.method == "HEAD" {
				if w.Body.Len() != 0 {
					t.Errorf("body %q, want none", w.Body)
				}
			}
			for k, v := range c.wantHeader {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			seen := g.requests()[before:]
			if !c.forwarded {
				if len(seen) != 0 {
					t.Errorf("forwarded to the gateway: %s %s", seen[0].Method, seen[0].URL)
				}
				return
			}
			if len(seen) != 1 {
				t.Fatalf("%d requests reached the gateway, want 1", len(seen))
			}
			got := seen[0]
			if got.Method != c.method || got.URL.RequestURI() != c.path {
				t.Errorf("the gateway got %s %s, want %s %s", got.Method, got.URL.RequestURI(), c.method, c.path)
			}
			if want := strings.TrimPrefix(gw.URL, "http://"); got.Host != want {
				t.Errorf("Host %q, want the gateway's %q", got.Host, want)
			}
			if got.Header.Get("X-Forwarded-Host") != "app.example" || got.Header.Get("X-Forwarded-For") == "" {
				t.Errorf("X-Forwarded-Host %q, X-Forwarded-For %q", got.Header.Get("X-Forwarded-Host"), got.Header.Get("X-Forwarded-For"))
			}
			if _, ok := c.header["Accept-Encoding"]; !ok && got.Header.Get("Accept-Encoding") != "" {
				t.Errorf("the gateway got Accept-Encoding %q, which the client did not send", got.Header.Get("Accept-Encoding"))
			}
			for k, v := range c.header {
				if got.Header.Get(k) != v {
					t.Errorf("the gateway got %s %q, want %q", k, got.Header.Get(k), v)
				}
			}
		})
	}
}

// TestClientBundleGatewayDown: the page's script gets a 502, at once.
func TestClientBundleGatewayDown(t *testing.T) {
	gw := httptest.NewServer(http.NotFoundHandler())
	url := gw.URL
	gw.Close() // nothing listens there now
	a := newApp(apiclient.New(url, "k"), "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(a.close)
	h, err := a.routes(t.TempDir(), url)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/socket.io/socket.io.js", nil))
	if w.Code != http.StatusBadGateway {
		t.Errorf("status %d, want 502", w.Code)
	}
}

func TestGatewayURL(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:8080", "ws://127.0.0.1:8080", "http://", "http://[::1"} {
		a := newApp(apiclient.New("http://127.0.0.1:1", "k"), "", slog.New(slog.NewTextHandler(io.Discard, nil)))
		if _, err := a.routes(t.TempDir(), bad); err == nil {
			t.Errorf("-gateway-url %q accepted", bad)
		}
		a.close()
	}
}
