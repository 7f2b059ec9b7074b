package history

import "github.com/chatgate/chatgate/chat"

// entry is one kept message.
type entry struct {
	msg  chat.Message // Room aliases roomLog.roomBytes; Data and Attachments the log's copy
	at   int64        // append time, Unix nanoseconds; 0 when there is no TTL
	size int64        // bytes accounted to this entry (entrySize)
}

// minRing is the smallest ring a room grows to, so that the first few
// messages of a room do not each reallocate it.
const minRing = 4

// roomLog is the history of one room: a ring of its newest entries, oldest
// first, with strictly increasing offsets. All fields are guarded by
// Memory.mu.
type roomLog struct {
	name      string // the map key
	roomBytes []byte // name as bytes, shared by every returned message's Room
	epoch     string
	// floor is the offset of the most recently evicted entry: positions
	// below it are no longer recoverable. A new room starts at the log's
	// lost offset.
	floor uint64
	ring  []entry
	head  int // index of the oldest entry in ring
	n     int // entries kept
	// dead is set when the room is deleted from the map, so that queued
	// references to it (fifo) are known to be stale.
	dead bool
	// changed is the log's tick at the room's last append or eviction
	// (Memory.GenerationLocked).
	changed uint64
}

// at returns the i-th kept entry, 0 being the oldest.
func (r *roomLog) at(i int) *entry {
	j := r.head + i
	if j >= len(r.ring) {
		j -= len(r.ring)
	}
	return &r.ring[j]
}

// holds reports whether the entry with offset off, once appended to r, is
// still kept. Entries leave a room only from its front, so that is the case
// exactly when off is not below the oldest kept offset.
func (r *roomLog) holds(off uint64) bool {
	return !r.dead && r.n > 0 && off >= r.ring[r.head].msg.Offset
}

// slot makes room for one more entry, growing the ring up to max entries
// (doubling, so growth is amortised O(1)), and returns the new last slot.
// The caller has evicted the oldest entry already if r.n == max.
func (r *roomLog) slot(max int) *entry {
	if r.n == len(r.ring) {
		c := 2 * len(r.ring)
		if c < minRing {
			c = minRing
		}
		if c > max {
			c = max
		}
		r.resize(c)
	}
	r.n++
	return r.at(r.n - 1)
}

// shrink gives back ring capacity after evictions that were not followed
// by an append (TTL, memory cap), so that memory the accounting no longer
// counts is not held by a room that went quiet. It halves the ring while
// at most a quarter of it is used: the gap to the grow threshold (full)
// keeps a room from resizing back and forth.
func (r *roomLog) shrink() {
	if r.n == 0 {
		r.ring, r.head = nil, 0
		return
	}
	c := len(r.ring)
	for c > minRing && r.n <= c/4 {
		c /= 2
	}
	if c < len(r.ring) {
		r.resize(c)
	}
}

// resize moves the kept entries, oldest first, into a ring of c slots.
func (r *roomLog) resize(c int) {
	ring := make([]entry, c)
	if r.n > 0 {
		k := copy(ring, r.ring[r.head:min(r.head+r.n, len(r.ring))])
		copy(ring[k:r.n], r.ring)
	}
	r.ring, r.head = ring, 0
}

// search returns the index of the first kept entry with an offset above
// off (r.n if none). Offsets in a ring increase, so this is a binary search.
func (r *roomLog) search(off uint64) int {
	lo, hi := 0, r.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.at(mid).msg.Offset <= off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// appendRange appends entries i to j-1 to dst.
func (r *roomLog) appendRange(dst []chat.Message, i, j int) []chat.Message {
	for ; i < j; i++ {
		dst = append(dst, r.at(i).msg)
	}
	return dst
}

// ref names a kept entry in the log-wide eviction queue.
type ref struct {
	room *roomLog
	off  uint64
}

// fifo is the log-wide queue of entries in append order, which is offset
// order: its head is the globally oldest entry, the next one to evict by
// memory cap or TTL. Entries evicted otherwise (room Size cap, TTL in one
// room) leave stale references behind, skipped when they reach the head
// and dropped by compaction.
type fifo struct {
	q    []ref
	head int
}

func (f *fifo) len() int { return len(f.q) - f.head }

func (f *fifo) front() ref { return f.q[f.head] }

func (f *fifo) push(x ref) {
	// Move the live part down once half the slice is popped: each move
	// copies at most as many references as were popped since the last.
	if f.head > 0 && f.head >= len(f.q)/2 {
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q, f.head = f.q[:n], 0
	}
	f.q = append(f.q, x)
}

func (f *fifo) pop() {
	f.q[f.head] = ref{} // let a deleted room be collected
	f.head++
	if f.head == len(f.q) {
		f.q, f.head = f.q[:0], 0
	}
}

// compact drops the stale references, keeping the order of the others.
func (f *fifo) compact() {
	w := 0
	for _, x := range f.q[f.head:] {
		if x.room.holds(x.off) {
			f.q[w] = x
			w++
		}
	}
	clear(f.q[w:])
	f.q, f.head = f.q[:w], 0
	if cap(f.q) > 4*fifoSlack && w < cap(f.q)/4 {
		f.q = append(make([]ref, 0, 2*w), f.q...)
	}
}
