package e2e

import (
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
)

// The cluster-wide history (docs/cluster.md, "History"), checked with real
// gateway processes and a real NATS server: a client that drops from one
// node resumes on another with nothing missing or duplicated, history
// survives a restart of every gateway, and without JetStream a client that
// moves is not recovered.

// chKey is the -cluster-key of these tests: the nodes share it, so any
// node checks any node's session tokens.
const chKey = "cluster-history-test-key-of-at-least-32-bytes"

// startNATSServer runs a NATS server in the test process, with JetStream
// (its store in a temporary directory) when js is set.
func startNATSServer(t *testing.T, js bool) string {
	t.Helper()
	_, p, _ := net.SplitHostPort(freeAddr(t))
	port, _ := strconv.Atoi(p)
	opts := &server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true}
	if js {
		opts.JetStream, opts.StoreDir = true, t.TempDir()
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return "nats://127.0.0.1:" + p
}

// startHistoryNodes starts one gateway per tag on NATS at natsURL, all
// with the same cluster key.
func startHistoryNodes(t *testing.T, natsURL string, tags ...string) []*gateway {
	t.Helper()
	var gs []*gateway
	for _, tag := range tags {
		gs = append(gs, startGateway(t, "-nats", natsURL, "-node", tag, "-cluster-key", chKey))
	}
	return gs
}

// dialWelcome connects to g's /ws with query (e.g. "resume=…") and returns
// the client and its welcome.
func dialWelcome(t *testing.T, g *gateway, query string) (*client, map[string]any) {
	t.Helper()
	u := "ws://" + g.addr + "/ws"
	if query != "" {
		u += "?" + query
	}
	ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	resp.Body.Close()
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	w := c.read()
	if w["type"] != "welcome" {
		t.Fatalf("first message %v, want welcome", w)
	}
	c.id, _ = w["id"].(string)
	return c, w
}

// presenceOf reads c's messages until a presence event ev of connection id.
func presenceOf(c *client, ev, id string) {
	c.t.Helper()
	for i := 0; i < 100; i++ {
		if m := c.read(); m["type"] == "presence" && m["event"] == ev && m["id"] == id {
			return
		}
	}
	c.t.Fatalf("no presence %s of %s", ev, id)
}

// roomMsg is a room message as a client saw it: data {"k":K}.
type roomMsg struct {
	k      int
	offset uint64
}

func asRoomMsg(t *testing.T, m map[string]any) roomMsg {
	t.Helper()
	d, _ := m["data"].(map[string]any)
	k, ok1 := d["k"].(float64)
	off, ok2 := m["offset"].(float64)
	if !ok1 || !ok2 || off <= 0 {
		t.Fatalf("message without k or offset: %v", m)
	}
	return roomMsg{int(k), uint64(off)}
}

// sendK sends {"k":k} to room for every k in [from, to].
func sendK(c *client, room string, from, to int) {
	c.t.Helper()
	for k := from; k <= to; k++ {
		c.send(map[string]any{"type": "send", "room": room, "data": map[string]any{"k": k}})
	}
}

// TestClusterHistoryResumeOnAnotherNode: a client on node 1 reads some of
// a room's messages; node 1 is killed while another client keeps sending;
// the client resumes through node 3 and gets its id, nick and room back,
// exactly the messages it had not read, then the live ones.
func TestClusterHistoryResumeOnAnotherNode(t *testing.T) {
	nats := startNATSServer(t, true)
	nodes := startHistoryNodes(t, nats, "h1", "h2", "h3")
	for _, g := range nodes {
		metricReaches(t, g, "chatgate_cluster_history_sequencing", 1)
	}

	a, w := dialWelcome(t, nodes[0], "")
	token, _ := w["session"].(string)
	if token == "" {
		t.Fatalf("welcome without a session token: %v", w)
	}
	a.request(map[string]any{"type": "nick", "name": "ann"})
	ack := a.request(map[string]any{"type": "join", "room": "lobby"})
	epoch, _ := ack["epoch"].(string)
	b := dial(t, nodes[1])
	b.request(map[string]any{"type": "join", "room": "lobby"})
	presenceOf(a, "join", b.id)

	// A reads 1..5; 6..8 are sent while it reads no more.
	sendK(b, "lobby", 1, 5)
	var got []roomMsg
	for range 5 {
		got = append(got, asRoomMsg(t, a.readType("message")))
	}
	last := got[len(got)-1].offset
	sendK(b, "lobby", 6, 8)

	// Node 1 dies with A's connection; B goes on sending.
	nodes[0].kill()
	sendK(b, "lobby", 9, 11)
	presenceOf(b, "leave", a.id) // node 2 noticed the drop
	// Node 3 noticed it too and kept A's session, and has read every
	// message so far from the stream (message k has offset last+k-5).
	metricReaches(t, nodes[2], "chatgate_cluster_remote_kept_total", 1)
	eventually(t, 5*time.Second, "node 3 reads the stream up to message 11", func() bool {
		return scrape(t, nodes[2])["chatgate_cluster_history_offset"] >= float64(last+6)
	})

	a2, w2 := dialWelcome(t, nodes[2], "resume="+url.QueryEscape(token)+"&offset="+strconv.FormatUint(last, 10))
	if w2["recovered"] != true || w2["id"] != a.id || w2["nick"] != "ann" {
		t.Fatalf("resumed welcome %v, want recovered with id %s and nick ann", w2, a.id)
	}
	rv := a2.readType("recovered")
	if rv["room"] != "lobby" || rv["recovered"] != true || rv["epoch"] != epoch {
		t.Fatalf("recovered event %v (epoch %s)", rv, epoch)
	}
	msgs, _ := rv["messages"].([]any)
	for _, m := range msgs {
		got = append(got, asRoomMsg(t, m.(map[string]any)))
	}
	if len(msgs) != 6 {
		t.Fatalf("recovered %d messages, want 6 (k 6..11): %v", len(msgs), rv)
	}
	presenceOf(b, "join", a.id) // the room is re-joined, on node 3
	sendK(b, "lobby", 12, 14)
	for range 3 {
		got = append(got, asRoomMsg(t, a2.readType("message")))
	}
	for i, m := range got {
		if m.k != i+1 {
			t.Fatalf("message %d is k=%d: missing or duplicated (%v)", i, m.k, got)
		}
		if i > 0 && m.offset <= got[i-1].offset {
			t.Fatalf("offsets not increasing at k=%d: %v", m.k, got)
		}
	}
	// Recovered messages carry the stream's offsets: contiguous here,
	// since lobby is the only room.
	for i := 5; i < len(got); i++ {
		if got[i].offset != last+uint64(i-4) {
			t.Fatalf("k=%d has offset %d, want %d", got[i].k, got[i].offset, last+uint64(i-4))
		}
	}
}

// TestClusterHistorySurvivesRestart: the history is on the NATS server, so
// after every gateway restarted a history request returns the earlier
// messages, under the same offsets and epoch.
func TestClusterHistorySurvivesRestart(t *testing.T) {
	nats := startNATSServer(t, true)
	nodes := startHistoryNodes(t, nats, "r1", "r2")
	a := dial(t, nodes[0])
	b := dial(t, nodes[1])
	ack := b.request(map[string]any{"type": "join", "room": "lobby"})
	epoch := ack["epoch"]
	a.request(map[string]any{"type": "join", "room": "lobby"})
	sendK(a, "lobby", 1, 5)
	var want []roomMsg
	for range 5 {
		want = append(want, asRoomMsg(t, b.readType("message")))
	}
	for _, g := range nodes {
		g.kill()
	}

	nodes = startHistoryNodes(t, nats, "r1", "r2")
	for i, g := range nodes {
		c := dial(t, g)
		ack := c.request(map[string]any{"type": "join", "room": "lobby"})
		if ack["epoch"] != epoch || ack["offset"] != float64(want[4].offset) {
			t.Fatalf("node %d after the restart: join ack %v, want epoch %v offset %d", i, ack, epoch, want[4].offset)
		}
		h := c.request(map[string]any{"type": "history", "room": "lobby"})
		msgs, _ := h["messages"].([]any)
		if h["type"] != "ack" || len(msgs) != len(want) || h["epoch"] != epoch {
			t.Fatalf("node %d: history %v", i, h)
		}
		for j, m := range msgs {
			if got := asRoomMsg(t, m.(map[string]any)); got != want[j] {
				t.Fatalf("node %d: history message %d is %+v, was %+v", i, j, got, want[j])
			}
		}
	}
}

// TestClusterHistoryWithoutJetStream: a NATS server without JetStream
// leaves every node its own history (own offsets, own epoch); a client
// that moves to another node is not recovered: it gets a new session.
func TestClusterHistoryWithoutJetStream(t *testing.T) {
	nats := startNATSServer(t, false)
	nodes := startHistoryNodes(t, nats, "m1", "m2", "m3")
	for _, g := range nodes {
		if v := scrape(t, g)["chatgate_cluster_history_sequencing"]; v != 0 {
			t.Fatalf("sequencing %v without JetStream", v)
		}
	}
	a, w := dialWelcome(t, nodes[0], "")
	token, _ := w["session"].(string)
	a.request(map[string]any{"type": "join", "room": "lobby"})
	b := dial(t, nodes[1])
	b.request(map[string]any{"type": "join", "room": "lobby"})
	presenceOf(a, "join", b.id)
	sendK(b, "lobby", 1, 3)
	var last roomMsg
	for range 3 {
		last = asRoomMsg(t, a.readType("message"))
	}

	nodes[0].kill()
	presenceOf(b, "leave", a.id)
	eventually(t, 5*time.Second, "node 3 drops node 1", func() bool {
		return scrape(t, nodes[2])["chatgate_cluster_nodes"] == 1
	})
	a2, w2 := dialWelcome(t, nodes[2], "resume="+url.QueryEscape(token)+"&offset="+strconv.FormatUint(last.offset, 10))
	if w2["recovered"] != false || w2["id"] == a.id {
		t.Fatalf("welcome %v: a client moving nodes without JetStream must not be recovered", w2)
	}
	if r := a2.request(map[string]any{"type": "members", "room": "lobby"}); r["code"] != "not_member" {
		t.Fatalf("the new session is in lobby: %v", r)
	}
	if v := scrape(t, nodes[2])["chatgate_cluster_remote_kept_total"]; v != 0 {
		t.Fatalf("node 3 kept %v remote sessions", v)
	}
}
