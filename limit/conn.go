package limit

// Verdict is what to do with one inbound message.
type Verdict uint8

const (
	// Pass: handle the message.
	Pass Verdict = iota
	// Limited: drop the message and tell the client ("rate_limited"); the
	// connection stays open.
	Limited
	// Abuse: sustained flooding; close the connection with 1008 (policy
	// violation, RFC 6455 §7.4.1).
	Abuse
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Limited:
		return "limited"
	case Abuse:
		return "abuse"
	}
	return "invalid"
}

// Conn is the rate-limit state of one connection: a message bucket, a
// byte bucket and a strike counter sharing one timestamp, 24 bytes in all.
// The zero value is a fresh connection (full buckets, no strikes). It is
// touched only on the connection's own loop and is not safe for concurrent
// use.
type Conn struct {
	msgs    float32 // message bucket debt
	bytes   float32 // byte bucket debt
	strikes float32 // strike level
	last    int64   // Unix nanoseconds of the last message
}

// Message accounts one inbound message of size payload bytes at now (Unix
// nanoseconds) against cfg and says what to do with it. A refused message
// costs nothing from either bucket and counts one strike. cfg is normally
// the result of Config.WithDefaults; zero fields are read as their
// defaults anyway. It does not allocate.
func (c *Conn) Message(now int64, size int, cfg *Config) Verdict {
	mrate, mburst := msgRule(cfg)
	brate, bburst := byteRule(cfg)
	rule := strikeRule(cfg)
	elapsed := now - c.last
	c.last = now
	msgs := refill(c.msgs, elapsed, mrate)
	bytes := refill(c.bytes, elapsed, brate)
	strikes := refill(c.strikes, elapsed, rule.drainRate())
	cost := float64(size)
	okMsgs := mrate <= 0 || msgs == 0 || msgs+1 <= mburst+slack(mburst)
	okBytes := brate <= 0 || bytes == 0 || bytes+cost <= bburst+slack(bburst)
	if okMsgs && okBytes {
		if mrate > 0 {
			msgs++
		}
		if brate > 0 {
			bytes += cost
		}
		c.msgs, c.bytes, c.strikes = float32(msgs), float32(bytes), float32(strikes)
		return Pass
	}
	strikes++
	c.msgs, c.bytes, c.strikes = float32(msgs), float32(bytes), float32(strikes)
	if rule.Max > 0 && strikes > float64(rule.Max) {
		return Abuse
	}
	return Limited
}

func msgRule(cfg *Config) (rate, burst float64) {
	rate = cfg.MessagesPerSecond
	if rate == 0 {
		rate = DefaultMessagesPerSecond
	}
	b := cfg.MessageBurst
	if b == 0 {
		b = max(1, int(2*rate))
	}
	return rate, float64(b)
}

func byteRule(cfg *Config) (rate, burst float64) {
	r := cfg.BytesPerSecond
	if r == 0 {
		r = DefaultBytesPerSecond
	}
	b := cfg.BytesBurst
	if b == 0 {
		b = max(1, 2*r)
	}
	return float64(r), float64(b)
}

func strikeRule(cfg *Config) StrikeRule {
	r := cfg.Strikes
	if r.Max == 0 {
		rate, burst := msgRule(cfg)
		if rate < 0 {
			burst = -1 // messages unlimited: only bytes strike
		}
		r.Max = defaultStrikeMax(int(burst))
	}
	if r.Window <= 0 {
		r.Window = DefaultStrikeWindow
	}
	return r
}

// Drained reports whether, at now, c is back to the state of a fresh
// connection: both buckets full and no strikes. Its holder may then drop
// it and start again from the zero value, so an idle connection need not
// keep rate-limit state at all.
func (c *Conn) Drained(now int64, cfg *Config) bool {
	elapsed := now - c.last
	mrate, _ := msgRule(cfg)
	brate, _ := byteRule(cfg)
	rule := strikeRule(cfg)
	return refill(c.msgs, elapsed, mrate) == 0 &&
		refill(c.bytes, elapsed, brate) == 0 &&
		refill(c.strikes, elapsed, rule.drainRate()) == 0
}
