package e2e

// Long-polling without sticky sessions: in cluster mode a polling request
// for a session of another node is forwarded over NATS to the session's
// home node (engineio/forward.go). Real gateway processes on a real NATS
// server; the requests of one session are sent to different nodes by hand.

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// pollCluster starts n gateway nodes (tags n0, n1, …) on a real NATS
// server and waits until each sees the others. It returns the NATS server
// and the nodes.
func pollCluster(t *testing.T, n int, args ...string) (*server.Server, []*gateway) {
	t.Helper()
	ns, url := startNATS(t, 0)
	var gs []*gateway
	for i := range n {
		tag := "n" + string(rune('0'+i))
		gs = append(gs, pollGateway(t, append([]string{"-nats", url, "-node", tag, "-presence=false"}, args...)...))
	}
	for _, g := range gs {
		eventually(t, 5*time.Second, "every node sees the others", func() bool {
			return scrape(t, g)["chatgate_cluster_nodes"] == float64(n-1)
		})
	}
	return ns, gs
}

// forwarded is g's count of forwarded polling requests with outcome.
func forwarded(t *testing.T, g *gateway, outcome string) float64 {
	t.Helper()
	return scrape(t, g)[`chatgate_polling_forwarded_total{outcome="`+outcome+`"}`]
}

// pollJoinWithNative connects p's "/" and joins it to lobby (what names
// the join ack in a failure), then joins a native client on g to lobby
// too, and waits until the room has both. It returns p's socket id and
// the native client.
func pollJoinWithNative(t *testing.T, p *pollClient, g *gateway, what string) (string, *client) {
	t.Helper()
	id := p.connect()
	if a := p.emit(1, `["join","lobby"]`); a["room"] != "lobby" {
		t.Fatalf("%s: %v", what, a)
	}
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "lobby"})
	eventually(t, 5*time.Second, "two members in lobby", func() bool { return memberCount(native, "lobby") == 2 })
	return id, native
}

// TestPollingAcrossNodes: a polling session opened on node 0 is served
// through any node: its CONNECT, join and events go through nodes 1 and
// 2 in turn, a GET held on node 1 is answered when a native client on
// node 0 writes to the room, and POSTs and GETs alternate between the
// nodes with nothing lost or repeated. The sid names its home node.
func TestPollingAcrossNodes(t *testing.T) {
	_, gs := pollCluster(t, 3)
	p := pollOpen(t, gs[0].addr, "/socket.io/")
	if !strings.HasPrefix(p.sid, "n0.") {
		t.Fatalf("sid %q does not name its home node n0", p.sid)
	}
	// Every later request of the session goes to another node.
	p.get, p.post = pollDial(t, gs[1].addr), pollDial(t, gs[2].addr)
	id, native := pollJoinWithNative(t, p, gs[0], "join ack through node 2 and node 1")

	// A GET held through node 1 waits on node 0 and is answered there
	// when the room gets a message.
	ch := pollAsyncGET(p.get, p.target(), nil)
	pollExpectParked(t, ch, 400*time.Millisecond)
	native.send(map[string]any{"type": "send", "room": "lobby", "data": map[string]any{"k": -1}})
	r := pollAwait(t, ch, "GET held through node 1")
	if r.status != 200 || !strings.Contains(r.body, `"k":-1`) {
		t.Fatalf("held GET: %d %q, want the room message", r.status, r.body)
	}

	// POSTs and GETs through each node in turn: every event arrives
	// once, in order, in both directions.
	for k := range 12 {
		p.post = pollDial(t, gs[k%3].addr)
		p.get = pollDial(t, gs[(k+1)%3].addr)
		p.send(`42["message",{"room":"lobby","data":{"n":` + strconv.Itoa(k) + `}}]`)
		m := native.readType("message")
		if d := m["data"].(map[string]any); d["n"] != float64(k) || m["from"] != id {
			t.Fatalf("native got %v, want n=%d from %s", m, k, id)
		}
		native.send(map[string]any{"type": "send", "room": "lobby", "data": map[string]any{"k": k}})
		if ev := p.event("message"); ev["data"].(map[string]any)["k"] != float64(k) {
			t.Fatalf("polling client got %v, want k=%d", ev, k)
		}
	}
	if n := forwarded(t, gs[1], "answered") + forwarded(t, gs[2], "answered"); n < 12 {
		t.Fatalf("forwarded and answered: %v, want at least 12", n)
	}
	if n := forwarded(t, gs[0], "served"); n < 12 {
		t.Fatalf("served for other nodes on node 0: %v, want at least 12", n)
	}
	for _, g := range gs {
		if n := forwarded(t, g, "refused") + forwarded(t, g, "unavailable") + forwarded(t, g, "bad"); n != 0 {
			t.Fatalf("node %s: %v forwarded requests failed", g.addr, n)
		}
	}
}

// TestPollingForwardBadInput: each failure of forwarding has its defined
// answer. A sid naming no node of the cluster gets 400 Session ID unknown
// at once; past -sio-max-forwarded, 503; a session that ends while its GET
// is held through another node answers that GET with the close packet,
// and later requests through any node with 400; with NATS down a
// forwarded request gets 503 at once.
func TestPollingForwardBadInput(t *testing.T) {
	ns, gs := pollCluster(t, 3, "-sio-ping-interval", "10s", "-sio-ping-timeout", "5s", "-sio-max-forwarded", "1")

	// Forged: a node that does not exist, and a sid with no node.
	for _, sid := range []string{"zz.AAAAAAAAAAAAAAAAAAAA", "n9.AAAAAAAAAAAAAAAAAAAA", "n0.forged-random-part"} {
		target := pollHandshake("/socket.io/") + "&sid=" + sid
		start := time.Now()
		pollExpectUnknownSID(t, pollDial(t, gs[1].addr).do("GET", target, nil, ""))
		pollExpectUnknownSID(t, pollDial(t, gs[1].addr).do("POST", target, nil, "40"))
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("forged sid %q answered in %v", sid, d)
		}
	}
	if n := forwarded(t, gs[1], "unknown_node"); n != 4 {
		t.Fatalf("unknown_node = %v, want 4 (the two sids of absent nodes, GET and POST)", n)
	}
	if n := forwarded(t, gs[1], "refused"); n != 2 {
		t.Fatalf("refused = %v, want 2 (the unknown sid of n0, GET and POST)", n)
	}

	// Killed mid-flight: a second GET through node 2 ends the session
	// while the first is held through node 1.
	p := pollOpen(t, gs[0].addr, "/socket.io/")
	p.get, p.post = pollDial(t, gs[1].addr), pollDial(t, gs[1].addr)
	p.connect()
	first := pollAsyncGET(p.get, p.target(), nil)
	pollExpectParked(t, first, 300*time.Millisecond)
	// Node 1 forwards one request at a time (-sio-max-forwarded 1): with
	// the GET held, the next gets 503 and the session is untouched.
	if r := pollDial(t, gs[1].addr).do("POST", p.target(), nil, "6"); r.status != 503 {
		t.Fatalf("POST past -sio-max-forwarded: %d %q, want 503", r.status, r.body)
	}
	if n := forwarded(t, gs[1], "busy"); n != 1 {
		t.Fatalf("busy = %v, want 1", n)
	}
	second := pollDial(t, gs[2].addr).do("GET", p.target(), nil, "")
	pollExpectError(t, second, 400, pollAnyCode)
	if r := pollAwait(t, first, "GET held through node 1"); r.status != 200 || r.body != "1" {
		t.Fatalf("held GET of a session that ended: %d %q, want 200 \"1\" (close)", r.status, r.body)
	}
	pollExpectUnknownSID(t, pollDial(t, gs[2].addr).do("POST", p.target(), nil, "40"))

	// The client closed it while a GET was held through another node:
	// that GET ends with a noop, as on one node.
	q := pollOpen(t, gs[0].addr, "/socket.io/")
	q.get, q.post = pollDial(t, gs[2].addr), pollDial(t, gs[1].addr)
	q.connect()
	held := pollAsyncGET(q.get, q.target(), nil)
	pollExpectParked(t, held, 300*time.Millisecond)
	q.send("1")
	if r := pollAwait(t, held, "GET held through node 2"); r.status != 200 || r.body != "6" {
		t.Fatalf("held GET of a session its client closed: %d %q, want 200 \"6\"", r.status, r.body)
	}

	// NATS down: a forwarded request gets 503 at once, whatever it is.
	s := pollOpen(t, gs[0].addr, "/socket.io/")
	s.get, s.post = pollDial(t, gs[1].addr), pollDial(t, gs[1].addr)
	s.connect()
	ns.Shutdown()
	eventually(t, 5*time.Second, "node 1 sees NATS down", func() bool {
		return scrape(t, gs[1])["chatgate_cluster_connected"] == 0
	})
	for _, method := range []string{"GET", "POST"} {
		start := time.Now()
		body := ""
		if method == "POST" {
			body = "40"
		}
		r := pollDial(t, gs[1].addr).do(method, s.target(), nil, body)
		if r.status != 503 {
			t.Fatalf("%s with NATS down: %d %q, want 503", method, r.status, r.body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s with NATS down answered in %v", method, d)
		}
	}
	// Still 503 once the silent peers have expired from the node list:
	// the session's node is out of reach, not unknown.
	eventually(t, 10*time.Second, "node 1 forgets its peers", func() bool {
		return scrape(t, gs[1])["chatgate_cluster_nodes"] == 0
	})
	if r := pollDial(t, gs[1].addr).do("GET", s.target(), nil, ""); r.status != 503 {
		t.Fatalf("GET with NATS down and no peers left: %d %q, want 503", r.status, r.body)
	}
	if n := forwarded(t, gs[1], "unavailable"); n != 3 {
		t.Fatalf("unavailable = %v, want 3", n)
	}
}

// TestPollingForwardCost measures what forwarding adds: the same polling
// session's requests sent to its own node and to another node, side by
// side in one run. It is a measurement, not a check: it runs only with
// CHATGATE_MEASURE=1 (docs/benchmarks.md, "Long-polling across nodes").
func TestPollingForwardCost(t *testing.T) {
	if os.Getenv("CHATGATE_MEASURE") != "1" {
		t.Skip("a measurement: set CHATGATE_MEASURE=1")
	}
	const rounds = 2000
	_, gs := pollCluster(t, 2)
	p := pollOpen(t, gs[0].addr, "/socket.io/")
	p.connect()
	for _, c := range []struct {
		name string
		addr string
	}{{"local", gs[0].addr}, {"forwarded", gs[1].addr}, {"local", gs[0].addr}, {"forwarded", gs[1].addr}} {
		p.get, p.post = pollDial(t, c.addr), pollDial(t, c.addr)
		var noop, ack []time.Duration
		for i := range rounds {
			start := time.Now()
			if r := p.post.do("POST", p.target(), nil, "6"); r.status != 200 {
				t.Fatalf("POST: %d %q", r.status, r.body)
			}
			noop = append(noop, time.Since(start))
			start = time.Now()
			id := strconv.Itoa(i % 1000)
			p.send(`42` + id + `["ping"]`)
			if r := p.get.do("GET", p.target(), nil, ""); r.status != 200 || !strings.HasPrefix(r.body, "43"+id+"[") {
				t.Fatalf("GET: %d %q, want ack %s", r.status, r.body, id)
			}
			ack = append(ack, time.Since(start))
		}
		t.Logf("%-9s POST noop: %s | event + ack (POST, GET): %s", c.name, percentiles(noop), percentiles(ack))
	}
}

// percentiles formats the p50, p90 and p99 of d (sorted in place).
func percentiles(d []time.Duration) string {
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[int(q*float64(len(d)-1))].Round(time.Microsecond) }
	return fmt.Sprintf("p50 %v p90 %v p99 %v", at(.5), at(.9), at(.99))
}

// TestPollingNoStickyNginx: scripts/nginx-nosticky.conf, round robin with
// no affinity over three cluster nodes, carries a polling session whose
// requests land on every node: it joins a room and chats with a native
// client both ways, and every request is answered 200.
func TestPollingNoStickyNginx(t *testing.T) {
	bin := proxyBinary(t, "nginx")
	_, gs := pollCluster(t, 3, "-trusted-proxies", "127.0.0.1/32")
	prefix := t.TempDir()
	// Started as root, nginx runs its workers as nobody, which must be
	// able to reach the temp directories.
	if err := os.Chmod(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	conf := renderConfig(t, "nginx-nosticky.conf",
		"listen 80 ", "listen "+addr+" ",
		"10.0.0.11:8080", gs[0].addr,
		"10.0.0.12:8080", gs[1].addr,
		"10.0.0.13:8080", gs[2].addr,
	)
	path := prefix + "/nginx.conf"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startProc(t, bin, "-p", prefix+"/", "-c", path, "-e", "stderr").waitListening(t, addr)

	p := pollOpen(t, addr, "/socket.io/")
	id, native := pollJoinWithNative(t, p, gs[0], "join ack")
	for k := range 10 {
		p.send(`42["message",{"room":"lobby","data":{"n":` + strconv.Itoa(k) + `}}]`)
		if m := native.readType("message"); m["data"].(map[string]any)["n"] != float64(k) || m["from"] != id {
			t.Fatalf("native got %v, want n=%d", m, k)
		}
		native.send(map[string]any{"type": "send", "room": "lobby", "data": map[string]any{"k": k}})
		if ev := p.event("message"); ev["data"].(map[string]any)["k"] != float64(k) {
			t.Fatalf("polling client got %v, want k=%d", ev, k)
		}
	}
	var answered float64
	for _, g := range gs {
		answered += forwarded(t, g, "answered")
	}
	if answered < 10 {
		t.Fatalf("forwarded and answered: %v; nginx did not spread the session's requests", answered)
	}
}
