package limit

import (
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	want := Config{
		MaxConnections:        100_000,
		MaxConnectionsPerIP:   1_000,
		MessagesPerSecond:     20,
		MessageBurst:          40,
		BytesPerSecond:        256 << 10,
		BytesBurst:            512 << 10,
		MaxRoomsPerConnection: 100,
		Strikes:               StrikeRule{Max: 100, Window: 10 * time.Second},
	}
	if c != want {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}
	c = Config{MessagesPerSecond: 100, BytesPerSecond: 1000, MaxConnections: -1, Strikes: StrikeRule{Max: -1}}.WithDefaults()
	if c.MessageBurst != 200 || c.BytesBurst != 2000 || c.MaxConnections != -1 || c.Strikes.Max != -1 {
		t.Fatalf("derived defaults = %+v", c)
	}
	if c := (Config{MessagesPerSecond: 0.1}).WithDefaults(); c.MessageBurst != 1 {
		t.Fatalf("burst for 0.1/s = %d, want 1", c.MessageBurst)
	}
}

type msg struct {
	at   int64 // ms after t0
	size int
	want Verdict
}

func TestConnMessage(t *testing.T) {
	small := Config{MessagesPerSecond: 10, MessageBurst: 3, BytesPerSecond: 100, BytesBurst: 200, Strikes: StrikeRule{Max: 3, Window: time.Second}}
	tests := []struct {
		name string
		cfg  Config
		msgs []msg
	}{
		{"burst then limited then abuse", small, []msg{
			{0, 1, Pass}, {0, 1, Pass}, {0, 1, Pass},
			{0, 1, Limited}, {0, 1, Limited}, {0, 1, Limited},
			{0, 1, Abuse}, {0, 1, Abuse},
		}},
		{"backing off recovers", small, []msg{
			{0, 1, Pass}, {0, 1, Pass}, {0, 1, Pass},
			{0, 1, Limited}, {0, 1, Limited},
			{1000, 1, Pass}, {1000, 1, Pass}, {1000, 1, Pass}, // strikes drained 3
			{1000, 1, Limited}, {1000, 1, Limited}, {1000, 1, Limited}, {1000, 1, Abuse},
		}},
		{"bytes limit", small, []msg{
			{0, 150, Pass}, {0, 100, Limited}, {0, 50, Pass}, {0, 1, Limited},
			{500, 50, Pass}, // 50 bytes refilled
		}},
		{"large message when full", small, []msg{
			{0, 1000, Pass}, // bucket full: allowed, 800 beyond the burst
			{0, 1, Limited},
			{8000, 1, Limited}, // debt 1000-800 = 200; 200+1 > 200
			{8100, 1, Pass},
		}},
		{"refused message costs no bytes", small, []msg{
			{0, 1, Pass}, {0, 1, Pass}, {0, 1, Pass}, {0, 150, Limited}, {100, 150, Pass},
		}},
		{"unlimited", Config{MessagesPerSecond: -1, BytesPerSecond: -1}, []msg{
			{0, 1 << 20, Pass}, {0, 1 << 20, Pass}, {0, 1 << 20, Pass}, {0, 1 << 20, Pass},
		}},
		{"never close", Config{MessagesPerSecond: 1, MessageBurst: 1, Strikes: StrikeRule{Max: -1}}, []msg{
			{0, 1, Pass}, {0, 1, Limited}, {0, 1, Limited}, {0, 1, Limited}, {0, 1, Limited}, {1000, 1, Pass},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Conn
			cfg := tt.cfg.WithDefaults()
			for i, m := range tt.msgs {
				if got := c.Message(ms(m.at), m.size, &cfg); got != m.want {
					t.Fatalf("message %d (t=%dms size=%d): %v, want %v", i, m.at, m.size, got, m.want)
				}
			}
		})
	}
}

// TestConnDefaultsFlood: with the defaults, a client flooding 1,000
// messages a second gets its burst, then rate_limited errors, and is closed
// after a bounded number of refusals; one that sends at the allowed rate is
// never refused.
func TestConnDefaultsFlood(t *testing.T) {
	var zero Config // Message reads zero fields as defaults
	var c Conn
	passed, limited := 0, 0
	for i := range 1000 {
		v := c.Message(ms(int64(i)), 100, &zero)
		switch v {
		case Pass:
			passed++
		case Limited:
			limited++
		case Abuse:
			if passed > 45 || limited < DefaultStrikeMax || limited > DefaultStrikeMax+5 {
				t.Fatalf("closed after %d passed, %d limited", passed, limited)
			}
			t.Logf("flood closed after %d ms: %d passed, %d limited", i, passed, limited)
			return
		}
	}
	t.Fatal("a 1,000 msg/s flood was never closed")
}

func TestConnSteadyClient(t *testing.T) {
	cfg := Config{}.WithDefaults()
	var c Conn
	// 20 messages/s of 4 KiB for ten minutes, on a coarse 750 ms clock
	// (netpoll's tick with default timeouts): all 15 messages of a tick
	// arrive with the same now.
	for tick := range int64(800) {
		for range 15 {
			if v := c.Message(ms(tick*750), 4<<10, &cfg); v != Pass {
				t.Fatalf("tick %d: %v", tick, v)
			}
		}
	}
}

func TestVerdictString(t *testing.T) {
	for v, s := range map[Verdict]string{Pass: "pass", Limited: "limited", Abuse: "abuse", 9: "invalid"} {
		if v.String() != s {
			t.Errorf("%d.String() = %q", v, v.String())
		}
	}
}

func TestConnSize(t *testing.T) {
	if n := sizeofConn(); n != 24 {
		t.Fatalf("Conn is %d bytes, want 24", n)
	}
}

func TestConnDrained(t *testing.T) {
	cfg := Config{}.WithDefaults()
	var c Conn
	if !c.Drained(t0, &cfg) {
		t.Fatal("a fresh Conn is not drained")
	}
	c.Message(t0, 1000, &cfg)
	if c.Drained(t0, &cfg) {
		t.Fatal("drained right after a message")
	}
	if !c.Drained(t0+int64(time.Minute), &cfg) {
		t.Fatal("not drained a minute later")
	}
}

// A flood at a small configured burst is cut after two and a half bursts
// of refusals, not after the default 100: the example of -rate-messages 5
// -rate-burst 5 closes within 50 messages.
func TestStrikesScaleWithBurst(t *testing.T) {
	cfg := Config{MessagesPerSecond: 5, MessageBurst: 5, BytesPerSecond: -1}
	var c Conn
	now := int64(1)
	for i := 1; i <= 50; i++ {
		if c.Message(now, 10, &cfg) == Abuse {
			if i > 5+30+1 {
				t.Fatalf("closed at message %d, want by %d", i, 5+30+1)
			}
			return
		}
	}
	t.Fatal("50 messages at once never tripped the strike rule")
}

func TestStrikesDefaultUnchanged(t *testing.T) {
	if got := (Config{}).WithDefaults().Strikes.Max; got != DefaultStrikeMax {
		t.Fatalf("default Strikes.Max = %d, want %d", got, DefaultStrikeMax)
	}
	if got := (Config{MessagesPerSecond: -1}).WithDefaults().Strikes.Max; got != DefaultStrikeMax {
		t.Fatalf("Strikes.Max with messages unlimited = %d, want %d", got, DefaultStrikeMax)
	}
}
