package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestHistoryOfNonMemberAskedOfBackend: with -proxy-join-url, a client
// that is not in a room may read its history when the backend would let
// it join. The backend gets the join call with "purpose":"history"; an
// allowed read does not make the client a member, and a refusal is the
// backend's error.
func TestHistoryOfNonMemberAskedOfBackend(t *testing.T) {
	type call struct {
		Client, Room, Purpose string
	}
	var mu sync.Mutex
	var calls []call
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var c call
		if err := json.Unmarshal(body, &c); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if c.Room == "secret" && c.Purpose == "history" {
			io.WriteString(w, `{"error":{"code":"forbidden","message":"staff only"}}`)
			return
		}
		io.WriteString(w, `{"result":{}}`)
	}))
	t.Cleanup(backend.Close)
	g := startGateway(t, "-proxy-join-url", backend.URL+"/join")
	last := func() call {
		mu.Lock()
		defer mu.Unlock()
		if len(calls) == 0 {
			return call{}
		}
		return calls[len(calls)-1]
	}

	member, reader := dial(t, g), dial(t, g)
	for _, room := range []string{"open", "secret"} {
		if r := member.request(map[string]any{"type": "join", "room": room}); r["type"] != "ack" {
			t.Fatalf("join %s: %v", room, r)
		}
		if c := last(); c.Purpose != "" || c.Room != room {
			t.Fatalf("a join was asked as %+v, want no purpose", c)
		}
		member.request(map[string]any{"type": "send", "room": room, "data": "hello " + room})
	}

	r := reader.request(map[string]any{"type": "history", "room": "open"})
	if r["type"] != "ack" || r["room"] != "open" {
		t.Fatalf("history of open by a non-member: %v", r)
	}
	msgs, _ := r["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["data"] != "hello open" {
		t.Fatalf("history of open: %v", r)
	}
	if c := last(); c.Client != reader.id || c.Room != "open" || c.Purpose != "history" {
		t.Fatalf("the backend was asked %+v, want reader's history read of open", c)
	}
	// Reading is not joining.
	if r := reader.request(map[string]any{"type": "members", "room": "open"}); r["code"] != "not_member" {
		t.Fatalf("members of open after a history read: %v", r)
	}

	r = reader.request(map[string]any{"type": "history", "room": "secret"})
	if r["type"] != "error" || r["code"] != "forbidden" || r["message"] != "staff only" {
		t.Fatalf("history of secret: %v", r)
	}
	if r := reader.request(map[string]any{"type": "ping"}); r["type"] != "ack" {
		t.Fatalf("the connection did not go on: %v", r)
	}
}
