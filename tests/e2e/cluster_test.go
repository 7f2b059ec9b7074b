package e2e

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startNATS runs a real NATS server in the test process on port (0 picks
// one) and returns it with its URL.
func startNATS(t *testing.T, port int) (*server.Server, string) {
	t.Helper()
	if port == 0 {
		_, p, _ := net.SplitHostPort(freeAddr(t))
		port, _ = strconv.Atoi(p)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s, "nats://127.0.0.1:" + strconv.Itoa(port)
}

// eventually retries check until it succeeds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memberCount asks c for the members of room.
func memberCount(c *client, room string) int {
	r := c.request(map[string]any{"type": "members", "room": room})
	ms, _ := r["members"].([]any)
	return len(ms)
}

// TestClusterThreeNodes: three gateway processes share rooms over a real
// NATS server: room messages reach members on every node exactly once, DMs
// cross nodes, counts and member lists agree, a killed node disappears from
// counts, and a NATS restart heals cross-node delivery.
func TestClusterThreeNodes(t *testing.T) {
	ns, url := startNATS(t, 0)
	var nodes []*gateway
	for _, tag := range []string{"na", "nb", "nc"} {
		nodes = append(nodes, startGateway(t, "-nats", url, "-node", tag, "-presence=false"))
	}
	var cs []*client
	for i, g := range nodes {
		c := dial(t, g)
		c.request(map[string]any{"type": "nick", "name": "user" + strconv.Itoa(i)})
		c.request(map[string]any{"type": "join", "room": "global"})
		cs = append(cs, c)
	}
	// Counts and member lists converge cluster-wide.
	for _, c := range cs {
		eventually(t, 3*time.Second, "three members seen from every node", func() bool { return memberCount(c, "global") == 3 })
	}
	if r := cs[0].request(map[string]any{"type": "rooms"}); len(r["rooms"].([]any)) != 1 || r["rooms"].([]any)[0].(map[string]any)["count"] != 3.0 {
		t.Fatalf("rooms: %v", r)
	}
	// A room message from each node reaches the two others once, in order.
	for i, c := range cs {
		for k := 0; k < 20; k++ {
			c.send(map[string]any{"type": "send", "room": "global", "data": map[string]any{"from": i, "k": k}})
		}
	}
	for j, c := range cs {
		next := map[int]int{}
		for n := 0; n < 40; n++ {
			m := c.readType("message")
			d := m["data"].(map[string]any)
			from, k := int(d["from"].(float64)), int(d["k"].(float64))
			if from == j {
				t.Fatalf("node %d got its own message back", j)
			}
			if k != next[from] {
				t.Fatalf("node %d: message %d from %d, want %d (order or duplicate)", j, k, from, next[from])
			}
			next[from]++
		}
	}
	// A direct message crosses nodes.
	cs[0].request(map[string]any{"type": "send", "to": cs[2].id, "data": "psst"})
	if m := cs[2].readType("message"); m["data"] != "psst" || m["from"] != cs[0].id {
		t.Fatalf("cross-node DM: %v", m)
	}
	if r := cs[0].request(map[string]any{"type": "send", "to": "zz-nobody", "data": 1}); r["code"] != "no_such_connection" {
		t.Fatalf("unknown id: %v", r)
	}

	// A killed node disappears from the counts of the others.
	if err := nodes[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 8*time.Second, "killed node dropped from member lists", func() bool { return memberCount(cs[0], "global") == 2 })

	// NATS restarts on the same port: cross-node delivery heals by itself.
	ns.Shutdown()
	ns.WaitForShutdown()
	_, p, _ := net.SplitHostPort(url[len("nats://"):])
	pn, _ := strconv.Atoi(p)
	startNATS(t, pn)
	// Keep sending until one arrives on the other node (gorilla cannot read
	// again after a read timeout, so one read with one deadline).
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
				if err := cs[0].ws.WriteMessage(1, []byte(`{"type":"send","room":"global","data":"after"}`)); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-sent }()
	_ = cs[1].ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, b, err := cs[1].ws.ReadMessage()
		if err != nil {
			t.Fatalf("no cross-node delivery after the NATS restart: %v", err)
		}
		if contains(b, `"data":"after"`) {
			break
		}
	}
}

func contains(b []byte, s string) bool { return len(b) >= len(s) && indexOf(string(b), s) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
