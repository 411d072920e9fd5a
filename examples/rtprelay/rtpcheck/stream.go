package rtpcheck

import (
	"strconv"
	"sync"
	"time"
)

// RFC 3550 A.1 constants.
const (
	maxDropout  = 3000
	maxMisorder = 100
	seqMod      = 1 << 16
)

// dupWindow is the number of recent extended sequence numbers remembered for
// duplicate detection; it exceeds maxMisorder, the furthest back a packet is
// still accepted as reordered, so every accepted packet is inside it.
const dupWindow = 256

// ClockRate returns the RTP clock rate in Hz of a static payload type of the
// RTP/AVP profile (RFC 3551 §6, Table 4 and 5), or 0 for dynamic and
// unassigned types.
func ClockRate(pt uint8) uint32 {
	switch pt {
	case 0, 3, 4, 5, 7, 8, 9, 12, 13, 15, 18: // PCMU GSM G723 DVI4 LPC PCMA G722 QCELP CN G728 G729
		return 8000
	case 6: // DVI4/16000
		return 16000
	case 10, 11: // L16
		return 44100
	case 16: // DVI4/11025
		return 11025
	case 17: // DVI4/22050
		return 22050
	case 14, 25, 26, 28, 31, 32, 33, 34: // MPA CelB JPEG nv H261 MPV MP2T H263
		return 90000
	}
	return 0
}

// StreamConfig configures a Stream. A nil *StreamConfig means defaults.
type StreamConfig struct {
	// ClockRate is the RTP clock rate in Hz used for interarrival jitter. Zero
	// means ClockRate(payload type) of the first packet (8000 for PCMU and
	// PCMA); if that is zero too, jitter is not computed.
	ClockRate uint32
}

// Stream accumulates the statistics of one direction of one relayed stream:
// datagrams and bytes in and out, drops by Reason, and for RTP the RFC 3550
// receiver statistics of its current SSRC (extended highest sequence number
// with wrap counting, expected, received, lost, reordered, duplicates,
// interarrival jitter) and the relay's added latency.
//
// One goroutine (or event-loop thread) calls Receive, Sent and Drop; any
// goroutine may call Snapshot. The updates take a mutex the writer owns
// nearly always, so it costs an uncontended lock; nothing allocates.
type Stream struct {
	mu sync.Mutex

	clockCfg uint32

	packetsIn, bytesIn   uint64
	rtcpIn, rtcpBytesIn  uint64
	packetsOut, bytesOut uint64
	drops                Drops

	// RFC 3550 A.1 source state; extended numbers carry cycles in the high
	// bits and start at seqMod so that a packet from before the first one
	// does not underflow.
	started     bool
	ssrc        uint32
	pt          uint8
	maxSeq      uint16
	cycles      uint64
	base        uint64
	badSeq      uint32
	received    uint64
	priorExp    uint64
	priorRecv   uint64
	reordered   uint64
	maxReorder  uint64
	duplicates  uint64
	jumps       uint64
	resyncs     uint64
	ssrcChanges uint64
	window      [dupWindow / 64]uint64

	// RFC 3550 A.8 jitter state.
	rate         uint32
	firstArrival time.Duration
	haveTransit  bool
	transit      int32
	jitter       uint32 // ×16, as in A.8's integer form

	latency Histogram
}

// NewStream returns an empty Stream configured by cfg (nil means defaults).
// The zero Stream is also ready to use, with defaults.
func NewStream(cfg *StreamConfig) *Stream {
	s := &Stream{}
	if cfg != nil {
		s.clockCfg = cfg.ClockRate
	}
	return s
}

// Receive records an accepted datagram of size bytes, summarised in p, that
// arrived at arrival (a monotonic reading on any fixed origin, such as
// time.Since of a start time).
func (s *Stream) Receive(p *Packet, size int, arrival time.Duration) {
	s.mu.Lock()
	s.packetsIn++
	s.bytesIn += uint64(size)
	if p.Kind == KindRTCP {
		s.rtcpIn++
		s.rtcpBytesIn += uint64(size)
	} else {
		s.receiveRTP(p, arrival)
	}
	s.mu.Unlock()
}

// Sent records one forwarded datagram of size bytes whose send completed
// latency after the original arrived.
func (s *Stream) Sent(size int, latency time.Duration) {
	s.mu.Lock()
	s.packetsOut++
	s.bytesOut += uint64(size)
	s.latency.Record(latency)
	s.mu.Unlock()
}

// Drop records a datagram dropped for reason r.
func (s *Stream) Drop(r Reason) {
	s.mu.Lock()
	if r < NumReasons {
		s.drops[r]++
	}
	s.mu.Unlock()
}

func (s *Stream) extMax() uint64 { return s.cycles + uint64(s.maxSeq) }

func (s *Stream) bit(ext uint64) (word int, mask uint64) {
	i := ext % dupWindow
	return int(i / 64), 1 << (i % 64)
}

func (s *Stream) closeEpoch() {
	s.priorExp += s.extMax() - s.base + 1
	s.priorRecv += s.received
	s.received = 0
}

// initSeq is RFC 3550 A.1 init_seq, plus the duplicate window.
func (s *Stream) initSeq(seq uint16) {
	s.maxSeq = seq
	s.cycles = seqMod
	s.base = s.extMax()
	s.badSeq = seqMod + 1 // so seq == badSeq is false
	s.window = [dupWindow / 64]uint64{}
	w, m := s.bit(s.base)
	s.window[w] |= m
}

// receiveRTP is RFC 3550 A.1 update_seq without probation (a relay forwards
// from the first packet), with duplicates detected by the window and not
// counted as received, then A.8 jitter.
func (s *Stream) receiveRTP(p *Packet, arrival time.Duration) {
	seq := p.SequenceNumber
	switch {
	case !s.started || p.SSRC != s.ssrc:
		if s.started {
			s.ssrcChanges++
			s.closeEpoch()
		}
		s.started = true
		s.ssrc = p.SSRC
		s.pt = p.PayloadType
		s.rate = s.clockCfg
		if s.rate == 0 {
			s.rate = ClockRate(p.PayloadType)
		}
		s.haveTransit = false
		s.firstArrival = arrival
		s.jitter = 0
		s.initSeq(seq)
	default:
		udelta := seq - s.maxSeq
		switch {
		case udelta == 0:
			s.duplicates++
			return
		case udelta < maxDropout:
			// In order, with a permissible gap.
			old := s.extMax()
			if seq < s.maxSeq {
				s.cycles += seqMod
			}
			s.maxSeq = seq
			ext := s.extMax()
			if ext-old >= dupWindow {
				s.window = [dupWindow / 64]uint64{}
			} else {
				for e := old + 1; e < ext; e++ {
					w, m := s.bit(e)
					s.window[w] &^= m
				}
			}
			w, m := s.bit(ext)
			s.window[w] |= m
		case int(udelta) <= seqMod-maxMisorder:
			// A very large jump: resynchronise on the second sequential packet.
			if uint32(seq) != s.badSeq {
				s.badSeq = uint32(seq+1) & (seqMod - 1)
				s.jumps++
				return
			}
			s.resyncs++
			s.closeEpoch()
			s.initSeq(seq)
		default:
			// Duplicate or reordered: at most maxMisorder behind the highest.
			back := uint64(seqMod - int(udelta))
			ext := s.extMax() - back
			w, m := s.bit(ext)
			if s.window[w]&m != 0 {
				s.duplicates++
				return
			}
			s.window[w] |= m
			s.reordered++
			s.maxReorder = max(s.maxReorder, back)
			if ext < s.base {
				s.base = ext // the stream started earlier than its first arrival
			}
		}
	}
	s.received++
	s.updateJitter(p.Timestamp, arrival)
}

// updateJitter is RFC 3550 A.8 in its integer form (J scaled by 16).
func (s *Stream) updateJitter(ts uint32, arrival time.Duration) {
	if s.rate == 0 {
		return
	}
	el := arrival - s.firstArrival
	if el < 0 {
		el = 0
	}
	sec, rem := uint64(el/time.Second), uint64(el%time.Second)
	units := uint32(sec*uint64(s.rate) + rem*uint64(s.rate)/uint64(time.Second))
	transit := int32(units - ts)
	if !s.haveTransit {
		s.haveTransit = true
		s.transit = transit
		return
	}
	d := transit - s.transit
	s.transit = transit
	if d < 0 {
		d = -d
	}
	s.jitter += uint32(d) - ((s.jitter + 8) >> 4)
}

// Snapshot is a consistent copy of a Stream's statistics. Counts are
// cumulative since the Stream was created; Expected, Received and Lost add up
// the epochs of every SSRC (or resynchronisation) seen.
type Snapshot struct {
	// SSRC and PayloadType are the current RTP source's.
	SSRC        uint32 `json:"ssrc"`
	PayloadType uint8  `json:"pt"`
	// ClockRate is the RTP clock rate jitter is computed with (0: none).
	ClockRate uint32 `json:"clock_rate"`
	// PacketsIn and BytesIn count accepted datagrams, RTP and RTCP.
	PacketsIn uint64 `json:"packets_in"`
	BytesIn   uint64 `json:"bytes_in"`
	// RTCPIn and RTCPBytesIn count the RTCP part of PacketsIn and BytesIn.
	RTCPIn      uint64 `json:"rtcp_in"`
	RTCPBytesIn uint64 `json:"rtcp_bytes_in"`
	// PacketsOut and BytesOut count datagrams sent, one per copy.
	PacketsOut uint64 `json:"packets_out"`
	BytesOut   uint64 `json:"bytes_out"`
	// HighestSeq is the RFC 3550 extended highest sequence number
	// (cycles<<16 | max_seq) of the current source.
	HighestSeq uint64 `json:"highest_seq"`
	// Expected is extended highest minus base plus one (RFC 3550 A.3).
	Expected uint64 `json:"expected"`
	// Received counts RTP packets accepted into the sequence statistics:
	// duplicates and packets discarded by the large-jump rule are not counted.
	Received uint64 `json:"received"`
	// Lost is Expected minus Received (A.3's cumulative number lost).
	Lost int64 `json:"lost"`
	// Reordered counts packets that arrived with a sequence number lower than
	// the highest seen; MaxReorder is the largest such distance.
	Reordered  uint64 `json:"reordered"`
	MaxReorder uint64 `json:"max_reorder"`
	// Duplicates counts packets whose sequence number was already seen.
	Duplicates uint64 `json:"duplicates"`
	// Jumps counts packets discarded by A.1's large-jump rule; Resyncs the
	// times two sequential such packets restarted the sequence.
	Jumps   uint64 `json:"seq_jumps"`
	Resyncs uint64 `json:"resyncs"`
	// SSRCChanges counts changes of the RTP SSRC.
	SSRCChanges uint64 `json:"ssrc_changes"`
	// Jitter is the RFC 3550 A.8 interarrival jitter in timestamp units,
	// JitterTime the same in time.
	Jitter     uint32        `json:"jitter_ts"`
	JitterTime time.Duration `json:"jitter_ns"`
	// Latency summarises the time from a datagram's arrival to the completion
	// of each of its sends.
	Latency LatencySummary `json:"latency"`
	// Drops counts dropped datagrams by reason.
	Drops Drops `json:"drops"`
}

// Snapshot returns a consistent copy of the statistics.
func (s *Stream) Snapshot() Snapshot {
	var h Histogram
	s.mu.Lock()
	sn := Snapshot{
		SSRC:        s.ssrc,
		PayloadType: s.pt,
		ClockRate:   s.rate,
		PacketsIn:   s.packetsIn,
		BytesIn:     s.bytesIn,
		RTCPIn:      s.rtcpIn,
		RTCPBytesIn: s.rtcpBytesIn,
		PacketsOut:  s.packetsOut,
		BytesOut:    s.bytesOut,
		Reordered:   s.reordered,
		MaxReorder:  s.maxReorder,
		Duplicates:  s.duplicates,
		Jumps:       s.jumps,
		Resyncs:     s.resyncs,
		SSRCChanges: s.ssrcChanges,
		Jitter:      s.jitter >> 4,
		Drops:       s.drops,
	}
	if s.started {
		sn.HighestSeq = s.extMax() - seqMod
		sn.Expected = s.priorExp + s.extMax() - s.base + 1
		sn.Received = s.priorRecv + s.received
		sn.Lost = int64(sn.Expected) - int64(sn.Received)
	}
	h = s.latency
	s.mu.Unlock()
	if sn.ClockRate != 0 {
		sn.JitterTime = time.Duration(uint64(sn.Jitter) * uint64(time.Second) / uint64(sn.ClockRate))
	}
	sn.Latency = h.Summary()
	return sn
}

// LossRatio returns Lost/Expected, or 0 when nothing was expected or the
// count is negative.
func (sn Snapshot) LossRatio() float64 {
	if sn.Expected == 0 || sn.Lost <= 0 {
		return 0
	}
	return float64(sn.Lost) / float64(sn.Expected)
}

// String returns a one-line human summary, such as
// "ssrc=0x1234abcd in=1000/172000B out=2000/344000B rtcp=0 lost=0(0.00%)
// reord=0 dup=0 jitter=0.12ms lat p50=12µs p99=40µs p99.9=90µs max=120µs".
func (sn Snapshot) String() string {
	b := make([]byte, 0, 192)
	b = append(b, "ssrc=0x"...)
	b = strconv.AppendUint(b, uint64(sn.SSRC), 16)
	b = append(b, " in="...)
	b = strconv.AppendUint(b, sn.PacketsIn, 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, sn.BytesIn, 10)
	b = append(b, "B out="...)
	b = strconv.AppendUint(b, sn.PacketsOut, 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, sn.BytesOut, 10)
	b = append(b, "B rtcp="...)
	b = strconv.AppendUint(b, sn.RTCPIn, 10)
	b = append(b, " lost="...)
	b = strconv.AppendInt(b, sn.Lost, 10)
	b = append(b, '(')
	b = strconv.AppendFloat(b, 100*sn.LossRatio(), 'f', 2, 64)
	b = append(b, "%) reord="...)
	b = strconv.AppendUint(b, sn.Reordered, 10)
	b = append(b, " dup="...)
	b = strconv.AppendUint(b, sn.Duplicates, 10)
	b = append(b, " jitter="...)
	if sn.ClockRate == 0 {
		b = append(b, '-')
	} else {
		b = append(b, sn.JitterTime.String()...)
	}
	b = append(b, " lat p50="...)
	b = append(b, sn.Latency.P50.String()...)
	b = append(b, " p99="...)
	b = append(b, sn.Latency.P99.String()...)
	b = append(b, " p99.9="...)
	b = append(b, sn.Latency.P999.String()...)
	b = append(b, " max="...)
	b = append(b, sn.Latency.Max.String()...)
	if sn.Drops.Total() != 0 {
		b = append(b, " drops: "...)
		b = sn.Drops.AppendText(b)
	}
	return string(b)
}
