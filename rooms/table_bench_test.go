package rooms

import (
	"strconv"
	"testing"
)

// BenchmarkJoinLeave measures one join plus one leave of a room that
// already has other members (the common case).
func BenchmarkJoinLeave(b *testing.B) {
	for _, size := range []int{1, 100, 10000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			tb, name := filledRoom(size)
			m := &member{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tb.Join(name, m)
				tb.Leave(name, m)
			}
		})
	}
}

// BenchmarkSnapshotCached is the broadcast path's room lookup when the
// membership has not changed since the last broadcast: no allocation.
func BenchmarkSnapshotCached(b *testing.B) {
	tb, name := filledRoom(1000)
	tb.Snapshot(name)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if tb.Snapshot(name) == nil {
			b.Fatal("nil")
		}
	}
}

// BenchmarkSnapshotRebuild is the first broadcast after a membership
// change: one join, one leave and the snapshot built again, per room size.
func BenchmarkSnapshotRebuild(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			tb, name := filledRoom(size)
			m := &member{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tb.Join(name, m)
				tb.Leave(name, m)
				if tb.Snapshot(name) == nil {
					b.Fatal("nil")
				}
			}
		})
	}
}

// filledRoom returns a table on 2 loops whose room "lobby" has size
// members, spread over both loops.
func filledRoom(size int) (*Table, []byte) {
	tb := New(2)
	name := []byte("lobby")
	for i := 0; i < size; i++ {
		tb.Join(name, &member{loop: i % 2})
	}
	return tb, name
}
