package limit

import "time"

// StrikeRule says when rate-limit violations amount to sustained abuse:
// more than Max violations within Window, counted with a leaky counter
// that drains Max per Window (so Max+1 violations in a burst, or a steady
// stream faster than Max per Window, trip it, while a client that is
// refused now and then never does).
type StrikeRule struct {
	// Max is the number of violations tolerated within Window; <= 0
	// means never close.
	Max int
	// Window is the period over which Max violations are tolerated.
	Window time.Duration
}

// drainRate is the rule's leak in violations per second.
func (r StrikeRule) drainRate() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Max) * float64(time.Second) / float64(r.Window)
}

// Strikes counts a connection's recent rate-limit violations (16 bytes).
// The zero value has none. It is not safe for concurrent use.
type Strikes struct {
	level float32 // violations not drained yet
	last  int64   // time of the last hit, Unix nanoseconds
}

// Hit records one violation at now and reports whether the connection
// should now be closed for sustained abuse (RFC 6455 close code 1008).
// Once it has reported true it keeps doing so.
func (s *Strikes) Hit(now int64, r StrikeRule) (close bool) {
	level := refill(s.level, now-s.last, r.drainRate()) + 1
	s.level = float32(level)
	s.last = now
	return r.Max > 0 && level > float64(r.Max)
}

// Level returns the violations not yet drained at now.
func (s *Strikes) Level(now int64, r StrikeRule) float64 {
	return refill(s.level, now-s.last, r.drainRate())
}
