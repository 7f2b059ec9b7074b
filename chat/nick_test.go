package chat

import (
	"strings"
	"testing"
)

// TestNickIsOneAllocation: setting a nickname costs one allocation (the
// length byte and the text together; an atomic.Pointer[string] took two,
// and an idle connection with a nick held both), reading it none, and
// what is read back is what was set, empty included.
func TestNickIsOneAllocation(t *testing.T) {
	var s Session
	for _, name := range []string{"ann", "", "Zoë", strings.Repeat("界", MaxNickLen), "b"} {
		s.nick.Store(name)
		if got := s.Nick(); got != name {
			t.Fatalf("Nick() = %q after storing %q", got, name)
		}
	}
	if raceEnabled {
		return // the race detector's instrumentation allocates
	}
	name := []byte("someone")
	if n := testing.AllocsPerRun(100, func() { storeNick(&s.nick, name) }); n != 1 {
		t.Errorf("setting a nick: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.Nick() }); n != 0 {
		t.Errorf("reading a nick: %v allocations, want 0", n)
	}
}

// TestNickReadWhileSet: other loops read a session's nick (member lists,
// presence) while its own loop sets it; every read is one of the nicks
// set, whole (never one's length with another's text). Run with -race.
func TestNickReadWhileSet(t *testing.T) {
	var s Session
	names := []string{"a", "longer-name", "mid", "x-y-z-w-v-u"}
	done := make(chan string)
	go func() {
		for range 2000 {
			n := s.Nick()
			ok := n == ""
			for _, want := range names {
				ok = ok || n == want
			}
			if !ok {
				done <- n
				return
			}
		}
		done <- ""
	}()
	for i := range 2000 {
		s.nick.Store(names[i%len(names)])
	}
	if bad := <-done; bad != "" {
		t.Fatalf("read a nick never set: %q", bad)
	}
}
