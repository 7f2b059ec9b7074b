package limit

// nanosPerSecond converts rates per second to rates per nanosecond.
const nanosPerSecond = 1e9

// Bucket is a token bucket small enough to embed in every connection (16
// bytes). The zero value is a full bucket. It is not safe for concurrent
// use: a connection's buckets are touched only on its own loop.
type Bucket struct {
	debt float32 // tokens spent and not refilled yet; 0 = full
	last int64   // time of the last call, Unix nanoseconds
}

// Allow refills the bucket for the time since the previous call, at rate
// tokens per second up to burst, and takes cost tokens if it can. It
// reports whether the cost was taken; a refused cost takes nothing.
//
// A cost larger than burst is allowed when the bucket is full, and leaves
// it in debt beyond burst (see the package doc). rate <= 0 disables the
// bucket: every cost is allowed. now is Unix nanoseconds; a now earlier
// than the previous call refills nothing.
func (b *Bucket) Allow(now int64, cost, rate, burst float64) bool {
	if rate <= 0 {
		return true
	}
	debt := refill(b.debt, now-b.last, rate)
	b.last = now
	ok := debt == 0 || debt+cost <= burst+slack(burst)
	if ok {
		debt += cost
	}
	b.debt = float32(debt)
	return ok
}

// Tokens returns the tokens available at now (negative while in debt
// beyond burst), without changing the bucket.
func (b *Bucket) Tokens(now int64, rate, burst float64) float64 {
	if rate <= 0 {
		return burst
	}
	return burst - refill(b.debt, now-b.last, rate)
}

// refill returns debt reduced by elapsed nanoseconds at rate per second,
// never below zero. A negative elapsed (the clock moved back) refills
// nothing, and the caller then stores the earlier time, so a clock step
// backwards delays refills by at most the step, never for ever.
func refill(debt float32, elapsed int64, rate float64) float64 {
	d := float64(debt)
	if d == 0 || elapsed <= 0 || rate <= 0 {
		return d
	}
	d -= float64(elapsed) * rate / nanosPerSecond
	if d < 0 {
		return 0
	}
	return d
}

// slack absorbs float32 rounding of the stored debt, so that a cost that
// fits exactly is not refused by a rounding error (a millionth of the
// burst, far below one message or one byte of any sensible burst).
func slack(burst float64) float64 { return burst * 1e-6 }
