package netpoll

import (
	"bytes"
	"compress/flate"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deflatedFrame builds a masked client text frame compressed on its own
// (RSV1), as a client without context takeover sends it.
func deflatedFrame(t testing.TB, payload string) []byte {
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestSpeed)
	fw.Write([]byte(payload))
	fw.Flush()
	b := maskedFrame(string(bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff})))
	b[0] |= 0x40
	return b
}

// idleClient opens a connection, offering permessage-deflate when
// deflate, and sends three messages (compressed when deflate): a join of
// room, a send to it and a nick, then reads their acks and leaves the
// connection idle.
func idleClient(t testing.TB, addr, room string, deflate bool) net.Conn {
	offer := ""
	if deflate {
		offer = deflateOffer
	}
	nc, br, resp := upgradeWith(t, addr, offer)
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); deflate && ext != "permessage-deflate;server_no_context_takeover;client_no_context_takeover" {
		t.Fatalf("answer %q: want client_no_context_takeover required", ext)
	}
	msgs := []string{
		`{"type":"join","room":"` + room + `","id":1}`,
		`{"type":"send","room":"` + room + `","id":2,"data":{"text":"` + strings.Repeat("hello, compressed world ", 8) + `"}}`,
		`{"type":"nick","name":"idle-` + room + `","id":3}`,
	}
	for _, m := range msgs {
		if deflate {
			nc.Write(deflatedFrame(t, m))
		} else {
			nc.Write(maskedFrame(m))
		}
	}
	for acks := 0; acks < len(msgs); {
		_, p, err := readServerFrame(br)
		if err != nil {
			t.Fatalf("acks: %v", err)
		}
		if bytes.HasPrefix(p, []byte(`{"type":"error"`)) {
			t.Fatalf("got %s", p)
		}
		if bytes.HasPrefix(p, []byte(`{"type":"ack"`)) {
			acks++
		}
	}
	_ = nc.SetDeadline(time.Time{})
	return nc
}

// liveHeap is the heap in use after two collections (sync.Pool keeps
// its items through one).
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestIdleCompressingConnectionHoldsNoInflater: a connection that
// negotiated permessage-deflate and sent compressed messages holds no
// decompressor (nor compressor) once idle: the gateway's heap per idle
// connection is the same, within 200 bytes, as a plain one's. A flate
// decompressor is about 40 KB; were one kept per connection, the
// difference would be that.
func TestIdleCompressingConnectionHoldsNoInflater(t *testing.T) {
	if builtWithRace() {
		t.Skip("the race detector changes what the heap holds")
	}
	const n = 200
	ts := startTestServer(t, Config{Compression: true, Limits: limitsOff, PingInterval: time.Minute})
	perConn := func(deflate bool) float64 {
		before := liveHeap()
		conns := make([]net.Conn, n)
		for i := range conns {
			conns[i] = idleClient(t, ts.addr, "r"+strconv.Itoa(i%10), deflate)
		}
		for i := range ts.srv.loops {
			if lp := ts.srv.loops[i].Load(); lp != nil {
				onLoop(t, lp, func() {
					for i := range lp.conns.len() {
						c := lp.conns.at(i)
						if rd := c.more != nil && c.more.rd != nil; rd || c.deflate != deflate {
							t.Errorf("an idle connection keeps a frame reader (%v) or deflate is %v, want %v", rd, c.deflate, deflate)
						}
					}
				})
			}
		}
		grown := float64(int64(liveHeap())-int64(before)) / n
		for _, c := range conns {
			c.Close()
		}
		waitFor(t, "the connections to close", func() bool { return ts.srv.Stats().Connections == 0 })
		return grown
	}
	perConn(false) // warm up: pools, maps and the room table grow once
	plain := perConn(false)
	zipped := perConn(true)
	t.Logf("heap per idle connection, client and server sides: plain %.0f B, compressing %.0f B (%+.0f B)", plain, zipped, zipped-plain)
	if zipped-plain > 200 {
		t.Errorf("an idle compressing connection costs %.0f B more than a plain one, want at most 200", zipped-plain)
	}
}
