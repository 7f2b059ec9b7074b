package engineio

import (
	"bytes"
	"net/netip"
	"testing"
	"unsafe"
)

// TestWebSocketSessionSize: a Socket.IO client on a WebSocket is a
// session for as long as it is connected, so the session keeps only
// what every session needs (112-byte size class); long-polling, upgrade
// probes, binary packets, server acks, other namespaces, the backend's
// connect headers, and the sid with what requests for it read on other
// loops live in sessionRare, allocated when one begins (before a
// long-polling session is registered), the rate-limit state only until
// it drains.
func TestWebSocketSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(session{}); n > 112 {
		t.Errorf("session is %d bytes, want at most 112: keep phase state in sessionRare", n)
	}
}

// TestRareStateReadWithoutAllocating: reading through r0 never allocates
// the rare state; writing through r does.
func TestRareStateReadWithoutAllocating(t *testing.T) {
	ss := &session{}
	if ss.r0().binWant != 0 || ss.r0().get.Valid() || len(ss.r0().acks) != 0 || len(ss.r0().sockets) != 0 ||
		ss.sid() != "" || ss.rare != nil {
		t.Fatal("reading the rare state allocated it")
	}
	ss.r().binWant = 2
	if ss.rare == nil || ss.r0().binWant != 2 || noRare.binWant != 0 {
		t.Fatal("r did not allocate the rare state, or wrote the shared zero state")
	}
}

// TestClientAddressKeptIn16Bytes: the session keeps the client's address
// in 16 bytes and gives back the address it was given, IPv4 and IPv6.
func TestClientAddressKeptIn16Bytes(t *testing.T) {
	for _, s := range []string{"127.0.0.2", "10.1.2.3", "::1", "2001:db8::7"} {
		a := netip.MustParseAddr(s)
		ss := &session{ip: a.As16()}
		if got := ss.addr(); got != a {
			t.Errorf("%s: kept as %s", a, got)
		}
	}
}

// TestDirectOpenDoesNotAllocate: the open packet of a session that began
// on its WebSocket is built in the caller's buffer with a sid made on
// the stack: no allocation per handshake (it was a new buffer grown four
// times and the sid's text, about 270 bytes of garbage each), and the
// session keeps no sid.
func TestDirectOpenDoesNotAllocate(t *testing.T) {
	s := &Server{cfg: Config{}.withDefaults()}
	ss := &session{srv: s, direct: true}
	buf := ss.appendDirectOpen(nil)
	if !bytes.HasPrefix(buf, []byte(`0{"sid":"`)) || !bytes.Contains(buf, []byte(`"upgrades":[]`)) {
		t.Fatalf("open packet %q", buf)
	}
	sid := buf[len(`0{"sid":"`):]
	if i := bytes.IndexByte(sid, '"'); i != sidLen {
		t.Fatalf("sid of %d characters in %q, want %d", i, buf, sidLen)
	}
	if n := testing.AllocsPerRun(100, func() { buf = ss.appendDirectOpen(buf[:0]) }); n != 0 && !raceEnabled {
		t.Errorf("the open packet allocates %v times per handshake, want 0", n)
	}
	if ss.rare != nil || ss.sid() != "" {
		t.Error("a direct session keeps a sid")
	}
	s.node = "node-1"
	buf = ss.appendDirectOpen(buf[:0])
	if !bytes.HasPrefix(buf, []byte(`0{"sid":"node-1`+sidSep)) {
		t.Errorf("cluster open packet %q lacks the node tag", buf)
	}
}

// TestDescribeTransport: the API's connection list reads a session's
// transport from other goroutines: a direct session answers from direct
// alone (its rare state, allocated on its loop when a phase begins, is
// not for other goroutines), a session born on long-polling from the
// rare state it was registered with.
func TestDescribeTransport(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.2").As16()
	direct := &session{direct: true, ip: ip}
	if _, tr, remote := direct.Describe(); tr != "websocket" || remote != "127.0.0.2" {
		t.Errorf("direct session: %s from %s, want websocket from 127.0.0.2", tr, remote)
	}
	if direct.rare != nil {
		t.Error("Describe allocated a direct session's rare state")
	}
	polled := &session{ip: ip, rare: &sessionRare{sid: "x"}}
	if _, tr, _ := polled.Describe(); tr != "polling" {
		t.Errorf("polling session: %s, want polling", tr)
	}
	polled.polled().onWS.Store(true)
	if _, tr, _ := polled.Describe(); tr != "websocket" {
		t.Errorf("upgraded session: %s, want websocket", tr)
	}
}
