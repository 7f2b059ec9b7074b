package netpoll

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/payload"
)

// chatWords is the vocabulary of the benchmark's chat texts: English
// words and some names, numbers and punctuation, so that texts compress
// about as real chat does rather than as repeated bytes.
var chatWords = strings.Fields(`the a to and of I you it is in that for on this we be have
are with not can just do so but what at my will if your all get about it's was like me
know they one up out there how think when no meeting deploy release tomorrow today
please thanks ok sure yes review PR #4821 build failed again on staging, can someone
look? 3pm room B lunch coffee :) customer ticket escalated priority Alice Bob Carol
Dave Eve fixed merged reverted rollback latency p99 dashboard alert pager 42 17 2.5s
https://example.invalid/issues/1234 "quoted" numbers: 1,234 and 56.7% weekend Friday`)

// chatPayload returns the native message a room member receives for a
// text of about size bytes (a JSON envelope around it), deterministic
// for a seed.
func chatPayload(size int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	var text strings.Builder
	for text.Len() < size {
		if text.Len() > 0 {
			text.WriteByte(' ')
		}
		text.WriteString(chatWords[r.IntN(len(chatWords))])
	}
	data, _ := json.Marshal(map[string]any{"text": text.String()})
	return fmt.Appendf(nil, `{"type":"message","room":"general","from":"d3b07384d113edec","nick":"alice","data":%s,"ts":1765000000000,"offset":%d}`, data, seed)
}

// BenchmarkDeflate measures permessage-deflate on the broadcast path in
// one run: a room of 100 members on real loopback TCP, chat messages of
// 200, 600 and 2,000 bytes of text, with compression off (no member
// offers it), per connection (every member compresses for itself, the
// baseline sharing replaces) and shared (one deflate per message). One op
// is one room message delivered to every member, the timer stopping when
// the last member has read the last frame. Reported per delivery: wall
// time (ns/delivery), CPU time of the whole process, the members' reading
// goroutines included (cpu-ns/delivery), and bytes on the wire
// (wire-B/delivery).
func BenchmarkDeflate(b *testing.B) {
	for _, size := range []int{200, 600, 2000} {
		for _, mode := range []string{"off", "per-connection", "shared"} {
			b.Run(fmt.Sprintf("text=%d/%s", size, mode), func(b *testing.B) {
				benchDeflate(b, 100, size, mode)
			})
		}
	}
}

func benchDeflate(b *testing.B, members, size int, mode string) {
	perConnDeflate = mode == "per-connection"
	defer func() { perConnDeflate = false }()
	ts := startTestServer(b, Config{MaxPending: 64 << 20, Limits: limitsOff, Compression: true})
	var frames, wire atomic.Int64
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, members)
	for i := 0; i < members; i++ {
		nc, br := deflateBenchClient(b, ts.addr, mode != "off")
		conns = append(conns, nc)
		nc.Write(maskedText(`{"type":"join","room":"bench"}`))
		readServerFrame(br) // ack
		wg.Add(1)
		go func() {
			defer wg.Done()
			countFrames(br, &frames, &wire)
		}()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	snap := ts.hub.Table().Snapshot([]byte("bench"))
	if snap == nil || snap.Count != members {
		b.Fatalf("room has %v members", snap)
	}
	const distinct = 64 // texts cycled through: no two neighbours alike
	bodies := make([][]byte, distinct)
	for i := range bodies {
		bodies[i] = chatPayload(size, uint64(i))
	}
	cpu0 := processCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ps chat.Payloads
		ps[KindNative] = payload.New(bodies[i%distinct])
		ts.srv.Fanout(snap, nil, &ps)
	}
	want := int64(b.N) * int64(members)
	deadline := time.Now().Add(60 * time.Second)
	for frames.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("members read %d of %d frames", frames.Load(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	deliveries := float64(want)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	b.ReportMetric(float64(wire.Load())/deliveries, "wire-B/delivery")
	var plain int
	for _, body := range bodies {
		plain += len(body)
	}
	b.ReportMetric(float64(plain)/distinct, "payload-B")
}

// deflateBenchClient upgrades, offering permessage-deflate when offer,
// and reads the welcome.
func deflateBenchClient(b *testing.B, addr string, offer bool) (net.Conn, *bufio.Reader) {
	hdr := ""
	if offer {
		hdr = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
	}
	nc, br, resp := upgradeWith(b, addr, hdr)
	if (resp.Header.Get("Sec-WebSocket-Extensions") != "") != offer {
		b.Fatalf("upgrade: %v", resp)
	}
	readServerFrame(br) // welcome
	return nc, br
}

// countFrames counts the server frames read from br and their bytes
// (headers included) until br fails.
func countFrames(br *bufio.Reader, frames, wire *atomic.Int64) {
	var h [8]byte
	for {
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			return
		}
		size, hl := int(h[1]&0x7f), 2
		switch size {
		case 126:
			if _, err := io.ReadFull(br, h[:2]); err != nil {
				return
			}
			size, hl = int(binary.BigEndian.Uint16(h[:2])), 4
		case 127:
			if _, err := io.ReadFull(br, h[:8]); err != nil {
				return
			}
			size, hl = int(binary.BigEndian.Uint64(h[:8])), 10
		}
		if _, err := br.Discard(size); err != nil {
			return
		}
		wire.Add(int64(hl + size))
		frames.Add(1)
	}
}

// processCPU is the CPU time, user and system, the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
