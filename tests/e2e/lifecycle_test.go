package e2e

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestDrainOnSIGTERM: every client receives close 1001 and the process
// exits by itself within the drain bound.
func TestDrainOnSIGTERM(t *testing.T) {
	g := startGateway(t, "-drain-timeout", "3s")
	var cs []*client
	for i := 0; i < 5; i++ {
		c := dial(t, g)
		c.request(map[string]any{"type": "join", "room": "r"})
		cs = append(cs, c)
	}
	start := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if code := c.readClose(); code != 1001 {
			t.Fatalf("client %d: close %d, want 1001", i, code)
		}
		c.ws.Close()
	}
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("gateway exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not exit")
	}
	if el := time.Since(start); el > 8*time.Second {
		t.Fatalf("drain took %v", el)
	}
}

// TestGoroutinesDoNotGrowWithConnections opens 2,000 WebSocket connections
// and checks that the server's goroutine count stays flat.
func TestGoroutinesDoNotGrowWithConnections(t *testing.T) {
	g := startGateway(t)
	before := g.statInt(t, "goroutines")
	const n = 2000
	conns := make([]*rawConn, 0, n)
	for i := 0; i < n; i++ {
		nc, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		r := &rawConn{t: t, nc: nc}
		t.Cleanup(func() { nc.Close() })
		conns = append(conns, r)
		r.write([]byte(upgradeRequest))
		r.write(clientFrame(true, 1, []byte(fmt.Sprintf(`{"type":"join","room":"r%d"}`, i%50))))
	}
	deadline := time.Now().Add(20 * time.Second)
	for g.statInt(t, "sessions") < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d sessions", g.statInt(t, "sessions"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := g.statInt(t, "goroutines")
	if rooms := g.statInt(t, "rooms"); rooms != 50 {
		t.Fatalf("rooms = %d, want 50", rooms)
	}
	t.Logf("goroutines: %d before, %d with %d connections", before, after, n)
	if after > before+5 {
		t.Fatalf("goroutines grew from %d to %d with %d connections", before, after, n)
	}
	for _, r := range conns {
		r.nc.Close()
	}
	// The /stats request itself is one connection.
	for g.statInt(t, "connections") > 1 {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("connections not released: %d", g.statInt(t, "connections"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rooms := g.statInt(t, "rooms"); rooms != 0 {
		t.Fatalf("rooms after disconnect = %d, want 0", rooms)
	}
}
