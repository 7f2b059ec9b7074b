package netpoll

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// maskedFrame builds a masked client text frame of any size below 64 KiB.
func maskedFrame(payload string) []byte {
	var b []byte
	if len(payload) < 126 {
		b = []byte{0x81, 0x80 | byte(len(payload))}
	} else {
		b = []byte{0x81, 0x80 | 126, byte(len(payload) >> 8), byte(len(payload))}
	}
	b = append(b, 1, 2, 3, 4)
	for i := 0; i < len(payload); i++ {
		b = append(b, payload[i]^byte(i%4+1))
	}
	return b
}

// budgetMember upgrades a connection (a stalled one: small SO_RCVBUF and
// MSS, see slowDial) and joins room, returning once the join is
// acknowledged; then it reads nothing until the test reads it.
func budgetMember(t *testing.T, addr, room string, stalled bool) (net.Conn, *bufio.Reader) {
	t.Helper()
	var nc net.Conn
	if stalled {
		nc = slowDial(t, addr)
	} else {
		var err error
		if nc, err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write(append([]byte(upgradeReq), maskedText(`{"type":"join","room":"`+room+`","id":1}`)...))
	br := bufio.NewReaderSize(nc, 64<<10)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for {
		_, p, err := readServerFrame(br)
		if err != nil {
			t.Fatalf("before the join ack: %v", err)
		}
		if bytes.HasPrefix(p, []byte(`{"type":"ack"`)) {
			break
		}
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, br
}

// waitFor polls cond every millisecond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// readRoom reads n room messages from br, checking that their texts carry
// the sequence numbers 0 … n-1 in order.
func readRoom(br *bufio.Reader, n int) error {
	for next := 0; next < n; {
		_, p, err := readServerFrame(br)
		if err != nil {
			return fmt.Errorf("after %d messages: %w", next, err)
		}
		i := bytes.Index(p, []byte(`"data":"`))
		if i < 0 {
			continue // not a room message
		}
		seq, _, _ := strings.Cut(string(p[i+len(`"data":"`):]), "-")
		if seq != strconv.Itoa(next) {
			return fmt.Errorf("message %q arrived when %d was due", seq, next)
		}
		next++
	}
	return nil
}

// TestNodeBudgetResetsLargestFirst: two stalled members, A in room a and
// B in room b (on either loop), under a node budget of 1 MiB. A's backlog
// is grown first to about 600 KB, then B's: when the node passes the
// budget, A, the larger, is reset and B is not. B then reads every one of
// its messages in order, as does a reading member of room b.
func TestNodeBudgetResetsLargestFirst(t *testing.T) {
	const budget = 1 << 20
	ts := startTestServer(t, Config{MaxPendingTotal: budget, Limits: limitsOff})
	srv := ts.srv
	pub, pubBR := budgetMember(t, ts.addr, "a", false)
	pub.Write(maskedText(`{"type":"join","room":"b","id":2}`))
	go func() { // the publisher's acks
		for {
			if _, _, err := readServerFrame(pubBR); err != nil {
				return
			}
		}
	}()
	a, aBR := budgetMember(t, ts.addr, "a", true)
	b, bBR := budgetMember(t, ts.addr, "b", true)
	_, readerBR := budgetMember(t, ts.addr, "b", false)
	readerDone := make(chan error, 1)
	var sentB int
	readerGot := make(chan int, 1)
	go func() { readerDone <- readRoom(readerBR, <-readerGot) }()
	const sessions = 4 // the publisher, A, B and the reader
	waitFor(t, "4 sessions", func() bool { return ts.hub.Sessions() == sessions })

	filler := strings.Repeat("x", 16<<10)
	send := func(room string, seq int) {
		if _, err := pub.Write(maskedFrame(`{"type":"send","room":"` + room + `","data":"` + strconv.Itoa(seq) + "-" + filler + `"}`)); err != nil {
			t.Fatal(err)
		}
	}
	// A's backlog to about 600 KB: still under the budget.
	for i := 0; srv.PendingBytes() < 600<<10; i++ {
		if i == 200 {
			t.Fatalf("A's backlog is %d bytes after %d messages", srv.PendingBytes(), i)
		}
		send("a", i)
		time.Sleep(time.Millisecond)
	}
	if got := ts.hub.Sessions(); got != sessions {
		t.Fatalf("%d sessions before the budget was reached, want %d", got, sessions)
	}
	// Then B's, until someone is reset.
	for ts.hub.Sessions() == sessions {
		if sentB == 100 {
			t.Fatalf("no reset after %d messages to B; %d bytes pending", sentB, srv.PendingBytes())
		}
		send("b", sentB)
		sentB++
		time.Sleep(time.Millisecond)
	}
	// A was reset: it reads what reached its socket, then the reset.
	_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, aBR); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("A, the largest backlog, ended with %v, want a reset", err)
	}
	// B was not: it gets every one of its messages.
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := readRoom(bBR, sentB); err != nil {
		t.Errorf("B: %v", err)
	}
	readerGot <- sentB
	select {
	case err := <-readerDone:
		if err != nil {
			t.Errorf("reader: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the reader did not get every message")
	}
	if got := ts.hub.Sessions(); got != sessions-1 {
		t.Errorf("%d sessions, want %d: only A is reset", got, sessions-1)
	}
	waitFor(t, "the pending bytes to drop", func() bool { return srv.PendingBytes() < budget })
}

// TestNodeBudgetOff: with MaxPendingTotal negative, the same stalled
// members far over 1 MiB together are not reset (MaxPending still holds
// each).
func TestNodeBudgetOff(t *testing.T) {
	ts := startTestServer(t, Config{MaxPendingTotal: -1, Limits: limitsOff})
	if ts.srv.MaxPendingTotal() != 0 {
		t.Fatalf("MaxPendingTotal() = %d, want 0 (off)", ts.srv.MaxPendingTotal())
	}
	pub, pubBR := budgetMember(t, ts.addr, "a", false)
	go func() {
		for {
			if _, _, err := readServerFrame(pubBR); err != nil {
				return
			}
		}
	}()
	for i := 0; i < 4; i++ {
		budgetMember(t, ts.addr, "a", true)
	}
	filler := strings.Repeat("x", 16<<10)
	for i := 0; ts.srv.PendingBytes() < 3<<20; i++ {
		if i == 400 {
			t.Fatalf("%d bytes pending after %d messages", ts.srv.PendingBytes(), i)
		}
		pub.Write(maskedFrame(`{"type":"send","room":"a","data":"` + strconv.Itoa(i) + "-" + filler + `"}`))
		time.Sleep(time.Millisecond)
	}
	if got := ts.hub.Sessions(); got != 5 {
		t.Fatalf("%d sessions, want 5: nobody reset without a budget", got)
	}
}

// TestDefaultMaxPendingTotal: the default is an eighth of the memory the
// process may use, and at least something.
func TestDefaultMaxPendingTotal(t *testing.T) {
	m := memoryLimit()
	d := DefaultMaxPendingTotal()
	if m > 0 && d != m/8 {
		t.Fatalf("default %d, want %d (memory %d / 8)", d, m/8, m)
	}
	if d <= 0 {
		t.Fatalf("default %d", d)
	}
	ts := startTestServer(t, Config{})
	if got := ts.srv.MaxPendingTotal(); got != d {
		t.Fatalf("a zero MaxPendingTotal is %d, want the default %d", got, d)
	}
}
