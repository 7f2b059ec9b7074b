package history

import (
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// TestGeneration: every change that may alter a SinceLocked answer moves
// the generation (appends, evictions by size and by age, a room deleted,
// Changed); reads do not.
func TestGeneration(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := NewMemory(Config{Size: 2, TTL: time.Minute, Now: func() time.Time { return now }})
	gen := func() uint64 { m.Lock(); defer m.Unlock(); return m.GenerationLocked() }
	appendTo := func(room string) {
		m.Lock()
		m.Append(&chat.Message{Room: []byte(room), Data: []byte(`"x"`)})
		m.Unlock()
	}
	g := gen()
	appendTo("a")
	if gen() == g {
		t.Fatal("append did not move the generation")
	}
	appendTo("a")
	g = gen()
	m.Since([]byte("a"), chat.Position{}, 0, nil)
	if gen() != g {
		t.Fatal("a read moved the generation")
	}
	appendTo("a") // evicts the oldest: a floor moves
	if gen() <= g+1 {
		t.Fatal("eviction by size did not move the generation beyond the append")
	}
	g = gen()
	now = now.Add(2 * time.Minute) // every message expired
	m.Since([]byte("a"), chat.Position{}, 0, nil)
	if gen() == g {
		t.Fatal("eviction by age did not move the generation")
	}
	g = gen()
	m.Sweep() // deletes the empty room
	if gen() == g {
		t.Fatal("deleting a room did not move the generation")
	}
	g = gen()
	m.Lock()
	m.Changed()
	m.Unlock()
	if gen() == g {
		t.Fatal("Changed did not move the generation")
	}
}
