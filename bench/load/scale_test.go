package load

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/bench/hist"
)

func TestAssigned(t *testing.T) {
	for _, tc := range []struct{ conns, n int }{{10, 3}, {100000, 7}, {5, 7}, {0, 2}, {7, 7}} {
		total := 0
		for j := 0; j < tc.n; j++ {
			want := 0
			for idx := 0; idx < tc.conns; idx++ {
				if nodeOf(idx, tc.n) == j {
					want++
				}
			}
			if got := assigned(tc.conns, tc.n, j); got != want {
				t.Errorf("assigned(%d, %d, %d) = %d, want %d", tc.conns, tc.n, j, got, want)
			}
			total += assigned(tc.conns, tc.n, j)
		}
		if total != tc.conns {
			t.Errorf("%d clients over %d nodes sum to %d", tc.conns, tc.n, total)
		}
	}
}

// TestReconnectAddress: a lost client never dials its own server again
// first, each attempt tries another, and the clients of one server spread
// evenly over the others.
func TestReconnectAddress(t *testing.T) {
	list := []string{"a:1", "b:2", "c:3", "d:4"}
	addrs := strings.Join(list, ",")
	n := len(list)
	first := map[string]int{}
	for idx := 0; idx < 400; idx++ {
		own := pickAddr(addrs, idx)
		seen := map[string]bool{}
		for a := 1; a < n; a++ {
			got := reconnectAddr(addrs, idx, a)
			if got == own {
				t.Fatalf("client %d attempt %d dials its own server %s", idx, a, own)
			}
			seen[got] = true
			if a == 1 && own == "a:1" {
				first[got]++
			}
		}
		if len(seen) != n-1 {
			t.Fatalf("client %d tries %v in %d attempts, want all %d others", idx, seen, n-1, n-1)
		}
	}
	// Server a's 100 clients: 33 or 34 to each of b, c and d first.
	for _, s := range list[1:] {
		if first[s] < 33 || first[s] > 34 {
			t.Fatalf("first reconnects of a's clients: %v", first)
		}
	}
	if got := reconnectAddr("x:1", 5, 3); got != "x:1" {
		t.Fatalf("one server: %s", got)
	}
	if backoff(1) != 50*time.Millisecond || backoff(100) != time.Second {
		t.Fatalf("backoff %v %v", backoff(1), backoff(100))
	}
}

// TestDuplicateCheck: with the order check on, a message whose timestamp
// is not above the receiver's last counts as a duplicate and is not
// recorded as a delivery.
func TestDuplicateCheck(t *testing.T) {
	w := NewWorker(io.Discard)
	w.order = true
	w.step.Store(3)
	c := &client{w: w, idx: 0}
	msg := func(ts int64) []byte { return appendData(nil, ts, 3, 64) }
	for _, ts := range []int64{100, 200, 200, 150, 300} {
		w.deliver(c, msg(ts))
	}
	if ev := w.counters(evTick); ev.Dups != 2 {
		t.Fatalf("dups %d, want 2", ev.Dups)
	}
	var h hist.Histogram
	w.rec.Drain(&h)
	if h.Count() != 3 {
		t.Fatalf("recorded %d deliveries, want 3", h.Count())
	}
	// A stale step's message is neither a duplicate nor a delivery.
	w.deliver(c, appendData(nil, 50, 2, 64))
	if w.dups.Load() != 2 || w.stale.Load() != 1 {
		t.Fatalf("dups %d stale %d", w.dups.Load(), w.stale.Load())
	}
}

// TestScaleFailoverAgainstGorilla runs the scale scenario on two gorilla
// baselines (not a cluster: rooms of one member, so nothing is owed
// across servers) and kills the first: its clients must reconnect to the
// second, within the limit, and the summary must say all goals were met.
func TestScaleFailoverAgainstGorilla(t *testing.T) {
	a1, pid1 := startGorilla(t)
	a2, pid2 := startGorilla(t)
	res := runOrFail(t, Config{
		Scenario: ScenarioScale,
		Addr:     a1 + "," + a2,
		Conns:    20,
		RoomSize: 1,
		Rate:     40,
		Duration: 2 * time.Second,
		Warmup:   -1,
		Workers:  2,
		Scale: ScaleConfig{
			NodePIDs:         []int{pid1, pid2},
			KillNode:         1,
			KillAfter:        200 * time.Millisecond,
			Failover:         2 * time.Second,
			ReconnectTimeout: 5 * time.Second,
			After:            2 * time.Second,
			IdleHold:         300 * time.Millisecond,
		},
	})
	sc := res.Scale
	if sc == nil {
		t.Fatal("no scale result")
	}
	if len(sc.Fail) > 0 {
		t.Fatalf("goals missed: %v; errors %v", sc.Fail, res.Errors)
	}
	if sc.Killed != pid1 || sc.Dropped != 10 || sc.Reconnected != 10 || sc.ReconnFail != 0 {
		t.Fatalf("failover: %+v", sc)
	}
	if sc.ReconnectSecs <= 0 || sc.ReconnectSecs > 5 {
		t.Fatalf("reconnect took %.3fs", sc.ReconnectSecs)
	}
	if len(sc.Nodes) != 2 || sc.Nodes[0].RSSOpen <= 0 || sc.Nodes[1].Clients != 10 || sc.Nodes[1].IdleCPU < 0 {
		t.Fatalf("nodes %+v", sc.Nodes)
	}
	if len(res.Steps) != 3 || res.Steps[2].LostConns != 0 || res.Steps[2].SendErrors != 0 {
		t.Fatalf("steps %+v", res.Steps)
	}
}

// TestScaleRoomsAgainstGorilla: rooms of 10 on one server, one publisher
// per room; everything delivered once.
func TestScaleRoomsAgainstGorilla(t *testing.T) {
	addr, _ := startGorilla(t)
	res := runOrFail(t, Config{
		Scenario: ScenarioScale,
		Addr:     addr,
		Conns:    30,
		RoomSize: 10,
		Rate:     30,
		Duration: 2 * time.Second,
		Warmup:   -1,
		Workers:  2,
	})
	if len(res.Scale.Fail) > 0 {
		t.Fatalf("goals missed: %v", res.Scale.Fail)
	}
	// 3 rooms at 10 msgs/s each for 2s, 9 other members in each room.
	checkStep(t, res, 60, 9)
	if res.Steps[0].Duplicates != 0 {
		t.Fatalf("%d duplicates", res.Steps[0].Duplicates)
	}
}
