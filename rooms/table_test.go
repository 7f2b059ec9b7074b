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

// TestMembersAcrossSizes: a room keeps its members in a slice while small
// and in a map past smallRoom (and back below smallRoom/2); through both
// and the switches between them, joins, repeated joins, leaves, Contains,
// Count, Members and the snapshot agree with a reference set, and a
// member who left is no longer held (not in the slice's spare capacity
// either).
func TestMembersAcrossSizes(t *testing.T) {
	tb := New(3)
	name := []byte("r")
	ms := make([]*member, 3*smallRoom)
	for i := range ms {
		ms[i] = &member{loop: i % 3, kind: i % 2}
	}
	in := map[*member]bool{}
	check := func(step string) {
		t.Helper()
		if got := tb.Count(name); got != len(in) {
			t.Fatalf("%s: Count %d, want %d", step, got, len(in))
		}
		seen := map[Member]bool{}
		for _, m := range tb.Members(name) {
			seen[m] = true
		}
		snap := tb.Snapshot(name)
		n := 0
		if snap != nil {
			for loop, g := range snap.ByLoop {
				for _, m := range g {
					if m.Loop() != loop || !in[m.(*member)] {
						t.Fatalf("%s: snapshot has %v on loop %d", step, m, loop)
					}
					n++
				}
			}
		}
		if len(seen) != len(in) || n != len(in) {
			t.Fatalf("%s: Members %d, snapshot %d, want %d", step, len(seen), n, len(in))
		}
		for _, m := range ms {
			if tb.Contains(name, m) != in[m] || seen[m] != in[m] {
				t.Fatalf("%s: member %p in %v, Contains %v", step, m, in[m], tb.Contains(name, m))
			}
		}
		if r := tb.shard(name).rooms["r"]; r != nil {
			if small := r.len() <= smallRoom/2; small && r.big != nil || r.len() > smallRoom && r.big == nil {
				t.Fatalf("%s: %d members, map %v", step, r.len(), r.big != nil)
			}
			for _, x := range r.small[len(r.small):cap(r.small)] {
				if x != nil {
					t.Fatalf("%s: the slice's spare capacity holds %v", step, x)
				}
			}
		}
	}
	for i, m := range ms {
		if n, added, _ := tb.Join(name, m); !added || n != i+1 {
			t.Fatalf("join %d: count %d, added %v", i, n, added)
		}
		if _, added, _ := tb.Join(name, m); added {
			t.Fatalf("join %d again: added", i)
		}
		in[m] = true
		if i%37 == 0 || i == smallRoom-1 || i == smallRoom {
			check(fmt.Sprintf("after %d joins", i+1))
		}
	}
	// Leave in an order unlike the joins', back through both switches.
	for i := range ms {
		m := ms[(i*7)%len(ms)]
		if _, removed := tb.Leave(name, m); !removed {
			t.Fatalf("leave %d: not removed", i)
		}
		if _, removed := tb.Leave(name, m); removed {
			t.Fatalf("leave %d again: removed", i)
		}
		delete(in, m)
		if i%41 == 0 || len(in) == smallRoom || len(in) == smallRoom/2 || len(in) < 3 {
			check(fmt.Sprintf("after %d leaves", i+1))
		}
	}
	if tb.Len() != 0 {
		t.Fatalf("%d rooms after everyone left", tb.Len())
	}
}

// TestSmallRoomHasNoMap: a room of 100 (the idle benchmark's) keeps its
// members in a slice, about 16 bytes a member, not in a map (about 35).
func TestSmallRoomHasNoMap(t *testing.T) {
	tb := New(2)
	for i := range 100 {
		tb.Join([]byte("r"), &member{loop: i % 2})
	}
	r := tb.shard([]byte("r")).rooms["r"]
	if r.big != nil || len(r.small) != 100 || cap(r.small) > smallRoom {
		t.Fatalf("100 members: map %v, slice %d/%d", r.big != nil, len(r.small), cap(r.small))
	}
}
