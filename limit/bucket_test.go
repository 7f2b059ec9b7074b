package limit

import (
	"math"
	"testing"
	"time"
)

// ms is a fake clock value: t0 plus n milliseconds, in Unix nanoseconds.
func ms(n int64) int64 { return t0 + n*int64(time.Millisecond) }

const t0 = int64(1_700_000_000) * int64(time.Second)

type step struct {
	at   int64 // fake time, ms after t0
	cost float64
	want bool
}

func TestBucket(t *testing.T) {
	tests := []struct {
		name        string
		rate, burst float64
		steps       []step
	}{
		{"zero value is full", 10, 3, []step{
			{0, 1, true}, {0, 1, true}, {0, 1, true}, {0, 1, false}, {0, 1, false},
		}},
		{"refills at rate", 10, 3, []step{
			{0, 3, true}, {0, 1, false},
			{99, 1, false}, // 0.99 tokens
			{100, 1, true}, // 1 token after 100 ms at 10/s
			{100, 1, false},
			{300, 2, true},
			{300, 1, false},
		}},
		{"refill capped at burst", 10, 3, []step{
			{0, 3, true},
			{10_000, 3, true}, // 10 s would be 100 tokens, capped at 3
			{10_000, 1, false},
		}},
		{"refused cost takes nothing", 1, 5, []step{
			{0, 4, true}, {0, 2, false}, {0, 1, true}, {0, 1, false},
		}},
		{"cost above burst when full", 100, 10, []step{
			{0, 50, true},    // full: allowed, 40 in debt beyond burst
			{0, 1, false},    // debt 50
			{399, 1, false},  // debt 10.1: 10.1+1 > 10
			{410, 1, true},   // debt 9: allowed
			{1000, 50, true}, // full again after 0.5 s... debt 0 → allowed
		}},
		{"cost above burst not when partly spent", 100, 10, []step{
			{0, 1, true}, {0, 50, false}, {10, 50, true},
		}},
		{"fractional costs", 1, 1, []step{
			{0, 0.5, true}, {0, 0.5, true}, {0, 0.5, false}, {500, 0.5, true},
		}},
		{"clock moving back refills nothing", 10, 2, []step{
			{1000, 2, true}, {0, 1, false}, {50, 1, false}, {100, 1, true},
		}},
		{"disabled", 0, 0, []step{
			{0, 1e9, true}, {0, 1e9, true},
		}},
		{"negative rate disabled", -1, 1, []step{
			{0, 5, true}, {0, 5, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Bucket
			for i, s := range tt.steps {
				if got := b.Allow(ms(s.at), s.cost, tt.rate, tt.burst); got != s.want {
					t.Fatalf("step %d (t=%dms cost=%v): Allow = %v, want %v (tokens %v)", i, s.at, s.cost, got, s.want, b.Tokens(ms(s.at), tt.rate, tt.burst))
				}
			}
		})
	}
}

// TestBucketLongRun: over a long run the bucket lets through rate per
// second plus the burst, whatever the arrival pattern.
func TestBucketLongRun(t *testing.T) {
	const rate, burst = 20, 40
	var b Bucket
	passed := 0
	// 200 messages/s for 60 s, in 10 ms ticks of 2.
	for tick := int64(0); tick < 6000; tick++ {
		for range 2 {
			if b.Allow(ms(tick*10), 1, rate, burst) {
				passed++
			}
		}
	}
	want := rate*60 + burst
	if math.Abs(float64(passed-want)) > 2 {
		t.Fatalf("passed %d of 12000, want about %d", passed, want)
	}
}

func TestBucketTokens(t *testing.T) {
	var b Bucket
	if got := b.Tokens(ms(0), 10, 5); got != 5 {
		t.Fatalf("fresh bucket has %v tokens, want 5", got)
	}
	b.Allow(ms(0), 5, 10, 5)
	if got := b.Tokens(ms(200), 10, 5); math.Abs(got-2) > 1e-6 {
		t.Fatalf("after 200 ms: %v tokens, want 2", got)
	}
	if got := b.Tokens(ms(200), 0, 5); got != 5 {
		t.Fatalf("disabled bucket: %v tokens", got)
	}
}

func TestStrikes(t *testing.T) {
	rule := StrikeRule{Max: 5, Window: time.Second} // drains 5 per second
	tests := []struct {
		name  string
		rule  StrikeRule
		hits  []int64 // ms after t0
		close int     // index of the first hit that must report close, -1 none
	}{
		{"burst of max is tolerated", rule, []int64{0, 0, 0, 0, 0}, -1},
		{"burst of max+1 closes", rule, []int64{0, 0, 0, 0, 0, 0}, 5},
		{"spread out never closes", rule, []int64{0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000, 2200}, -1},
		{"drained between bursts", rule, []int64{0, 0, 0, 0, 0, 1000, 1000, 1000, 1000, 1000}, -1},
		{"steady stream above the rule closes", rule, []int64{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100}, 9},
		{"disabled", StrikeRule{Max: 0, Window: time.Second}, []int64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, -1},
		{"negative disabled", StrikeRule{Max: -1}, []int64{0, 0, 0}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Strikes
			for i, at := range tt.hits {
				got := s.Hit(ms(at), tt.rule)
				want := tt.close >= 0 && i >= tt.close
				if got != want {
					t.Fatalf("hit %d at %dms: close = %v, want %v (level %v)", i, at, got, want, s.Level(ms(at), tt.rule))
				}
			}
		})
	}
}
