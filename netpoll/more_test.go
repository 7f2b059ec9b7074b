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
	var spare *connMore
	waitFor(t, "the sweep to drop the drained state", func() bool {
		onLoop(t, lp, func() {
			if c.more == nil && len(lp.spareMore) == 1 {
				spare = lp.spareMore[0]
				lp.moreTaken = true // the next sweep keeps it (trimMore)
			}
		})
		return spare != nil
	})

	// The next connection's first message takes the spare.
	nc2, br2 := rawClient(t, ts.addr)
	defer nc2.Close()
	readServerFrame(br2)
	if _, err := nc2.Write(maskedText(`{"type":"join","room":"lobby"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readServerFrame(br2); err != nil {
		t.Fatal(err)
	}
	onLoop(t, lp, func() {
		for i := range lp.conns.len() {
			c2 := lp.conns.at(i)
			if c2 == c {
				continue
			}
			// Its debt may have drained already, and the connMore gone
			// back: either way, the same one.
			if c2.more != spare && (c2.more != nil || len(lp.spareMore) != 1 || lp.spareMore[0] != spare) {
				t.Errorf("the next connection's first message took a new connMore, not the spare")
			}
		}
	})
}

// TestSpareMoreTrimmed: the loop's spare connMore values stay while
// connections keep taking them, and go at the first sweep that saw none
// taken.
func TestSpareMoreTrimmed(t *testing.T) {
	lp := &loop{}
	for range maxSpareMore + 10 {
		lp.putMore(new(connMore))
	}
	if len(lp.spareMore) != maxSpareMore {
		t.Fatalf("%d spares, want at most %d", len(lp.spareMore), maxSpareMore)
	}
	lp.getMore()
	lp.trimMore() // one was taken: all stay
	if len(lp.spareMore) != maxSpareMore-1 {
		t.Fatalf("after a sweep that saw one taken: %d spares, want %d", len(lp.spareMore), maxSpareMore-1)
	}
	lp.trimMore()
	if lp.spareMore != nil {
		t.Fatalf("after a sweep that saw none taken: %d spares (list of %d), want none", len(lp.spareMore), cap(lp.spareMore))
	}
}
