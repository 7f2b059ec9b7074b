package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/apiclient"
)

// The server API (POST /api/<method> on -api-addr) against one real
// gateway, called through package apiclient; native gorilla/websocket
// clients check what each method delivers, byte for byte where the API
// promises it, and that clients it does not target get nothing. Bad
// inputs get their status and stable code and the gateway keeps serving.
// The cluster-wide behaviour is in api_cluster_test.go; Socket.IO clients
// in tests/node/api.test.mjs.

// apiWait bounds each single wait of these tests.
const apiWait = 5 * time.Second

// apiTestKey is the API key of the tests that set one.
const apiTestKey = "e2e-api-key-0123456789abcdef"

// apiClientFor returns an API client for g's listener with key.
func apiClientFor(g *gateway, key string) *apiclient.Client {
	return apiclient.New("http://"+g.api, key, apiclient.WithTimeout(apiWait))
}

// apiCtx is the context of a test's API calls, ended with the test.
func apiCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apiUser connects a native client authenticated as sub (the gateway
// must run with -jwt-secret hdSecret).
func apiUser(t *testing.T, g *gateway, sub string) *client {
	t.Helper()
	c, w := hdOpen(t, g, "/ws?token="+hdHS256(t, hdClaims(sub)), nil)
	if w["user"] != sub {
		t.Fatalf("welcome %v, want user %q", w, sub)
	}
	return c
}

// apiJoin makes c join room itself and fails unless acknowledged.
func apiJoin(c *client, room string) {
	c.t.Helper()
	hdExpectAck(c, map[string]any{"type": "join", "room": room})
}

// apiExpect reads c's next message and fails unless it is the JSON object
// want exactly, plus (when stamped) a "ts" the server set between since
// and now. It returns the raw message.
func apiExpect(c *client, since time.Time, stamped bool, want string) []byte {
	c.t.Helper()
	raw := c.readRaw()
	var got, w map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		c.t.Fatalf("bad JSON %q: %v", raw, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		c.t.Fatalf("bad want %q: %v", want, err)
	}
	if stamped {
		ts, ok := got["ts"].(float64)
		if !ok {
			c.t.Fatalf("got %s, want a numeric ts", raw)
		}
		if int64(ts) < since.UnixMilli() || int64(ts) > time.Now().UnixMilli() {
			c.t.Fatalf("got %s: ts %d outside [%d, now]", raw, int64(ts), since.UnixMilli())
		}
		delete(got, "ts")
		if _, want := w["offset"]; !want && got["room"] != nil {
			// A room message's history offset: positive, else aside.
			if off, ok := got["offset"].(float64); !ok || off < 1 {
				c.t.Fatalf("got %s: want a positive offset on a room message", raw)
			}
			delete(got, "offset")
		}
	}
	if got["type"] == "joined" && w["offset"] == nil {
		// A server-side join carries the room's history position.
		if off, ok := got["offset"].(float64); !ok || off < 0 {
			c.t.Fatalf("got %s: want the room's offset", raw)
		}
		if ep, ok := got["epoch"].(string); !ok || len(ep) != 12 {
			c.t.Fatalf("got %s: want the room's epoch", raw)
		}
		delete(got, "offset")
		delete(got, "epoch")
	}
	if !reflect.DeepEqual(got, w) {
		c.t.Fatalf("got %s, want %s (ts and offset aside)", raw, want)
	}
	return raw
}

// apiMsg expects a message stamped since since (see apiExpect).
func apiMsg(c *client, since time.Time, want string) []byte {
	c.t.Helper()
	return apiExpect(c, since, true, want)
}

// apiEvent expects a message without ts (joined, left, presence).
func apiEvent(c *client, want string) {
	c.t.Helper()
	apiExpect(c, time.Time{}, false, want)
}

// apiQuiet proves that c got nothing it was not meant to: a marker sent
// to c through the API must be the very next message (the gateway keeps
// one connection's messages in order), and nothing may follow it for a
// short while. Reading times out, so it is the last step on c.
func apiQuiet(t *testing.T, api *apiclient.Client, c *client) {
	t.Helper()
	marker := fmt.Sprintf(`{"marker":%q}`, c.id)
	since := time.Now()
	n, err := api.Send(apiCtx(t), apiclient.ClientTarget(c.id), json.RawMessage(marker))
	if err != nil || n != 1 {
		t.Fatalf("marker to %s: delivered %d, %v", c.id, n, err)
	}
	apiMsg(c, since, `{"type":"message","from":"","nick":"","data":`+marker+`}`)
	c.expectNothing(200 * time.Millisecond)
}

// apiWantErr fails unless err is an *apiclient.Error with status and code.
func apiWantErr(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var e *apiclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: err %v (%T), want *apiclient.Error %d %s", what, err, err, status, code)
	}
	if e.Status != status || e.Code != code || e.Message == "" {
		t.Fatalf("%s: %+v, want status %d code %q and a message", what, *e, status, code)
	}
}

// apiPost sends body to g's API at path by hand and returns the status,
// the error code of the answer ("" for a result), the raw answer and its
// header. Every answer must be JSON and not cacheable.
func apiPost(t *testing.T, g *gateway, method, path string, hdr http.Header, body []byte) (int, string, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+g.api+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	hc := http.Client{Timeout: apiWait}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Fatalf("%s %s: Content-Type %q, Cache-Control %q; want application/json, no-store (body %q)", method, path, ct, cc, raw)
	}
	var ans struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, raw, err)
	}
	switch {
	case ans.Error != nil && ans.Result == nil:
		if ans.Error.Code == "" || ans.Error.Message == "" {
			t.Fatalf("%s %s: error without code or message: %s", method, path, raw)
		}
		return resp.StatusCode, ans.Error.Code, string(raw), resp.Header
	case ans.Error == nil && ans.Result != nil:
		return resp.StatusCode, "", string(raw), resp.Header
	}
	t.Fatalf("%s %s: answer %s is neither a result nor an error", method, path, raw)
	return 0, "", "", nil
}

// apiStep runs step f of a test as a subtest and stops the test if it
// failed: the later steps read the same clients and would only report the
// first failure again.
func apiStep(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		t.FailNow()
	}
}

// TestAPIPublishAndBroadcast: publish reaches every member of the room as
// a message from "" with the data byte for byte (and "event" when given),
// broadcast reaches the members of each room; members of other rooms and
// clients in no room get nothing.
func TestAPIPublishAndBroadcast(t *testing.T) {
	g := startGateway(t, "-presence=false")
	api, ctx := apiClientFor(g, ""), apiCtx(t)
	a, b, c, d, e := dial(t, g), dial(t, g), dial(t, g), dial(t, g), dial(t, g)
	apiJoin(a, "r1")
	apiJoin(b, "r1")
	apiJoin(b, "r2")
	apiJoin(c, "r2")
	apiJoin(d, "r3")
	// e is in no room.

	apiStep(t, "publish", func(t *testing.T) {
		data := `{"text":"héllo","n":[1,2.50,{"k":null}],"e":"\u00e9"}`
		since := time.Now()
		if err := api.Publish(ctx, "r1", json.RawMessage(data)); err != nil {
			t.Fatal(err)
		}
		for _, m := range []*client{a, b} {
			raw := apiMsg(m, since, `{"type":"message","room":"r1","from":"","nick":"","data":`+data+`}`)
			if !bytes.Contains(raw, []byte(`"data":`+data+`,`)) {
				t.Fatalf("data not passed byte for byte: %s", raw)
			}
		}
	})
	apiStep(t, "publish with event", func(t *testing.T) {
		since := time.Now()
		if err := api.Publish(ctx, "r1", "maintenance", apiclient.WithEvent("announce")); err != nil {
			t.Fatal(err)
		}
		for _, m := range []*client{a, b} {
			apiMsg(m, since, `{"type":"message","room":"r1","from":"","nick":"","data":"maintenance","event":"announce"}`)
		}
	})
	apiStep(t, "publish to a room without members", func(t *testing.T) {
		if err := api.Publish(ctx, "nobody-here", 1); err != nil {
			t.Fatal(err)
		}
	})
	apiStep(t, "broadcast", func(t *testing.T) {
		since := time.Now()
		if err := api.Broadcast(ctx, []string{"r1", "r2", "empty"}, map[string]int{"n": 7}); err != nil {
			t.Fatal(err)
		}
		apiMsg(a, since, `{"type":"message","room":"r1","from":"","nick":"","data":{"n":7}}`)
		// b is in both rooms: one message per room, in the order given.
		apiMsg(b, since, `{"type":"message","room":"r1","from":"","nick":"","data":{"n":7}}`)
		apiMsg(b, since, `{"type":"message","room":"r2","from":"","nick":"","data":{"n":7}}`)
		apiMsg(c, since, `{"type":"message","room":"r2","from":"","nick":"","data":{"n":7}}`)
	})
	apiStep(t, "broadcast with event", func(t *testing.T) {
		since := time.Now()
		if err := api.Broadcast(ctx, []string{"r2"}, []any{true, nil}, apiclient.WithEvent("tick")); err != nil {
			t.Fatal(err)
		}
		for _, m := range []*client{b, c} {
			apiMsg(m, since, `{"type":"message","room":"r2","from":"","nick":"","data":[true,null],"event":"tick"}`)
		}
	})
	// Nothing else reached anyone: not the members of r3, not e, and no
	// duplicates to the targets.
	for _, m := range []*client{a, b, c, d, e} {
		apiQuiet(t, api, m)
	}
}

// TestAPISend: send reaches one connection by id, or every connection of
// a user, as a message from "" without room; it reports how many it
// reached, 0 for a missing client or user; nobody else gets anything.
func TestAPISend(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret, "-presence=false")
	api, ctx := apiClientFor(g, ""), apiCtx(t)
	anon := dial(t, g)
	u1, u2 := apiUser(t, g, "ursula"), apiUser(t, g, "ursula")
	v := apiUser(t, g, "victor")
	apiJoin(v, "lobby")
	apiJoin(u1, "lobby")

	apiStep(t, "to a client", func(t *testing.T) {
		since := time.Now()
		n, err := api.Send(ctx, apiclient.ClientTarget(anon.id), json.RawMessage(`{"k":"direct","v":1e3}`))
		if err != nil || n != 1 {
			t.Fatalf("delivered %d, %v; want 1", n, err)
		}
		raw := apiMsg(anon, since, `{"type":"message","from":"","nick":"","data":{"k":"direct","v":1e3}}`)
		if !bytes.Contains(raw, []byte(`"data":{"k":"direct","v":1e3}`)) {
			t.Fatalf("data not passed byte for byte: %s", raw)
		}
	})
	apiStep(t, "to an authenticated client, with event", func(t *testing.T) {
		since := time.Now()
		n, err := api.Send(ctx, apiclient.ClientTarget(u2.id), "psst", apiclient.WithEvent("whisper"))
		if err != nil || n != 1 {
			t.Fatalf("delivered %d, %v; want 1", n, err)
		}
		apiMsg(u2, since, `{"type":"message","from":"","nick":"","data":"psst","event":"whisper"}`)
	})
	apiStep(t, "to a user", func(t *testing.T) {
		since := time.Now()
		n, err := api.Send(ctx, apiclient.UserTarget("ursula"), map[string]string{"to": "all of ursula"})
		if err != nil || n != 2 {
			t.Fatalf("delivered %d, %v; want 2", n, err)
		}
		for _, m := range []*client{u1, u2} {
			apiMsg(m, since, `{"type":"message","from":"","nick":"","data":{"to":"all of ursula"}}`)
		}
	})
	apiStep(t, "to a missing client", func(t *testing.T) {
		n, err := api.Send(ctx, apiclient.ClientTarget("zz-nobody"), 1)
		if err != nil || n != 0 {
			t.Fatalf("delivered %d, %v; want 0, nil", n, err)
		}
	})
	apiStep(t, "to a missing user", func(t *testing.T) {
		n, err := api.Send(ctx, apiclient.UserTarget("nobody"), 1)
		if err != nil || n != 0 {
			t.Fatalf("delivered %d, %v; want 0, nil", n, err)
		}
	})
	for _, m := range []*client{anon, u1, u2, v} {
		apiQuiet(t, api, m)
	}
}

// TestAPIJoinLeave: a server join tells the client ({"type":"joined"})
// and the room's members (presence), and the client then gets the room's
// messages; a server leave tells it {"type":"left"} and it gets them no
// more. A repeated join or leave changes nothing; a user's connections
// move together; a missing client or user is not_found.
func TestAPIJoinLeave(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret)
	api, ctx := apiClientFor(g, ""), apiCtx(t)
	x, y := dial(t, g), dial(t, g)
	apiJoin(y, "room")

	apiStep(t, "join", func(t *testing.T) {
		if err := api.Join(ctx, apiclient.ClientTarget(x.id), "room"); err != nil {
			t.Fatal(err)
		}
		apiEvent(x, `{"type":"joined","room":"room","count":2}`)
		apiEvent(y, `{"type":"presence","room":"room","event":"join","id":"`+x.id+`","nick":"","count":2}`)
		// Again: success, and nothing new for anyone (the next messages are
		// the publish below).
		if err := api.Join(ctx, apiclient.ClientTarget(x.id), "room"); err != nil {
			t.Fatal(err)
		}
		since := time.Now()
		if err := api.Publish(ctx, "room", "after join"); err != nil {
			t.Fatal(err)
		}
		for _, m := range []*client{x, y} {
			apiMsg(m, since, `{"type":"message","room":"room","from":"","nick":"","data":"after join"}`)
		}
		// x is a member for the chat protocol too.
		if r := hdExpectAck(x, map[string]any{"type": "members", "room": "room"}); len(r["members"].([]any)) != 2 {
			t.Fatalf("members seen by x: %v", r)
		}
	})
	apiStep(t, "leave", func(t *testing.T) {
		if err := api.Leave(ctx, apiclient.ClientTarget(x.id), "room"); err != nil {
			t.Fatal(err)
		}
		apiEvent(x, `{"type":"left","room":"room","count":1}`)
		apiEvent(y, `{"type":"presence","room":"room","event":"leave","id":"`+x.id+`","nick":"","count":1}`)
		// Leaving a room the client is not in: success, nothing sent.
		if err := api.Leave(ctx, apiclient.ClientTarget(x.id), "room"); err != nil {
			t.Fatal(err)
		}
		since := time.Now()
		if err := api.Publish(ctx, "room", "after leave"); err != nil {
			t.Fatal(err)
		}
		apiMsg(y, since, `{"type":"message","room":"room","from":"","nick":"","data":"after leave"}`)
		hdExpectError(x, map[string]any{"type": "send", "room": "room", "data": 1}, "not_member")
	})
	apiStep(t, "a user's connections", func(t *testing.T) {
		u1, u2 := apiUser(t, g, "uma"), apiUser(t, g, "uma")
		if err := api.Join(ctx, apiclient.UserTarget("uma"), "team"); err != nil {
			t.Fatal(err)
		}
		// The two joins run on their connections' own loops: one of them
		// was first (count 1), the other second (count 2).
		counts := map[float64]bool{}
		for _, m := range []*client{u1, u2} {
			j := m.readType("joined")
			if _, ok := j["offset"].(float64); !ok || j["epoch"] == nil {
				t.Fatalf("joined: %v, want the room's history position", j)
			}
			if j["room"] != "team" || len(j) != 5 {
				t.Fatalf("joined: %v", j)
			}
			counts[j["count"].(float64)] = true
		}
		if !counts[1] || !counts[2] {
			t.Fatalf("joined counts %v, want 1 and 2", counts)
		}
		ms, err := api.Members(ctx, "team")
		if err != nil || len(ms) != 2 {
			t.Fatalf("members of team: %+v, %v", ms, err)
		}
		if err := api.Leave(ctx, apiclient.UserTarget("uma"), "team"); err != nil {
			t.Fatal(err)
		}
		counts = map[float64]bool{}
		for _, m := range []*client{u1, u2} {
			l := m.readType("left")
			if l["room"] != "team" || len(l) != 3 {
				t.Fatalf("left: %v", l)
			}
			counts[l["count"].(float64)] = true
		}
		if !counts[0] || !counts[1] {
			t.Fatalf("left counts %v, want 1 and 0", counts)
		}
		if rs, err := api.Rooms(ctx, "team"); err != nil || len(rs) != 0 {
			t.Fatalf("rooms after leave: %+v, %v", rs, err)
		}
	})
	apiStep(t, "not found", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"join a missing client", func() error { return api.Join(ctx, apiclient.ClientTarget("zz-nobody"), "room") }},
			{"join a missing user", func() error { return api.Join(ctx, apiclient.UserTarget("nobody"), "room") }},
			{"leave a missing client", func() error { return api.Leave(ctx, apiclient.ClientTarget("zz-nobody"), "room") }},
			{"leave a missing user", func() error { return api.Leave(ctx, apiclient.UserTarget("nobody"), "room") }},
		} {
			apiWantErr(t, tc.name, tc.call(), http.StatusNotFound, apiclient.CodeNotFound)
		}
		if ms, err := api.Members(ctx, "room"); err != nil || len(ms) != 1 || ms[0].Client != y.id {
			t.Fatalf("members of room: %+v, %v; want only y", ms, err)
		}
	})
	apiQuiet(t, api, x)
	apiQuiet(t, api, y)
}

// TestAPIJoinLimits: a server join is not restricted by the token's rooms
// claim, but -max-rooms holds: a connection already in as many rooms is
// skipped, and a join no connection could carry out is bad_request.
func TestAPIJoinLimits(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret, "-max-rooms", "1", "-presence=false")
	api, ctx := apiClientFor(g, ""), apiCtx(t)
	c, _ := hdOpen(t, g, "/ws?token="+hdHS256(t, hdWith(hdClaims("rita"), "rooms", []string{"allowed"})), nil)
	hdExpectError(c, map[string]any{"type": "join", "room": "elsewhere"}, "forbidden")

	if err := api.Join(ctx, apiclient.ClientTarget(c.id), "elsewhere"); err != nil {
		t.Fatalf("server join outside the rooms claim: %v", err)
	}
	apiEvent(c, `{"type":"joined","room":"elsewhere","count":1}`)
	err := api.Join(ctx, apiclient.ClientTarget(c.id), "second")
	apiWantErr(t, "join past -max-rooms", err, http.StatusBadRequest, apiclient.CodeBadRequest)
	if !strings.Contains(err.Error(), "too_many_rooms") {
		t.Errorf("join past -max-rooms: %v, want the message to name too_many_rooms", err)
	}

	// One of mo's connections is full, the other joins.
	m1, m2 := apiUser(t, g, "mo"), apiUser(t, g, "mo")
	apiJoin(m1, "full")
	if err := api.Join(ctx, apiclient.UserTarget("mo"), "team"); err != nil {
		t.Fatal(err)
	}
	apiEvent(m2, `{"type":"joined","room":"team","count":1}`)
	if ms, err := api.Members(ctx, "team"); err != nil || len(ms) != 1 || ms[0].Client != m2.id {
		t.Fatalf("members of team: %+v, %v; want only m2", ms, err)
	}
	for _, x := range []*client{c, m1, m2} {
		apiQuiet(t, api, x)
	}
}

// TestAPIDisconnect: disconnect closes the target's connections with the
// close code and reason given (4000 "disconnected by server" by default)
// and reports how many; codes outside 4000–4999 are refused; other
// clients stay connected.
func TestAPIDisconnect(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret, "-presence=false")
	api, ctx := apiClientFor(g, ""), apiCtx(t)
	bystander := dial(t, g)
	apiJoin(bystander, "r")

	// closed expects c's next frame to be the close with code and reason.
	closed := func(t *testing.T, c *client, code int, reason string) {
		t.Helper()
		ce := hdCloseError(t, c.ws, apiWait, func(b []byte) { t.Fatalf("message before the close: %s", b) })
		if ce.Code != code || ce.Text != reason {
			t.Fatalf("close %d %q, want %d %q", ce.Code, ce.Text, code, reason)
		}
	}
	apiStep(t, "default code and reason", func(t *testing.T) {
		c := dial(t, g)
		apiJoin(c, "r")
		n, err := api.Disconnect(ctx, apiclient.ClientTarget(c.id), 0, "")
		if err != nil || n != 1 {
			t.Fatalf("disconnected %d, %v; want 1", n, err)
		}
		closed(t, c, 4000, "disconnected by server")
	})
	apiStep(t, "code and reason", func(t *testing.T) {
		c := dial(t, g)
		n, err := api.Disconnect(ctx, apiclient.ClientTarget(c.id), 4999, "bye now")
		if err != nil || n != 1 {
			t.Fatalf("disconnected %d, %v; want 1", n, err)
		}
		closed(t, c, 4999, "bye now")
	})
	apiStep(t, "a user's connections", func(t *testing.T) {
		d1, d2 := apiUser(t, g, "dora"), apiUser(t, g, "dora")
		n, err := api.Disconnect(ctx, apiclient.UserTarget("dora"), 4403, "banned")
		if err != nil || n != 2 {
			t.Fatalf("disconnected %d, %v; want 2", n, err)
		}
		closed(t, d1, 4403, "banned")
		closed(t, d2, 4403, "banned")
	})
	apiStep(t, "missing targets", func(t *testing.T) {
		for _, who := range []apiclient.Target{apiclient.ClientTarget("zz-nobody"), apiclient.UserTarget("nobody")} {
			if n, err := api.Disconnect(ctx, who, 0, ""); err != nil || n != 0 {
				t.Fatalf("%+v: disconnected %d, %v; want 0, nil", who, n, err)
			}
		}
	})
	apiStep(t, "refused codes and reasons", func(t *testing.T) {
		for _, code := range []int{1000, 3999, 5000, -1} {
			_, err := api.Disconnect(ctx, apiclient.ClientTarget(bystander.id), code, "")
			apiWantErr(t, fmt.Sprint("code ", code), err, http.StatusBadRequest, apiclient.CodeBadRequest)
		}
		_, err := api.Disconnect(ctx, apiclient.ClientTarget(bystander.id), 4000, strings.Repeat("r", 124))
		apiWantErr(t, "124-byte reason", err, http.StatusBadRequest, apiclient.CodeBadRequest)
	})
	// Only the bystander is left, and it is unaffected.
	eventually(t, apiWait, "the disconnected connections ended", func() bool {
		cs, err := api.Connections(ctx, "")
		return err == nil && len(cs) == 1 && cs[0].Client == bystander.id
	})
	if rs, err := api.Rooms(ctx, ""); err != nil || !reflect.DeepEqual(rs, []apiclient.Room{{Room: "r", Namespace: "/", Count: 1}}) {
		t.Fatalf("rooms: %+v, %v", rs, err)
	}
	apiQuiet(t, api, bystander)
}

// TestAPIReadMethods: rooms (with a prefix), members, connections (all,
// one user's) and info describe exactly what is connected.
func TestAPIReadMethods(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret, "-node", "s1", "-presence=false")
	api, ctx := apiClientFor(g, ""), apiCtx(t)
	p := apiUser(t, g, "pat")
	hdExpectAck(p, map[string]any{"type": "nick", "name": "patty"})
	apiJoin(p, "chat-a")
	apiJoin(p, "chat-b")
	q := dial(t, g)
	apiJoin(q, "chat-a")
	apiJoin(q, "other")
	for _, c := range []*client{p, q} {
		if !strings.HasPrefix(c.id, "s1") {
			t.Fatalf("connection id %q does not start with the node tag s1", c.id)
		}
	}

	apiStep(t, "rooms", func(t *testing.T) {
		for prefix, want := range map[string][]apiclient.Room{
			"":        {{Room: "chat-a", Namespace: "/", Count: 2}, {Room: "chat-b", Namespace: "/", Count: 1}, {Room: "other", Namespace: "/", Count: 1}},
			"chat-":   {{Room: "chat-a", Namespace: "/", Count: 2}, {Room: "chat-b", Namespace: "/", Count: 1}},
			"other":   {{Room: "other", Namespace: "/", Count: 1}},
			"zzz":     {},
			"chat-aa": {},
		} {
			got, err := api.Rooms(ctx, prefix)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || len(want) > 0 && !reflect.DeepEqual(got, want) {
				t.Errorf("rooms %q: %+v, want %+v", prefix, got, want)
			}
		}
	})
	apiStep(t, "members", func(t *testing.T) {
		want := []apiclient.Member{
			{Client: p.id, User: "pat", Nick: "patty", Node: "s1"},
			{Client: q.id, User: "", Nick: "", Node: "s1"},
		}
		sort.Slice(want, func(i, j int) bool { return want[i].Client < want[j].Client })
		got, err := api.Members(ctx, "chat-a")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("members of chat-a: %+v, %v; want %+v (sorted by id)", got, err, want)
		}
		if got, err := api.Members(ctx, "no-such-room"); err != nil || len(got) != 0 {
			t.Fatalf("members of no-such-room: %+v, %v; want none", got, err)
		}
	})
	apiStep(t, "connections", func(t *testing.T) {
		pc := apiclient.Connection{Client: p.id, User: "pat", Nick: "patty", Rooms: []string{"chat-a", "chat-b"},
			Namespace: "/", Transport: "websocket", RemoteAddr: "127.0.0.1", Node: "s1"}
		qc := apiclient.Connection{Client: q.id, Rooms: []string{"chat-a", "other"},
			Namespace: "/", Transport: "websocket", RemoteAddr: "127.0.0.1", Node: "s1"}
		want := []apiclient.Connection{pc, qc}
		sort.Slice(want, func(i, j int) bool { return want[i].Client < want[j].Client })
		got, err := api.Connections(ctx, "")
		for _, c := range got {
			sort.Strings(c.Rooms)
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("connections: %+v, %v; want %+v", got, err, want)
		}
		got, err = api.Connections(ctx, "pat")
		if err != nil || len(got) != 1 {
			t.Fatalf("connections of pat: %+v, %v", got, err)
		}
		sort.Strings(got[0].Rooms)
		if !reflect.DeepEqual(got[0], pc) {
			t.Fatalf("connections of pat: %+v, want %+v", got[0], pc)
		}
		if got, err := api.Connections(ctx, "nobody"); err != nil || len(got) != 0 {
			t.Fatalf("connections of nobody: %+v, %v", got, err)
		}
	})
	apiStep(t, "info", func(t *testing.T) {
		nodes, err := api.Info(ctx)
		if err != nil || len(nodes) != 1 {
			t.Fatalf("info: %+v, %v; want one node", nodes, err)
		}
		n := nodes[0]
		if n.Node != "s1" || n.Version == "" || n.Connections != 2 || n.Rooms != 3 || n.Uptime <= 0 || n.Uptime > 600 {
			t.Fatalf("info: %+v; want node s1, a version, 2 connections, 3 rooms, 0 < uptime < 600 s", n)
		}
	})
	apiQuiet(t, api, p)
	apiQuiet(t, api, q)
}

// TestAPIBatch: batch runs its commands in order, each with its own
// result or error, and does not nest.
func TestAPIBatch(t *testing.T) {
	g := startGateway(t, "-presence=false")
	api, ctx := apiClientFor(g, ""), apiCtx(t)
	a, b := dial(t, g), dial(t, g)
	apiJoin(a, "b1")

	since := time.Now()
	replies, err := api.Batch(ctx,
		apiclient.Command{Method: "publish", Params: apiclient.PublishParams{Room: "b1", Data: "one"}},
		apiclient.Command{Method: "send", Params: apiclient.SendParams{Target: apiclient.ClientTarget(a.id), Data: "two"}},
		apiclient.Command{Method: "rooms"},
		apiclient.Command{Method: "nope"},
		apiclient.Command{Method: "publish", Params: apiclient.PublishParams{Room: "", Data: 1}},
		apiclient.Command{Method: "batch", Params: map[string]any{"commands": []any{}}},
		apiclient.Command{Method: "join", Params: apiclient.MembershipParams{Target: apiclient.ClientTarget("zz-nobody"), Room: "b1"}},
		apiclient.Command{Method: "send", Params: apiclient.SendParams{Target: apiclient.ClientTarget("zz-nobody"), Data: 3}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != 8 {
		t.Fatalf("%d replies, want 8: %+v", len(replies), replies)
	}
	results := []string{`{}`, `{"delivered":1}`, `{"rooms":[{"room":"b1","namespace":"/","count":1}]}`, "", "", "", "", `{"delivered":0}`}
	codes := []string{"", "", "", apiclient.CodeUnknownMethod, apiclient.CodeBadRequest, apiclient.CodeBadRequest, apiclient.CodeNotFound, ""}
	for i, r := range replies {
		switch {
		case codes[i] != "":
			if r.Result != nil || r.Error == nil || r.Error.Code != codes[i] || r.Error.Message == "" {
				t.Errorf("reply %d: %s %+v, want error %s", i, r.Result, r.Error, codes[i])
			}
		default:
			if r.Error != nil || string(r.Result) != results[i] {
				t.Errorf("reply %d: %s %+v, want result %s", i, r.Result, r.Error, results[i])
			}
		}
	}
	if r := replies[5].Error; r != nil && !strings.Contains(r.Message, "nest") {
		t.Errorf("nested batch: %+v", r)
	}
	apiMsg(a, since, `{"type":"message","room":"b1","from":"","nick":"","data":"one"}`)
	apiMsg(a, since, `{"type":"message","from":"","nick":"","data":"two"}`)

	if replies, err := api.Batch(ctx); err != nil || len(replies) != 0 {
		t.Fatalf("empty batch: %+v, %v", replies, err)
	}
	apiQuiet(t, api, a)
	apiQuiet(t, api, b)
}

// TestAPIBadInputs: every bad request gets its status and stable error
// code, and the gateway keeps serving, the API and its clients. The key
// comes from CHATGATE_API_KEY.
func TestAPIBadInputs(t *testing.T) {
	t.Setenv("CHATGATE_API_KEY", apiTestKey)
	g := startGateway(t, "-presence=false")
	api, ctx := apiClientFor(g, apiTestKey), apiCtx(t)
	member := dial(t, g)
	apiJoin(member, "lobby")

	auth := http.Header{"Authorization": {"apikey " + apiTestKey}, "Content-Type": {"application/json"}}
	with := func(k, v string) http.Header {
		h := auth.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	room129 := strings.Repeat("r", 129)
	big := []byte(`{"room":"lobby","data":"` + strings.Repeat("x", 1<<20) + `"}`)
	for _, tc := range []struct {
		name   string
		method string // HTTP method; POST when empty
		path   string
		hdr    http.Header
		body   []byte
		status int
		code   string
	}{
		{"no key", "", "/api/info", with("Authorization", ""), []byte(`{}`), 401, "unauthorized"},
		{"wrong key", "", "/api/info", with("Authorization", "apikey nope"), []byte(`{}`), 401, "unauthorized"},
		{"key with another scheme", "", "/api/info", with("Authorization", "Bearer "+apiTestKey), []byte(`{}`), 401, "unauthorized"},
		{"key with a suffix", "", "/api/info", with("Authorization", "apikey "+apiTestKey+"x"), []byte(`{}`), 401, "unauthorized"},
		{"no key on an unknown method", "", "/api/nope", with("Authorization", ""), []byte(`{}`), 401, "unauthorized"},
		{"GET", "GET", "/api/info", auth, nil, 405, "bad_request"},
		{"PUT on an unknown method", "PUT", "/api/nope", auth, []byte(`{}`), 405, "bad_request"},
		{"text/plain on an unknown method", "", "/api/nope", with("Content-Type", "text/plain"), []byte(`{}`), 415, "bad_request"},
		{"unknown method with a body over 1 MiB", "", "/api/nope", auth, big, 404, "unknown_method"},
		{"Content-Type text/plain", "", "/api/info", with("Content-Type", "text/plain"), []byte(`{}`), 415, "bad_request"},
		{"no Content-Type", "", "/api/info", with("Content-Type", ""), []byte(`{}`), 415, "bad_request"},
		{"body not JSON", "", "/api/publish", auth, []byte(`room=lobby&data=1`), 400, "bad_request"},
		{"body truncated JSON", "", "/api/publish", auth, []byte(`{"room":"lobby","data":`), 400, "bad_request"},
		{"body a JSON array", "", "/api/publish", auth, []byte(`[{"room":"lobby","data":1}]`), 400, "bad_request"},
		{"body empty", "", "/api/info", auth, nil, 400, "bad_request"},
		{"body over 1 MiB", "", "/api/publish", auth, big, 413, "too_large"},
		{"unknown method", "", "/api/nope", auth, []byte(`{}`), 404, "unknown_method"},
		{"no method", "", "/api/", auth, []byte(`{}`), 404, "unknown_method"},
		{"unknown param", "", "/api/publish", auth, []byte(`{"room":"lobby","data":1,"rooom":"x"}`), 400, "bad_request"},
		{"param of the wrong type", "", "/api/publish", auth, []byte(`{"room":7,"data":1}`), 400, "bad_request"},
		{"publish without data", "", "/api/publish", auth, []byte(`{"room":"lobby"}`), 400, "bad_request"},
		{"room empty", "", "/api/publish", auth, []byte(`{"room":"","data":1}`), 400, "bad_request"},
		{"room of 129 bytes", "", "/api/publish", auth, []byte(`{"room":"` + room129 + `","data":1}`), 400, "bad_request"},
		// Strings holding bytes that are not UTF-8 (written raw into the
		// JSON): docs/api.md promises bad_request. encoding/json, which the
		// API decodes with, turns them into U+FFFD instead of failing.
		{"room not UTF-8", "", "/api/publish", auth, []byte("{\"room\":\"lob\xffby\",\"data\":1}"), 400, "bad_request"},
		{"members of a room not UTF-8", "", "/api/members", auth, []byte("{\"room\":\"\xc3\"}"), 400, "bad_request"},
		{"event not UTF-8", "", "/api/publish", auth, []byte("{\"room\":\"nobody\",\"data\":1,\"event\":\"ev\xfe\"}"), 400, "bad_request"},
		{"reason not UTF-8", "", "/api/disconnect", auth, []byte("{\"client\":\"zz-nobody\",\"reason\":\"by\xe2\x82e\"}"), 400, "bad_request"},
		{"event of 129 bytes", "", "/api/publish", auth, []byte(`{"room":"lobby","data":1,"event":"` + strings.Repeat("e", 129) + `"}`), 400, "bad_request"},
		{"broadcast to no rooms", "", "/api/broadcast", auth, []byte(`{"rooms":[],"data":1}`), 400, "bad_request"},
		{"broadcast to a room of 129 bytes", "", "/api/broadcast", auth, []byte(`{"rooms":["lobby","` + room129 + `"],"data":1}`), 400, "bad_request"},
		{"send to client and user", "", "/api/send", auth, []byte(`{"client":"x","user":"y","data":1}`), 400, "bad_request"},
		{"send to nobody", "", "/api/send", auth, []byte(`{"data":1}`), 400, "bad_request"},
		{"join a missing client", "", "/api/join", auth, []byte(`{"client":"zz-nobody","room":"lobby"}`), 404, "not_found"},
		{"join a room of 129 bytes", "", "/api/join", auth, []byte(`{"client":"` + member.id + `","room":"` + room129 + `"}`), 400, "bad_request"},
		{"disconnect code 3999", "", "/api/disconnect", auth, []byte(`{"client":"` + member.id + `","code":3999}`), 400, "bad_request"},
		{"disconnect code 5000", "", "/api/disconnect", auth, []byte(`{"client":"` + member.id + `","code":5000}`), 400, "bad_request"},
		{"disconnect code not a number", "", "/api/disconnect", auth, []byte(`{"client":"` + member.id + `","code":"4000"}`), 400, "bad_request"},
		{"batch over 1000 commands", "", "/api/batch", auth, []byte(`{"commands":[` + strings.Repeat(`{"method":"info"},`, 1000) + `{"method":"info"}]}`), 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			status, code, raw, hdr := apiPost(t, g, method, tc.path, tc.hdr, tc.body)
			if status != tc.status || code != tc.code {
				t.Errorf("HTTP %d %q (%s), want %d %q", status, code, raw, tc.status, tc.code)
			}
			if allow := hdr.Get("Allow"); status == 405 && allow != "POST" {
				t.Errorf("405 with Allow %q, want POST", allow)
			}
			// The gateway keeps serving.
			if nodes, err := api.Info(ctx); err != nil || len(nodes) != 1 || nodes[0].Connections != 1 {
				t.Fatalf("info after the bad request: %+v, %v", nodes, err)
			}
		})
	}
	t.Run("limits accepted", func(t *testing.T) {
		// The largest room name, a body of exactly 1 MiB, a Content-Type
		// with a parameter.
		for _, tc := range []struct {
			hdr  http.Header
			body []byte
		}{
			{auth, []byte(`{"room":"` + strings.Repeat("r", 128) + `","data":1}`)},
			{auth, append(append([]byte(`{"room":"nobody","data":"`), bytes.Repeat([]byte("y"), 1<<20-len(`{"room":"nobody","data":""}`))...), `"}`...)},
			{with("Content-Type", "application/json; charset=utf-8"), []byte(`{"room":"nobody","data":null}`)},
		} {
			if status, code, raw, _ := apiPost(t, g, "POST", "/api/publish", tc.hdr, tc.body); status != 200 || code != "" || raw != "{\"result\":{}}\n" {
				t.Fatalf("%d-byte body, Content-Type %q: HTTP %d %q, want 200 {\"result\":{}}", len(tc.body), tc.hdr.Get("Content-Type"), status, raw)
			}
		}
	})
	t.Run("through apiclient", func(t *testing.T) {
		for _, key := range []string{"", "wrong"} {
			_, err := apiClientFor(g, key).Info(ctx)
			apiWantErr(t, fmt.Sprintf("key %q", key), err, 401, apiclient.CodeUnauthorized)
		}
		apiWantErr(t, "unknown method", api.Call(ctx, "nope", nil, nil), 404, apiclient.CodeUnknownMethod)
		apiWantErr(t, "room of 129 bytes", api.Publish(ctx, room129, 1), 400, apiclient.CodeBadRequest)
		apiWantErr(t, "join a missing client", api.Join(ctx, apiclient.ClientTarget("zz-nobody"), "lobby"), 404, apiclient.CodeNotFound)
		if !apiclient.HasCode(api.Publish(ctx, "", 1), apiclient.CodeBadRequest) {
			t.Fatal("empty room: not bad_request")
		}
		if n, err := api.Send(ctx, apiclient.ClientTarget("zz-nobody"), 1); err != nil || n != 0 {
			t.Fatalf("send to a missing client: %d, %v; want 0, nil", n, err)
		}
	})
	// The client connected before is still served.
	since := time.Now()
	if err := api.Publish(ctx, "lobby", "still here"); err != nil {
		t.Fatal(err)
	}
	apiMsg(member, since, `{"type":"message","room":"lobby","from":"","nick":"","data":"still here"}`)
	apiQuiet(t, api, member)
}

// TestAPIUserLimit: with -max-connections-per-user the handshake of one
// connection too many of a user is refused with 429; other users and
// anonymous clients are not limited, and a slot freed (here by the API's
// disconnect) can be taken again.
func TestAPIUserLimit(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret, "-max-connections-per-user", "2", "-presence=false")
	api, ctx := apiClientFor(g, ""), apiCtx(t)
	tok := hdHS256(t, hdClaims("lim"))
	l1, l2 := apiUser(t, g, "lim"), apiUser(t, g, "lim")

	_, body := hdRefused(t, g, "/ws?token="+tok, nil, http.StatusTooManyRequests)
	if body != "too many connections for this user\n" {
		t.Fatalf("429 body %q", body)
	}
	_, body = hdRefused(t, g, "/ws", hdBearer(tok), http.StatusTooManyRequests)
	if body != "too many connections for this user\n" {
		t.Fatalf("429 body %q (token in the header)", body)
	}
	other := apiUser(t, g, "other")
	for i := 0; i < 3; i++ {
		dial(t, g) // anonymous: unlimited
	}
	if cs, err := api.Connections(ctx, "lim"); err != nil || len(cs) != 2 {
		t.Fatalf("connections of lim: %+v, %v; want the 2 admitted", cs, err)
	}

	if n, err := api.Disconnect(ctx, apiclient.ClientTarget(l1.id), 0, ""); err != nil || n != 1 {
		t.Fatalf("disconnect: %d, %v", n, err)
	}
	if ce := hdCloseError(t, l1.ws, apiWait, nil); ce.Code != 4000 {
		t.Fatalf("close %d, want 4000", ce.Code)
	}
	eventually(t, apiWait, "lim down to one connection", func() bool {
		cs, err := api.Connections(ctx, "lim")
		return err == nil && len(cs) == 1
	})
	l3 := apiUser(t, g, "lim")
	hdRefused(t, g, "/ws?token="+tok, nil, http.StatusTooManyRequests)
	for _, c := range []*client{l2, l3, other} {
		apiQuiet(t, api, c)
	}
}

// TestAPINativeSendToUser: a native client's {"type":"send","user":…}
// reaches every connection of that user, from the sender; a user with no
// connection is no_such_user; nobody else gets it.
func TestAPINativeSendToUser(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret, "-presence=false")
	api := apiClientFor(g, "")
	w1, w2 := apiUser(t, g, "wendy"), apiUser(t, g, "wendy")
	x := apiUser(t, g, "xavier")
	hdExpectAck(x, map[string]any{"type": "nick", "name": "X"})
	anon := dial(t, g)
	bystander := apiUser(t, g, "yann")

	since := time.Now()
	hdExpectAck(x, map[string]any{"type": "send", "user": "wendy", "data": map[string]any{"hi": 1}})
	for _, w := range []*client{w1, w2} {
		apiMsg(w, since, `{"type":"message","from":"`+x.id+`","nick":"X","user":"xavier","data":{"hi":1}}`)
	}
	since = time.Now()
	hdExpectAck(anon, map[string]any{"type": "send", "user": "wendy", "data": "from anon"})
	for _, w := range []*client{w1, w2} {
		apiMsg(w, since, `{"type":"message","from":"`+anon.id+`","nick":"","data":"from anon"}`)
	}
	hdExpectError(x, map[string]any{"type": "send", "user": "nobody", "data": 1}, "no_such_user")
	for _, c := range []*client{w1, w2, x, anon, bystander} {
		apiQuiet(t, api, c)
	}
}

// TestAPIRefusesOpenAddressWithoutKey: the gateway will not serve the API
// on an address that is not loopback without a key: it exits non-zero
// before listening, saying why, whether the address comes from the flag
// or the environment.
func TestAPIRefusesOpenAddressWithoutKey(t *testing.T) {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	for _, tc := range []struct {
		name string
		args []string
		env  string
	}{
		{"0.0.0.0", []string{"-api-addr", "0.0.0.0:" + port}, ""},
		{"::", []string{"-api-addr", "[::]:" + port}, ""},
		{"all interfaces, no host", []string{"-api-addr", ":" + port}, ""},
		{"a public address", []string{"-api-addr", "192.0.2.10:" + port}, ""},
		{"a host name", []string{"-api-addr", "chat.example.com:" + port}, ""},
		{"from CHATGATE_API_ADDR", nil, "0.0.0.0:" + port},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, append([]string{"-addr", freeAddr(t), "-admin-addr", ""}, tc.args...)...)
			cmd.Env = os.Environ()
			for i, kv := range cmd.Env {
				if strings.HasPrefix(kv, "CHATGATE_API_KEY=") {
					cmd.Env[i] = "CHATGATE_API_KEY=" // no key from the test's environment
				}
			}
			if tc.env != "" {
				cmd.Env = append(cmd.Env, "CHATGATE_API_ADDR="+tc.env)
			}
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the gateway started (killed after 10 s); output:\n%s", out)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("exit %v, want a non-zero exit; output:\n%s", err, out)
			}
			for _, want := range []string{"not a loopback address", "-api-key"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("output %q does not mention %q", out, want)
				}
			}
		})
	}
}
