package engineio

import (
	"testing"
	"unsafe"
)

// TestWebSocketSessionSize: a Socket.IO client on a WebSocket is a
// session for as long as it is connected, so the session keeps only
// what every session needs (240-byte size class); long-polling, upgrade
// probes, binary packets, server acks and the backend's connect headers
// live in sessionRare, allocated when one begins, the token's hash only
// when there is a token, the rate-limit state only until it drains.
func TestWebSocketSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(session{}); n > 240 {
		t.Errorf("session is %d bytes, want at most 240: keep phase state in sessionRare", n)
	}
}

// TestRareStateReadWithoutAllocating: reading through r0 never allocates
// the rare state; writing through r does.
func TestRareStateReadWithoutAllocating(t *testing.T) {
	ss := &session{}
	if ss.r0().binWant != 0 || ss.r0().get.Valid() || len(ss.r0().acks) != 0 || ss.rare != nil {
		t.Fatal("reading the rare state allocated it")
	}
	ss.r().binWant = 2
	if ss.rare == nil || ss.r0().binWant != 2 || noRare.binWant != 0 {
		t.Fatal("r did not allocate the rare state, or wrote the shared zero state")
	}
}
