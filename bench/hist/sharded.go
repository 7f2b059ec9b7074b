package hist

import "sync"

// shards is the number of independently locked histograms in a Sharded.
// Receivers pick a shard by connection index, so with a few cores the
// chance that two of them wait on one lock is small.
const shards = 16

// Sharded is a Histogram that many goroutines may record into at once.
// The zero value is ready to use. All methods are safe for concurrent use.
type Sharded struct {
	shard [shards]struct {
		mu sync.Mutex
		h  Histogram
		_  [64]byte // keep neighbouring locks off one cache line
	}
}

// Record counts v in the shard chosen by key (any number that spreads the
// callers, such as a connection index).
func (s *Sharded) Record(key int, v uint64) {
	sh := &s.shard[uint(key)%shards]
	sh.mu.Lock()
	sh.h.Record(v)
	sh.mu.Unlock()
}

// Drain adds everything recorded so far to dst and empties s. Values
// recorded while Drain runs land either in dst or in s, never in both.
func (s *Sharded) Drain(dst *Histogram) {
	for i := range s.shard {
		sh := &s.shard[i]
		sh.mu.Lock()
		dst.Merge(&sh.h)
		if sh.h.total != 0 {
			sh.h.Reset()
		}
		sh.mu.Unlock()
	}
}
