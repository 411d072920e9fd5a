package ringrelay

import (
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/ringwire/ringwire/examples/rtprelay/relay"
)

// DefaultReadBuffer is the default Config.ReadBuffer: 1 MiB of SO_RCVBUF,
// as gorelay's.
const DefaultReadBuffer = 1 << 20

// DefaultRecvBuffers is the default Config.RecvBuffers: 4096 buffers,
// 8.5 MiB per loop with the default 2048-byte MaxDatagram.
const DefaultRecvBuffers = 4096

// DefaultLatencyBudget is the default Config.LatencyBudget.
const DefaultLatencyBudget = 50 * time.Microsecond

// MaxDests is the largest number of destinations (Config.Out) a Relay
// forwards to: the destination index travels in 8 bits of a send's tag.
const MaxDests = 256

// Config configures a Relay: the transport-independent relay.Config plus
// what only the ringwire transport needs.
type Config struct {
	relay.Config

	// Ingress optionally holds pre-bound ingress sockets, one per stream in
	// stream order, so that tests need no fixed ports. The Relay closes each
	// and binds its address again with netio. When set, In is ignored and
	// Streams, if zero, is len(Ingress).
	Ingress []*net.UDPConn
	// Loops is the number of event loops; stream i runs on loop i mod Loops.
	// Default 1.
	Loops int
	// CPUs, if set, pins loop k to CPU CPUs[k mod len(CPUs)].
	CPUs []int
	// RecvBuffers is the number of receive buffers of each loop's provided
	// buffer ring, shared by all of the loop's sockets, a power of two up to
	// 32768; each holds one datagram of up to MaxDatagram bytes. When a
	// burst finds them all in use, the loop's receives pause for about a
	// millisecond (netio re-arms them) while the kernel queues datagrams in
	// the sockets' buffers (ReadBuffer). Default DefaultRecvBuffers.
	RecvBuffers int
	// LatencyBudget lets a loop that is about to sleep wait up to this long
	// for a batch of completions before it handles what has arrived
	// (runtime.Config's LatencyBudget; Linux 6.12, ignored before): under
	// load one io_uring_enter then serves tens of datagrams instead of one
	// or two, at the price of up to this much added relay latency, which
	// the relay's latency histogram shows. It is interrupt coalescing, as a
	// NIC does (rx-usecs is typically 50 to 100µs): negligible next to RTP's
	// 20 ms packet interval and any jitter buffer. 0 means
	// DefaultLatencyBudget; negative handles every completion as soon as it
	// arrives.
	LatencyBudget time.Duration
	// ReadBuffer is SO_RCVBUF for every socket (capped by the kernel's
	// net.core.rmem_max); 0 means DefaultReadBuffer, negative leaves the
	// system default.
	ReadBuffer int
	// Logger receives setup and shutdown problems, never anything per
	// datagram; nil means zap.NewNop().
	Logger *zap.Logger
}
