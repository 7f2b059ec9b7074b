package chat

import (
	"testing"
	"unsafe"
)

// TestSessionSize: an idle gateway is mostly sessions, one per client, so
// the common session stays in the 96-byte size class; what few sessions
// use (a namespace, a refreshed token, the close reason, rooms after the
// first) lives in sessionMore, allocated only when set.
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(Session{}); n > 96 {
		t.Errorf("Session is %d bytes, want at most 96: keep rarely used fields in sessionMore", n)
	}
}

// TestSessionMoreOnlyWhenSet: a session in "/" that was never refreshed
// holds no sessionMore, even after SetNamespace("/") and an empty close
// reason.
func TestSessionMoreOnlyWhenSet(t *testing.T) {
	s := &Session{}
	s.SetNamespace(RootNamespace)
	s.SetCloseReason("")
	if s.m() != nil {
		t.Fatal("a plain session allocated its sessionMore")
	}
	s.SetNamespace("/admin")
	s.SetCloseReason("tcp")
	if s.Namespace() != "/admin" || s.closeReason() != "tcp" {
		t.Fatalf("namespace %q, close reason %q", s.Namespace(), s.closeReason())
	}
}

// TestNamespaceReadWhileTheLoopSetsMore: other goroutines read a session's
// namespace (the server API's connection lists, other loops' member
// lists) while its own loop allocates its sessionMore (the close reason,
// as a connection closes). Under -race this failed while more was a plain
// pointer.
func TestNamespaceReadWhileTheLoopSetsMore(t *testing.T) {
	s := &Session{}
	read := make(chan string)
	go func() {
		var last string
		for range 1000 {
			last = s.Namespace()
		}
		read <- last
	}()
	s.SetCloseReason("tcp")
	if nsp := <-read; nsp != RootNamespace {
		t.Fatalf("namespace %q, want %q", nsp, RootNamespace)
	}
	if s.closeReason() != "tcp" {
		t.Fatalf("close reason %q", s.closeReason())
	}
}

// TestOneRoomNeedsNoMore: a session in one room keeps it in the session
// itself (no sessionMore, no slice); a second room goes to sessionMore.
func TestOneRoomNeedsNoMore(t *testing.T) {
	s := &Session{}
	s.addRoom("lobby")
	if s.m() != nil || s.roomCount() != 1 || s.inRoom([]byte("lobby")) != 0 {
		t.Fatalf("one room: more %v, count %d", s.m(), s.roomCount())
	}
	s.addRoom("second")
	if s.m() == nil || s.roomCount() != 2 || s.inRoom([]byte("second")) != 1 {
		t.Fatalf("two rooms: more %v, count %d", s.m(), s.roomCount())
	}
}
