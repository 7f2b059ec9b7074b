package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Floods that cost the gateway more than they cost the client: frames the
// gateway answers with an error (invalid JSON, binary frames, unknown
// types) must count against the rate limits like any other message, and a
// client that never reads while its requests keep producing replies must
// be cut off as a slow consumer (-max-pending) before the gateway's memory
// grows with its backlog. Every wait is bounded; the memory bound is a
// regression guard with a wide margin, not a benchmark.

const (
	// flCloseWait bounds the wait for the 1008 close of a garbage flood.
	flCloseWait = 10 * time.Second
	// flFloodFor bounds one never-reading flood: the client stops writing
	// after this long even if the gateway neither cut it nor stopped
	// reading from it.
	flFloodFor = 30 * time.Second
	// flCutWait bounds the look for the end of the connection once the
	// client stopped writing without an error.
	flCutWait = 5 * time.Second
	// flRSSHeadroom is how far the gateway's RSS may rise above its level
	// before a flood. One connection's backlog is bounded by -max-pending
	// (4 MiB by default); the rest is slack for the Go heap's garbage and
	// the kernel's and allocator's rounding on a busy machine. A gateway
	// built with -race (CHATGATE_E2E_RACE=1) gets four times as much, for
	// the race detector's shadow memory.
	flRSSHeadroom = 64 << 20
	// flRcvBuf is the never-reading client's SO_RCVBUF: the kernel holds
	// almost nothing for it, so the backlog piles up in the gateway.
	flRcvBuf = 4 << 10
)

// TestGarbageFloodIsRateLimited: with -rate-messages 5 -rate-burst 5, 50
// frames in a row that the gateway answers only with an error (invalid
// JSON, binary frames, an unknown type) are rate limited like valid
// requests: at least one is answered rate_limited, and the connection is
// then closed with 1008 within flCloseWait. The number of rate_limited
// replies before the close is not fixed (it depends on the strike rule).
// The three floods run at once, each on its own connection (the limits
// are per connection), so that the test takes flCloseWait at most.
func TestGarbageFloodIsRateLimited(t *testing.T) {
	g := startGateway(t, "-rate-messages", "5", "-rate-burst", "5")
	const frames = 50
	type flood struct {
		name    string
		typ     int
		payload string
		ws      *websocket.Conn
		wrote   chan int // frames written before the first failed write
		// Set by the flood's reader before it closes read.
		codes     map[string]int // error replies by code
		limitedAt int            // index of the first rate_limited reply, -1 if none
		replies   int
		ce        *websocket.CloseError // the server's close
		end       error                 // or why the reads ended without one
		read      chan struct{}
	}
	floods := []*flood{
		{name: "invalid JSON", typ: websocket.TextMessage, payload: `{not json`},
		{name: "binary frames", typ: websocket.BinaryMessage, payload: "\x00\x01\x02garbage"},
		{name: "unknown type", typ: websocket.TextMessage, payload: `{"type":"nope"}`},
	}
	deadline := time.Now().Add(flCloseWait)
	for _, f := range floods {
		f.ws = dial(t, g).ws
		f.wrote, f.read = make(chan int, 1), make(chan struct{})
		f.codes, f.limitedAt = map[string]int{}, -1
		_ = f.ws.SetReadDeadline(deadline)
		_ = f.ws.SetWriteDeadline(deadline)
		go func() {
			n := 0
			for ; n < frames; n++ {
				if f.ws.WriteMessage(f.typ, []byte(f.payload)) != nil {
					break // the server closed the connection
				}
			}
			f.wrote <- n
		}()
		go func() {
			defer close(f.read)
			for {
				_, b, err := f.ws.ReadMessage()
				if err != nil {
					if !errors.As(err, &f.ce) {
						f.end = err
					}
					return
				}
				var m struct{ Type, Code string }
				if err := json.Unmarshal(b, &m); err != nil {
					f.end = fmt.Errorf("reply %d is not JSON: %q", f.replies, b)
					return
				}
				if m.Type == "error" {
					f.codes[m.Code]++
					if m.Code == "rate_limited" && f.limitedAt < 0 {
						f.limitedAt = f.replies
					}
				}
				f.replies++
			}
		}()
	}
	for _, f := range floods {
		t.Run(f.name, func(t *testing.T) {
			// Both goroutines stop by the deadline of their reads and
			// writes; hdWait more is slack for a loaded machine.
			bound := time.After(time.Until(deadline) + hdWait)
			var sent int
			select {
			case <-f.read:
			case <-bound:
				t.Fatalf("the reader is still blocked %v after its deadline", hdWait)
			}
			select {
			case sent = <-f.wrote:
			case <-bound:
				t.Fatalf("the writer is still blocked %v after its deadline", hdWait)
			}
			ending := "close frame"
			if f.ce != nil {
				ending = fmt.Sprintf("close %d %q", f.ce.Code, f.ce.Text)
			} else if f.end != nil {
				ending = f.end.Error()
			}
			t.Logf("%d of %d frames written; %d replies, error codes %v; first rate_limited at reply %d; then %s",
				sent, frames, f.replies, f.codes, f.limitedAt, ending)
			if f.codes["rate_limited"] == 0 {
				t.Errorf("%d frames (%s) at -rate-messages 5 -rate-burst 5 got no rate_limited reply (error codes %v)",
					frames, f.name, f.codes)
			}
			var ne net.Error
			switch {
			case f.ce != nil:
				if f.ce.Code != websocket.ClosePolicyViolation {
					t.Errorf("closed with %d %q, want 1008", f.ce.Code, f.ce.Text)
				}
			case errors.As(f.end, &ne) && ne.Timeout():
				t.Errorf("the connection is still open %v after a flood of %d frames (%s), want close 1008",
					flCloseWait, frames, f.name)
			default:
				t.Errorf("the connection ended without a close frame (%v), want close 1008", f.end)
			}
		})
	}
}

// TestNonReadingBinaryFloodIsCut: a client that never reads after its
// handshake and a join (scConnect: a raw socket with a 4 KiB SO_RCVBUF and
// a small MSS, so that the backlog stays in the gateway) sends up to 2,000,000 empty
// binary frames, each of which the gateway answers (today with an
// "unsupported" error). The rate limits are off (the harness's default),
// so only the outbound bound can stop it: the gateway must cut the
// connection (the client's writes fail, or it reads EOF or a reset), and
// its RSS must stay within flRSSHeadroom of its level before the flood.
func TestNonReadingBinaryFloodIsCut(t *testing.T) {
	// The heartbeat is pushed far out so that only the flood defences can
	// end the connection within the test.
	g := startGateway(t, "-ping-interval", "2m", "-ping-timeout", "1m")
	m, err := scConnect(g.addr, flRcvBuf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.nc.Close() })
	// One empty masked binary frame is 6 bytes: FIN|binary, MASK|0, mask.
	frame := []byte{0x82, 0x80, 0x12, 0x34, 0x56, 0x78}
	flNonReading(t, g, m.nc, bytes.Repeat(frame, 10_000), 10_000, 2_000_000, 0)
}

// TestNonReadingLongIDFloodIsCut: a client that never reads sends 3,000
// pings, each with a 60,000-character id that the ack echoes, so every
// request of 60 KB makes a reply of 60 KB. With the rate limits off, the
// gateway must cut it as a slow consumer, and its RSS must stay within
// flRSSHeadroom of its level before the flood.
func TestNonReadingLongIDFloodIsCut(t *testing.T) {
	g := startGateway(t, "-rate-messages", "-1", "-rate-bytes", "-1", "-max-message", "65536",
		"-ping-interval", "2m", "-ping-timeout", "1m")
	m, err := scConnect(g.addr, flRcvBuf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.nc.Close() })
	frame := clientFrame(true, 0x1, []byte(`{"type":"ping","id":"`+strings.Repeat("i", 60_000)+`"}`))
	flNonReading(t, g, m.nc, frame, 1, 3_000, 0)
}

// TestNonReadingRoomListFloodIsCut: a request of a few bytes whose reply
// is large, from a client that never reads, on both endpoints. A native
// member holds 100 rooms with 128-byte names, so the list of rooms is
// about 15 KB; the flooder asks for it up to 5,000 times in requests of
// about 30 bytes on the wire ({"type":"rooms","id":n} on /ws,
// 42<n>["rooms"] on /socket.io/, whose numeric ack ids cannot amplify
// the way a native id can). With the rate limits off, the gateway must
// cut the flooder as a slow consumer, and its RSS must stay within
// flRSSHeadroom of its level before the flood, however many of these
// requests arrive in one read.
func TestNonReadingRoomListFloodIsCut(t *testing.T) {
	tests := []struct {
		name    string
		open    func(t *testing.T, g *gateway) net.Conn
		request string // format of one request, with its id
	}{
		{"native", func(t *testing.T, g *gateway) net.Conn {
			m, err := scConnect(g.addr, flRcvBuf)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.nc.Close() })
			return m.nc
		}, `{"type":"rooms","id":%d}`},
		{"socket.io", flSIOOpen, `42%d["rooms"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The heartbeats are pushed far out so that only the flood
			// defences can end the connection within the test.
			g := startGateway(t, "-rate-messages", "-1", "-rate-bytes", "-1",
				"-ping-interval", "2m", "-ping-timeout", "1m",
				"-sio-ping-interval", "2m", "-sio-ping-timeout", "1m", "-presence=false")
			holder := dial(t, g)
			var joins []map[string]any
			for i := 0; i < 100; i++ {
				joins = append(joins, map[string]any{"type": "join", "id": fmt.Sprint(i),
					"room": fmt.Sprintf("%03d-%s", i, strings.Repeat("r", 124))})
			}
			for id, r := range hdBurst(t, holder, joins, nil) {
				if r["type"] != "ack" {
					t.Fatalf("join %s: %v", id, r)
				}
			}
			nc := tt.open(t, g)
			// 100 distinct ids per batch, the batch repeated.
			var batch []byte
			for i := 0; i < 100; i++ {
				batch = append(batch, clientFrame(true, 0x1, []byte(fmt.Sprintf(tt.request, 1000+i)))...)
			}
			flNonReading(t, g, nc, batch, 100, 5_000, 1)
		})
	}
}

// flNonReading floods nc, a client that never reads, with batch (holding
// perBatch requests) until total requests are written, the connection
// fails or flFloodFor has passed, while it samples the gateway's RSS. It
// fails the test unless the gateway cut the connection and its RSS stayed
// within flRSSHeadroom of its level before the flood. sessions is the
// number of chat sessions that remain once the flooder is gone.
func flNonReading(t *testing.T, g *gateway, nc net.Conn, batch []byte, perBatch, total, sessions int) {
	t.Helper()
	headroom := int64(flRSSHeadroom)
	if os.Getenv("CHATGATE_E2E_RACE") == "1" {
		headroom *= 4
	}
	rss := flWatchRSS(t, g.cmd.Process.Pid)

	start := time.Now()
	_ = nc.SetWriteDeadline(start.Add(flFloodFor))
	sent := 0
	var werr error
	for sent < total {
		if _, werr = nc.Write(batch); werr != nil {
			break
		}
		sent += perBatch
	}
	elapsed := time.Since(start)
	cut, how := flCutByServer(nc, werr)
	peak := rss.stop()
	// Whatever happened, the client goes now, and the gateway forgets it.
	nc.Close()
	hdWaitSessions(t, g, sessions)
	after, err := scRSS(rss.pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d requests written in %v; %s", sent, total, elapsed.Round(time.Millisecond), how)
	t.Logf("gateway RSS: %.1f MiB before, %.1f MiB peak, %.1f MiB after (bound: before + %d MiB)",
		mib(rss.base), mib(peak), mib(after), headroom>>20)
	if !cut {
		t.Errorf("the gateway did not cut a client that never reads (%d requests written in %v): %s",
			sent, elapsed.Round(time.Millisecond), how)
	}
	if peak > rss.base+headroom {
		t.Errorf("gateway RSS rose from %.1f MiB to %.1f MiB, more than %d MiB, for one client that never reads",
			mib(rss.base), mib(peak), headroom>>20)
	}
	// The gateway survived and serves others.
	hdExpectAck(dial(t, g), map[string]any{"type": "ping"})
}

// flCutByServer tells whether the server has ended nc, given the error that
// stopped the client's writes (nil if they all went through). A write that
// failed with EPIPE or ECONNRESET means it has; otherwise (all written, or
// the write deadline passed) the client reads, for up to flCutWait, until
// the end of the connection: EOF or a reset means the server ended it, a
// timeout means it is still open. how describes what was seen.
func flCutByServer(nc net.Conn, werr error) (cut bool, how string) {
	if werr != nil && (errors.Is(werr, syscall.EPIPE) || errors.Is(werr, syscall.ECONNRESET)) {
		return true, "the server cut the connection: write: " + werr.Error()
	}
	stopped := "all written"
	if werr != nil {
		stopped = "write: " + werr.Error()
	}
	_ = nc.SetReadDeadline(time.Now().Add(flCutWait))
	buf := make([]byte, 256<<10)
	var drained int64
	for {
		n, err := nc.Read(buf)
		drained += int64(n)
		var ne net.Error
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			return true, fmt.Sprintf("%s; then the client read %d bytes and EOF", stopped, drained)
		case errors.Is(err, syscall.ECONNRESET):
			return true, fmt.Sprintf("%s; then the client read %d bytes and a reset", stopped, drained)
		case errors.As(err, &ne) && ne.Timeout():
			return false, fmt.Sprintf("%s; then the client read %d bytes in %v and the connection was still open",
				stopped, drained, flCutWait)
		default:
			return false, fmt.Sprintf("%s; then read: %v after %d bytes", stopped, err, drained)
		}
	}
}

// flRSS samples a process's VmRSS until stop.
type flRSS struct {
	pid  int
	base int64 // VmRSS when sampling started
	peak atomic.Int64
	once sync.Once
	quit chan struct{}
	done chan struct{}
}

// flWatchRSS reads pid's VmRSS now and starts sampling it every 5 ms.
func flWatchRSS(t *testing.T, pid int) *flRSS {
	t.Helper()
	base, err := scRSS(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	w := &flRSS{pid: pid, base: base, quit: make(chan struct{}), done: make(chan struct{})}
	w.peak.Store(base)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := scRSS(pid, "VmRSS"); err == nil && v > w.peak.Load() {
				w.peak.Store(v)
			}
			select {
			case <-w.quit:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// stop ends the sampling and returns the peak: the highest sample, or the
// kernel's high-water mark (VmHWM) if a spike fell between samples.
func (w *flRSS) stop() int64 {
	w.once.Do(func() { close(w.quit) })
	<-w.done
	if hwm, err := scRSS(w.pid, "VmHWM"); err == nil && hwm > w.peak.Load() {
		w.peak.Store(hwm)
	}
	return w.peak.Load()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// flSIOOpen opens a Socket.IO connection over WebSocket on a raw socket
// with a small receive buffer, as scConnect does for /ws: the handshake,
// the open packet, CONNECT to "/" and its answer are read, and nothing
// after that.
func flSIOOpen(t *testing.T, g *gateway) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: hdWait, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, flRcvBuf)
			if serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
			}
		}); err != nil {
			return err
		}
		return serr
	}}
	nc, err := d.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(hdWait))
	req := strings.Replace(upgradeRequest, "GET /ws ", "GET /socket.io/?EIO=4&transport=websocket ", 1)
	if _, err := nc.Write(append([]byte(req), clientFrame(true, 0x1, []byte("40"))...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", err, resp)
	}
	for _, want := range []string{`0{`, `40{"sid":"`} {
		f, err := hdReadFrame(br)
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		if f.op != 0x1 || !strings.HasPrefix(string(f.payload), want) {
			t.Fatalf("got %q (opcode %d), want %s…", f.payload, f.op, want)
		}
	}
	_ = nc.SetDeadline(time.Time{})
	return nc
}
