package netpoll

import (
	"testing"
)

// onlyConn returns the one connection of a one-loop server, on its loop.
func onlyConn(t *testing.T, lp *loop) *conn {
	t.Helper()
	var c *conn
	onLoop(t, lp, func() {
		if lp.conns.len() == 1 {
			c = lp.conns.at(0)
		}
	})
	if c == nil {
		t.Fatal("want exactly one connection on the loop")
	}
	return c
}

// TestConnMoreOnlyWhileNeeded: a connection holds a connMore only while
// it has a frame cut across reads or rate-limit debt. The reader state
// goes at the end of the frame; the debt once it has drained, at the
// next sweep, into the loop's spares, which the next connection that
// needs one takes.
func TestConnMoreOnlyWhileNeeded(t *testing.T) {
	ts := startTestServer(t, Config{Loops: 1})
	nc, br := rawClient(t, ts.addr)
	defer nc.Close()
	readServerFrame(br)          // welcome
	lp := ts.srv.loops[0].Load() // set once the loop has a connection
	c := onlyConn(t, lp)
	state := func() (more, rd bool, spares int) {
		onLoop(t, lp, func() {
			more, rd, spares = c.more != nil, c.more != nil && c.more.rd != nil, len(lp.spareMore)
		})
		return
	}
	if more, _, _ := state(); more {
		t.Fatal("a connection holds a connMore before any message")
	}

	// A join cut inside its payload: the reader state is the
	// connection's until the rest arrives.
	join := maskedText(`{"type":"join","room":"lobby"}`)
	if _, err := nc.Write(join[:10]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cut frame to be kept", func() bool { _, rd, _ := state(); return rd })
	if _, err := nc.Write(join[10:]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readServerFrame(br); err != nil { // the join's reply
		t.Fatal(err)
	}
	if more, rd, _ := state(); rd || !more {
		t.Fatalf("after the whole frame: connMore %v, reader state %v; want the rate-limit debt kept, no reader state", more, rd)
	}

	// The debt drains (one message: 50 ms at the default rate); a sweep
	// then gives the connMore back to the loop.
	waitFor(t, "the sweep to drop the drained state", func() bool {
		more, _, spares := state()
		return !more && spares == 1
	})

	// The next connection's first message takes the spare.
	nc2, br2 := rawClient(t, ts.addr)
	defer nc2.Close()
	readServerFrame(br2)
	if _, err := nc2.Write(maskedText(`{"type":"join","room":"lobby"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, p, err := readServerFrame(br2)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > 0 {
			break
		}
	}
	var spares int
	onLoop(t, lp, func() { spares = len(lp.spareMore) })
	if spares != 0 {
		t.Errorf("the loop keeps %d spare connMore after the next connection's message, want 0 (reused)", spares)
	}
}
