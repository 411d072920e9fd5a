//go:build linux

package netio

import "github.com/ringwire/ringwire/runtime"

// StatsOf sums netio's counters over rt's loops. Any goroutine; the counters
// are read atomically but not as one snapshot.
//
// Stats.Rearms counts every multishot receive re-armed after its final CQE:
// after a data CQE without IORING_CQE_F_MORE, and after one that ended with
// ENOBUFS, once buffers were back (each Starved receive is re-armed once,
// unless its socket closed or paused while it waited).
//
// StatsOf(nil) is for the net face's sockets opened without a runtime.
func StatsOf(rt *runtime.Runtime) Stats {
	var s Stats
	if rt == nil {
		s.add(&defaultRT.stats)
		return s
	}
	for _, l := range rt.Loops() {
		if ls := loopStateOf(l); ls != nil {
			s.add(ls.stats)
		}
	}
	return s
}

func (s *Stats) add(c *loopCounters) {
	s.ZCSends += c.zcSends.Load()
	s.ZCAbandoned += c.zcAbandoned.Load()
	s.PlainSends += c.plainSends.Load()
	s.GatheredSends += c.gathered.Load()
	s.Rearms += c.rearms.Load()
	s.Starved += c.starved.Load()
	s.Accepted += c.accepted.Load()
	s.AcceptErrors += c.acceptErrs.Load()
	s.Truncated += c.truncated.Load()
	s.Spliced += c.spliced.Load()
	s.MirrorReads += c.mirrorReads.Load()
}
