//go:build linux

package main

import (
	"math/bits"
	"time"
)

// hist is an HDR-like log-linear histogram of durations in nanoseconds: 32
// linear sub-buckets per power of two, so any recorded value is reported within
// about 3%. Recording is two shifts and an increment; it does not allocate.
type hist struct {
	counts [histSlots]uint64
	total  uint64
	max    uint64
}

const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histSlots   = 64 * histSub
)

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - histSubBits
	return (shift+1)*histSub + int(v>>uint(shift)) - histSub
}

// histValue is the midpoint of slot i.
func histValue(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := uint(i/histSub - 1)
	mant := uint64(i%histSub + histSub)
	return mant<<shift + (uint64(1)<<shift)/2
}

func (h *hist) record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[histIndex(v)]++
	h.total++
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value at quantile q (0..1), 0 for an empty histogram.
func (h *hist) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := histValue(i)
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
