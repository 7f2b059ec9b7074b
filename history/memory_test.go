package history

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/chatgate/chatgate/chat"
)

// clock is a fake Config.Now, safe for concurrent use (Run reads it).
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newLog returns a log with a fixed epoch, so failures print stable epochs.
func newLog(cfg Config) *Memory {
	if cfg.Epoch == "" {
		cfg.Epoch = "test"
	}
	return NewMemory(cfg)
}

// send appends a message to room under the lock and returns its offset;
// off is the offset to ask for (0: the next one).
func send(m *Memory, room, data string, off uint64) uint64 {
	msg := chat.Message{Room: []byte(room), From: "c1", Data: []byte(data), Offset: off}
	m.Lock()
	m.Append(&msg)
	m.Unlock()
	return msg.Offset
}

func offsets(msgs []chat.Message) []uint64 {
	out := []uint64{}
	for _, msg := range msgs {
		out = append(out, msg.Offset)
	}
	return out
}

// at returns the position at offset off in room.
func at(m *Memory, room string, off uint64) chat.Position {
	return chat.Position{Offset: off, Epoch: m.Position([]byte(room)).Epoch}
}

// kept returns the offsets room keeps.
func kept(t *testing.T, m *Memory, room string) []uint64 {
	t.Helper()
	msgs, _, err := m.Since([]byte(room), chat.Position{}, 0, nil)
	if err != nil {
		t.Fatalf("Since(%q, newest): %v", room, err)
	}
	return offsets(msgs)
}

func TestAppendAssignsIncreasingOffsets(t *testing.T) {
	m := newLog(Config{Size: 10})
	var got []uint64
	for _, room := range []string{"a", "b", "a", "c"} {
		got = append(got, send(m, room, `1`, 0))
	}
	if want := []uint64{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("offsets written back = %v, want %v", got, want)
	}
	if got, want := kept(t, m, "a"), []uint64{1, 3}; !slices.Equal(got, want) {
		t.Errorf("room a keeps %v, want %v", got, want)
	}
	if s := m.Stats(); s.Last != 4 || s.Messages != 4 || s.Rooms != 3 {
		t.Errorf("Stats = %+v, want Last 4, Messages 4, Rooms 3", s)
	}
	msgs, _, _ := m.Since([]byte("c"), chat.Position{}, 0, nil)
	if len(msgs) != 1 || string(msgs[0].Room) != "c" || string(msgs[0].Data) != "1" || msgs[0].From != "c1" {
		t.Errorf("room c returns %+v, want one message of c1 in room c", msgs)
	}
}

func TestAppendSequencedOffsets(t *testing.T) {
	tests := []struct {
		name        string
		in          []uint64 // offsets given to Append, 0: assign
		wantOffsets []uint64 // written back
		wantKept    []uint64
		wantDropped uint64
	}{
		{name: "kept as given", in: []uint64{5, 9}, wantOffsets: []uint64{5, 9}, wantKept: []uint64{5, 9}},
		{name: "assigned after a sequenced one", in: []uint64{5, 0, 0}, wantOffsets: []uint64{5, 6, 7}, wantKept: []uint64{5, 6, 7}},
		{name: "not above the last is dropped", in: []uint64{5, 5, 3, 7}, wantOffsets: []uint64{5, 5, 3, 7}, wantKept: []uint64{5, 7}, wantDropped: 2},
		{name: "below an assigned one is dropped", in: []uint64{0, 0, 2, 3}, wantOffsets: []uint64{1, 2, 2, 3}, wantKept: []uint64{1, 2, 3}, wantDropped: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newLog(Config{Size: 10})
			var got []uint64
			for _, off := range tc.in {
				got = append(got, send(m, "r", "1", off))
			}
			if !slices.Equal(got, tc.wantOffsets) {
				t.Errorf("offsets after Append = %v, want %v", got, tc.wantOffsets)
			}
			if got := kept(t, m, "r"); !slices.Equal(got, tc.wantKept) {
				t.Errorf("kept %v, want %v", got, tc.wantKept)
			}
			s := m.Stats()
			if s.Dropped != tc.wantDropped || s.Last != slices.Max(tc.wantKept) {
				t.Errorf("Stats = %+v, want Dropped %d, Last %d", s, tc.wantDropped, slices.Max(tc.wantKept))
			}
		})
	}
}

func TestSizeEvictionFloor(t *testing.T) {
	m := newLog(Config{Size: 3})
	send(m, "b", "b1", 0) // 1: another room's message is not evicted by a's
	for i := 0; i < 5; i++ {
		send(m, "a", "a", 0) // 2..6; a keeps 4, 5, 6 and its floor is 3
	}
	if got, want := kept(t, m, "b"), []uint64{1}; !slices.Equal(got, want) {
		t.Fatalf("room b keeps %v, want %v", got, want)
	}
	tests := []struct {
		since   uint64
		want    []uint64
		wantErr *chat.Error
	}{
		{since: 0, wantErr: chat.ErrUnrecoverable},
		{since: 2, wantErr: chat.ErrUnrecoverable},
		{since: 3, want: []uint64{4, 5, 6}},
		{since: 5, want: []uint64{6}},
		{since: 6, want: []uint64{}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("since ", tc.since), func(t *testing.T) {
			msgs, pos, err := m.Since([]byte("a"), at(m, "a", tc.since), 0, nil)
			if err != tc.wantErr {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if pos != at(m, "a", 6) {
				t.Errorf("position = %+v, want %+v", pos, at(m, "a", 6))
			}
			if err == nil && !slices.Equal(offsets(msgs), tc.want) {
				t.Errorf("got %v, want %v", offsets(msgs), tc.want)
			}
		})
	}
}

func TestTTLEviction(t *testing.T) {
	c := newClock()
	m := newLog(Config{Size: 10, TTL: 10 * time.Second, Now: c.Now})
	send(m, "a", "a1", 0) // 1 at 0s
	c.Advance(5 * time.Second)
	send(m, "b", "b1", 0) // 2 at 5s
	c.Advance(4 * time.Second)
	send(m, "a", "a2", 0) // 3 at 9s

	c.Advance(time.Second - 1) // a1 is TTL-1ns old: kept
	if got, want := kept(t, m, "a"), []uint64{1, 3}; !slices.Equal(got, want) {
		t.Fatalf("just before TTL, room a keeps %v, want %v", got, want)
	}
	c.Advance(1) // a1 is TTL old: evicted when a is read
	if got, want := kept(t, m, "a"), []uint64{3}; !slices.Equal(got, want) {
		t.Fatalf("at TTL, room a keeps %v, want %v", got, want)
	}
	if _, _, err := m.Since([]byte("a"), at(m, "a", 0), 0, nil); err != chat.ErrUnrecoverable {
		t.Errorf("Since(a, 0) after a1 expired: err = %v, want ErrUnrecoverable", err)
	}
	if msgs, _, err := m.Since([]byte("a"), at(m, "a", 1), 0, nil); err != nil || !slices.Equal(offsets(msgs), []uint64{3}) {
		t.Errorf("Since(a, 1) = %v, %v; want [3], nil", offsets(msgs), err)
	}

	// b1 expires at 15s; it is not read, so only Append evicts it.
	c.Advance(5 * time.Second)
	if s := m.Stats(); s.Messages != 2 {
		t.Fatalf("before the next Append, %d messages kept, want 2 (a2, b1)", s.Messages)
	}
	send(m, "c", "c1", 0) // 4 at 15s
	if s := m.Stats(); s.Messages != 2 || s.Bytes != 2*(2+2+EntryOverhead) {
		t.Errorf("after Append at 15s: Stats = %+v, want 2 messages (a2, c1) of %d bytes", s, 2*(2+2+EntryOverhead))
	}
}

func TestMemoryCapEvictsGloballyOldest(t *testing.T) {
	size := int64(len("c1")+len("xx")) + EntryOverhead
	m := newLog(Config{Size: 10, Memory: 3 * size})
	send(m, "a", "xx", 0) // 1
	send(m, "b", "xx", 0) // 2
	send(m, "a", "xx", 0) // 3: at the cap, all kept
	if s := m.Stats(); s.Messages != 3 || s.Bytes != 3*size {
		t.Fatalf("at the cap: Stats = %+v, want 3 messages, %d bytes", s, 3*size)
	}
	send(m, "b", "xx", 0) // 4: evicts 1 (a)
	send(m, "a", "xx", 0) // 5: evicts 2 (b)
	if got, want := kept(t, m, "a"), []uint64{3, 5}; !slices.Equal(got, want) {
		t.Errorf("room a keeps %v, want %v", got, want)
	}
	if got, want := kept(t, m, "b"), []uint64{4}; !slices.Equal(got, want) {
		t.Errorf("room b keeps %v, want %v", got, want)
	}
	if s := m.Stats(); s.Bytes != 3*size {
		t.Errorf("Bytes = %d, want %d", s.Bytes, 3*size)
	}
	tests := []struct {
		room    string
		since   uint64
		wantErr *chat.Error
	}{
		{room: "a", since: 0, wantErr: chat.ErrUnrecoverable},
		{room: "a", since: 1},
		{room: "b", since: 1, wantErr: chat.ErrUnrecoverable},
		{room: "b", since: 2},
	}
	for _, tc := range tests {
		if _, _, err := m.Since([]byte(tc.room), at(m, tc.room, tc.since), 0, nil); err != tc.wantErr {
			t.Errorf("Since(%s, %d): err = %v, want %v", tc.room, tc.since, err, tc.wantErr)
		}
	}

	t.Run("message above the cap", func(t *testing.T) {
		off := send(m, "big", string(make([]byte, 4*size)), 0)
		if s := m.Stats(); s.Messages != 0 || s.Bytes != 0 {
			t.Errorf("Stats = %+v, want nothing kept", s)
		}
		if _, _, err := m.Since([]byte("big"), at(m, "big", off-1), 0, nil); err != chat.ErrUnrecoverable {
			t.Errorf("Since before the evicted message: err = %v, want ErrUnrecoverable", err)
		}
	})
}

func TestAccountedBytes(t *testing.T) {
	m := newLog(Config{Size: 1})
	msg := chat.Message{
		Room: []byte("room"), From: "ab", Nick: "abc", User: "abcd", Event: "abcde",
		Data: []byte("12345"), Attachments: [][]byte{[]byte("123"), []byte("1234")},
	}
	m.Lock()
	m.Append(&msg)
	m.Unlock()
	want := int64(2+3+4+5+5+3+4) + EntryOverhead
	if s := m.Stats(); s.Bytes != want {
		t.Fatalf("Bytes = %d, want %d", s.Bytes, want)
	}
	send(m, "room", "", 0) // evicts msg (Size 1)
	if s := m.Stats(); s.Bytes != 2+EntryOverhead {
		t.Errorf("after eviction Bytes = %d, want %d", s.Bytes, 2+EntryOverhead)
	}
}

func TestSinceEpochMismatch(t *testing.T) {
	m := newLog(Config{Size: 10})
	send(m, "a", "1", 0)
	send(m, "b", "2", 0)
	other := newLog(Config{Size: 10, Epoch: "other"})
	tests := []struct {
		name  string
		room  string
		epoch string
	}{
		{name: "another room's epoch", room: "a", epoch: m.Position([]byte("b")).Epoch},
		{name: "another log's epoch", room: "a", epoch: other.Position([]byte("a")).Epoch},
		{name: "the log's own epoch", room: "a", epoch: m.Epoch()},
		{name: "unknown room, another room's epoch", room: "z", epoch: m.Position([]byte("a")).Epoch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []chat.Message{{From: "sentinel"}}
			got, pos, err := m.Since([]byte(tc.room), chat.Position{Offset: 0, Epoch: tc.epoch}, 0, dst)
			if err != chat.ErrUnrecoverable {
				t.Fatalf("err = %v, want ErrUnrecoverable", err)
			}
			if len(got) != 1 || got[0].From != "sentinel" {
				t.Errorf("dst changed: %+v", got)
			}
			if want := at(m, tc.room, 2); pos != want {
				t.Errorf("position = %+v, want %+v", pos, want)
			}
		})
	}
}

func TestSinceFutureOffset(t *testing.T) {
	m := newLog(Config{Size: 10})
	send(m, "a", "1", 0)
	send(m, "b", "2", 0)
	if _, pos, err := m.Since([]byte("a"), at(m, "a", 3), 0, nil); err != chat.ErrFutureOffset || pos != at(m, "a", 2) {
		t.Errorf("Since(last+1) = %+v, %v; want position %+v, ErrFutureOffset", pos, err, at(m, "a", 2))
	}
	// The last offset is the log's, not the room's: 2 is room b's.
	if msgs, _, err := m.Since([]byte("a"), at(m, "a", 2), 0, nil); err != nil || len(msgs) != 0 {
		t.Errorf("Since(last) = %v, %v; want nothing, nil", offsets(msgs), err)
	}
}

func TestSinceLimitPaging(t *testing.T) {
	m := newLog(Config{Size: 100})
	var want []uint64
	for i := 0; i < 10; i++ {
		want = append(want, send(m, "a", "1", 0))
		send(m, "b", "2", 0) // gaps in a's offsets
	}
	var all []uint64
	pos := at(m, "a", 0)
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatalf("paging does not end: got %v", all)
		}
		msgs, _, err := m.Since([]byte("a"), pos, 3, nil)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(msgs) > 3 {
			t.Fatalf("page %d has %d messages, limit 3", pages, len(msgs))
		}
		if len(msgs) == 0 {
			break
		}
		if pages == 0 && !slices.Equal(offsets(msgs), want[:3]) {
			t.Errorf("first page = %v, want the oldest %v", offsets(msgs), want[:3])
		}
		all = append(all, offsets(msgs)...)
		pos.Offset = msgs[len(msgs)-1].Offset
	}
	if !slices.Equal(all, want) {
		t.Errorf("pages give %v, want %v", all, want)
	}
}

func TestSinceNewest(t *testing.T) {
	m := newLog(Config{Size: 100})
	for i := 0; i < 5; i++ {
		send(m, "a", "1", 0)
	}
	tests := []struct {
		limit int
		want  []uint64
	}{
		{limit: 0, want: []uint64{1, 2, 3, 4, 5}},
		{limit: -1, want: []uint64{1, 2, 3, 4, 5}},
		{limit: 2, want: []uint64{4, 5}},
		{limit: 5, want: []uint64{1, 2, 3, 4, 5}},
		{limit: 100, want: []uint64{1, 2, 3, 4, 5}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("limit ", tc.limit), func(t *testing.T) {
			msgs, pos, err := m.Since([]byte("a"), chat.Position{Offset: 3}, tc.limit, nil)
			if err != nil || !slices.Equal(offsets(msgs), tc.want) || pos != at(m, "a", 5) {
				t.Errorf("Since = %v, %+v, %v; want %v, %+v, nil", offsets(msgs), pos, err, tc.want, at(m, "a", 5))
			}
		})
	}
	t.Run("unknown room", func(t *testing.T) {
		msgs, pos, err := m.Since([]byte("z"), chat.Position{}, 0, nil)
		e := roomEpoch("test", []byte("z"))
		if err != nil || len(msgs) != 0 || pos != (chat.Position{Offset: 5, Epoch: string(e[:])}) {
			t.Errorf("Since = %v, %+v, %v; want nothing at offset 5 with z's epoch", offsets(msgs), pos, err)
		}
	})
}

func TestAppendCopiesData(t *testing.T) {
	m := newLog(Config{Size: 10})
	data, a0, a1 := []byte(`{"x":1}`), []byte{1, 2}, []byte{3, 4, 5}
	msg := chat.Message{Room: []byte("r"), Data: data, Attachments: [][]byte{a0, nil, a1}}
	m.Lock()
	m.Append(&msg)
	m.Unlock()
	data[0], a0[0], a1[0] = 'X', 9, 9
	msg.Room[0] = 'X'

	msgs, _, _ := m.Since([]byte("r"), chat.Position{}, 0, nil)
	if len(msgs) != 1 {
		t.Fatalf("kept %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if string(got.Data) != `{"x":1}` || string(got.Room) != "r" {
		t.Errorf("stored Data %q, Room %q changed with the caller's", got.Data, got.Room)
	}
	if len(got.Attachments) != 3 || !bytes.Equal(got.Attachments[0], []byte{1, 2}) ||
		got.Attachments[1] != nil || !bytes.Equal(got.Attachments[2], []byte{3, 4, 5}) {
		t.Errorf("stored attachments %v, want [[1 2] [] [3 4 5]]", got.Attachments)
	}
	// Copies share one buffer: each must be capped, or appending to one
	// would overwrite the next.
	_ = append(got.Data, 'Y')
	_ = append(got.Attachments[0], 7)
	again, _, _ := m.Since([]byte("r"), chat.Position{}, 0, nil)
	if again[0].Attachments[0][0] != 1 || again[0].Attachments[2][0] != 3 {
		t.Errorf("appending to a returned slice changed the next one: %v", again[0].Attachments)
	}

	var none chat.Message
	none.Room = []byte("r")
	m.Lock()
	m.Append(&none)
	m.Unlock()
	msgs, _, _ = m.Since([]byte("r"), chat.Position{}, 1, nil)
	if msgs[0].Data != nil || msgs[0].Attachments != nil {
		t.Errorf("nil Data and Attachments stored as %v, %v", msgs[0].Data, msgs[0].Attachments)
	}
}

func TestSweep(t *testing.T) {
	size := int64(len("c1")+1) + EntryOverhead
	m := newLog(Config{Size: 10, Memory: size})
	send(m, "a", "1", 0) // 1
	send(m, "b", "2", 0) // 2: evicts 1, leaving a empty with floor 1
	if s := m.Stats(); s.Rooms != 2 {
		t.Fatalf("before Sweep %d rooms, want 2 (a empty)", s.Rooms)
	}
	m.Sweep()
	if s := m.Stats(); s.Rooms != 1 || s.Messages != 1 {
		t.Fatalf("after Sweep Stats = %+v, want 1 room (b), 1 message", s)
	}
	tests := []struct {
		name    string
		room    string
		since   uint64
		wantErr *chat.Error
	}{
		{name: "deleted room below its floor", room: "a", since: 0, wantErr: chat.ErrUnrecoverable},
		{name: "deleted room at its floor", room: "a", since: 1},
		{name: "unknown room below the log's floor", room: "z", since: 0, wantErr: chat.ErrUnrecoverable},
		{name: "kept room", room: "b", since: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := m.Since([]byte(tc.room), at(m, tc.room, tc.since), 0, nil); err != tc.wantErr {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	t.Run("recreated room inherits the floor", func(t *testing.T) {
		send(m, "a", "3", 0) // 3: a again, evicting 2 (b)
		if _, _, err := m.Since([]byte("a"), at(m, "a", 0), 0, nil); err != chat.ErrUnrecoverable {
			t.Errorf("Since(a, 0): err = %v, want ErrUnrecoverable", err)
		}
		if msgs, _, err := m.Since([]byte("a"), at(m, "a", 1), 0, nil); err != nil || !slices.Equal(offsets(msgs), []uint64{3}) {
			t.Errorf("Since(a, 1) = %v, %v; want [3], nil", offsets(msgs), err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		c := newClock()
		m := newLog(Config{Size: 10, TTL: time.Minute, Now: c.Now})
		send(m, "a", "1", 0)
		c.Advance(30 * time.Second)
		send(m, "b", "1", 0)
		c.Advance(30 * time.Second)
		m.Sweep() // a's message is a minute old, b's half
		if s := m.Stats(); s.Rooms != 1 || s.Messages != 1 {
			t.Errorf("Stats = %+v, want room b with 1 message", s)
		}
		if got := kept(t, m, "b"); !slices.Equal(got, []uint64{2}) {
			t.Errorf("room b keeps %v, want [2]", got)
		}
	})
}

func TestFIFOBounded(t *testing.T) {
	m := newLog(Config{Size: 4})
	send(m, "quiet", "1", 0)
	for i := 0; i < 10000; i++ {
		send(m, "hot", "1", 0)
		m.Lock()
		n, c, live := m.fifo.len(), cap(m.fifo.q), m.count
		m.Unlock()
		if n > 2*live+fifoSlack || c > 4*(2*live+fifoSlack) {
			t.Fatalf("after %d appends: fifo holds %d (capacity %d) for %d live messages", i+1, n, c, live)
		}
	}
	// The quiet room's reference survived every compaction: it is still
	// the globally oldest.
	m.Lock()
	front := m.fifo.q[m.fifo.head]
	m.Unlock()
	if front.room.name != "quiet" || front.off != 1 {
		t.Errorf("fifo front = %s@%d, want quiet@1", front.room.name, front.off)
	}
}

// TestEvictedReleased checks that the log drops its references to what
// it evicted: a message's bytes left behind in a ring slot, or a deleted
// room left behind in the eviction queue, would be memory the accounting
// no longer counts.
func TestEvictedReleased(t *testing.T) {
	data := string(bytes.Repeat([]byte("x"), 100)) // above the tiny allocator's size
	size := int64(len("c1")+len(data)) + EntryOverhead
	m := newLog(Config{Size: 10, Memory: 2 * size})
	send(m, "a", data, 0) // 1
	m.Lock()
	first := weak.Make(&m.rooms["a"].at(0).msg.Data[0])
	m.Unlock()
	send(m, "a", data, 0) // 2
	send(m, "a", data, 0) // 3: evicts 1; a's ring keeps 2 of 4 slots

	collected := func(isNil func() bool) bool {
		for i := 0; i < 10 && !isNil(); i++ {
			runtime.GC()
		}
		return isNil()
	}
	if !collected(func() bool { return first.Value() == nil }) {
		t.Error("an evicted message's data is still referenced")
	}

	send(m, "b", data, 0) // 4: evicts 2
	send(m, "b", data, 0) // 5: evicts 3, leaving a empty
	m.Lock()
	room := weak.Make(m.rooms["a"])
	m.Unlock()
	m.Sweep()
	if !collected(func() bool { return room.Value() == nil }) {
		t.Error("a deleted room is still referenced")
	}
	runtime.KeepAlive(m)
}

// TestRingWraps grows and shrinks a ring whose oldest entry is not in its
// first slot: the entries must keep their order.
func TestRingWraps(t *testing.T) {
	c := newClock()
	m := newLog(Config{Size: 64, TTL: time.Minute, Now: c.Now})
	for i := 0; i < 2; i++ {
		send(m, "a", "1", 0) // 1, 2: expire first
	}
	c.Advance(30 * time.Second)
	for i := 0; i < 2; i++ {
		send(m, "a", "1", 0) // 3, 4: the ring's 4 slots are full
	}
	c.Advance(30 * time.Second)
	kept(t, m, "a") // evicts 1, 2: the oldest is now in slot 2
	for i := 0; i < 5; i++ {
		send(m, "a", "1", 0) // 5..9: wraps, then grows from a wrapped ring
	}
	if got, want := kept(t, m, "a"), []uint64{3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Fatalf("after growing, a keeps %v, want %v", got, want)
	}
	if msgs, _, err := m.Since([]byte("a"), at(m, "a", 5), 2, nil); err != nil || !slices.Equal(offsets(msgs), []uint64{6, 7}) {
		t.Errorf("Since(a, 5, limit 2) = %v, %v; want [6 7]", offsets(msgs), err)
	}
	c.Advance(30 * time.Second)
	for i := 0; i < 20; i++ {
		send(m, "a", "1", 0) // 10..29: the ring grows to 32
	}
	c.Advance(30 * time.Second) // 3..9 expire on the next read
	for i := 0; i < 4; i++ {
		send(m, "a", "1", 0) // 30..33
	}
	c.Advance(30 * time.Second) // 10..29 expire too
	if got, want := kept(t, m, "a"), []uint64{30, 31, 32, 33}; !slices.Equal(got, want) {
		t.Errorf("after shrinking, a keeps %v, want %v", got, want)
	}
	m.Lock()
	n := len(m.rooms["a"].ring)
	m.Unlock()
	if n != 8 {
		t.Errorf("ring has %d slots for 4 messages, want 8", n)
	}
}

func TestRingShrinks(t *testing.T) {
	c := newClock()
	m := newLog(Config{Size: 64, TTL: time.Minute, Now: c.Now})
	for i := 0; i < 60; i++ {
		send(m, "a", "1", 0)
	}
	c.Advance(30 * time.Second)
	for i := 0; i < 4; i++ {
		send(m, "a", "1", 0)
	}
	ringLen := func() int {
		m.Lock()
		defer m.Unlock()
		return len(m.rooms["a"].ring)
	}
	if n := ringLen(); n != 64 {
		t.Fatalf("ring of a full room has %d slots, want 64", n)
	}
	c.Advance(30 * time.Second)
	if got := kept(t, m, "a"); len(got) != 4 || got[0] != 61 {
		t.Fatalf("after 60 expired, a keeps %v, want 61..64", got)
	}
	if n := ringLen(); n != 8 {
		t.Errorf("ring keeping 4 messages has %d slots, want 8", n)
	}
	c.Advance(30 * time.Second)
	kept(t, m, "a")
	if n := ringLen(); n != 0 {
		t.Errorf("ring of an empty room has %d slots, want 0", n)
	}
}

func TestPositionIsLogWide(t *testing.T) {
	m := newLog(Config{Size: 10})
	send(m, "a", "1", 0)
	send(m, "b", "1", 0)
	send(m, "b", "1", 0)
	for _, room := range []string{"a", "b", "unknown"} {
		e := roomEpoch("test", []byte(room))
		want := chat.Position{Offset: 3, Epoch: string(e[:])}
		if got := m.Position([]byte(room)); got != want {
			t.Errorf("Position(%s) = %+v, want %+v", room, got, want)
		}
	}
}

func TestLockedVariantsDoNotLock(t *testing.T) {
	m := newLog(Config{Size: 10})
	send(m, "a", "1", 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Lock()
		defer m.Unlock()
		m.PositionLocked([]byte("a"))
		m.SinceLocked([]byte("a"), chat.Position{}, 0, nil)
		m.Epoch()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("PositionLocked, SinceLocked or Epoch blocked with the lock held")
	}
}

func TestRoomEpoch(t *testing.T) {
	ref := func(log, room string) string {
		h := fnv.New64a()
		h.Write([]byte(log + "\x00" + room))
		return hex.EncodeToString(h.Sum(nil))[:12]
	}
	tests := []struct{ log, room string }{
		{"test", "a"}, {"test", "b"}, {"other", "a"}, {"", ""}, {"0123456789abcdef", "lobby ☕"},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		e := roomEpoch(tc.log, []byte(tc.room))
		if got, want := string(e[:]), ref(tc.log, tc.room); got != want {
			t.Errorf("roomEpoch(%q, %q) = %s, want FNV-1a prefix %s", tc.log, tc.room, got, want)
		}
		if seen[string(e[:])] {
			t.Errorf("roomEpoch(%q, %q) = %s repeats another's", tc.log, tc.room, e)
		}
		seen[string(e[:])] = true
	}
}

func TestNewMemoryEpoch(t *testing.T) {
	if got := NewMemory(Config{Size: 1, Epoch: "given"}).Epoch(); got != "given" {
		t.Errorf("Epoch = %q, want the configured one", got)
	}
	e1, e2 := NewMemory(Config{Size: 1}).Epoch(), NewMemory(Config{Size: 1}).Epoch()
	for _, e := range []string{e1, e2} {
		if b, err := hex.DecodeString(e); err != nil || len(b) != 8 || e != fmt.Sprintf("%x", b) {
			t.Errorf("random epoch %q is not 16 lowercase hex digits", e)
		}
	}
	if e1 == e2 {
		t.Errorf("two logs got the same random epoch %q", e1)
	}
}

func TestNewMemoryRejectsZeroSize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewMemory(Config{Size: 0}) did not panic")
		}
	}()
	NewMemory(Config{})
}

func TestAppendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	const size = 8
	data := bytes.Repeat([]byte("x"), 100)
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "size cap", cfg: Config{Size: size}},
		{name: "ttl", cfg: Config{Size: size, TTL: time.Hour, Now: newClock().Now}},
		{name: "memory cap", cfg: Config{Size: size, Memory: 4 * (100 + 2 + EntryOverhead)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newLog(tc.cfg)
			msg := chat.Message{Room: []byte("r"), From: "c1", Data: data}
			appendOne := func() {
				msg.Offset = 0
				m.Append(&msg)
			}
			m.Lock()
			defer m.Unlock()
			for i := 0; i < 1000; i++ { // fill the ring, grow the fifo
				appendOne()
			}
			if n := testing.AllocsPerRun(1000, appendOne); n > 1 {
				t.Errorf("Append allocates %v times per message, want at most 1", n)
			}
		})
	}
}

func TestSinceAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	m := newLog(Config{Size: 100})
	for i := 0; i < 100; i++ {
		send(m, "r", "1", 0)
	}
	dst := make([]chat.Message, 0, 10)
	since := at(m, "r", 50)
	n := testing.AllocsPerRun(100, func() {
		dst, _, _ = m.Since([]byte("r"), since, 10, dst[:0])
	})
	if n != 0 {
		t.Errorf("Since allocates %v times, want 0", n)
	}
}

// TestConcurrentUse runs writers, readers and sweeps at once (for -race)
// and checks that every page a reader gets is in increasing offset order
// after its position.
func TestConcurrentUse(t *testing.T) {
	m := newLog(Config{Size: 16, TTL: time.Hour, Memory: 64 * (EntryOverhead + 10)})
	rooms := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				msg := chat.Message{Room: rooms[(w+i)%len(rooms)], Data: []byte("12345678")}
				m.Lock()
				m.Append(&msg)
				m.Unlock()
			}
		}()
	}
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := rooms[r]
			pos := m.Position(room)
			var dst []chat.Message
			for i := 0; i < 2000; i++ {
				var err *chat.Error
				dst, _, err = m.Since(room, pos, 5, dst[:0])
				if errors.Is(err, chat.ErrUnrecoverable) {
					pos = m.Position(room)
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("Since(%s, %+v): %v", room, pos, err)
					return
				}
				for _, msg := range dst {
					if msg.Offset <= pos.Offset || !bytes.Equal(msg.Room, room) {
						errs <- fmt.Errorf("Since(%s, %d) returned %s@%d", room, pos.Offset, msg.Room, msg.Offset)
						return
					}
					pos.Offset = msg.Offset
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			m.Sweep()
			_ = m.Stats()
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := m.Stats(); s.Last != 6000 || s.Bytes > 64*(EntryOverhead+10) {
		t.Errorf("Stats = %+v, want Last 6000 and Bytes within the cap", s)
	}
}

func TestRun(t *testing.T) {
	c := newClock()
	m := newLog(Config{Size: 10, TTL: time.Second, Now: c.Now})
	send(m, "a", "1", 0)
	c.Advance(time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx, time.Millisecond)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for m.Stats().Rooms != 0 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("Run did not sweep the expired room within 5s: %+v", m.Stats())
		}
		time.Sleep(time.Millisecond) // poll interval, not a wait for a result
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its context being done")
	}
}
