package netpoll

import (
	"math/rand/v2"
	"testing"
)

// TestConnList: connections added and removed in any order keep their
// index (sweepIdx) and the list holds each once; growing allocates one
// block per connChunk connections and copies nothing, and the blocks go
// again as the list empties (one spare kept).
func TestConnList(t *testing.T) {
	var l connList
	const n = 5*connChunk + 17
	cs := make([]*conn, n)
	for i := range cs {
		cs[i] = &conn{}
	}
	i := 0
	allocs := testing.AllocsPerRun(n-1, func() {
		l.add(cs[i])
		i++
	})
	// AllocsPerRun runs once more than asked: all n are in.
	if want := float64(n/connChunk+1) / float64(n-1); allocs > want+0.01 {
		t.Errorf("adding allocates %.4f times per connection, want %.4f (one block per %d, and the block list)", allocs, want, connChunk)
	}
	check := func() {
		t.Helper()
		seen := make(map[*conn]bool, l.len())
		for i := range l.len() {
			c := l.at(i)
			if c == nil || int(c.sweepIdx) != i || seen[c] {
				t.Fatalf("index %d holds %p (sweepIdx %d, seen %v)", i, c, c.sweepIdx, seen[c])
			}
			seen[c] = true
		}
		if max := (l.len()+connChunk-1)/connChunk + 1; len(l.blocks) > max {
			t.Fatalf("%d connections in %d blocks, want at most %d", l.len(), len(l.blocks), max)
		}
	}
	check()
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(cs), func(a, b int) { cs[a], cs[b] = cs[b], cs[a] })
	for k, c := range cs {
		l.remove(c)
		l.remove(c) // twice: no-op
		if c.sweepIdx != -1 || l.len() != n-k-1 {
			t.Fatalf("after removing %d: sweepIdx %d, len %d", k+1, c.sweepIdx, l.len())
		}
		if k%97 == 0 {
			check()
		}
	}
	check()
	if len(l.blocks) != 1 {
		t.Errorf("an empty list keeps %d blocks, want 1", len(l.blocks))
	}
}
