package chat

import "math/bits"

// seqSet is a hash set of this node's sessions keyed by their ids'
// sequence numbers (parseSeq): open addressing with linear probing and
// backward-shift deletion (no tombstones), at most 3/4 full and halved
// when less than 1/8 full.
//
// A slot is a pointer, 8 bytes; a map[uint64]*Session slot is 16 and the
// map's groups add control words, about 30 bytes a session against this
// set's 11–21, and an idle gateway holds one per connection. Slots compare
// by id text, which for this node's ids is the same as comparing numbers.
// Not safe for concurrent use (registry's shard lock guards it).
type seqSet struct {
	node  string     // the tag the ids in the set carry
	slots []*Session // nil or a power-of-two length of at least minSeqSlots
	shift uint8      // 64 − log2(len(slots)): home keeps the high bits
	n     int
}

// minSeqSlots is the smallest table.
const minSeqSlots = 8

// home is the slot where seq's probe starts (Fibonacci hashing: local ids
// are consecutive numbers, which multiplication spreads).
func (t *seqSet) home(seq uint64) int { return int((seq * 0x9e3779b97f4a7c15) >> t.shift) }

func (t *seqSet) homeOf(s *Session) int {
	seq, _ := parseSeq(t.node, s.id) // only this node's ids are stored
	return t.home(seq)
}

// find returns the slot holding id, or the empty slot where the probe for
// seq ended (found false). The table must not be empty.
func (t *seqSet) find(seq uint64, id string) (i int, found bool) {
	mask := len(t.slots) - 1
	for i = t.home(seq); t.slots[i] != nil; i = (i + 1) & mask {
		if t.slots[i].id == id {
			return i, true
		}
	}
	return i, false
}

// get returns the session with the id of number seq (its text id), or nil.
func (t *seqSet) get(seq uint64, id string) *Session {
	if t.n == 0 {
		return nil
	}
	if i, ok := t.find(seq, id); ok {
		return t.slots[i]
	}
	return nil
}

// put adds s, whose id has number seq, replacing a session with its id.
func (t *seqSet) put(s *Session, seq uint64) {
	if 4*(t.n+1) > 3*len(t.slots) {
		t.resize(max(minSeqSlots, 2*len(t.slots)))
	}
	i, found := t.find(seq, s.id)
	t.slots[i] = s
	if !found {
		t.n++
	}
}

// remove removes s, whose id has number seq, reporting false if the set
// holds another session (or none) under its id.
func (t *seqSet) remove(s *Session, seq uint64) bool {
	if t.n == 0 {
		return false
	}
	i, found := t.find(seq, s.id)
	if !found || t.slots[i] != s {
		return false
	}
	// Backward shift: move later members of the probe run into the hole
	// unless their home lies cyclically in (hole, their slot].
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j] != nil; j = (j + 1) & mask {
		k := t.homeOf(t.slots[j])
		if i <= j && i < k && k <= j || i > j && (i < k || k <= j) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = nil
	t.n--
	if len(t.slots) > minSeqSlots && 8*t.n < len(t.slots) {
		t.resize(len(t.slots) / 2)
	}
	return true
}

// resize rehashes into n slots (a power of two).
func (t *seqSet) resize(n int) {
	old := t.slots
	t.slots = make([]*Session, n)
	t.shift = uint8(64 - bits.TrailingZeros(uint(n)))
	mask := n - 1
	for _, s := range old {
		if s == nil {
			continue
		}
		i := t.homeOf(s)
		for t.slots[i] != nil {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// all appends the set's sessions to dst.
func (t *seqSet) all(dst []*Session) []*Session {
	for _, s := range t.slots {
		if s != nil {
			dst = append(dst, s)
		}
	}
	return dst
}
