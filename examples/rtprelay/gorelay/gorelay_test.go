package gorelay

import (
	"net"
	"testing"

	"go.uber.org/goleak"

	"github.com/ringwire/ringwire/examples/rtprelay/relay"
	"github.com/ringwire/ringwire/examples/rtprelay/rtptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startGo(t testing.TB, cfg *relay.Config, ingress []*net.UDPConn) (rtptest.Instance, error) {
	return New(&Config{Config: *cfg, Ingress: ingress})
}

func TestSuite(t *testing.T) { rtptest.RunSuite(t, startGo) }

// BenchmarkRelay compares the Go relay with sending straight to the receiver
// (impl=direct), in one run: compare the ratio, not absolute times.
func BenchmarkRelay(b *testing.B) {
	b.Run("impl=direct", func(b *testing.B) { rtptest.Bench(b, nil, 32) })
	b.Run("impl=gorelay", func(b *testing.B) { rtptest.Bench(b, startGo, 32) })
}
