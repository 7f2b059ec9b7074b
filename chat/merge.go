package chat

import "sort"

// Merged recovery reads. After a node drops its clients (a deploy, a
// crash), they resume within a second or two, and the members of one room
// mostly ask for the same gap: they were reading the same messages when
// they dropped. Each resume reading the room's gap from the log on its own
// multiplies the log's work by the room's size; instead the resumes of a
// room share one read while the log stays unchanged (docs/deploy.md,
// "Reconnect storms").
//
// The log says when it changed: a History with a generation
// (GenerationLocked, bumped by every append, eviction or floor change) lets
// the hub keep the last read of each room for as long as the generation
// stays the same, and serve from it any resume whose offset lies within
// it. A resume asking from further back than that read reads again (from
// its own, earlier offset) and its read replaces the room's, so reads per
// room per window are at most the number of distinct offsets in
// decreasing order, one in the common case. A History without a
// generation is read once per resume.

// generational is a History that can tell when its answers may have
// changed (history.Memory and cluster's shared log are).
type generational interface {
	GenerationLocked() uint64
}

// mergedReads holds the last recovery read of each room made since the
// log's generation gen. Guarded by the history lock.
type mergedReads struct {
	gen   uint64
	rooms map[string]*mergedRead
}

// mergedRead is one room's read: the messages after offset from, and the
// room's position when read.
type mergedRead struct {
	from uint64
	msgs []Message
	pos  Position
}

// readMissed returns the messages of room after since (since.Epoch is the
// room's), as SinceLocked with no limit, served from the room's last read
// when the log has not changed since and that read covers since. History
// lock held. The messages alias the log's copies or another resume's
// read: they must not be modified.
func (h *Hub) readMissed(room []byte, since Position) ([]Message, Position, *Error) {
	g, ok := h.hist.(generational)
	if !ok {
		h.cfg.Metrics.RecoveryRead(false)
		return h.hist.SinceLocked(room, since, 0, nil)
	}
	rr := &h.reads
	if gen := g.GenerationLocked(); gen != rr.gen || rr.rooms == nil {
		rr.gen = gen
		clear(rr.rooms) // the log changed: every read kept may be stale
		if rr.rooms == nil {
			rr.rooms = make(map[string]*mergedRead)
		}
	}
	if e := rr.rooms[string(room)]; e != nil && e.pos.Epoch == since.Epoch &&
		since.Offset >= e.from && since.Offset <= e.pos.Offset {
		i := sort.Search(len(e.msgs), func(i int) bool { return e.msgs[i].Offset > since.Offset })
		h.cfg.Metrics.RecoveryRead(true)
		return e.msgs[i:len(e.msgs):len(e.msgs)], e.pos, nil
	}
	h.cfg.Metrics.RecoveryRead(false)
	msgs, pos, err := h.hist.SinceLocked(room, since, 0, nil)
	if err == nil {
		// A failed read is not kept: a later resume asking from further
		// on may well succeed.
		rr.rooms[string(room)] = &mergedRead{from: since.Offset, msgs: msgs, pos: pos}
	}
	return msgs, pos, err
}
