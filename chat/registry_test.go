package chat

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/chatgate/chatgate/rooms"
)

// idFor returns the id g hands out for sequence number n.
func idFor(g *idGen, n uint64) string {
	g.seq.Store(n - 1)
	return g.next()
}

// TestParseSeq: the number the registry keys a local id by is the
// sequence idGen wrote into it, for every size of number, and a text that
// idGen would not write for this node is not local (it would otherwise
// share a number with a real id).
func TestParseSeq(t *testing.T) {
	var g idGen
	g.init("abcd")
	for _, n := range []uint64{1, 31, 32, 1<<30 - 1, 1 << 30, 1<<40 + 7, math.MaxUint64} {
		id := idFor(&g, n)
		if got, ok := parseSeq(g.node, id); !ok || got != n {
			t.Errorf("parseSeq(%q) = %d, %v; want %d", id, got, ok, n)
		}
		if got, ok := parseSeq(g.node, []byte(id)); !ok || got != n {
			t.Errorf("parseSeq([]byte %q) = %d, %v; want %d", id, got, ok, n)
		}
	}
	for _, id := range []string{
		"abcd00001",         // too few digits
		"abcd0000001",       // padded past six digits
		"abcd00000i",        // not in the alphabet
		"abcd00000A",        // upper case
		"wxyz000001",        // another node
		"abc000001",         // a shorter tag
		"abcdzzzzzzzzzzzzz", // more than 64 bits
		"abcdg000000000000", // 65 bits
		"",
	} {
		if n, ok := parseSeq(g.node, id); ok {
			t.Errorf("parseSeq(%q) = %d, local; want foreign", id, n)
		}
	}
	// Whatever parses is exactly the id of its number: no two texts share
	// a key.
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := []byte("abcd")
		for range 5 + r.IntN(10) {
			b = append(b, idAlphabet[r.IntN(len(idAlphabet))])
		}
		if n, ok := parseSeq(g.node, b); ok && n != 0 {
			if want := idFor(&g, n); want != string(b) {
				t.Fatalf("parseSeq(%q) = %d, whose id is %q", b, n, want)
			}
		}
	}
}

// TestRegistryLocalAndForeignIds: ids this node made are kept by number,
// others (sessions resumed from another node) by text; either is found,
// replaced, listed and removed as before, and a foreign id that looks
// almost like a local one is a different session.
func TestRegistryLocalAndForeignIds(t *testing.T) {
	var g idGen
	g.init("abcd")
	var reg registry
	reg.init(g.node)
	var local []*Session
	for range 200 {
		s := &Session{id: g.next()}
		local = append(local, s)
		reg.put(s)
	}
	foreign := []*Session{{id: "wxyz000001"}, {id: "abcd0000001"}, {id: "node-2:x"}}
	for _, s := range foreign {
		reg.put(s)
	}
	nLocal, nForeign := 0, 0
	for i := range reg.shards {
		nLocal += reg.shards[i].local.n
		nForeign += len(reg.shards[i].foreign)
	}
	if nLocal != len(local) || nForeign != len(foreign) {
		t.Fatalf("%d kept by number, %d by text; want %d and %d", nLocal, nForeign, len(local), len(foreign))
	}
	for _, s := range append(local[:3:3], foreign...) {
		if got := reg.get([]byte(s.id)); got != s || !reg.has(s) {
			t.Errorf("get(%q) = %v, has %v", s.id, got, reg.has(s))
		}
	}
	if got := reg.get([]byte("abcd000001")); got != local[0] {
		t.Errorf("get(abcd000001) = %v, want the first local session", got)
	}
	if n := len(reg.all(nil)); n != len(local)+len(foreign) {
		t.Errorf("all: %d sessions, want %d", n, len(local)+len(foreign))
	}
	// A new session under a known id replaces the old one, which then
	// cannot remove the new one.
	for _, old := range []*Session{local[5], foreign[0]} {
		repl := &Session{id: old.id}
		reg.put(repl)
		if reg.has(old) || reg.remove(old) || !reg.has(repl) {
			t.Errorf("%q: the replaced session is still there, or removed its successor", old.id)
		}
		if !reg.remove(repl) || reg.remove(repl) || reg.get([]byte(old.id)) != nil {
			t.Errorf("%q: remove twice, or found after removal", old.id)
		}
	}
}

// TestSeqSetAgainstMap: a random run of puts (new ids and replacements),
// removes (of members, of replaced sessions, of strangers) and gets
// through growths and shrinks agrees with a map at every step, and every
// member stays reachable from its home slot (backward-shift deletion
// must not strand one behind a hole).
func TestSeqSetAgainstMap(t *testing.T) {
	// Few ids make small tables, whose probe runs often wrap around the
	// end; many make growths and shrinks.
	for _, ids := range []int{6, 13, 40, 3000} {
		t.Run(strconv.Itoa(ids), func(t *testing.T) { seqSetAgainstMap(t, ids) })
	}
}

func seqSetAgainstMap(t *testing.T, ids int) {
	var g idGen
	g.init("abcd")
	set := seqSet{node: g.node}
	ref := map[uint64]*Session{}
	r := rand.New(rand.NewPCG(3, uint64(ids)))
	check := func(step int) {
		t.Helper()
		if set.n != len(ref) || len(set.all(nil)) != len(ref) {
			t.Fatalf("step %d: set has %d (%d listed), map %d", step, set.n, len(set.all(nil)), len(ref))
		}
		if len(set.slots) > minSeqSlots && 8*set.n < len(set.slots) || 4*set.n > 3*len(set.slots) {
			t.Fatalf("step %d: %d in %d slots", step, set.n, len(set.slots))
		}
		for seq, s := range ref {
			if got := set.get(seq, s.id); got != s {
				t.Fatalf("step %d: get(%q) = %v, want %p", step, s.id, got, s)
			}
		}
	}
	for step := range 60000 {
		// Phases: mostly puts, then mostly removes, twice over.
		putBias := []int{85, 15, 85, 15}[step/15000]
		seq := 1 + uint64(r.IntN(ids))
		switch op := r.IntN(100); {
		case op < putBias:
			s := &Session{id: idFor(&g, seq)}
			set.put(s, seq)
			ref[seq] = s
		default:
			if s := ref[seq]; s != nil && r.IntN(4) > 0 {
				if !set.remove(s, seq) {
					t.Fatalf("step %d: remove(%q) of a member failed", step, s.id)
				}
				delete(ref, seq)
			} else if set.remove(&Session{id: idFor(&g, seq)}, seq) {
				t.Fatalf("step %d: removed a session not in the set", step)
			}
		}
		if step%500 == 0 || ids < 100 {
			check(step)
		}
	}
	for seq, s := range ref {
		if !set.remove(s, seq) {
			t.Fatalf("final remove(%q) failed", s.id)
		}
	}
	if set.n != 0 || len(set.slots) != minSeqSlots {
		t.Fatalf("emptied set: %d in %d slots", set.n, len(set.slots))
	}
}

// TestLookupDoesNotAllocate: finding a session by id, this node's or
// another's, allocates nothing.
func TestLookupDoesNotAllocate(t *testing.T) {
	h := NewHub(Config{Node: "abcd"}, rooms.New(1))
	s := h.Open(nil, 0, 0, nil)
	other := &Session{id: "wxyz000001"}
	h.sessions.put(other)
	local, foreign := []byte(s.id), []byte(other.id)
	if h.Lookup(local) != s || h.Lookup(foreign) != other {
		t.Fatal("sessions not found")
	}
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(100, func() { h.Lookup(local); h.Lookup(foreign); h.sessions.has(s) }); n != 0 {
		t.Errorf("lookups: %v allocations, want 0", n)
	}
}
