package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/apiclient"
)

// A live connection whose token expires is closed with 3003 unless the
// client refreshed it first; a refresh must name the same user. The
// gateway allows auth.DefaultLeeway (30 s) of clock skew, so the test
// signs an exp in the past that the handshake still accepts within the
// leeway and that runs out a moment later.
func TestTokenExpiryOnLiveConnections(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret)
	// exp 28 to 29 s ago (whole seconds): inside the 30 s leeway at the
	// handshake, past it one to two seconds later.
	soon := func() map[string]any {
		return hdWith(hdClaims("ann"), "exp", time.Now().Add(-28*time.Second).Unix())
	}

	t.Run("closed when it runs out", func(t *testing.T) {
		c, _ := hdOpen(t, g, "/ws?token="+hdHS256(t, soon()), nil)
		start := time.Now()
		if code := c.readClose(); code != 3003 {
			t.Fatalf("close %d, want 3003 token expired", code)
		}
		t.Logf("closed %v after the handshake", time.Since(start))
	})

	t.Run("refresh keeps it open", func(t *testing.T) {
		c, _ := hdOpen(t, g, "/ws?token="+hdHS256(t, soon()), nil)
		fresh := hdHS256(t, hdClaims("ann"))
		if m := c.request(map[string]any{"type": "refresh", "token": fresh}); m["type"] != "ack" {
			t.Fatalf("refresh: %v", m)
		}
		// Past the old token's end, the connection still answers.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if m := c.request(map[string]any{"type": "ping"}); m["type"] != "ack" {
				t.Fatalf("ping after the refresh: %v", m)
			}
		}
	})

	t.Run("refresh for another user refused", func(t *testing.T) {
		c, _ := hdOpen(t, g, "/ws?token="+hdHS256(t, hdClaims("ann")), nil)
		m := c.request(map[string]any{"type": "refresh", "token": hdHS256(t, hdClaims("mallory"))})
		if m["type"] != "error" || m["code"] != "forbidden" {
			t.Fatalf("refresh as another user: %v", m)
		}
		m = c.request(map[string]any{"type": "refresh", "token": "not.a.token"})
		if m["type"] != "error" || m["code"] != "unauthorized" {
			t.Fatalf("refresh with garbage: %v", m)
		}
	})
}

// A token's "publish" claim narrows where its holder may send: it may
// join a room its rooms claim allows and still be refused sending there.
func TestPublishClaim(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret)
	claims := hdWith(hdClaims("reader"), "rooms", []string{"news", "chat-*"}, "publish", []string{"chat-*"})
	c, _ := hdOpen(t, g, "/ws?token="+hdHS256(t, claims), nil)
	for _, room := range []string{"news", "chat-1"} {
		if m := c.request(map[string]any{"type": "join", "room": room}); m["type"] != "ack" {
			t.Fatalf("join %s: %v", room, m)
		}
	}
	if m := c.request(map[string]any{"type": "send", "room": "news", "data": "hi"}); m["type"] != "error" || m["code"] != "forbidden" {
		t.Fatalf("send to news (not in publish): %v", m)
	}
	if m := c.request(map[string]any{"type": "send", "room": "chat-1", "data": "hi"}); m["type"] != "ack" {
		t.Fatalf("send to chat-1: %v", m)
	}
}

// The server API's revoke closes a user's connections (3004) and refuses
// its reconnects, and a token id's, until the revocation runs out.
func TestRevoke(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret)
	api := apiclient.New("http://"+g.api, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	mal, _ := hdOpen(t, g, "/ws?token="+hdHS256(t, hdClaims("mallory")), nil)
	ann, _ := hdOpen(t, g, "/ws?token="+hdHS256(t, hdClaims("ann")), nil)
	var res struct {
		Disconnected int `json:"disconnected"`
	}
	if err := api.Call(ctx, "revoke", map[string]any{"user": "mallory", "ttl": 60}, &res); err != nil || res.Disconnected != 1 {
		t.Fatalf("revoke mallory: %+v %v", res, err)
	}
	if code := mal.readClose(); code != 3004 {
		t.Fatalf("mallory's close %d, want 3004 token revoked", code)
	}
	hdRefused(t, g, "/ws?token="+hdHS256(t, hdClaims("mallory")), nil, 401)
	if m := ann.request(map[string]any{"type": "ping"}); m["type"] != "ack" {
		t.Fatalf("ann after mallory's revocation: %v", m)
	}

	// A token id: that token is refused, another of the same user is not.
	stolen := hdHS256(t, hdWith(hdClaims("bob"), "jti", "t-123"))
	if err := api.Call(ctx, "revoke", map[string]any{"jti": "t-123"}, &res); err != nil {
		t.Fatalf("revoke jti: %v", err)
	}
	hdRefused(t, g, "/ws?token="+stolen, nil, 401)
	hdOpen(t, g, "/ws?token="+hdHS256(t, hdWith(hdClaims("bob"), "jti", "t-124")), nil)
}

// With -proxy-refresh-url an expired connection is not closed at once:
// the backend is asked, and an expire_at in the future lets it go on; an
// error closes it with 3003.
func TestTokenRefreshByBackend(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]int{}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Client, User string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		asked[body.User]++
		mu.Unlock()
		if body.User == "ann" {
			fmt.Fprintf(w, `{"result":{"expire_at":%d}}`, time.Now().Add(time.Minute).Unix())
			return
		}
		io.WriteString(w, `{"error":{"code":"expired","message":"log in again"}}`)
	}))
	defer be.Close()
	g := startGateway(t, "-jwt-secret", hdSecret, "-proxy-refresh-url", be.URL)
	soon := func(sub string) string {
		return hdHS256(t, hdWith(hdClaims(sub), "exp", time.Now().Add(-28*time.Second).Unix()))
	}
	ann, _ := hdOpen(t, g, "/ws?token="+soon("ann"), nil)
	bob, _ := hdOpen(t, g, "/ws?token="+soon("bob"), nil)
	if code := bob.readClose(); code != 3003 {
		t.Fatalf("bob's close %d, want 3003 after the backend refused", code)
	}
	// ann's token is past by now too, but the backend extended it.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if m := ann.request(map[string]any{"type": "ping"}); m["type"] != "ack" {
			t.Fatalf("ann after her extension: %v", m)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if asked["ann"] != 1 || asked["bob"] != 1 {
		t.Fatalf("backend asked %v, want once each", asked)
	}
}
