package history

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// BenchmarkAppend appends 100-byte messages to 1000 rooms in turn, under
// each kind of bound. The lock is taken once around the loop: its cost is
// the caller's, not Append's.
func BenchmarkAppend(b *testing.B) {
	const rooms = 1000
	data := bytes.Repeat([]byte("x"), 100)
	names := make([][]byte, rooms)
	for i := range names {
		names[i] = fmt.Appendf(nil, "room-%d", i)
	}
	perMsg := int64(len(data)+2) + EntryOverhead
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "size", cfg: Config{Size: 100}},
		{name: "ttl", cfg: Config{Size: 100, TTL: time.Hour}},
		{name: "memory", cfg: Config{Size: 100, Memory: 50 * rooms * perMsg}},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			m := NewMemory(tc.cfg)
			msg := chat.Message{From: "c1", Data: data}
			m.Lock()
			defer m.Unlock()
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for i := 0; b.Loop(); i++ {
				msg.Room, msg.Offset = names[i%rooms], 0
				m.Append(&msg)
			}
		})
	}
}

// BenchmarkSince reads pages from a full room of 1000 messages, into a
// reused slice.
func BenchmarkSince(b *testing.B) {
	m := NewMemory(Config{Size: 1000})
	room := []byte("lobby")
	for i := 0; i < 1000; i++ {
		msg := chat.Message{Room: room, From: "c1", Data: []byte(`{"text":"hello"}`)}
		m.Lock()
		m.Append(&msg)
		m.Unlock()
	}
	for _, limit := range []int{1, 50, 1000} {
		b.Run(fmt.Sprint("limit=", limit), func(b *testing.B) {
			since := m.Position(room)
			since.Offset -= uint64(limit)
			dst := make([]chat.Message, 0, limit)
			b.ReportAllocs()
			for b.Loop() {
				var err *chat.Error
				dst, _, err = m.Since(room, since, limit, dst[:0])
				if err != nil || len(dst) != limit {
					b.Fatalf("Since = %d messages, %v; want %d", len(dst), err, limit)
				}
			}
		})
	}
}
