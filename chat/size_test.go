package chat

import (
	"testing"
	"unsafe"
)

// TestSessionSize: an idle gateway is mostly sessions, one per client, so
// the common session stays in the 112-byte size class; what few sessions
// use (a namespace, a refreshed token, the close reason) lives in
// sessionMore, allocated only when set.
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(Session{}); n > 112 {
		t.Errorf("Session is %d bytes, want at most 112: keep rarely used fields in sessionMore", n)
	}
}

// TestSessionMoreOnlyWhenSet: a session in "/" that was never refreshed
// holds no sessionMore, even after SetNamespace("/") and an empty close
// reason.
func TestSessionMoreOnlyWhenSet(t *testing.T) {
	s := &Session{}
	s.SetNamespace(RootNamespace)
	s.SetCloseReason("")
	if s.more != nil {
		t.Fatal("a plain session allocated its sessionMore")
	}
	s.SetNamespace("/admin")
	s.SetCloseReason("tcp")
	if s.Namespace() != "/admin" || s.closeReason() != "tcp" {
		t.Fatalf("namespace %q, close reason %q", s.Namespace(), s.closeReason())
	}
}
