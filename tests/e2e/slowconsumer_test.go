package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The slow-consumer defence of docs/security.md ("-max-pending: past it the
// connection is closed with 1008 slow consumer") under load: one member of
// a large room stops reading while the room is busy. It must be cut off,
// and only it: every other member receives every message in order, and the
// gateway's memory stays bounded.

const (
	scMembers  = 1000  // members of the room, the publisher and the slow one included
	scMessages = 20000 // messages broadcast
	// scWindow is how far the publisher may run ahead of the slowest
	// healthy receiver. It keeps each healthy member's backlog near
	// scWindow messages (about 90 KB), far below -max-pending, however
	// slowly this process reads under -race, so that only the member that
	// stops reading can cross the limit.
	scWindow   = 1000
	scBatch    = 100 // messages per publisher write
	scPending  = 1 << 20
	scRoom     = "big"
	scDeadline = 50 * time.Second // for the whole broadcast
)

// scMember is one raw WebSocket member of the room.
type scMember struct {
	nc  net.Conn
	br  *bufio.Reader
	id  string
	got atomic.Int64 // room messages received, all in order so far
	// err is the first fault of the reader (out of order, connection
	// lost), set before done is closed.
	err  error
	done chan struct{}
}

// scJoin is the masked join frame every member sends behind its handshake.
var scJoin = clientFrame(true, 0x1, []byte(`{"type":"join","room":"`+scRoom+`"}`))

// scConnect opens a member: the upgrade and the join go out in one write,
// and it returns once the join is acknowledged. rcvbuf > 0 makes a member
// with little room in the kernel, like a slow mobile client: SO_RCVBUF
// keeps the window it announces small, and a small MSS (536, the IPv4
// default) keeps the gateway's send buffer for it small, which on loopback
// (MSS 64 KiB) would otherwise start at several megabytes and hide the
// backlog from the gateway.
func scConnect(addr string, rcvbuf int) (*scMember, error) {
	d := net.Dialer{Timeout: hdWait}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
				if serr == nil {
					serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &scMember{nc: nc, br: bufio.NewReaderSize(nc, 32<<10), done: make(chan struct{})}
	_ = nc.SetDeadline(time.Now().Add(hdWait))
	if _, err := nc.Write(append([]byte(upgradeRequest), scJoin...)); err != nil {
		nc.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(m.br, nil)
	if err != nil || resp.StatusCode != 101 {
		nc.Close()
		return nil, fmt.Errorf("upgrade: %v %v", err, resp)
	}
	for {
		f, err := hdReadFrame(m.br)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("before the join ack: %w", err)
		}
		p := string(f.payload)
		switch {
		case strings.HasPrefix(p, `{"type":"welcome","id":"`):
			m.id = strings.SplitN(p[len(`{"type":"welcome","id":"`):], `"`, 2)[0]
		case strings.HasPrefix(p, `{"type":"ack"`):
			_ = nc.SetDeadline(time.Time{})
			return m, nil
		case strings.HasPrefix(p, `{"type":"error"`):
			nc.Close()
			return nil, fmt.Errorf("join: %s", p)
		}
	}
}

// receive reads frames until total room messages have arrived, checking
// that they are the publisher's messages with sequence numbers (the data)
// 0, 1, 2, … prefix is the start of every such message, up to the data.
// It reads large chunks and parses them in place, and publishes its
// progress once per chunk: under -race, per-byte and per-frame work in
// the 998 receivers would dominate the test's run time.
func (m *scMember) receive(total int64, prefix []byte, failed *atomic.Int32) {
	defer close(m.done)
	defer func() {
		if m.err != nil {
			failed.Add(1)
		}
	}()
	buf := make([]byte, 256<<10)
	// Bytes the handshake's reader already holds come first.
	end := copy(buf, func() []byte { b, _ := m.br.Peek(m.br.Buffered()); return b }())
	start := 0
	var next int64
	for next < total {
		if start > 0 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		n, err := m.nc.Read(buf[end:])
		if err != nil {
			m.err = fmt.Errorf("after %d messages: %w", next, err)
			return
		}
		end += n
		for end-start >= 2 {
			op, ln, hl := buf[start]&0x0f, int(buf[start+1]&0x7f), 2
			if ln == 126 {
				if end-start < 4 {
					break
				}
				ln, hl = int(buf[start+2])<<8|int(buf[start+3]), 4
			} else if ln == 127 {
				m.err = fmt.Errorf("unexpected 64-bit frame length after %d messages", next)
				return
			}
			if end-start < hl+ln {
				break
			}
			p := buf[start+hl : start+hl+ln]
			start += hl + ln
			if op == 0x8 {
				code, reason := hdFrame{op: op, payload: p}.closeCode()
				m.err = fmt.Errorf("closed with %d %q after %d messages", code, reason, next)
				return
			}
			if op != 0x1 || !bytes.HasPrefix(p, prefix) {
				m.err = fmt.Errorf("unexpected frame (opcode %d) after %d messages: %.200s", op, next, p)
				return
			}
			var seq int64
			j := len(prefix)
			for ; j < len(p) && p[j] >= '0' && p[j] <= '9'; j++ {
				seq = seq*10 + int64(p[j]-'0')
			}
			if seq != next || j == len(prefix) {
				m.err = fmt.Errorf("message %.200s arrived when %d was due", p, next)
				return
			}
			next++
		}
		m.got.Store(next)
	}
}

// scCountAcks reads the publisher's replies until want acks have come,
// counting them in acks, and sends nil, or the first error reply or read
// error, on the channel it returns.
func scCountAcks(pub *scMember, want int64, acks *atomic.Int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		for acks.Load() < want {
			f, err := hdReadFrame(pub.br)
			if err != nil {
				done <- fmt.Errorf("publisher after %d acks: %w", acks.Load(), err)
				return
			}
			if bytes.HasPrefix(f.payload, []byte(`{"type":"ack"`)) {
				acks.Add(1)
			} else if bytes.HasPrefix(f.payload, []byte(`{"type":"error"`)) {
				done <- fmt.Errorf("publisher got %.200s", f.payload)
				return
			}
		}
		done <- nil
	}()
	return done
}

// scAwaitAcks waits up to hdWait for scCountAcks's done, failing t on
// its error or when the publisher's want acks have not all come.
func scAwaitAcks(t *testing.T, done <-chan error, acks *atomic.Int64, want int64) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hdWait):
		t.Fatalf("the publisher got %d of %d acks", acks.Load(), want)
	}
}

// scSampleRSS samples pid's VmRSS every period until the function it
// returns is called, which returns the highest sample.
func scSampleRSS(pid int, period time.Duration) (stop func() int64) {
	var peak atomic.Int64
	quit := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v, err := scRSS(pid, "VmRSS"); err == nil && v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-quit:
				return
			case <-time.After(period):
			}
		}
	}()
	return func() int64 {
		close(quit)
		<-sampled
		return peak.Load()
	}
}

// scRSS reads a field of /proc/<pid>/status (VmRSS, VmHWM) in bytes.
func scRSS(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// TestSlowConsumerCutOffOthersGetEverything: 1,000 members in one room,
// 20,000 messages broadcast by one of them, and one member that stops
// reading (with a small receive buffer). The slow member is closed as a
// slow consumer (1008 "slow consumer", or its connection reset, whatever
// it manages to read) and counted in chatgate_slow_consumers_total; every
// other member receives all 20,000 messages in order; the gateway's RSS
// stays under 300 MiB.
func TestSlowConsumerCutOffOthersGetEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 1,000 connections and 20 million deliveries")
	}
	const rssBound = 300 << 20
	g := startGateway(t, "-max-pending", strconv.Itoa(scPending),
		// The members never speak after joining: keep the gateway from
		// pinging them during the test. Presence events are off so that
		// the receivers see nothing but the publisher's messages.
		"-ping-interval", "2m", "-ping-timeout", "1m", "-presence=false")
	const slowSeries = `chatgate_slow_consumers_total{action="closed"}`
	slowBefore := hdMetric(t, g, slowSeries)
	pid := g.cmd.Process.Pid
	rssIdle, err := scRSS(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}

	// Members: the publisher, the receivers, then the slow one.
	start := time.Now()
	pub, err := scConnect(g.addr, 0)
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t.Cleanup(func() { pub.nc.Close() })
	// Every message a receiver gets starts like this, up to its data.
	prefix := []byte(`{"type":"message","room":"` + scRoom + `","from":"` + pub.id + `","nick":"","data":`)
	receivers := make([]*scMember, scMembers-2)
	var (
		wg      sync.WaitGroup
		next    atomic.Int64
		connErr atomic.Pointer[error]
		failed  atomic.Int32 // receivers that stopped on a fault
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(receivers) || connErr.Load() != nil {
					return
				}
				m, err := scConnect(g.addr, 0)
				if err != nil {
					err = fmt.Errorf("receiver %d: %w", i, err)
					connErr.CompareAndSwap(nil, &err)
					return
				}
				receivers[i] = m
				go m.receive(scMessages, prefix, &failed)
			}
		}()
	}
	wg.Wait()
	for _, m := range receivers {
		if m != nil {
			t.Cleanup(func() { m.nc.Close() })
		}
	}
	if e := connErr.Load(); e != nil {
		t.Fatal(*e)
	}
	slow, err := scConnect(g.addr, 4096)
	if err != nil {
		t.Fatalf("slow member: %v", err)
	}
	t.Cleanup(func() { slow.nc.Close() })
	t.Logf("%d members joined in %v", scMembers, time.Since(start))

	// The publisher's replies (an ack per send) are drained and counted.
	var acks atomic.Int64
	pubDone := scCountAcks(pub, scMessages, &acks)

	// Peak memory, sampled while the broadcast runs.
	stopSampling := scSampleRSS(pid, 20*time.Millisecond)

	// slowest returns the progress of the slowest receiver, or the fault
	// of one that failed.
	slowest := func() (int64, error) {
		if failed.Load() > 0 {
			for i, m := range receivers {
				select {
				case <-m.done:
					if m.err != nil {
						return 0, fmt.Errorf("receiver %d (%s): %w", i, m.id, m.err)
					}
				default:
				}
			}
		}
		lowest := int64(scMessages)
		for _, m := range receivers {
			if v := m.got.Load(); v < lowest {
				lowest = v
			}
		}
		return lowest, nil
	}

	broadcast := time.Now()
	deadline := broadcast.Add(scDeadline)
	buf := make([]byte, 0, scBatch*48)
	_ = pub.nc.SetWriteDeadline(deadline)
	for sent := 0; sent < scMessages; sent += scBatch {
		for {
			low, err := slowest()
			if err != nil {
				t.Fatal(err)
			}
			if int64(sent)-low <= scWindow {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v the slowest receiver has %d of the %d messages sent", scDeadline, low, sent)
			}
			time.Sleep(2 * time.Millisecond)
		}
		buf = buf[:0]
		for i := sent; i < sent+scBatch; i++ {
			buf = append(buf, clientFrame(true, 0x1, []byte(`{"type":"send","room":"`+scRoom+`","data":`+strconv.Itoa(i)+`}`))...)
		}
		if _, err := pub.nc.Write(buf); err != nil {
			t.Fatalf("publisher write after %d messages: %v", sent, err)
		}
	}
	for i, m := range receivers {
		select {
		case <-m.done:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("receiver %d has %d of %d messages after %v", i, m.got.Load(), scMessages, time.Since(broadcast))
		}
		if m.err != nil {
			t.Fatalf("receiver %d (%s): %v", i, m.id, m.err)
		}
	}
	elapsed := time.Since(broadcast)
	scAwaitAcks(t, pubDone, &acks, scMessages)
	rssPeak := stopSampling()
	hwm, err := scRSS(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages to %d receivers (%d deliveries) in %v, %.1f M deliveries/s",
		scMessages, len(receivers), scMessages*len(receivers), elapsed.Round(time.Millisecond),
		float64(scMessages*len(receivers))/elapsed.Seconds()/1e6)
	t.Logf("gateway RSS: %.1f MiB idle, %.1f MiB peak sampled, %.1f MiB high-water mark (bound %d MiB)",
		float64(rssIdle)/(1<<20), float64(rssPeak)/(1<<20), float64(hwm)/(1<<20), rssBound>>20)
	if hwm > rssBound || rssPeak > rssBound {
		t.Errorf("gateway RSS reached %.1f MiB, over the %d MiB bound", float64(max(hwm, rssPeak))/(1<<20), rssBound>>20)
	}

	// Exactly one slow consumer: the member that stopped reading.
	if d := hdMetric(t, g, slowSeries) - slowBefore; d != 1 {
		t.Errorf("%s grew by %v, want 1", slowSeries, d)
	}
	hdWaitSessions(t, g, scMembers-1)

	// What the slow member sees when it reads again: some messages, in
	// order, then the end of the connection.
	_ = slow.nc.SetReadDeadline(time.Now().Add(hdWait))
	var (
		got    int
		ending string
	)
	for {
		f, err := hdReadFrame(slow.br)
		if err != nil {
			switch {
			case errors.Is(err, syscall.ECONNRESET):
				ending = "connection reset"
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				ending = "EOF without a close frame: " + err.Error()
			default:
				t.Fatalf("slow member: %v after %d messages", err, got)
			}
			break
		}
		if f.op == 0x8 {
			code, reason := f.closeCode()
			if code != 1008 || reason != "slow consumer" {
				t.Errorf("slow member closed with %d %q, want 1008 \"slow consumer\"", code, reason)
			}
			ending = fmt.Sprintf("close %d %q", code, reason)
			break
		}
		if f.op == 0x1 && bytes.HasPrefix(f.payload, prefix) {
			got++
		}
	}
	t.Logf("slow member: %d of %d messages, then %s", got, scMessages, ending)
	if got >= scMessages {
		t.Errorf("the slow member received all %d messages: it was never cut off", got)
	}
	if strings.HasPrefix(ending, "EOF") {
		t.Errorf("the slow member's connection ended with %s: neither the 1008 \"slow consumer\" close "+
			"frame nor a reset reached it", ending)
	}
}
