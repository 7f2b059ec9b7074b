package chat

import (
	"math"
	"math/rand/v2"
	"testing"
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
		nLocal += len(reg.shards[i].local)
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
