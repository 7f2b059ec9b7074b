package netpoll

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/frame"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/payload"
)

// limitsOff lifts the rate limits: benchmarks send faster than a chat user
// may.
var limitsOff = limit.Config{MessagesPerSecond: -1, BytesPerSecond: -1}

// BenchmarkBroadcast measures the whole broadcast path — hand-off to each
// loop's mailbox, queueing per member, one writev per member per pass —
// against real loopback TCP clients that read everything. One op is one
// room message delivered to every member; the timer stops only after the
// last member has received the last byte. ns/delivery and
// allocs/delivery divide by the member count.
func BenchmarkBroadcast(b *testing.B) {
	for _, members := range []int{100, 1000} {
		for _, size := range []int{64, 1024} {
			b.Run(fmt.Sprintf("members=%d/size=%d", members, size), func(b *testing.B) {
				benchBroadcast(b, members, size)
			})
		}
	}
}

func benchBroadcast(b *testing.B, members, size int) {
	ts := startTestServer(b, Config{MaxPending: 64 << 20, Limits: limitsOff})
	var received atomic.Int64
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, members)
	for i := 0; i < members; i++ {
		nc, br := rawClient(b, ts.addr)
		conns = append(conns, nc)
		readServerFrame(br) // welcome
		nc.Write(maskedText(`{"type":"join","room":"bench"}`))
		readServerFrame(br) // ack
		wg.Add(1)
		buf := make([]byte, 64<<10)
		go func(br *bufio.Reader) {
			defer wg.Done()
			for {
				n, err := br.Read(buf)
				received.Add(int64(n))
				if err != nil {
					return
				}
			}
		}(br)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	// Presence frames from later joins may still be in flight: let them
	// land before counting.
	time.Sleep(200 * time.Millisecond)
	snap := ts.hub.Table().Snapshot([]byte("bench"))
	if snap == nil || snap.Count != members {
		b.Fatalf("room has %v members", snap)
	}
	body := make([]byte, size)
	for i := range body {
		body[i] = 'x'
	}
	frameLen := int64(len(frame.AppendFrame(nil, ws.OpText, body)))

	base := received.Load()
	writes0 := loopWrites(b, ts.srv)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ps chat.Payloads
		ps[KindNative] = payload.New(body)
		ts.srv.Fanout(snap, nil, &ps)
	}
	want := base + int64(b.N)*int64(members)*frameLen
	deadline := time.Now().Add(60 * time.Second)
	for received.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d bytes", received.Load()-base, want-base)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	deliveries := float64(b.N) * float64(members)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	// Each write is one write(2) (gnet writes at once when nothing is
	// buffered): frames queued for a member in one pass share it.
	b.ReportMetric(float64(loopWrites(b, ts.srv)-writes0)/deliveries, "writes/delivery")
}

// loopWrites sums the queued-frame writes of every loop (loop.writes),
// read on each loop.
func loopWrites(tb testing.TB, s *Server) int64 {
	var n int64
	for i := range s.loops {
		if lp := s.loops[i].Load(); lp != nil {
			onLoop(tb, lp, func() { n += lp.writes })
		}
	}
	return n
}

// BenchmarkReadPath measures the inbound path of a small chat message:
// TCP read, frame parsing, UTF-8 check, JSON decoding, the hub's
// membership check and the ack written back. The client pipelines
// "send" requests to a room it is alone in (so nothing fans out) and a
// reader drains the acks; one op is one request acknowledged.
func BenchmarkReadPath(b *testing.B) {
	ts := startTestServer(b, Config{Limits: limitsOff})
	nc, br := rawClient(b, ts.addr)
	defer nc.Close()
	readServerFrame(br) // welcome
	nc.Write(maskedText(`{"type":"join","room":"solo"}`))
	readServerFrame(br)
	req := maskedText(`{"type":"send","room":"solo","id":1,"data":{"text":"hello, room"}}`)
	batch := make([]byte, 0, 64*len(req))
	for i := 0; i < 64; i++ {
		batch = append(batch, req...)
	}
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		var h [4]byte
		for i := 0; i < b.N; i++ {
			if err := skipFrame(br, &h); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for sent := 0; sent < b.N; sent += 64 {
		n := min(64, b.N-sent)
		if _, err := nc.Write(batch[:n*len(req)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
