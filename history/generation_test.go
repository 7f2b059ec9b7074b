package history

import (
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// TestGeneration: every change that may alter a SinceLocked answer for a
// room moves the room's generation (its appends, its evictions by size
// and by age, a room deleted, Changed), never to a value seen before;
// reads and appends to other rooms do not.
func TestGeneration(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := NewMemory(Config{Size: 2, TTL: time.Minute, Now: func() time.Time { return now }})
	seen := map[uint64]bool{}
	gen := func(room string) uint64 { m.Lock(); defer m.Unlock(); return m.GenerationLocked([]byte(room)) }
	moved := func(room, what string, old uint64) uint64 {
		t.Helper()
		g := gen(room)
		if g == old || seen[g] {
			t.Fatalf("%s: generation of %s %d → %d, want a new value", what, room, old, g)
		}
		seen[g] = true
		return g
	}
	appendTo := func(room string) {
		m.Lock()
		m.Append(&chat.Message{Room: []byte(room), Data: []byte(`"x"`)})
		m.Unlock()
	}
	g := gen("a")
	seen[g] = true
	appendTo("a")
	g = moved("a", "append", g)
	appendTo("a")
	g = moved("a", "second append", g)
	m.Since([]byte("a"), chat.Position{}, 0, nil)
	appendTo("b")
	if gen("a") != g {
		t.Fatal("a read or an append to another room moved the generation")
	}
	appendTo("a") // evicts a's oldest: its floor moves
	g = moved("a", "append with eviction", g)
	now = now.Add(2 * time.Minute) // every message expired
	m.Since([]byte("a"), chat.Position{}, 0, nil)
	g = moved("a", "eviction by age", g)
	m.Sweep() // deletes the empty rooms
	g = moved("a", "room deleted", g)
	appendTo("a") // a new room of the same name
	g = moved("a", "room made again", g)
	m.Lock()
	m.Changed()
	m.Unlock()
	moved("a", "Changed", g)
}
