package limit

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGateBurstThenRate(t *testing.T) {
	var g Gate
	const rate, burst = 100, 5 // a token every 10 ms
	for i := range burst {
		if ok, _ := g.Take(ms(0), rate, burst); !ok {
			t.Fatalf("take %d of the burst refused", i)
		}
	}
	ok, wait := g.Take(ms(0), rate, burst)
	if ok {
		t.Fatal("take past the burst passed")
	}
	if wait != 10*time.Millisecond {
		t.Fatalf("first refused client waits %v, want 10ms (the next token)", wait)
	}
	if ok, _ := g.Take(ms(9), rate, burst); ok {
		t.Fatal("passed before the next token")
	}
	if ok, _ := g.Take(ms(10), rate, burst); !ok {
		t.Fatal("refused once a token was free")
	}
	// Long idle: refilled to the burst, not beyond.
	n := 0
	for range 3 * burst {
		if ok, _ := g.Take(ms(10_000), rate, burst); ok {
			n++
		}
	}
	if n != burst {
		t.Fatalf("after a long idle %d passed at once, want the burst %d", n, burst)
	}
}

// TestGateSpreadsRefused: the clients refused at one instant get return
// slots one token apart, so they come back at the rate the gate lets
// through, not all together.
func TestGateSpreadsRefused(t *testing.T) {
	var g Gate
	const rate, burst = 10, 1 // a token every 100 ms
	if ok, _ := g.Take(ms(0), rate, burst); !ok {
		t.Fatal("first take refused")
	}
	for i := 1; i <= 20; i++ {
		ok, wait := g.Take(ms(0), rate, burst)
		if ok {
			t.Fatalf("client %d passed", i)
		}
		if want := time.Duration(i) * 100 * time.Millisecond; wait != want {
			t.Fatalf("refused client %d waits %v, want %v", i, wait, want)
		}
	}
	// A token is free again at 1 s (nobody came back for it): a newcomer
	// takes it; the next refusal queues behind the slots handed out.
	if ok, _ := g.Take(ms(1000), rate, burst); !ok {
		t.Fatal("refused with a token free")
	}
	if _, wait := g.Take(ms(1000), rate, burst); wait != 1100*time.Millisecond {
		t.Fatalf("client refused 1 s later waits %v, want 1.1s (slot 2.1 s)", wait)
	}
}

func TestGateHorizon(t *testing.T) {
	var g Gate
	const rate, burst = 1, 1
	g.Take(ms(0), rate, burst)
	var last time.Duration
	for range 200 {
		_, last = g.Take(ms(0), rate, burst)
	}
	if last != MaxRetryAfter {
		t.Fatalf("wait %v past the horizon, want MaxRetryAfter", last)
	}
	if p := g.promised.Load(); p-ms(0) > int64(MaxRetryAfter) {
		t.Fatalf("promised slot %v ahead, beyond the horizon", time.Duration(p-ms(0)))
	}
}

func TestGateDisabled(t *testing.T) {
	var g Gate
	for range 1000 {
		if ok, _ := g.Take(ms(0), 0, 0); !ok {
			t.Fatal("disabled gate refused")
		}
	}
}

// TestGateConcurrent: loops taking at once never let more than the burst
// through at one instant.
func TestGateConcurrent(t *testing.T) {
	var g Gate
	const burst = 1000
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if ok, _ := g.Take(ms(0), 10, burst); ok {
					passed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != burst {
		t.Fatalf("%d passed of 8000 at one instant, want the burst %d", n, burst)
	}
}

func TestRetryAfter(t *testing.T) {
	if got := RetryAfter(0); got != 1 {
		t.Fatalf("RetryAfter(0) = %d, want at least 1", got)
	}
	if got := RetryAfter(3 * time.Second); got != 3 {
		t.Fatalf("RetryAfter(3s) = %d", got)
	}
	// 2.3 s: 2 or 3, 3 about 30% of the time.
	threes := 0
	const n = 10000
	for range n {
		switch RetryAfter(2300 * time.Millisecond) {
		case 2:
		case 3:
			threes++
		default:
			t.Fatal("RetryAfter(2.3s) not 2 or 3")
		}
	}
	if f := float64(threes) / n; math.Abs(f-0.3) > 0.03 {
		t.Fatalf("RetryAfter(2.3s) rounded up %.2f of the time, want 0.30", f)
	}
}

func TestGateAllocs(t *testing.T) {
	var g Gate
	now := ms(0)
	if n := testing.AllocsPerRun(1000, func() {
		now += 1000
		g.Take(now, 1000, 10)
		RetryAfter(1500 * time.Millisecond)
	}); n != 0 {
		t.Fatalf("Gate.Take allocates %v times", n)
	}
}

func BenchmarkGateTake(b *testing.B) {
	var g Gate
	now := ms(0)
	b.ReportAllocs()
	for b.Loop() {
		now += 1000
		g.Take(now, 1e6, 100)
	}
}
