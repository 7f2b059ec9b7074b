package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/apiclient"
)

// The server API in cluster mode: three gateway processes over a real
// NATS server, every call made on node 1 (na), acting on the connections
// of nodes 2 (nb) and 3 (nc). Presence is on, and every client's stream is
// read exactly: each join of the setup waits until every node's replica
// has it, so member counts and the presence each member gets are known.

// apiCluster is the cluster of a test and the room memberships its
// clients made, to know the presence each join causes.
type apiCluster struct {
	t     *testing.T
	nodes []*gateway
	apis  []*apiclient.Client // one per node
	rooms map[string][]*client
	users map[*client]string
}

// apiIDs returns the sorted ids of cs.
func apiIDs(cs []*client) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.id
	}
	sort.Strings(ids)
	return ids
}

// converged waits until every node lists exactly want as room's members.
func (cl *apiCluster) converged(room string, want []*client) {
	cl.t.Helper()
	ids := apiIDs(want)
	for i, api := range cl.apis {
		eventually(cl.t, apiWait, fmt.Sprintf("node %d lists the members of %s", i+1, room), func() bool {
			ms, err := api.Members(apiCtx(cl.t), room)
			got := make([]string, len(ms))
			for j, m := range ms {
				got[j] = m.Client
			}
			return err == nil && reflect.DeepEqual(got, ids)
		})
	}
}

// presence is the presence event of c in room with count, as a member
// sees it.
func (cl *apiCluster) presence(c *client, room, event string, count int) string {
	user := ""
	if u := cl.users[c]; u != "" {
		user = fmt.Sprintf(`,"user":%q`, u)
	}
	return fmt.Sprintf(`{"type":"presence","room":%q,"event":%q,"id":%q,"nick":""%s,"count":%d}`, room, event, c.id, user, count)
}

// join makes c join room itself, waits until every node knows, and reads
// the presence event each earlier member gets.
func (cl *apiCluster) join(c *client, room string) {
	cl.t.Helper()
	before := cl.rooms[room]
	r := hdExpectAck(c, map[string]any{"type": "join", "room": room})
	if r["count"] != float64(len(before)+1) {
		cl.t.Fatalf("%s joined %s with count %v, want %d", c.id, room, r["count"], len(before)+1)
	}
	cl.rooms[room] = append(before, c)
	cl.converged(room, cl.rooms[room])
	for _, m := range before {
		apiEvent(m, cl.presence(c, room, "join", len(before)+1))
	}
}

// TestAPICluster: publish, send, join, leave and disconnect called on
// node 1 reach the clients of nodes 2 and 3, and rooms, members,
// connections and info describe all three nodes.
func TestAPICluster(t *testing.T) {
	_, url := startNATS(t, 0)
	cl := &apiCluster{t: t, rooms: map[string][]*client{}, users: map[*client]string{}}
	tags := []string{"na", "nb", "nc"}
	for _, tag := range tags {
		g := startGateway(t, "-nats", url, "-node", tag, "-jwt-secret", hdSecret)
		cl.nodes = append(cl.nodes, g)
		cl.apis = append(cl.apis, apiClientFor(g, ""))
	}
	api, ctx := cl.apis[0], apiCtx(t)
	na, nb, nc := cl.nodes[0], cl.nodes[1], cl.nodes[2]

	// a1 on node 1; b1, b3 on node 2; c1, c3 on node 3: all in global.
	// a1 and c1 are also in side; b2 (node 2) and c2 (node 3) are both
	// user una, in room una.
	a1, b1, c1, b3, c3 := dial(t, na), dial(t, nb), dial(t, nc), dial(t, nb), dial(t, nc)
	b2, c2 := apiUser(t, nb, "una"), apiUser(t, nc, "una")
	cl.users[b2], cl.users[c2] = "una", "una"
	for _, c := range []*client{a1, b1, c1, b3, c3} {
		cl.join(c, "global")
	}
	cl.join(a1, "side")
	cl.join(c1, "side")
	cl.join(b2, "una")
	cl.join(c2, "una")
	nodeOf := map[*client]string{a1: "na", b1: "nb", b2: "nb", b3: "nb", c1: "nc", c2: "nc", c3: "nc"}
	for c, tag := range nodeOf {
		if !strings.HasPrefix(c.id, tag) {
			t.Fatalf("connection id %q does not start with its node's tag %s", c.id, tag)
		}
	}

	apiStep(t, "publish to a room with members on every node", func(t *testing.T) {
		since := time.Now()
		if err := api.Publish(ctx, "global", map[string]string{"hello": "all"}); err != nil {
			t.Fatal(err)
		}
		for _, c := range cl.rooms["global"] {
			apiMsg(c, since, `{"type":"message","room":"global","from":"","nick":"","data":{"hello":"all"}}`)
		}
		since = time.Now()
		if err := api.Broadcast(ctx, []string{"side", "una"}, 2, apiclient.WithEvent("ev")); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client{a1, c1} {
			apiMsg(c, since, `{"type":"message","room":"side","from":"","nick":"","data":2,"event":"ev"}`)
		}
		for _, c := range []*client{b2, c2} {
			apiMsg(c, since, `{"type":"message","room":"una","from":"","nick":"","data":2,"event":"ev"}`)
		}
	})
	apiStep(t, "send to a client on node 3", func(t *testing.T) {
		since := time.Now()
		n, err := api.Send(ctx, apiclient.ClientTarget(c1.id), "to c1")
		if err != nil || n != 1 {
			t.Fatalf("delivered %d, %v; want 1", n, err)
		}
		apiMsg(c1, since, `{"type":"message","from":"","nick":"","data":"to c1"}`)
		if n, err := api.Send(ctx, apiclient.ClientTarget("nc-nobody"), 1); err != nil || n != 0 {
			t.Fatalf("send to a missing client: %d, %v; want 0", n, err)
		}
	})
	apiStep(t, "send to a user on nodes 2 and 3", func(t *testing.T) {
		since := time.Now()
		n, err := api.Send(ctx, apiclient.UserTarget("una"), "to una", apiclient.WithEvent("note"))
		if err != nil || n != 2 {
			t.Fatalf("delivered %d, %v; want 2", n, err)
		}
		for _, c := range []*client{b2, c2} {
			apiMsg(c, since, `{"type":"message","from":"","nick":"","data":"to una","event":"note"}`)
		}
		if n, err := api.Send(ctx, apiclient.UserTarget("nobody"), 1); err != nil || n != 0 {
			t.Fatalf("send to a missing user: %d, %v; want 0", n, err)
		}
	})
	apiStep(t, "join and leave a user's connections on nodes 2 and 3", func(t *testing.T) {
		if err := api.Join(ctx, apiclient.UserTarget("una"), "una2"); err != nil {
			t.Fatal(err)
		}
		// The two joins run one after the other on two nodes, the second
		// maybe before its node has the first: counts 1 and 2, or 1 and 1,
		// and presence of the other in either case but the first.
		for _, c := range []*client{b2, c2} {
			j := c.readType("joined")
			if off, ok := j["offset"].(float64); !ok || off < 0 || j["epoch"] == nil {
				t.Fatalf("joined: %v, want the room's history position", j)
			}
			if j["room"] != "una2" || (j["count"] != 1.0 && j["count"] != 2.0) || len(j) != 5 {
				t.Fatalf("joined: %v", j)
			}
		}
		cl.converged("una2", []*client{b2, c2})
		since := time.Now()
		if err := api.Publish(ctx, "una2", "both"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client{b2, c2} {
			m := c.readType("message")
			if ts, ok := m["ts"].(float64); !ok || int64(ts) < since.UnixMilli() {
				t.Fatalf("message: %v, want a ts from %d on", m, since.UnixMilli())
			}
			delete(m, "ts")
			if off, ok := m["offset"].(float64); !ok || off < 1 {
				t.Fatalf("message: %v, want a positive history offset", m)
			}
			delete(m, "offset")
			if !reflect.DeepEqual(m, map[string]any{"type": "message", "room": "una2", "from": "", "nick": "", "data": "both"}) {
				t.Fatalf("message: %v", m)
			}
		}
		if err := api.Leave(ctx, apiclient.UserTarget("una"), "una2"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client{b2, c2} {
			if l := c.readType("left"); l["room"] != "una2" || (l["count"] != 0.0 && l["count"] != 1.0) || len(l) != 3 {
				t.Fatalf("left: %v", l)
			}
		}
		cl.converged("una2", nil)
		// What is left of their streams are presence events of each other.
		for _, c := range []*client{b2, c2} {
			apiSettle(t, api, c)
		}
	})
	apiStep(t, "join and leave a client on node 2", func(t *testing.T) {
		if err := api.Join(ctx, apiclient.ClientTarget(b3.id), "side"); err != nil {
			t.Fatal(err)
		}
		apiEvent(b3, `{"type":"joined","room":"side","count":3}`)
		// a1 (node 1) and c1 (node 3) see b3 join: their nodes have the
		// join, so room messages from any node now reach b3.
		for _, c := range []*client{a1, c1} {
			apiEvent(c, cl.presence(b3, "side", "join", 3))
		}
		want := []apiclient.Member{{Client: a1.id, Node: "na"}, {Client: b3.id, Node: "nb"}, {Client: c1.id, Node: "nc"}}
		sort.Slice(want, func(i, j int) bool { return want[i].Client < want[j].Client })
		if ms, err := api.Members(ctx, "side"); err != nil || !reflect.DeepEqual(ms, want) {
			t.Fatalf("members of side: %+v, %v; want %+v", ms, err, want)
		}
		since := time.Now()
		if err := api.Publish(ctx, "side", "three nodes"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client{a1, b3, c1} {
			apiMsg(c, since, `{"type":"message","room":"side","from":"","nick":"","data":"three nodes"}`)
		}

		if err := api.Leave(ctx, apiclient.ClientTarget(b3.id), "side"); err != nil {
			t.Fatal(err)
		}
		apiEvent(b3, `{"type":"left","room":"side","count":2}`)
		for _, c := range []*client{a1, c1} {
			apiEvent(c, cl.presence(b3, "side", "leave", 2))
		}
		since = time.Now()
		if err := api.Publish(ctx, "side", "two nodes"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client{a1, c1} {
			apiMsg(c, since, `{"type":"message","room":"side","from":"","nick":"","data":"two nodes"}`)
		}
		// A client or user with no connection on any node.
		err := api.Join(ctx, apiclient.ClientTarget("nb-nobody"), "side")
		apiWantErr(t, "join a missing client", err, http.StatusNotFound, apiclient.CodeNotFound)
		err = api.Leave(ctx, apiclient.UserTarget("nobody"), "side")
		apiWantErr(t, "leave a missing user", err, http.StatusNotFound, apiclient.CodeNotFound)
	})
	apiStep(t, "disconnect a client on node 3", func(t *testing.T) {
		n, err := api.Disconnect(ctx, apiclient.ClientTarget(c3.id), 4100, "moved")
		if err != nil || n != 1 {
			t.Fatalf("disconnected %d, %v; want 1", n, err)
		}
		ce := hdCloseError(t, c3.ws, apiWait, func(b []byte) { t.Fatalf("message before the close: %s", b) })
		if ce.Code != 4100 || ce.Text != "moved" {
			t.Fatalf("close %d %q, want 4100 \"moved\"", ce.Code, ce.Text)
		}
		rest := []*client{a1, b1, c1, b3}
		for _, c := range rest {
			apiEvent(c, cl.presence(c3, "global", "leave", 4))
		}
		cl.rooms["global"] = rest
		cl.converged("global", rest)
		if n, err := api.Disconnect(ctx, apiclient.UserTarget("nobody"), 0, ""); err != nil || n != 0 {
			t.Fatalf("disconnect a missing user: %d, %v; want 0", n, err)
		}
	})
	live := []*client{a1, b1, c1, b3, b2, c2}

	apiStep(t, "rooms from every node", func(t *testing.T) {
		want := []apiclient.Room{{Room: "global", Namespace: "/", Count: 4}, {Room: "side", Namespace: "/", Count: 2}, {Room: "una", Namespace: "/", Count: 2}}
		for i, a := range cl.apis {
			if rs, err := a.Rooms(ctx, ""); err != nil || !reflect.DeepEqual(rs, want) {
				t.Fatalf("rooms on node %d: %+v, %v; want %+v", i+1, rs, err, want)
			}
		}
		if rs, err := api.Rooms(ctx, "s"); err != nil || !reflect.DeepEqual(rs, want[1:2]) {
			t.Fatalf("rooms with prefix s: %+v, %v", rs, err)
		}
	})
	apiStep(t, "members", func(t *testing.T) {
		var want []apiclient.Member
		for _, c := range []*client{b2, c2} {
			want = append(want, apiclient.Member{Client: c.id, User: "una", Node: nodeOf[c]})
		}
		sort.Slice(want, func(i, j int) bool { return want[i].Client < want[j].Client })
		if ms, err := api.Members(ctx, "una"); err != nil || !reflect.DeepEqual(ms, want) {
			t.Fatalf("members of una: %+v, %v; want %+v", ms, err, want)
		}
	})
	apiStep(t, "connections", func(t *testing.T) {
		roomsOf := map[*client][]string{}
		for room, cs := range cl.rooms {
			for _, c := range cs {
				roomsOf[c] = append(roomsOf[c], room)
			}
		}
		var want []apiclient.Connection
		for _, c := range live {
			rs := roomsOf[c]
			sort.Strings(rs)
			want = append(want, apiclient.Connection{Client: c.id, User: cl.users[c], Rooms: rs,
				Namespace: "/", Transport: "websocket", RemoteAddr: "127.0.0.1", Node: nodeOf[c]})
		}
		sort.Slice(want, func(i, j int) bool { return want[i].Client < want[j].Client })
		var got []apiclient.Connection
		eventually(t, apiWait, "connections of every node, c3 gone", func() bool {
			cs, err := api.Connections(ctx, "")
			got = cs
			return err == nil && len(cs) == len(want)
		})
		for i := range got {
			sort.Strings(got[i].Rooms)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].Client < got[j].Client })
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("connections:\n got %+v\nwant %+v", got, want)
		}
		una, err := api.Connections(ctx, "una")
		if err != nil || len(una) != 2 {
			t.Fatalf("connections of una: %+v, %v", una, err)
		}
		nodes := []string{una[0].Node, una[1].Node}
		sort.Strings(nodes)
		if !reflect.DeepEqual(nodes, []string{"nb", "nc"}) || una[0].User != "una" || una[1].User != "una" {
			t.Fatalf("connections of una: %+v", una)
		}
	})
	apiStep(t, "info", func(t *testing.T) {
		// Sessions and rooms with members, per node.
		want := map[string][2]int{"na": {1, 2}, "nb": {3, 2}, "nc": {2, 3}}
		var got map[string][2]int
		var nodes []apiclient.NodeInfo
		eventually(t, apiWait, "info of every node", func() bool {
			var err error
			nodes, err = api.Info(ctx)
			got = map[string][2]int{}
			for _, n := range nodes {
				got[n.Node] = [2]int{n.Connections, n.Rooms}
			}
			return err == nil && reflect.DeepEqual(got, want)
		})
		if nodes[0].Node != "na" {
			t.Errorf("info lists %s first, want the node called (na)", nodes[0].Node)
		}
		for _, n := range nodes {
			if n.Version == "" || n.Uptime <= 0 {
				t.Errorf("info of %s: %+v", n.Node, n)
			}
		}
	})
	for _, c := range live {
		apiQuiet(t, api, c)
	}
}

// apiSettle drops what c got before a marker sent to it now, which must
// be presence events only.
func apiSettle(t *testing.T, api *apiclient.Client, c *client) {
	t.Helper()
	marker := fmt.Sprintf(`{"settle":%q}`, c.id)
	if n, err := api.Send(apiCtx(t), apiclient.ClientTarget(c.id), json.RawMessage(marker)); err != nil || n != 1 {
		t.Fatalf("marker to %s: %d, %v", c.id, n, err)
	}
	for i := 0; i < 100; i++ {
		raw := c.readRaw()
		if bytes.Contains(raw, []byte(`"data":`+marker)) {
			return
		}
		if !bytes.HasPrefix(raw, []byte(`{"type":"presence"`)) {
			t.Fatalf("%s got %s, want only presence before the marker", c.id, raw)
		}
	}
	t.Fatalf("%s: no marker", c.id)
}
