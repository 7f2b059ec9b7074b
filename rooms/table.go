package rooms

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Member is what the table stores for each connection in a room.
type Member interface {
	// Loop is the index of the event loop that owns the member, in
	// [0, loops) as given to New. It must not change while the member is in
	// any room.
	Loop() int
	// Kind is the member's wire encoding (an index below MaxKinds). A
	// snapshot records the set of kinds present so that a broadcast is
	// encoded once per kind actually needed.
	Kind() int
}

// MaxKinds bounds Member.Kind.
const MaxKinds = 8

// shardCount is a power of two so the shard is picked with a mask.
const shardCount = 64

// Table is a sharded set of rooms. It is safe for concurrent use.
type Table struct {
	loops  int
	rooms  atomic.Int64
	shards [shardCount]shard
}

type shard struct {
	mu    sync.RWMutex
	rooms map[string]*room
}

type room struct {
	name string
	// The members, guarded by the shard's lock: in small, searched
	// linearly, while the room has at most smallRoom of them; in big once
	// it grows past that, until it shrinks to smallRoom/2. A map entry
	// costs about 35 bytes (a 16-byte interface key padded to a 24-byte
	// slot, at most 7/8 full), a slice element 16, and an idle gateway's
	// rooms are mostly small; a search of up to smallRoom interfaces is a
	// fraction of a microsecond, below what a join's presence costs.
	small []Member
	big   map[Member]struct{}
	// snap is the current broadcast view; nil after a change until the
	// next Snapshot call rebuilds it.
	snap atomic.Pointer[Snapshot]
}

// smallRoom is the most members a room keeps in its slice.
const smallRoom = 128

func (r *room) len() int {
	if r.big != nil {
		return len(r.big)
	}
	return len(r.small)
}

func (r *room) index(m Member) int {
	for i, x := range r.small {
		if x == m {
			return i
		}
	}
	return -1
}

func (r *room) has(m Member) bool {
	if r.big != nil {
		_, ok := r.big[m]
		return ok
	}
	return r.index(m) >= 0
}

// add adds m, reporting false if it was a member already.
func (r *room) add(m Member) bool {
	if r.big != nil {
		if _, ok := r.big[m]; ok {
			return false
		}
		r.big[m] = struct{}{}
		return true
	}
	if r.index(m) >= 0 {
		return false
	}
	if len(r.small) < smallRoom {
		if len(r.small) == cap(r.small) {
			// Doubling, but never past smallRoom: append's own growth
			// would round a full room up to 143.
			grown := make([]Member, len(r.small), min(max(4, 2*cap(r.small)), smallRoom))
			copy(grown, r.small)
			r.small = grown
		}
		r.small = append(r.small, m)
		return true
	}
	r.big = make(map[Member]struct{}, 2*smallRoom)
	for _, x := range r.small {
		r.big[x] = struct{}{}
	}
	r.big[m] = struct{}{}
	r.small = nil
	return true
}

// remove removes m, reporting false if it was not a member.
func (r *room) remove(m Member) bool {
	if r.big != nil {
		if _, ok := r.big[m]; !ok {
			return false
		}
		delete(r.big, m)
		if len(r.big) <= smallRoom/2 {
			r.small = make([]Member, 0, len(r.big))
			for x := range r.big {
				r.small = append(r.small, x)
			}
			r.big = nil
		}
		return true
	}
	i := r.index(m)
	if i < 0 {
		return false
	}
	last := len(r.small) - 1
	r.small[i] = r.small[last]
	r.small[last] = nil // the slot must not keep a departed member alive
	r.small = r.small[:last]
	if cap(r.small) > 16 && len(r.small) <= cap(r.small)/4 {
		// A room that emptied out gives its capacity back.
		r.small = append(make([]Member, 0, 2*len(r.small)), r.small...)
	}
	return true
}

// all yields the members (for m := range r.all), in no set order.
func (r *room) all(yield func(Member) bool) {
	if r.big != nil {
		for m := range r.big {
			if !yield(m) {
				return
			}
		}
		return
	}
	for _, m := range r.small {
		if !yield(m) {
			return
		}
	}
}

// Snapshot is an immutable view of a room's members grouped by event loop.
// It must not be modified: broadcasts on every loop share it.
type Snapshot struct {
	// Count is the number of members.
	Count int
	// ByLoop[i] holds the members owned by event loop i.
	ByLoop [][]Member
	// Kinds has bit k set when some member has Kind() == k.
	Kinds uint32
}

// New returns an empty table for members spread over loops event loops.
func New(loops int) *Table {
	if loops < 1 {
		loops = 1
	}
	t := &Table{loops: loops}
	for i := range t.shards {
		t.shards[i].rooms = make(map[string]*room)
	}
	return t
}

// fnv1a is the 32-bit FNV-1a hash, inlined here so picking a shard does not
// allocate a hash.Hash.
func fnv1a(name []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range name {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

func (t *Table) shard(name []byte) *shard {
	return &t.shards[fnv1a(name)&(shardCount-1)]
}

// Join adds m to the room, creating the room if needed. It returns the
// member count after the call, whether m was added (false if it was already
// a member) and the room's name as stored in the table, which callers can
// keep instead of allocating their own copy.
func (t *Table) Join(name []byte, m Member) (count int, added bool, stored string) {
	s := t.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[string(name)]
	if r == nil {
		r = &room{name: string(name)}
		s.rooms[r.name] = r
		t.rooms.Add(1)
	}
	if !r.add(m) {
		return r.len(), false, r.name
	}
	r.snap.Store(nil)
	return r.len(), true, r.name
}

// Leave removes m from the room. It returns the member count after the
// call and whether m was removed. A room left empty is deleted.
func (t *Table) Leave(name []byte, m Member) (count int, removed bool) {
	s := t.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[string(name)]
	if r == nil {
		return 0, false
	}
	if !r.remove(m) {
		return r.len(), false
	}
	r.snap.Store(nil)
	if r.len() == 0 {
		delete(s.rooms, r.name)
		t.rooms.Add(-1)
	}
	return r.len(), true
}

// Contains reports whether m is a member of the room.
func (t *Table) Contains(name []byte, m Member) bool {
	s := t.shard(name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rooms[string(name)]
	if r == nil {
		return false
	}
	return r.has(m)
}

// Count returns the number of members of the room (0 if it does not exist).
func (t *Table) Count(name []byte) int {
	s := t.shard(name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r := s.rooms[string(name)]; r != nil {
		return r.len()
	}
	return 0
}

// Snapshot returns the room's broadcast view, or nil if the room does not
// exist. The result is immutable and stays valid after later joins and
// leaves, which only affect later snapshots.
func (t *Table) Snapshot(name []byte) *Snapshot {
	s := t.shard(name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rooms[string(name)]
	if r == nil {
		return nil
	}
	if snap := r.snap.Load(); snap != nil {
		return snap
	}
	// Built under the read lock: no writer can change members meanwhile,
	// so concurrent builders produce equal snapshots and either may win.
	snap := t.build(r)
	r.snap.CompareAndSwap(nil, snap)
	return snap
}

func (t *Table) build(r *room) *Snapshot {
	perLoop := make([]int, t.loops)
	for m := range r.all {
		perLoop[m.Loop()]++
	}
	all := make([]Member, 0, r.len())
	byLoop := make([][]Member, t.loops)
	off := 0
	for i, n := range perLoop {
		// Each loop's group is a window of one backing array: one
		// allocation for the whole snapshot.
		byLoop[i] = all[off : off : off+n]
		off += n
	}
	var kinds uint32
	for m := range r.all {
		i := m.Loop()
		byLoop[i] = append(byLoop[i], m)
		kinds |= 1 << uint(m.Kind())
	}
	return &Snapshot{Count: r.len(), ByLoop: byLoop, Kinds: kinds}
}

// Members returns the room's members (nil if the room does not exist).
func (t *Table) Members(name []byte) []Member {
	s := t.shard(name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rooms[string(name)]
	if r == nil {
		return nil
	}
	out := make([]Member, 0, r.len())
	for m := range r.all {
		out = append(out, m)
	}
	return out
}

// Info describes one room in a listing.
type Info struct {
	Name  string
	Count int
}

// List returns every room with its member count, sorted by name.
func (t *Table) List() []Info {
	out := make([]Info, 0, t.rooms.Load())
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for name, r := range s.rooms {
			out = append(out, Info{Name: name, Count: r.len()})
		}
		s.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Len returns the number of rooms.
func (t *Table) Len() int { return int(t.rooms.Load()) }

// Loops returns the number of event loops the table groups members by.
func (t *Table) Loops() int { return t.loops }
