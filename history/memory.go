package history

import (
	"context"
	"sync"
	"time"
	"unsafe"

	"github.com/chatgate/chatgate/chat"
)

var _ chat.History = (*Memory)(nil)

// EntryOverhead is what a kept message costs beyond its bytes and strings
// in the Config.Memory accounting: its slot in the room's ring and its
// reference in the log-wide eviction queue (192 bytes on 64-bit
// platforms). unsafe is used only for Sizeof, so the figure follows the
// structs.
const EntryOverhead = int64(unsafe.Sizeof(entry{}) + unsafe.Sizeof(ref{}))

// fifoSlack is how many stale references the eviction queue may hold
// beyond twice the live ones before it is compacted: a small log does not
// compact on every append.
const fifoSlack = 64

// Config configures a Memory. Its zero value is not usable: Size must be set.
type Config struct {
	// Size is how many messages each room keeps (-history-size); it must
	// be above 0. The oldest message of a full room is evicted first.
	Size int
	// TTL is how long a message is kept after it was appended
	// (-history-ttl): a message whose age has reached TTL is evicted.
	// 0 (or negative): no age limit.
	TTL time.Duration
	// Memory caps the bytes of all kept messages (-history-memory), as
	// accounted by EntryOverhead's rule; the oldest messages of the log
	// (lowest offsets, any room) go first. 0 (or negative): no total cap.
	Memory int64
	// Now is the clock for TTL; nil means time.Now. Tests set it.
	Now func() time.Time
	// Epoch is the log's epoch; "" picks 16 random hex digits, since an
	// in-memory log does not survive the process.
	Epoch string
}

// Memory is an in-memory chat.History: a bounded ring per room and one
// offset sequence for the whole log. It is safe for concurrent use under
// the locking rules of its methods (see the package doc).
type Memory struct {
	mu sync.Mutex

	// Immutable after NewMemory.
	size     int
	ttl      int64 // nanoseconds; 0: no age limit
	maxBytes int64 // 0: no total cap
	now      func() time.Time
	epoch    string

	// Guarded by mu.
	rooms   map[string]*roomLog
	fifo    fifo
	last    uint64 // the last offset appended or skipped over
	lost    uint64 // the highest floor of a deleted room: the floor of rooms not in the map
	count   int    // kept messages
	bytes   int64  // accounted bytes of kept messages
	dropped uint64 // Appends refused because their offset was not above last
	// tick counts the changes that may alter an answer of SinceLocked;
	// allChanged is its value at the last change of every room's answers
	// (a room deleted, Changed), roomLog.changed at the last of one room's.
	tick, allChanged uint64
}

// NewMemory returns an empty log configured by cfg. It panics if cfg.Size
// is not above 0: a gateway with history off has no log at all.
func NewMemory(cfg Config) *Memory {
	if cfg.Size <= 0 {
		panic("history: Config.Size must be above 0")
	}
	m := &Memory{
		size:  cfg.Size,
		now:   cfg.Now,
		epoch: cfg.Epoch,
		rooms: make(map[string]*roomLog),
	}
	if cfg.TTL > 0 {
		m.ttl = int64(cfg.TTL)
	}
	if cfg.Memory > 0 {
		m.maxBytes = cfg.Memory
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.epoch == "" {
		m.epoch = randomEpoch()
	}
	return m
}

// Lock takes the log's mutex. The caller holds it around Append and the
// fan-out of the appended message, and around a join and PositionLocked;
// see chat.History for what else may be held.
func (m *Memory) Lock() { m.mu.Lock() }

// Unlock releases the log's mutex.
func (m *Memory) Unlock() { m.mu.Unlock() }

// Epoch returns the log's epoch. It never locks, so it may be called with
// or without the lock held.
func (m *Memory) Epoch() string { return m.epoch }

// Append records the room message msg; the caller holds the lock. A zero
// msg.Offset gets the log's next offset, written back into msg.Offset. A
// non-zero one (a message another node sequenced) is kept as it is and
// becomes the log's last offset; if it is not above the last offset the
// message is not kept and only counted (Stats.Dropped), since a room's
// members must see its offsets increase.
//
// The log copies msg.Data and the attachments into one new buffer, its
// only allocation once the room's ring is full; the strings are kept as
// they are. msg's slices need to stay valid only during the call. Append
// then evicts what the Size, TTL and Memory bounds require, possibly msg
// itself if it alone exceeds Config.Memory.
func (m *Memory) Append(msg *chat.Message) {
	off := msg.Offset
	if off == 0 {
		off = m.last + 1
	} else if off <= m.last {
		m.dropped++
		return
	}
	var now int64
	if m.ttl > 0 {
		now = m.now().UnixNano()
		m.expireOldest(now)
	}
	r := m.rooms[string(msg.Room)] // no allocation: the compiler elides the conversion
	if r == nil {
		r = m.newRoom(msg.Room)
	}
	msg.Offset = off
	m.last = off
	m.changedRoom(r)
	if r.n == m.size {
		m.evictFront(r)
	}
	e := r.slot(m.size)
	copyMessage(&e.msg, msg, r.roomBytes)
	e.at = now
	e.size = entrySize(msg)
	m.count++
	m.bytes += e.size
	m.fifo.push(ref{r, off})
	if m.maxBytes > 0 {
		m.trimMemory()
	}
	if m.fifo.len() > 2*m.count+fifoSlack {
		m.fifo.compact()
	}
}

// entrySize is what msg is accounted in Config.Memory.
func entrySize(msg *chat.Message) int64 {
	n := len(msg.Data) + len(msg.From) + len(msg.Nick) + len(msg.User) + len(msg.Event)
	for _, a := range msg.Attachments {
		n += len(a)
	}
	return int64(n) + EntryOverhead
}

// copyMessage sets dst to a copy of src whose Data and attachments live in
// one new buffer (one allocation instead of one per slice; a message with
// attachments needs a second for their headers) and whose Room is room.
// Each copied slice is capped at its length, so that appending to one
// cannot overwrite the next.
func copyMessage(dst, src *chat.Message, room []byte) {
	*dst = *src
	dst.Room = room
	n := len(src.Data)
	for _, a := range src.Attachments {
		n += len(a)
	}
	buf := make([]byte, n) // a zero-size make does not allocate
	if src.Data != nil {
		k := copy(buf, src.Data)
		dst.Data, buf = buf[:k:k], buf[k:]
	}
	if src.Attachments != nil {
		atts := make([][]byte, len(src.Attachments))
		for i, a := range src.Attachments {
			if a != nil {
				k := copy(buf, a)
				atts[i], buf = buf[:k:k], buf[k:]
			}
		}
		dst.Attachments = atts
	}
}

// newRoom adds an empty room. Its floor starts at the log's lost offset: a
// room of that name may have been deleted with messages evicted.
func (m *Memory) newRoom(room []byte) *roomLog {
	b := []byte(string(room))
	e := roomEpoch(m.epoch, room)
	r := &roomLog{
		name:      string(room),
		roomBytes: b,
		epoch:     string(e[:]),
		floor:     m.lost,
	}
	m.rooms[r.name] = r
	return r
}

// evictFront drops r's oldest entry, raising r's floor to its offset. Its
// reference in the fifo goes stale. Lock held.
func (m *Memory) evictFront(r *roomLog) {
	e := &r.ring[r.head]
	r.floor = e.msg.Offset
	m.changedRoom(r)
	m.count--
	m.bytes -= e.size
	*e = entry{} // let the message's bytes be collected
	r.head++
	if r.head == len(r.ring) {
		r.head = 0
	}
	r.n--
}

// popStale drops stale references from the fifo's head and reports
// whether a live one is left there. Lock held.
func (m *Memory) popStale() bool {
	for m.fifo.len() > 0 {
		x := m.fifo.front()
		if x.room.holds(x.off) {
			return true
		}
		m.fifo.pop()
	}
	return false
}

// expireOldest evicts the log's oldest entries while their age has
// reached the TTL. It stops at the first that has not: entries appended
// later are younger unless the clock went back, and Sweep catches those.
// Lock held.
func (m *Memory) expireOldest(now int64) {
	for m.popStale() {
		x := m.fifo.front()
		if now-x.room.ring[x.room.head].at < m.ttl {
			return
		}
		m.fifo.pop()
		m.evictFront(x.room)
		x.room.shrink()
	}
}

// trimMemory evicts the log's oldest entries until the accounted bytes are
// within Config.Memory. Lock held.
func (m *Memory) trimMemory() {
	for m.bytes > m.maxBytes && m.popStale() {
		x := m.fifo.front()
		m.fifo.pop()
		m.evictFront(x.room)
		x.room.shrink()
	}
}

// expireRoom evicts r's entries whose age has reached the TTL. Lock held.
func (m *Memory) expireRoom(r *roomLog, now int64) {
	if r.n == 0 || now-r.ring[r.head].at < m.ttl {
		return
	}
	for r.n > 0 && now-r.ring[r.head].at >= m.ttl {
		m.evictFront(r)
	}
	r.shrink()
}

// lookup returns room's log, nil if it has none, after evicting its
// expired entries. Lock held.
func (m *Memory) lookup(room []byte) *roomLog {
	r := m.rooms[string(room)]
	if r != nil && m.ttl > 0 {
		m.expireRoom(r, m.now().UnixNano())
	}
	return r
}

// Position returns the log's last offset, across all rooms, and room's
// epoch. It takes the lock: with the lock held, call PositionLocked.
func (m *Memory) Position(room []byte) chat.Position {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.PositionLocked(room)
}

// PositionLocked is Position for a caller holding the lock, such as a
// join that must not miss a message appended between reading its position
// and joining. It allocates only for a room the log does not hold (whose
// epoch is not cached).
func (m *Memory) PositionLocked(room []byte) chat.Position {
	r := m.lookup(room)
	if r != nil {
		return chat.Position{Offset: m.last, Epoch: r.epoch}
	}
	e := roomEpoch(m.epoch, room)
	return chat.Position{Offset: m.last, Epoch: string(e[:])}
}

// Since appends to dst the messages of room after position since and
// returns them with room's current position (see PositionLocked); it
// implements chat.History.Since. It takes the lock: with the lock held,
// call SinceLocked.
func (m *Memory) Since(room []byte, since chat.Position, limit int, dst []chat.Message) ([]chat.Message, chat.Position, *chat.Error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.SinceLocked(room, since, limit, dst)
}

// SinceLocked is Since for a caller holding the lock.
//
// With since.Epoch empty it appends room's newest limit messages (all that
// are kept if limit ≤ 0), oldest first. Otherwise it fails with
// chat.ErrUnrecoverable when since.Epoch is not room's epoch, with
// chat.ErrFutureOffset when since.Offset is past the log's last offset,
// and with chat.ErrUnrecoverable when since.Offset is below room's floor
// (a message after it was evicted); on failure dst is returned unchanged.
// Else it appends the oldest limit messages with an offset above
// since.Offset (all if limit ≤ 0): a caller pages by asking again from
// the last one returned.
//
// The appended messages alias the log's copies: they stay valid, and must
// not be modified. It allocates only to grow dst, and for a room the log
// does not hold (whose epoch is not cached).
func (m *Memory) SinceLocked(room []byte, since chat.Position, limit int, dst []chat.Message) ([]chat.Message, chat.Position, *chat.Error) {
	r := m.lookup(room)
	pos := chat.Position{Offset: m.last}
	floor := m.lost
	var match bool
	if r != nil {
		pos.Epoch, floor = r.epoch, r.floor
		match = since.Epoch == r.epoch
	} else {
		e := roomEpoch(m.epoch, room)
		match = since.Epoch == string(e[:]) // compared without allocating
		pos.Epoch = string(e[:])
	}
	switch {
	case since.Epoch == "":
		if r == nil {
			return dst, pos, nil
		}
		i := 0
		if limit > 0 && r.n > limit {
			i = r.n - limit
		}
		return r.appendRange(dst, i, r.n), pos, nil
	case !match:
		return dst, pos, chat.ErrUnrecoverable
	case since.Offset > m.last:
		return dst, pos, chat.ErrFutureOffset
	case since.Offset < floor:
		return dst, pos, chat.ErrUnrecoverable
	case r == nil:
		return dst, pos, nil
	}
	i := r.search(since.Offset)
	j := r.n
	if limit > 0 && j-i > limit {
		j = i + limit
	}
	return r.appendRange(dst, i, j), pos, nil
}

// GenerationLocked returns a number that changes whenever an answer of
// SinceLocked for room may have changed: an append to the room or an
// eviction from it, a room deleted, or Changed; appends to other rooms
// leave it. While it stays the same, every SinceLocked answer for room
// is the same but for the position's offset (the log's, which moves with
// every room), which lets a reader serve many equal requests from one
// read (chat merges the recovery reads of a reconnect storm this way).
// A value is never returned again once it has changed. Lock held.
func (m *Memory) GenerationLocked(room []byte) uint64 {
	if r := m.rooms[string(room)]; r != nil {
		return max(m.allChanged, r.changed)
	}
	return m.allChanged
}

// Changed moves the generation of every room, for a wrapper that changed
// answers of its own (a floor; see cluster's shared log). Lock held.
func (m *Memory) Changed() {
	m.tick++
	m.allChanged = m.tick
}

// changedRoom moves the generation of r. Lock held.
func (m *Memory) changedRoom(r *roomLog) {
	m.tick++
	r.changed = m.tick
}

// Sweep evicts every expired message and deletes the rooms left without
// messages, folding their floors into the log's. It takes the lock and
// walks every room, so its pause grows with the number of rooms; call it
// from Run every few seconds, not per message.
func (m *Memory) Sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	var now int64
	if m.ttl > 0 {
		now = m.now().UnixNano()
	}
	for name, r := range m.rooms {
		if m.ttl > 0 {
			m.expireRoom(r, now)
		}
		if r.n == 0 {
			m.Changed() // the floor of rooms not in the map may rise
			m.lost = max(m.lost, r.floor)
			r.dead = true
			delete(m.rooms, name)
		}
	}
	if m.fifo.len() > 2*m.count+fifoSlack {
		m.fifo.compact()
	}
}

// Run calls Sweep every interval until ctx is done. Run it on its own
// goroutine; it returns when ctx is done.
func (m *Memory) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

// Stats is a snapshot of a log's size, for metrics and tests.
type Stats struct {
	Rooms    int    // rooms in the map, including empty ones Sweep has not deleted yet
	Messages int    // kept messages
	Bytes    int64  // accounted bytes of kept messages (see EntryOverhead)
	Last     uint64 // the log's last offset
	Dropped  uint64 // Appends not kept because their offset was not above the last one
}

// Stats returns the log's current figures. It takes the lock.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{
		Rooms:    len(m.rooms),
		Messages: m.count,
		Bytes:    m.bytes,
		Last:     m.last,
		Dropped:  m.dropped,
	}
}
