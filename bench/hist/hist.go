// Package hist is a fixed-size, mergeable latency histogram with
// log-linear buckets, in the spirit of HDR histograms.
//
// Values are unsigned integers (the load tool records nanoseconds). Values
// below 2*SubBuckets are counted exactly; above that, each power-of-two
// range is split into SubBuckets equal buckets, so a recorded value and the
// value reported for it differ by less than 1/SubBuckets (0.79%). The bucket
// layout is fixed, so histograms recorded in different processes merge by
// adding counts, and a histogram travels between processes as a sparse list
// of (bucket, count) pairs.
//
//	var h hist.Histogram
//	h.Record(uint64(latency))
//	p99 := h.Quantile(0.99)
package hist

import (
	"encoding/json"
	"errors"
	"math"
	"math/bits"
)

const (
	// subBits is log2(SubBuckets).
	subBits = 7
	// SubBuckets is the number of buckets per power-of-two range.
	SubBuckets = 1 << subBits
	// maxExp bounds the power-of-two ranges: values of 2^(maxExp+subBits+1)
	// or more (about 6.4 days in nanoseconds) are clamped into the last bucket.
	maxExp = 41
	// NumBuckets is the number of buckets of every Histogram.
	NumBuckets = 2*SubBuckets + maxExp*SubBuckets
	// MaxValue is the largest value recorded without clamping.
	MaxValue = uint64(1)<<(maxExp+subBits+1) - 1
)

// ErrBadBucket is returned by UnmarshalJSON for a bucket index out of range.
var ErrBadBucket = errors.New("hist: bucket index out of range")

// Histogram counts values in NumBuckets log-linear buckets. The zero value
// is an empty histogram ready to use. It is not safe for concurrent use:
// see Sharded for a concurrent recorder.
type Histogram struct {
	counts [NumBuckets]uint64
	total  uint64
	min    uint64
	max    uint64
	sum    float64
}

// Index returns the bucket that counts v.
func Index(v uint64) int {
	if v > MaxValue {
		v = MaxValue
	}
	if v < 2*SubBuckets {
		return int(v)
	}
	// e >= 1 is how far v must be shifted right to leave subBits+1
	// significant bits, so the top bit of m is always set.
	e := bits.Len64(v) - (subBits + 1)
	m := v >> uint(e)
	return 2*SubBuckets + (e-1)*SubBuckets + int(m-SubBuckets)
}

// Bounds returns the smallest and largest value counted by bucket i.
func Bounds(i int) (lo, hi uint64) {
	if i < 2*SubBuckets {
		return uint64(i), uint64(i)
	}
	j := i - 2*SubBuckets
	e := uint(j/SubBuckets + 1)
	m := uint64(j%SubBuckets + SubBuckets)
	lo = m << e
	hi = lo + (uint64(1) << e) - 1
	return lo, hi
}

// Record counts one value.
func (h *Histogram) Record(v uint64) {
	h.RecordN(v, 1)
}

// RecordN counts n occurrences of v.
func (h *Histogram) RecordN(v, n uint64) {
	if n == 0 {
		return
	}
	h.counts[Index(v)] += n
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total += n
	h.sum += float64(v) * float64(n)
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Min returns the smallest recorded value, exactly, or 0 when empty.
func (h *Histogram) Min() uint64 { return h.min }

// Max returns the largest recorded value, exactly, or 0 when empty.
func (h *Histogram) Max() uint64 { return h.max }

// Mean returns the arithmetic mean of the recorded values, or 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q (0 <= q <= 1): the largest value
// of the bucket holding the ceil(q*Count())-th smallest value, capped at
// Max. It never under-reports by more than the bucket width. Quantile(0)
// is Min and Quantile(1) is Max; an empty histogram yields 0.
func (h *Histogram) Quantile(q float64) uint64 {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := Bounds(i)
			return min(max(hi, h.min), h.max)
		}
	}
	return h.max
}

// Merge adds the counts of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// wire is the JSON form: only non-empty buckets, as [index, count] pairs.
type wire struct {
	Buckets [][2]uint64 `json:"b,omitempty"`
	Min     uint64      `json:"min,omitempty"`
	Max     uint64      `json:"max,omitempty"`
	Sum     float64     `json:"sum,omitempty"`
}

// MarshalJSON encodes h sparsely, so an empty or narrow histogram is small.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	w := wire{Min: h.min, Max: h.max, Sum: h.sum}
	for i, c := range h.counts {
		if c != 0 {
			w.Buckets = append(w.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON replaces h with the histogram encoded by MarshalJSON.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	h.Reset()
	for _, p := range w.Buckets {
		if p[0] >= NumBuckets {
			return ErrBadBucket
		}
		h.counts[p[0]] += p[1]
		h.total += p[1]
	}
	if h.total != 0 {
		h.min, h.max, h.sum = w.Min, w.Max, w.Sum
	}
	return nil
}
