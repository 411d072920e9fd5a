package rtpcheck

import (
	"math/bits"
	"time"
)

// Histogram geometry: values below histSub are exact; above, each power of
// two is split into histSub buckets, so a bucket's width is at most 1/16 of
// its lower bound (6.25% relative error). Values of 2^histMaxExp ns (~9 min)
// and more share the last bucket; Max stays exact.
const (
	histSubBits = 4
	histSub     = 1 << histSubBits
	histMaxExp  = 39
	histBuckets = (histMaxExp - histSubBits + 2) * histSub
)

// Histogram is a log-bucketed histogram of durations (HdrHistogram-like, 16
// buckets per power of two of nanoseconds). Record does not allocate. The zero
// value is empty and ready to use. It is not safe for concurrent use.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    uint64
	max    uint64
}

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - 1 // e >= histSubBits
	if e > histMaxExp {
		return histBuckets - 1
	}
	sub := int(v>>(e-histSubBits)) & (histSub - 1)
	return (e-histSubBits+1)*histSub + sub
}

// histUpper returns the largest value that maps to bucket i.
func histUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	e := i/histSub + histSubBits - 1
	sub := uint64(i % histSub)
	lo := (histSub + sub) << (e - histSubBits)
	return lo + 1<<(e-histSubBits) - 1
}

// Record adds one observation; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[histIndex(v)]++
	h.n++
	h.sum += v
	if v > h.max {
		h.max = v
	}
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest observation, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns an upper bound of the q-quantile (0 < q <= 1): the upper
// edge of the bucket holding the observation of rank ceil(q×Count), capped at
// Max. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == histBuckets-1 {
				break // the overflow bucket has no upper edge
			}
			return time.Duration(min(histUpper(i), h.max))
		}
	}
	return time.Duration(h.max)
}

// Reset empties the histogram.
func (h *Histogram) Reset() { *h = Histogram{} }

// LatencySummary is a Histogram's summary, in nanoseconds for JSON.
type LatencySummary struct {
	Count uint64        `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary returns count, mean, p50, p99, p99.9 and max.
func (h *Histogram) Summary() LatencySummary {
	s := LatencySummary{Count: h.n, Max: time.Duration(h.max)}
	if h.n == 0 {
		return s
	}
	s.Mean = time.Duration(h.sum / h.n)
	s.P50 = h.Quantile(0.50)
	s.P99 = h.Quantile(0.99)
	s.P999 = h.Quantile(0.999)
	return s
}
