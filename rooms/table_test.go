package rooms

import (
	"fmt"
	"sync"
	"testing"
)

type member struct{ loop, kind int }

func (m *member) Loop() int { return m.loop }
func (m *member) Kind() int { return m.kind }

func TestJoinLeave(t *testing.T) {
	tb := New(2)
	a, b := &member{0, 0}, &member{1, 1}
	tests := []struct {
		name      string
		op        func() (int, bool)
		wantCount int
		wantOK    bool
		wantRooms int
	}{
		{"a joins lobby", func() (int, bool) { n, ok, _ := tb.Join([]byte("lobby"), a); return n, ok }, 1, true, 1},
		{"a joins lobby again", func() (int, bool) { n, ok, _ := tb.Join([]byte("lobby"), a); return n, ok }, 1, false, 1},
		{"b joins lobby", func() (int, bool) { n, ok, _ := tb.Join([]byte("lobby"), b); return n, ok }, 2, true, 1},
		{"b leaves other", func() (int, bool) { return tb.Leave([]byte("other"), b) }, 0, false, 1},
		{"a leaves lobby", func() (int, bool) { return tb.Leave([]byte("lobby"), a) }, 1, true, 1},
		{"a leaves lobby again", func() (int, bool) { return tb.Leave([]byte("lobby"), a) }, 1, false, 1},
		{"b leaves lobby, room disappears", func() (int, bool) { return tb.Leave([]byte("lobby"), b) }, 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := tt.op()
			if n != tt.wantCount || ok != tt.wantOK {
				t.Fatalf("got (%d, %v), want (%d, %v)", n, ok, tt.wantCount, tt.wantOK)
			}
			if got := tb.Len(); got != tt.wantRooms {
				t.Fatalf("rooms = %d, want %d", got, tt.wantRooms)
			}
		})
	}
}

func TestSnapshotGroupsByLoop(t *testing.T) {
	tb := New(3)
	var ms []*member
	for i := 0; i < 30; i++ {
		m := &member{loop: i % 3, kind: i % 2}
		ms = append(ms, m)
		tb.Join([]byte("r"), m)
	}
	s1 := tb.Snapshot([]byte("r"))
	if s1.Count != 30 || len(s1.ByLoop) != 3 {
		t.Fatalf("snapshot count %d loops %d", s1.Count, len(s1.ByLoop))
	}
	if s1.Kinds != 0b11 {
		t.Fatalf("kinds = %b, want 11", s1.Kinds)
	}
	for i, g := range s1.ByLoop {
		if len(g) != 10 {
			t.Fatalf("loop %d has %d members, want 10", i, len(g))
		}
		for _, m := range g {
			if m.Loop() != i {
				t.Fatalf("member of loop %d in group %d", m.Loop(), i)
			}
		}
	}
	if s2 := tb.Snapshot([]byte("r")); s2 != s1 {
		t.Fatal("snapshot rebuilt without a change")
	}
	tb.Leave([]byte("r"), ms[0])
	s3 := tb.Snapshot([]byte("r"))
	if s3 == s1 || s3.Count != 29 || s1.Count != 30 {
		t.Fatalf("after leave: new %d old %d (old must be unchanged)", s3.Count, s1.Count)
	}
	if tb.Snapshot([]byte("missing")) != nil {
		t.Fatal("snapshot of a missing room")
	}
}

func TestListMembersContains(t *testing.T) {
	tb := New(1)
	a, b := &member{}, &member{}
	tb.Join([]byte("b"), a)
	tb.Join([]byte("a"), a)
	tb.Join([]byte("a"), b)
	list := tb.List()
	if len(list) != 2 || list[0] != (Info{"a", 2}) || list[1] != (Info{"b", 1}) {
		t.Fatalf("list = %v", list)
	}
	if len(tb.Members([]byte("a"))) != 2 || tb.Members([]byte("zz")) != nil {
		t.Fatal("members")
	}
	if !tb.Contains([]byte("b"), a) || tb.Contains([]byte("b"), b) {
		t.Fatal("contains")
	}
	if tb.Count([]byte("a")) != 2 || tb.Count([]byte("none")) != 0 {
		t.Fatal("count")
	}
}

// TestConcurrent exercises the locks under -race: joins, leaves and
// snapshots of overlapping rooms from many goroutines.
func TestConcurrent(t *testing.T) {
	tb := New(4)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			m := &member{loop: g % 4}
			for i := 0; i < 500; i++ {
				name := []byte(fmt.Sprintf("room-%d", i%7))
				tb.Join(name, m)
				if s := tb.Snapshot(name); s == nil || s.Count < 1 {
					t.Errorf("snapshot of a room we are in: %v", s)
					return
				}
				tb.Leave(name, m)
			}
		}(g)
	}
	wg.Wait()
	if tb.Len() != 0 {
		t.Fatalf("%d rooms left", tb.Len())
	}
}
