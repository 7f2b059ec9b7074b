package limit

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// MaxRetryAfter bounds the wait a Gate tells a refused client, and so how
// far ahead it hands out return slots.
const MaxRetryAfter = 60 * time.Second

// Gate is a token bucket shared by every loop: the node-wide handshake
// rate (-handshake-rate). It is the generic cell rate algorithm (GCRA):
// one atomic "theoretical arrival time" stands for the bucket, so a
// handshake costs one compare-and-swap and no lock, whichever loop it
// arrives on.
//
// A refused client is told when to come back (Retry-After), and the Gate
// remembers the return slots it handed out: the next refused client gets
// the slot one token later, so the clients of a storm are spread over the
// time the bucket needs to let them all in, instead of all coming back at
// the same second (see Take).
//
// The zero value is a full bucket. Safe for concurrent use; it never
// allocates.
type Gate struct {
	tat      atomic.Int64 // when the bucket will be full again, Unix ns; 0: full
	promised atomic.Int64 // the latest return slot handed out, Unix ns
}

// Take takes a token at now (Unix nanoseconds) from a bucket refilled at
// rate tokens per second and holding burst tokens (burst < 1 counts as
// 1). It reports whether the token was taken; when it was not, wait is
// how long after now the client's return slot lies: the time the next
// token will be free, pushed back by one token for every client refused
// before it whose slot is still ahead, and capped at MaxRetryAfter. A
// refusal takes no token. rate <= 0 disables the gate: every call passes.
func (g *Gate) Take(now int64, rate float64, burst int) (ok bool, wait time.Duration) {
	if rate <= 0 {
		return true, 0
	}
	interval := int64(nanosPerSecond / rate)
	if interval < 1 {
		interval = 1
	}
	tol := int64(max(burst, 1)-1) * interval // how far tat may run ahead of now
	for {
		tat := g.tat.Load()
		t := max(tat, now)
		if t-now > tol {
			break
		}
		if g.tat.CompareAndSwap(tat, t+interval) {
			return true, 0
		}
	}
	// Refused. The next token is free at tat-tol; clients refused earlier
	// hold the slots up to promised.
	for {
		p := g.promised.Load()
		slot := max(p+interval, g.tat.Load()-tol, now)
		if slot-now > int64(MaxRetryAfter) {
			return false, MaxRetryAfter // beyond the horizon: hand out no slot
		}
		if g.promised.CompareAndSwap(p, slot) {
			return false, time.Duration(slot - now)
		}
	}
}

// RetryAfter converts a wait from Take into the seconds of an HTTP
// Retry-After header (RFC 9110 §10.2.3), at least 1. The fraction is
// rounded up or down at random, in proportion to its size (a wait of 2.3 s
// becomes 3 with probability 0.3, else 2): the header has whole seconds
// only, and this keeps the clients of one second from all returning at the
// next whole second while their mean wait stays exact.
func RetryAfter(wait time.Duration) int {
	s := int(wait / time.Second)
	frac := float64(wait%time.Second) / float64(time.Second)
	if rand.Float64() < frac {
		s++
	}
	return max(s, 1)
}
