package rtpcheck

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// feed sends RTP packets with the given sequence numbers (timestamps 160 per
// step from seq, arrivals 20 ms apart) into a new Stream.
func feed(t *testing.T, ssrc uint32, seqs ...uint16) (*Stream, Snapshot) {
	t.Helper()
	s := NewStream(nil)
	for i, q := range seqs {
		p := Packet{Kind: KindRTP, PayloadType: 0, SequenceNumber: q, Timestamp: uint32(q) * 160, SSRC: ssrc}
		s.Receive(&p, 172, time.Duration(i)*20*time.Millisecond)
	}
	return s, s.Snapshot()
}

func seqRange(from uint16, n int) []uint16 {
	r := make([]uint16, n)
	for i := range r {
		r[i] = from + uint16(i)
	}
	return r
}

func TestStreamSequence(t *testing.T) {
	tests := []struct {
		name                          string
		seqs                          []uint16
		wantExpected, wantReceived    uint64
		wantLost                      int64
		wantReordered, wantDuplicates uint64
		wantMaxReorder                uint64
		wantJumps, wantResyncs        uint64
		wantHighest                   uint64
	}{
		{name: "in order", seqs: seqRange(0, 100), wantExpected: 100, wantReceived: 100, wantHighest: 99},
		{name: "wrap at 65535", seqs: seqRange(65530, 16), wantExpected: 16, wantReceived: 16, wantHighest: 1<<16 + 9},
		{name: "two wraps", seqs: append(seqRange(65000, 1000), seqRange(464, 65536)...), wantExpected: 66536, wantReceived: 66536, wantHighest: 2<<16 + 463},
		{name: "loss", seqs: []uint16{1, 2, 5, 6, 9}, wantExpected: 9, wantReceived: 5, wantLost: 4, wantHighest: 9},
		{name: "loss across wrap", seqs: []uint16{65534, 1, 2}, wantExpected: 5, wantReceived: 3, wantLost: 2, wantHighest: 1<<16 + 2},
		{name: "reorder", seqs: []uint16{1, 2, 4, 3, 5}, wantExpected: 5, wantReceived: 5, wantReordered: 1, wantMaxReorder: 1, wantHighest: 5},
		{name: "reorder across wrap", seqs: []uint16{65534, 65535, 1, 0, 2}, wantExpected: 5, wantReceived: 5, wantReordered: 1, wantMaxReorder: 1, wantHighest: 1<<16 + 2},
		{name: "reorder depth 50", seqs: []uint16{100, 150, 101}, wantExpected: 51, wantReceived: 3, wantLost: 48, wantReordered: 1, wantMaxReorder: 49, wantHighest: 150},
		{name: "before first", seqs: []uint16{10, 9, 11}, wantExpected: 3, wantReceived: 3, wantReordered: 1, wantMaxReorder: 1, wantHighest: 11},
		{name: "before first across wrap", seqs: []uint16{1, 65535, 0, 2}, wantExpected: 4, wantReceived: 4, wantReordered: 2, wantMaxReorder: 2, wantHighest: 2},
		{name: "duplicates", seqs: []uint16{1, 2, 2, 3, 2, 1}, wantExpected: 3, wantReceived: 3, wantDuplicates: 3, wantHighest: 3},
		{name: "duplicate after reorder", seqs: []uint16{1, 3, 2, 2, 4}, wantExpected: 4, wantReceived: 4, wantReordered: 1, wantMaxReorder: 1, wantDuplicates: 1, wantHighest: 4},
		{name: "duplicate across wrap", seqs: []uint16{65535, 0, 65535, 1}, wantExpected: 3, wantReceived: 3, wantDuplicates: 1, wantHighest: 1<<16 + 1},
		{name: "gap larger than window then old", seqs: []uint16{1, 2, 600, 2}, wantExpected: 600, wantReceived: 3, wantLost: 597, wantJumps: 1, wantHighest: 600},
		{name: "large jump discarded", seqs: []uint16{1, 2, 3, 10000, 4}, wantExpected: 4, wantReceived: 4, wantJumps: 1, wantHighest: 4},
		{name: "large jump resync", seqs: []uint16{1, 2, 3, 10000, 10001, 10002}, wantExpected: 5, wantReceived: 5, wantJumps: 1, wantResyncs: 1, wantHighest: 10002},
		{name: "too far back is a jump", seqs: []uint16{500, 399}, wantExpected: 1, wantReceived: 1, wantJumps: 1, wantHighest: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sn := feed(t, 7, tt.seqs...)
			if sn.Expected != tt.wantExpected || sn.Received != tt.wantReceived || sn.Lost != tt.wantLost {
				t.Errorf("expected/received/lost = %d/%d/%d, want %d/%d/%d",
					sn.Expected, sn.Received, sn.Lost, tt.wantExpected, tt.wantReceived, tt.wantLost)
			}
			if sn.Reordered != tt.wantReordered || sn.MaxReorder != tt.wantMaxReorder || sn.Duplicates != tt.wantDuplicates {
				t.Errorf("reordered/maxreorder/dup = %d/%d/%d, want %d/%d/%d",
					sn.Reordered, sn.MaxReorder, sn.Duplicates, tt.wantReordered, tt.wantMaxReorder, tt.wantDuplicates)
			}
			if sn.Jumps != tt.wantJumps || sn.Resyncs != tt.wantResyncs {
				t.Errorf("jumps/resyncs = %d/%d, want %d/%d", sn.Jumps, sn.Resyncs, tt.wantJumps, tt.wantResyncs)
			}
			if sn.HighestSeq != tt.wantHighest {
				t.Errorf("HighestSeq = %d, want %d", sn.HighestSeq, tt.wantHighest)
			}
			if sn.PacketsIn != uint64(len(tt.seqs)) || sn.BytesIn != 172*uint64(len(tt.seqs)) {
				t.Errorf("in = %d/%d", sn.PacketsIn, sn.BytesIn)
			}
		})
	}
}

func TestStreamSSRCChange(t *testing.T) {
	s, _ := feed(t, 1, seqRange(100, 10)...)
	for _, q := range []uint16{500, 502, 503} {
		p := Packet{Kind: KindRTP, SequenceNumber: q, SSRC: 2, PayloadType: 8}
		s.Receive(&p, 100, time.Second)
	}
	sn := s.Snapshot()
	if sn.SSRC != 2 || sn.PayloadType != 8 || sn.SSRCChanges != 1 {
		t.Errorf("ssrc/pt/changes = %#x/%d/%d", sn.SSRC, sn.PayloadType, sn.SSRCChanges)
	}
	if sn.Expected != 14 || sn.Received != 13 || sn.Lost != 1 {
		t.Errorf("expected/received/lost = %d/%d/%d, want 14/13/1", sn.Expected, sn.Received, sn.Lost)
	}
}

func TestStreamRTCPAndDrops(t *testing.T) {
	s := NewStream(nil)
	p := Packet{Kind: KindRTCP, PayloadType: RTCPTypeRR, SSRC: 9, RTCPCount: 2}
	s.Receive(&p, 40, 0)
	s.Drop(BadPadding)
	s.Drop(BadPadding)
	s.Drop(WrongSource)
	s.Drop(Reason(250)) // ignored
	sn := s.Snapshot()
	if sn.PacketsIn != 1 || sn.RTCPIn != 1 || sn.RTCPBytesIn != 40 || sn.Received != 0 || sn.Expected != 0 {
		t.Errorf("snapshot %+v", sn)
	}
	if sn.Drops[BadPadding] != 2 || sn.Drops[WrongSource] != 1 || sn.Drops.Total() != 3 {
		t.Errorf("drops %v", sn.Drops)
	}
}

// TestStreamJitterWorkedExample follows RFC 3550 A.8 by hand: PCMU at 8000 Hz,
// 160 timestamp units (20 ms) per packet. Packet 3 arrives 10 ms (80 units)
// late and packet 4 on time, so |D| is 0, 0, 80, 80:
// J = 0, 0, 0 + (80-0)/16 = 5, 5 + (80-5)/16 = 9.6875 (integer form: 155/16 = 9).
func TestStreamJitterWorkedExample(t *testing.T) {
	s := NewStream(nil)
	arrivals := []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond, 60 * time.Millisecond}
	want := []uint32{0, 0, 5, 9}
	for i, a := range arrivals {
		p := Packet{Kind: KindRTP, PayloadType: 0, SequenceNumber: uint16(i), Timestamp: 1000 + 160*uint32(i), SSRC: 3}
		s.Receive(&p, 172, a+time.Hour) // arbitrary origin
		if got := s.Snapshot().Jitter; got != want[i] {
			t.Errorf("after packet %d jitter = %d, want %d", i, got, want[i])
		}
	}
	sn := s.Snapshot()
	if sn.ClockRate != 8000 || sn.JitterTime != 1125*time.Microsecond {
		t.Errorf("clock %d jitter time %v, want 8000 and 1.125ms", sn.ClockRate, sn.JitterTime)
	}
}

// TestStreamJitterMatchesFloat checks the integer form against A.8's floating
// point formula over random arrival noise, with a timestamp wrap and a
// configured clock rate.
func TestStreamJitterMatchesFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const rate = 48000
	s := NewStream(&StreamConfig{ClockRate: rate})
	var j, prevTransit float64
	ts := uint32(math.MaxUint32 - 5000)
	for i := range 2000 {
		noise := time.Duration(rng.IntN(4000)) * time.Microsecond
		arrival := time.Duration(i)*20*time.Millisecond + noise
		p := Packet{Kind: KindRTP, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: ts, SSRC: 5}
		s.Receive(&p, 100, arrival)
		// Reference, in float: arrival in timestamp units relative to the first packet.
		transit := math.Floor(arrival.Seconds()*rate) - float64(int64(ts)-int64(math.MaxUint32-5000))
		if i > 0 {
			j += (math.Abs(transit-prevTransit) - j) / 16
		}
		prevTransit = transit
		ts += 960
	}
	got := float64(s.Snapshot().Jitter)
	if math.Abs(got-j) > 1.5 {
		t.Errorf("jitter = %v, float reference %v", got, j)
	}
	if j < 50 {
		t.Errorf("reference jitter %v implausibly small", j)
	}
}

func TestStreamNoClockRate(t *testing.T) {
	s := NewStream(nil)
	for i := range 10 {
		p := Packet{Kind: KindRTP, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: uint32(i * 7777), SSRC: 5}
		s.Receive(&p, 100, time.Duration(i*i)*time.Millisecond)
	}
	sn := s.Snapshot()
	if sn.ClockRate != 0 || sn.Jitter != 0 || !strings.Contains(sn.String(), "jitter=-") {
		t.Errorf("dynamic PT without clock rate: %v", sn)
	}
}

func TestStreamLatency(t *testing.T) {
	s := NewStream(nil)
	for i := 1; i <= 1000; i++ {
		s.Sent(172, time.Duration(i)*time.Microsecond)
	}
	sn := s.Snapshot()
	l := sn.Latency
	if l.Count != 1000 || sn.PacketsOut != 1000 || sn.BytesOut != 172000 {
		t.Fatalf("latency %+v out %d/%d", l, sn.PacketsOut, sn.BytesOut)
	}
	within := func(name string, got, want time.Duration) {
		if got < want || float64(got) > float64(want)*1.0625 {
			t.Errorf("%s = %v, want in [%v, %v]", name, got, want, time.Duration(float64(want)*1.0625))
		}
	}
	within("p50", l.P50, 500*time.Microsecond)
	within("p99", l.P99, 990*time.Microsecond)
	within("p99.9", l.P999, 999*time.Microsecond)
	if l.Max != time.Millisecond || l.Mean != 500500*time.Nanosecond {
		t.Errorf("max %v mean %v", l.Max, l.Mean)
	}
}

func TestHistogramBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(v uint64) {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d out of range", v, i)
		}
		if v >= 1<<(histMaxExp+1) {
			if i != histBuckets-1 {
				t.Fatalf("histIndex(%d) = %d, want last", v, i)
			}
			return
		}
		up := histUpper(i)
		if up < v || (i > 0 && histUpper(i-1) >= v) {
			t.Fatalf("v=%d bucket %d upper %d prev upper %d", v, i, up, histUpper(i-1))
		}
		if v >= histSub && float64(up-v) > float64(v)/histSub {
			t.Fatalf("v=%d upper %d: error above 1/%d", v, up, histSub)
		}
	}
	for v := uint64(0); v < 5000; v++ {
		check(v)
	}
	for range 100000 {
		check(rng.Uint64() >> rng.IntN(64))
	}
	check(math.MaxUint64)
	if histUpper(histBuckets-1) != 1<<(histMaxExp+1)-1 {
		t.Errorf("last bucket upper %d", histUpper(histBuckets-1))
	}
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Summary() != (LatencySummary{}) {
		t.Error("empty histogram not zero")
	}
	h.Record(-5)
	h.Record(time.Hour)
	if h.Quantile(0.5) != 0 || h.Quantile(1) != time.Hour || h.Max() != time.Hour || h.Count() != 2 {
		t.Errorf("q50 %v q100 %v", h.Quantile(0.5), h.Quantile(1))
	}
	h.Reset()
	if h.Count() != 0 {
		t.Error("Reset kept counts")
	}
}

func TestStreamAllocs(t *testing.T) {
	s := NewStream(nil)
	p := Packet{Kind: KindRTP, SequenceNumber: 1, SSRC: 1}
	var now time.Duration
	if n := testing.AllocsPerRun(1000, func() {
		p.SequenceNumber++
		p.Timestamp += 160
		now += 20 * time.Millisecond
		s.Receive(&p, 172, now)
		s.Sent(172, 3*time.Microsecond)
		s.Drop(BadVersion)
	}); n != 0 {
		t.Errorf("Receive+Sent+Drop allocate %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.Snapshot() }); n != 0 {
		t.Errorf("Snapshot allocates %v times", n)
	}
}

func TestSnapshotJSONAndString(t *testing.T) {
	s, _ := feed(t, 0xabcd, 1, 2, 4, 3, 3)
	s.Sent(172, 20*time.Microsecond)
	s.Drop(BadExtension)
	sn := s.Snapshot()
	b, err := json.Marshal(sn)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"ssrc":43981`, `"reordered":1`, `"duplicates":1`, `"drops":{"BadExtension":1}`, `"p99_ns":20000`, `"jitter_ns":`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != sn {
		t.Errorf("round trip: %+v != %+v", back, sn)
	}
	str := sn.String()
	for _, want := range []string{"ssrc=0xabcd", "in=5/860B", "out=1/172B", "lost=0(0.00%)", "reord=1", "dup=1", "p50=20µs", "drops: BadExtension=1"} {
		if !strings.Contains(str, want) {
			t.Errorf("String %q lacks %q", str, want)
		}
	}
	if err := json.Unmarshal([]byte(`{"drops":{"Nope":1}}`), &back); err == nil {
		t.Error("unknown reason decoded")
	}
}
