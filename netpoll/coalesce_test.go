package netpoll

import (
	"context"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/payload"
)

// onLoop runs f on lp and waits for it, up to 5 s.
func onLoop(tb testing.TB, lp *loop, f func()) {
	tb.Helper()
	done := make(chan struct{})
	if err := lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error { f(); close(done); return nil })); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		tb.Fatal("the loop did not run the task in 5 s")
	}
}

// TestPassWritesEachConnectionOnce: broadcasts that reach a loop's
// mailbox while the loop is busy are drained in one pass, and each
// member gets all of them with one write, in order.
func TestPassWritesEachConnectionOnce(t *testing.T) {
	ts := startTestServer(t, Config{Loops: 1, Limits: limitsOff})
	nc, br := rawClient(t, ts.addr)
	readServerFrame(br) // welcome
	nc.Write(maskedText(`{"type":"join","room":"r"}`))
	readServerFrame(br) // ack
	snap := ts.hub.Table().Snapshot([]byte("r"))
	if snap == nil || snap.Count != 1 {
		t.Fatalf("room has %v members", snap)
	}
	lp := ts.srv.loops[0].Load()

	// Hold the loop while the broadcasts are handed to it.
	const k = 10
	var before int64
	hold, held := make(chan struct{}), make(chan struct{})
	_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		before = lp.writes
		close(held)
		<-hold
		return nil
	}))
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not run the holding task")
	}
	for i := 0; i < k; i++ {
		var ps chat.Payloads
		ps[KindNative] = payload.New([]byte{'a' + byte(i)})
		ts.srv.Fanout(snap, nil, &ps)
	}
	close(hold)

	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < k; i++ {
		_, p, err := readServerFrame(br)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(p) != 1 || p[0] != 'a'+byte(i) {
			t.Fatalf("frame %d is %q, want %q", i, p, 'a'+byte(i))
		}
	}
	var after int64
	onLoop(t, lp, func() { after = lp.writes })
	if n := after - before; n != 1 {
		t.Errorf("%d broadcasts queued in one pass took %d writes, want 1", k, n)
	}
}
