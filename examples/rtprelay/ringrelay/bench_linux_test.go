//go:build linux

package ringrelay

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ringwire/ringwire/examples/rtprelay/gorelay"
	"github.com/ringwire/ringwire/examples/rtprelay/relay"
	"github.com/ringwire/ringwire/examples/rtprelay/rtptest"
)

func startGo(t testing.TB, cfg *relay.Config, ingress []*net.UDPConn) (rtptest.Instance, error) {
	return gorelay.New(&gorelay.Config{Config: *cfg, Ingress: ingress, ReadBuffer: 4 << 20})
}

func startRingLoad(t testing.TB, cfg *relay.Config, ingress []*net.UDPConn) (rtptest.Instance, error) {
	needRing(t)
	return New(&Config{Config: *cfg, Ingress: ingress, ReadBuffer: 4 << 20})
}

// BenchmarkRelay compares the relays on one stream, a window of datagrams at
// a time (rtptest.Bench), with sending straight to the receiver
// (impl=direct), in one run: compare ratios.
func BenchmarkRelay(b *testing.B) {
	b.Run("impl=direct", func(b *testing.B) { rtptest.Bench(b, nil, 32) })
	b.Run("impl=gorelay", func(b *testing.B) { rtptest.Bench(b, startGo, 32) })
	b.Run("impl=ringwire", func(b *testing.B) { rtptest.Bench(b, startRingLoad, 32) })
}

// BenchmarkLoad runs 1000 G.711 streams through each relay, first at 50
// packets/s each (50k packets/s), then as fast as one sender goroutine can,
// for one second per iteration (run it with -benchtime=1x). It reports the
// rate the sink read, the loss, and CPU per packet: cpu-µs/pkt is the whole
// process (sender, sink and relay), relay-µs/pkt subtracts the same load
// sent straight to the sink (impl=direct, measured first in the same run).
func BenchmarkLoad(b *testing.B) {
	for _, pps := range []int{50, 0} {
		name := fmt.Sprintf("streams=1000/pps=%d", pps)
		if pps == 0 {
			name = "streams=1000/pps=max"
		}
		b.Run(name, func(b *testing.B) {
			load := rtptest.Load{Streams: 1000, PPS: pps, Duration: time.Second}
			var direct time.Duration // CPU per packet without a relay
			for _, impl := range []struct {
				name  string
				start rtptest.StartFunc
			}{{"direct", nil}, {"gorelay", startGo}, {"ringwire", startRingLoad}} {
				b.Run("impl="+impl.name, func(b *testing.B) {
					b.ReportAllocs()
					var res rtptest.LoadResult
					for b.Loop() {
						res = rtptest.RunLoad(b, impl.start, load)
					}
					if impl.start == nil {
						direct = res.CPUPerPacket()
					}
					b.ReportMetric(res.PPS(), "pkt/s")
					b.ReportMetric(100*res.Loss(), "loss-%")
					b.ReportMetric(float64(res.CPUPerPacket().Nanoseconds())/1e3, "cpu-µs/pkt")
					if impl.start != nil && direct > 0 {
						b.ReportMetric(float64((res.CPUPerPacket()-direct).Nanoseconds())/1e3, "relay-µs/pkt")
					}
					if tr := res.Report.Transport; tr != nil {
						b.Logf("%s: %v; transport %v", impl.name, &res, tr)
					} else {
						b.Logf("%s: %v", impl.name, &res)
					}
				})
			}
		})
	}
}
