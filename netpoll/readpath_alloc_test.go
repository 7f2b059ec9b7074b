package netpoll

import (
	"io"
	"testing"
)

// TestReadPathAllocatesNothing: a chat request — TCP read, frame parsing,
// rate limit, JSON decoding, the hub, the ack written back — allocates
// nothing on the gateway. The client reads with a fixed buffer, so every
// allocation counted is the server's.
func TestReadPathAllocatesNothing(t *testing.T) {
	if builtWithRace() {
		t.Skip("sync.Pool drops items under the race detector: allocation counts mean nothing")
	}
	ts := startTestServer(t, Config{Limits: limitsOff})
	nc, br := rawClient(t, ts.addr)
	defer nc.Close()
	readServerFrame(br) // welcome
	nc.Write(maskedText(`{"type":"join","room":"solo"}`))
	readServerFrame(br)
	req := maskedText(`{"type":"send","room":"solo","id":1,"data":{"text":"hello, room"}}`)
	var hdr [2]byte
	var body [256]byte
	roundTrip := func() {
		if _, err := nc.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(br, body[:hdr[1]&0x7f]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		roundTrip() // warm the pools and buffers
	}
	if allocs := testing.AllocsPerRun(2000, roundTrip); allocs >= 0.5 {
		t.Fatalf("a request on the read path allocates %v times, want 0", allocs)
	}
}
