package netpoll

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/history"
)

// BenchmarkRoomSendHistory measures a room message from a client to every
// other member of a 1,000-member room through the whole gateway — read,
// decode, the hub, (the history append,) encode once, fan out, write —
// with history off and on, side by side in one run. One op is one message
// delivered to all 999 other members; the timer stops when the last one
// has received it. cpu-ns/delivery is the process's CPU time (the client
// readers included, the same in both cases) per delivery; the history
// costs one append per message, never per recipient, so the two must
// stay within a few percent.
func BenchmarkRoomSendHistory(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "history=off"
		if on {
			name = "history=on"
		}
		b.Run(name+"/members=1000", func(b *testing.B) { benchRoomSend(b, 1000, on) })
	}
}

func benchRoomSend(b *testing.B, members int, withHistory bool) {
	var hc chat.Config
	if withHistory {
		hc.History = history.NewMemory(history.Config{Size: 100, TTL: 5 * time.Minute, Memory: 256 << 20})
	}
	ts := startTestServerHub(b, Config{MaxPending: 64 << 20, Limits: limitsOff}, hc)

	// frames counts the frames each receiver got after the joins.
	var frames atomic.Int64
	var counting atomic.Bool
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, members)
	join := maskedText(`{"type":"join","room":"bench"}`)
	var sender net.Conn
	for i := 0; i < members; i++ {
		nc, br := rawClient(b, ts.addr)
		conns = append(conns, nc)
		readServerFrame(br) // welcome
		nc.Write(join)
		readServerFrame(br) // ack
		if i == 0 {
			sender = nc
		}
		wg.Add(1)
		go func(br *bufio.Reader, count bool) {
			defer wg.Done()
			var h [4]byte
			for {
				if skipFrame(br, &h) != nil {
					return
				}
				if count && counting.Load() {
					frames.Add(1)
				}
			}
		}(br, i != 0)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	// Presence from the joins: wait until the receivers have been quiet.
	waitQuiet := func() {
		var last int64 = -1
		for i := 0; i < 200; i++ {
			cur := frames.Load()
			if cur == last {
				return
			}
			last = cur
			time.Sleep(20 * time.Millisecond)
		}
	}
	counting.Store(true)
	waitQuiet()
	base := frames.Load()

	req := maskedText(`{"type":"send","room":"bench","data":{"text":"hello, room, this is a chat message"}}`)
	batch := make([]byte, 0, 32*len(req))
	for i := 0; i < 32; i++ {
		batch = append(batch, req...)
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += 32 {
		n := min(32, b.N-sent)
		if _, err := sender.Write(batch[:n*len(req)]); err != nil {
			b.Fatal(err)
		}
	}
	want := base + int64(b.N)*int64(members-1)
	deadline := time.Now().Add(120 * time.Second)
	for frames.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", frames.Load()-base, want-base)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	deliveries := float64(b.N) * float64(members-1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	b.ReportMetric(deliveries/cpu.Seconds(), "deliveries/cpu-s")
}
