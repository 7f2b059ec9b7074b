package hist

import (
	"encoding/json"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
)

func TestIndexBounds(t *testing.T) {
	tests := []struct {
		name   string
		v      uint64
		index  int
		lo, hi uint64
	}{
		{"zero", 0, 0, 0, 0},
		{"exact small", 100, 100, 100, 100},
		{"last exact", 255, 255, 255, 255},
		{"first shared bucket", 256, 256, 256, 257},
		{"second of first shared bucket", 257, 256, 256, 257},
		{"511", 511, 383, 510, 511},
		{"512", 512, 384, 512, 515},
		{"one ms", 1_000_000, Index(1_000_000), 999_424, 1_003_519},
		{"clamped", MaxValue + 12345, NumBuckets - 1, MaxValue - (1 << maxExp) + 1, MaxValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Index(tt.v); got != tt.index {
				t.Fatalf("Index(%d) = %d, want %d", tt.v, got, tt.index)
			}
			lo, hi := Bounds(tt.index)
			if lo != tt.lo || hi != tt.hi {
				t.Fatalf("Bounds(%d) = [%d,%d], want [%d,%d]", tt.index, lo, hi, tt.lo, tt.hi)
			}
		})
	}
}

// Every bucket's bounds map back to the bucket, and buckets tile the value
// range with no gap and no overlap.
func TestBucketsTile(t *testing.T) {
	var next uint64
	for i := 0; i < NumBuckets; i++ {
		lo, hi := Bounds(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if Index(lo) != i || Index(hi) != i {
			t.Fatalf("bucket %d: Index(lo)=%d Index(hi)=%d", i, Index(lo), Index(hi))
		}
		if lo >= 2*SubBuckets && float64(hi-lo+1)/float64(lo) > 1.0/SubBuckets {
			t.Fatalf("bucket %d too wide: [%d,%d]", i, lo, hi)
		}
		next = hi + 1
	}
	if next-1 != MaxValue {
		t.Fatalf("last bucket ends at %d, want %d", next-1, MaxValue)
	}
}

func TestQuantile(t *testing.T) {
	uniform := func(n uint64) []uint64 {
		v := make([]uint64, n)
		for i := range v {
			v[i] = uint64(i) + 1
		}
		return v
	}
	tests := []struct {
		name   string
		values []uint64
		q      float64
		want   uint64
	}{
		{"empty", nil, 0.5, 0},
		{"single", []uint64{42}, 0.99, 42},
		{"q0 is min", []uint64{7, 9, 200}, 0, 7},
		{"q1 is max", []uint64{7, 9, 200}, 1, 200},
		{"median of 1..100", uniform(100), 0.5, 50},
		{"p99 of 1..100", uniform(100), 0.99, 99},
		{"p90 of 1..10", uniform(10), 0.9, 9},
		{"capped at max", []uint64{1000, 1000, 1000}, 0.5, 1000},
		{"p50 of 1..1000 in shared buckets", uniform(1000), 0.5, 501},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Fatalf("Quantile(%v) = %d, want %d", tt.q, got, tt.want)
			}
		})
	}
}

// Quantiles stay within one bucket width above the exact order statistic.
func TestQuantileError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	values := make([]uint64, 20000)
	var h Histogram
	for i := range values {
		values[i] = uint64(r.ExpFloat64() * 2e6)
		h.Record(values[i])
	}
	sort.Slice(values, func(i, j int) bool { return values[i] < values[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := values[int(q*float64(len(values))+0.999999)-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/SubBuckets+1 {
			t.Errorf("q=%v: got %d, exact %d", q, got, exact)
		}
	}
	if h.Min() != values[0] || h.Max() != values[len(values)-1] {
		t.Errorf("min/max = %d/%d, want %d/%d", h.Min(), h.Max(), values[0], values[len(values)-1])
	}
}

func TestMergeEqualsRecordingAll(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all, a, b, merged Histogram
	for i := 0; i < 5000; i++ {
		v := r.Uint64N(1 << 30)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	merged.Merge(&a)
	merged.Merge(&b)
	merged.Merge(&Histogram{})
	if merged != all {
		t.Fatal("merged histogram differs from the one that recorded every value")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		values []uint64
	}{
		{"empty", nil},
		{"small", []uint64{1, 2, 2, 3}},
		{"wide", []uint64{5, 5_000, 5_000_000, 5_000_000_000, MaxValue + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			b, err := json.Marshal(&h)
			if err != nil {
				t.Fatal(err)
			}
			var back Histogram
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back != h {
				t.Fatalf("round trip changed the histogram: %s", b)
			}
		})
	}
}

func TestUnmarshalRejectsBadBucket(t *testing.T) {
	var h Histogram
	err := json.Unmarshal([]byte(`{"b":[[999999,1]]}`), &h)
	if err != ErrBadBucket {
		t.Fatalf("err = %v, want ErrBadBucket", err)
	}
}

func TestShardedConcurrent(t *testing.T) {
	var s Sharded
	var wg sync.WaitGroup
	const goroutines, each = 8, 1000
	drained := make(chan Histogram, 1)
	stop := make(chan struct{})
	go func() {
		// Drain concurrently with recording: nothing may be lost or doubled.
		var acc Histogram
		for {
			select {
			case <-stop:
				s.Drain(&acc)
				drained <- acc
				return
			default:
				s.Drain(&acc)
			}
		}
	}()
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				s.Record(g, uint64(i))
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	acc := <-drained
	if acc.Count() != goroutines*each {
		t.Fatalf("count = %d, want %d", acc.Count(), goroutines*each)
	}
	if acc.Max() != each-1 {
		t.Fatalf("max = %d", acc.Max())
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.Record(uint64(i) * 7919)
	}
}

func BenchmarkShardedRecord(b *testing.B) {
	var s Sharded
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Record(i, uint64(i)*7919)
			i++
		}
	})
}
