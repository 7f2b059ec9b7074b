package chat

import (
	"sort"
	"time"
)

// Merged recovery reads. After a node drops its clients (a deploy, a
// crash), they resume within a second or two, and the members of one room
// mostly ask for the same gap: they were reading the same messages when
// they dropped. Each resume reading the room's gap from the log on its own
// multiplies the log's work by the room's size; instead the resumes of a
// room share one read while the log stays unchanged (docs/deploy.md,
// "Reconnect storms").
//
// The log says when a room's answers changed: a History with a
// generation per room (GenerationLocked, moved by every append to the
// room, eviction from it or floor change) lets the hub keep the last read
// of each room for as long as the room's generation stays the same, and
// serve from it any resume whose offset lies within it: appends to other
// rooms do not end it. A resume asking from further back than that read
// reads again (from its own, earlier offset) and its read replaces the
// room's, so reads per room are at most the number of distinct offsets in
// decreasing order, one in the common case. The reads kept are dropped
// every mergeWindow, so that they do not hold messages the log has
// evicted for long. A History without a generation is read once per
// resume.

// mergeWindow bounds how long reads are kept for merging.
const mergeWindow = 10 * time.Second

// generational is a History that can tell when its answers for a room may
// have changed (history.Memory and cluster's shared log are).
type generational interface {
	GenerationLocked(room []byte) uint64
}

// mergedReads holds the last recovery read of each room made since start.
// Guarded by the history lock.
type mergedReads struct {
	start int64 // Unix nanoseconds
	rooms map[string]*mergedRead
}

// mergedRead is one room's read: the messages after offset from, read at
// the room's generation gen, under the room's epoch.
type mergedRead struct {
	gen   uint64
	from  uint64
	epoch string
	msgs  []Message
}

// readMissed returns the messages of room after since, as SinceLocked
// with no limit, and the room's position, which is cur (PositionLocked
// just read, with since.Epoch its epoch); served from the room's last
// read when the room has not changed since and that read covers since.
// History lock held. The messages alias the log's copies or another
// resume's read: they must not be modified.
func (h *Hub) readMissed(room []byte, since, cur Position) ([]Message, Position, *Error) {
	g, ok := h.hist.(generational)
	if !ok {
		h.cfg.Metrics.RecoveryRead(false)
		return h.hist.SinceLocked(room, since, 0, nil)
	}
	rr := &h.reads
	now := h.cfg.Now().UnixNano()
	if rr.rooms == nil || now-rr.start > int64(mergeWindow) || now < rr.start {
		rr.start = now
		clear(rr.rooms)
		if rr.rooms == nil {
			rr.rooms = make(map[string]*mergedRead)
		}
	}
	gen := g.GenerationLocked(room)
	if e := rr.rooms[string(room)]; e != nil && e.gen == gen && e.epoch == since.Epoch &&
		since.Offset >= e.from && since.Offset <= cur.Offset {
		// The room's messages after since are those of the read after
		// since: none came or went since the read.
		i := sort.Search(len(e.msgs), func(i int) bool { return e.msgs[i].Offset > since.Offset })
		h.cfg.Metrics.RecoveryRead(true)
		return e.msgs[i:len(e.msgs):len(e.msgs)], cur, nil
	}
	h.cfg.Metrics.RecoveryRead(false)
	msgs, pos, err := h.hist.SinceLocked(room, since, 0, nil)
	if err == nil {
		// A failed read is not kept: a later resume asking from further
		// on may well succeed.
		rr.rooms[string(room)] = &mergedRead{gen: gen, from: since.Offset, epoch: since.Epoch, msgs: msgs}
	}
	return msgs, pos, err
}
