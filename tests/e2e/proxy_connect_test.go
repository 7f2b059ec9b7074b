package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// connectBackend is a real HTTP backend for -proxy-connect-url: the
// client's auth payload names what to answer ({"who":"ann"} accepts as
// user u-ann with nick ann in room hall; "bad" refuses; "kick"
// disconnects; "slow" answers only after release is closed). It records
// the bodies it got.
type connectBackend struct {
	srv     *httptest.Server
	release chan struct{}
	mu      sync.Mutex
	bodies  []map[string]any
}

func newConnectBackend(t *testing.T) *connectBackend {
	b := &connectBackend{release: make(chan struct{})}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		b.mu.Lock()
		b.bodies = append(b.bodies, body)
		b.mu.Unlock()
		who := ""
		if a, ok := body["auth"].(map[string]any); ok {
			who, _ = a["who"].(string)
		}
		switch who {
		case "bad":
			io.WriteString(w, `{"error":{"code":"forbidden","message":"go away"}}`)
		case "kick":
			io.WriteString(w, `{"disconnect":{"code":4100,"reason":"kicked"}}`)
		case "slow":
			<-b.release
			io.WriteString(w, `{"result":{}}`)
		default:
			io.WriteString(w, `{"result":{"user":"u-`+who+`","nick":"`+who+`","rooms":["hall"],"data":{"plan":"pro"}}}`)
		}
	}))
	t.Cleanup(func() {
		select {
		case <-b.release:
		default:
			close(b.release)
		}
		b.srv.Close()
	})
	return b
}

func (b *connectBackend) body(i int) map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i < len(b.bodies) {
		return b.bodies[i]
	}
	return nil
}

func wsAuthURL(g *gateway, who string) string {
	a, _ := json.Marshal(map[string]string{"who": who})
	return "ws://" + g.addr + "/ws?auth=" + url.QueryEscape(string(a))
}

// The backend's connect answer decides a native client's fate before its
// upgrade: accepted with the user, nick and rooms it set; refused with
// 401 and the backend's code and message; or upgraded and closed with the
// backend's code.
func TestProxyConnectNative(t *testing.T) {
	be := newConnectBackend(t)
	g := startGateway(t, "-proxy-connect-url", be.srv.URL, "-proxy-headers", "X-App-Version")

	t.Run("accepted", func(t *testing.T) {
		h := http.Header{"X-App-Version": {"7.1"}}
		ws, resp, err := websocket.DefaultDialer.Dial(wsAuthURL(g, "ann"), h)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		resp.Body.Close()
		c := &client{t: t, ws: ws}
		defer ws.Close()
		w := c.read()
		if w["type"] != "welcome" || w["user"] != "u-ann" {
			t.Fatalf("welcome %v, want user u-ann", w)
		}
		c.id = w["id"].(string)
		body := be.body(0)
		if body["client"] != c.id || body["protocol"] != "native" || body["transport"] != "websocket" {
			t.Fatalf("backend got %v", body)
		}
		if hd, _ := body["headers"].(map[string]any); hd["X-App-Version"] != "7.1" {
			t.Fatalf("backend got headers %v, want the allowlisted X-App-Version", body["headers"])
		}
		// The rooms the backend named are joined, and the nick is set.
		m := c.request(map[string]any{"type": "members", "room": "hall"})
		list, _ := m["members"].([]any)
		if m["type"] != "ack" || len(list) != 1 || list[0].(map[string]any)["nick"] != "ann" || list[0].(map[string]any)["user"] != "u-ann" {
			t.Fatalf("members of hall: %v", m)
		}
	})

	t.Run("refused", func(t *testing.T) {
		_, resp, err := websocket.DefaultDialer.Dial(wsAuthURL(g, "bad"), nil)
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Fatalf("dial: %v %v, want HTTP 401", err, resp)
		}
		defer resp.Body.Close()
		var body struct {
			Error struct{ Code, Message string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error.Code != "forbidden" || body.Error.Message != "go away" {
			t.Fatalf("401 body %+v (%v), want the backend's code and message", body, err)
		}
	})

	t.Run("disconnected", func(t *testing.T) {
		ws, resp, err := websocket.DefaultDialer.Dial(wsAuthURL(g, "kick"), nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		resp.Body.Close()
		c := &client{t: t, ws: ws}
		defer ws.Close()
		if code := c.readClose(); code != 4100 {
			t.Fatalf("close %d, want the backend's 4100", code)
		}
	})

	// While the backend thinks, nobody is welcomed and the gateway serves
	// others; the answer lets the waiting client in.
	t.Run("slow backend", func(t *testing.T) {
		type result struct {
			ws  *websocket.Conn
			err error
		}
		before := be.count()
		done := make(chan result, 1)
		go func() {
			ws, resp, err := websocket.DefaultDialer.Dial(wsAuthURL(g, "slow"), nil)
			if resp != nil {
				resp.Body.Close()
			}
			done <- result{ws, err}
		}()
		deadline := time.Now().Add(5 * time.Second)
		for be.count() <= before {
			if time.Now().After(deadline) {
				t.Fatal("the backend never got the slow connect")
			}
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case r := <-done:
			t.Fatalf("upgrade answered before the backend: %v", r.err)
		default:
		}
		other := dialAuth(t, g, "eve")
		if m := other.request(map[string]any{"type": "ping"}); m["type"] != "ack" {
			t.Fatalf("another client's ping: %v", m)
		}
		close(be.release)
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatalf("slow connect: %v", r.err)
			}
			defer r.ws.Close()
		case <-time.After(5 * time.Second):
			t.Fatal("no upgrade after the backend answered")
		}
	})
}

func (b *connectBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.bodies)
}

func dialAuth(t *testing.T, g *gateway, who string) *client {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(wsAuthURL(g, who), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	c.id = c.readType("welcome")["id"].(string)
	return c
}

// A Socket.IO CONNECT waits for the backend: accepted, the CONNECT ack
// carries the session id; refused, a CONNECT_ERROR carries the backend's
// message and code.
func TestProxyConnectSocketIO(t *testing.T) {
	be := newConnectBackend(t)
	g := startGateway(t, "-proxy-connect-url", be.srv.URL)

	ok := sioDial(t, g, true)
	ok.send(`40{"who":"sam"}`)
	ack := ok.nextText()
	if !strings.HasPrefix(ack, `40{"sid":"`) {
		t.Fatalf("CONNECT answer %q, want the ack", ack)
	}
	body := be.body(0)
	if body["protocol"] != "socketio" || body["namespace"] != "/" {
		t.Fatalf("backend got %v", body)
	}
	if a, _ := body["auth"].(map[string]any); a["who"] != "sam" {
		t.Fatalf("backend got auth %v", body["auth"])
	}

	bad := sioDial(t, g, true)
	bad.send(`40{"who":"bad"}`)
	got := bad.nextText()
	if got != `44{"message":"go away","data":{"code":"forbidden"}}` {
		t.Fatalf("CONNECT answer %q, want CONNECT_ERROR with the backend's message and code", got)
	}
}
