package e2e

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestDrainOnSIGTERM: every client receives close 1012 (service restart)
// with the reconnect hint of -drain-spread in its reason, and the process
// exits by itself within the drain bound.
func TestDrainOnSIGTERM(t *testing.T) {
	g := startGateway(t, "-drain-timeout", "3s", "-drain-spread", "1500ms")
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
		code, reason := c.readCloseReason()
		if code != 1012 {
			t.Fatalf("client %d: close %d %q, want 1012", i, code, reason)
		}
		if ms, ok := reconnectHint(reason); !ok || ms != 1500 {
			t.Fatalf("client %d: close reason %q, want a reconnect=1500 hint", i, reason)
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

// TestDrainUnreadyBeforeClose: with -drain-delay, a drain first turns
// /readyz (admin) and /healthz (the public port the proxies check) to 503
// while every client is still connected and new clients are still
// accepted; only after the delay are the clients closed, with 1012 and
// the reconnect hint. -drain-spread 0 sends no hint.
func TestDrainUnreadyBeforeClose(t *testing.T) {
	const delay = 1500 * time.Millisecond
	g := startGateway(t, "-drain-timeout", "3s", "-drain-delay", delay.String())
	type closeEv struct {
		code   int
		reason string
		at     time.Time
	}
	const n = 3
	closes := make(chan closeEv, n+1)
	watch := func(c *client) {
		go func() {
			_ = c.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
			for {
				if _, _, err := c.ws.ReadMessage(); err != nil {
					ev := closeEv{code: -1, at: time.Now()}
					var ce *websocket.CloseError
					if errorsAs(err, &ce) {
						ev.code, ev.reason = ce.Code, ce.Text
					}
					closes <- ev
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		c := dial(t, g)
		c.request(map[string]any{"type": "join", "room": "r"})
		watch(c)
	}
	if s := httpStatus(t, "http://"+g.admin+"/readyz"); s != 200 {
		t.Fatalf("/readyz = %d before the drain", s)
	}
	if s := httpStatus(t, "http://"+g.addr+"/healthz"); s != 200 {
		t.Fatalf("public /healthz = %d before the drain", s)
	}
	signalled := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(delay)
	for httpStatus(t, "http://"+g.admin+"/readyz") != 503 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still 200 after the drain delay")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := httpStatus(t, "http://"+g.addr+"/healthz"); s != 503 {
		t.Fatalf("public /healthz = %d once /readyz is 503, want 503", s)
	}
	// Unready, and nobody closed yet: a client arriving before the load
	// balancer noticed is still served.
	if len(closes) != 0 {
		ev := <-closes
		t.Fatalf("a client was closed (%d %q) before /readyz turned 503", ev.code, ev.reason)
	}
	late := dial(t, g)
	late.request(map[string]any{"type": "join", "room": "r"})
	watch(late)
	for i := 0; i < n+1; i++ {
		select {
		case ev := <-closes:
			if ev.code != 1012 {
				t.Fatalf("close %d %q, want 1012", ev.code, ev.reason)
			}
			if ms, ok := reconnectHint(ev.reason); !ok || ms != 5000 {
				t.Fatalf("close reason %q, want the default reconnect=5000 hint", ev.reason)
			}
			if el := ev.at.Sub(signalled); el < delay {
				t.Fatalf("closed %v after SIGTERM, before the %v drain delay", el, delay)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d clients closed", i, n+1)
		}
	}
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("gateway exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not exit")
	}

	// No hint: 1012 with the bare reason.
	g = startGateway(t, "-drain-timeout", "3s", "-drain-spread", "0")
	c := dial(t, g)
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, reason := c.readCloseReason(); code != 1012 || reason != "server restarting" {
		t.Fatalf("close %d %q, want 1012 \"server restarting\"", code, reason)
	}
}

// reconnectHint parses the reconnect=<ms> hint of a drain's close reason,
// as a client would.
func reconnectHint(reason string) (int, bool) {
	m := regexp.MustCompile(`(?:^|[; ])reconnect=(\d+)(?:$|;)`).FindStringSubmatch(reason)
	if m == nil {
		return 0, false
	}
	ms, err := strconv.Atoi(m[1])
	return ms, err == nil
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
