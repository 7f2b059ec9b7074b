package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chatgate/chatgate/apiclient"
	"github.com/chatgate/chatgate/proxy"
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
	return a, a.routes(t.TempDir(), "http://127.0.0.1:8080")
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
