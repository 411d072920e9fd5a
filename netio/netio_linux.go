//go:build linux

package netio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/sockaddr"
	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// The default runtime serves the handler API's zero ListenConfig and Dialer
// values. It starts on first use with runtime.New(nil) and lives until
// CloseDefault; the next use after that starts a new one.
//
// The net face's package functions and zero values start no runtime: their
// sockets need no loop (they wait in Go's poller), so they join
// defaultRT.socks, which CloseDefault closes, instead of a loop's set. A
// program that only uses the net face thus runs no loop threads and keeps
// GOMAXPROCS as it is.
var defaultRT struct {
	mu    sync.Mutex
	rt    *runtime.Runtime
	socks *sockSet
	stats loopCounters // the net face's counters for socks
}

// DefaultRuntime returns the runtime the handler API's zero ListenConfig
// and Dialer use, starting it if needed.
func DefaultRuntime() (*runtime.Runtime, error) {
	defaultRT.mu.Lock()
	defer defaultRT.mu.Unlock()
	if defaultRT.rt == nil {
		rt, err := runtime.New(nil)
		if err != nil {
			return nil, err
		}
		defaultRT.rt = rt
	}
	return defaultRT.rt, nil
}

// defaultSockets returns the set the net face's sockets join when no
// runtime is named.
func defaultSockets() *sockSet {
	defaultRT.mu.Lock()
	defer defaultRT.mu.Unlock()
	if defaultRT.socks == nil {
		defaultRT.socks = &sockSet{stats: &defaultRT.stats}
	}
	return defaultRT.socks
}

// CloseDefault closes the net-face sockets opened without a runtime and the
// default runtime, if one was started, and joins its loop goroutines.
// Connections, listeners and packet conns opened without a runtime fail with
// net.ErrClosed afterwards. Programs that never call it keep them until exit,
// like package net's; tests that check for leaked goroutines call it.
func CloseDefault() error {
	defaultRT.mu.Lock()
	rt, socks := defaultRT.rt, defaultRT.socks
	defaultRT.rt, defaultRT.socks = nil, nil
	defaultRT.mu.Unlock()
	if socks != nil {
		socks.closeAll()
	}
	if rt == nil {
		return nil
	}
	return rt.Close()
}

var (
	// availableFn is the availability probe fallback asks, once per process;
	// tests swap it (and reset availOnce) to exercise the real fallback path.
	availableFn = ring.Available
	availOnce   sync.Once
	availErr    error
	forceLog    atomic.Bool
	unavailLog  atomic.Bool
)

// ErrForcedFallback is FallbackReason's answer when Config.ForceFallback
// is set.
var ErrForcedFallback = errors.New("netio: Config.ForceFallback is set")

// FallbackReason reports why the net face (Listen, Dial, ListenPacket and
// ListenConfig and Dialer with cfg; nil: defaults) returns package net's
// objects instead of its own: nil when it does not, ErrForcedFallback, or
// why io_uring is unavailable here (ring.Available's error: the kernel,
// a seccomp profile such as Docker's default, kernel.io_uring_disabled).
// Programs print it at start so that a fallback is never silent.
func FallbackReason(cfg *Config) error {
	if cfg != nil && cfg.ForceFallback {
		return ErrForcedFallback
	}
	availOnce.Do(probeAvailable)
	return availErr
}

func probeAvailable() { availErr = availableFn() }

// fallback reports whether to use package net, logging the reason once.
func fallback(cfg *Config) bool {
	if cfg.ForceFallback {
		if forceLog.CompareAndSwap(false, true) {
			cfg.Logger.Info("netio: using package net: Config.ForceFallback is set")
		}
		return true
	}
	availOnce.Do(probeAvailable)
	if availErr != nil && unavailLog.CompareAndSwap(false, true) {
		cfg.Logger.Warn("netio: io_uring unavailable, using package net", zap.Error(availErr))
	}
	return availErr != nil
}

func (lc *ListenConfig) runtime() (*runtime.Runtime, error) { return orDefault(lc.Runtime) }

// orDefault returns rt, or the default runtime when rt is nil.
func orDefault(rt *runtime.Runtime) (*runtime.Runtime, error) {
	if rt != nil {
		return rt, nil
	}
	return DefaultRuntime()
}

// checkHandlerCall is what every handler-API entry point does first: default
// the config, check that network is a stream (TCP) or datagram (UDP) network
// as wanted, and refuse when netio runs on the net fallback, which has no
// handler API.
func checkHandlerCall(op string, c *Config, network string, stream bool) (Config, netKind, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return cfg, netKind{}, err
	}
	k, ok := parseNetwork(network)
	if !ok || k.stream != stream {
		return cfg, k, opErr(op, network, nil, nil, "", net.UnknownNetworkError(network))
	}
	if cfg.ForceFallback || fallback(&cfg) {
		return cfg, k, opErr(op, network, nil, nil, "", errNoHandlerFallback)
	}
	return cfg, k, nil
}

// Serve listens on address and calls h for each accepted connection (the
// handler API). Close the Server to stop accepting.
func (lc *ListenConfig) Serve(ctx context.Context, network, address string, h Handler) (*Server, error) {
	cfg, k, err := checkHandlerCall("listen", lc.Config, network, true)
	if err != nil {
		return nil, err
	}
	rt, err := lc.runtime()
	if err != nil {
		return nil, opErr("listen", network, nil, nil, "", err)
	}
	aps, err := resolve(ctx, k, network, address, false)
	if err != nil {
		return nil, opErr("listen", network, nil, nil, "", err)
	}
	return listenServer(rt, &cfg, network, address, aps[0], k, h)
}

var errNoHandlerFallback = errors.New("netio: the handler API needs io_uring and has no package net fallback")

// DialHandler connects to address and hands the connection to h (the
// handler API): OnOpen runs on the connection's loop before DialHandler
// returns. It waits for the connect, so on one of the runtime's loop threads
// (a Handler callback or a runtime.Task) it returns an error wrapping
// ErrLoopThread instead: a loop must never block.
func (d *Dialer) DialHandler(ctx context.Context, network, address string, h Handler) (*Conn, error) {
	cfg, k, err := checkHandlerCall("dial", d.Config, network, true)
	if err != nil {
		return nil, err
	}
	l, err := pickLoop(d.Runtime, d.Loop)
	if err != nil {
		return nil, opErr("dial", network, nil, nil, "", err)
	}
	rt := d.Runtime
	if rt == nil && d.Loop == nil {
		rt, _ = DefaultRuntime() // pickLoop started it
	}
	if l.OnLoopThread() {
		return nil, opErr("dial", network, nil, nil, "", fmt.Errorf("netio: DialHandler on loop %d's thread: %w", l.ID(), ErrLoopThread))
	}
	if rt != nil {
		if err := offLoopThreads(rt, "DialHandler"); err != nil {
			return nil, opErr("dial", network, nil, nil, "", err)
		}
	}
	aps, err := resolve(ctx, k, network, address, true)
	if err != nil {
		return nil, opErr("dial", network, nil, nil, "", err)
	}
	var res dialResult
	if err := dialHandlerTCP(ctx, l, &cfg, network, k, aps[0], &dialHandlerSpec{h: h, res: &res}); err != nil {
		return nil, err
	}
	return res.c, nil
}

type dialHandlerSpec struct {
	h   Handler
	res *dialResult
}

type dialResult struct{ c *Conn }

// dialer is one connect in flight: its sockaddr is pinned while the kernel
// reads it.
type dialer struct {
	raw  sockaddr.Raw
	fd   int
	op   runtime.OpID
	done chan error
	cfg  *Config
	spec *dialHandlerSpec
}

func (dl *dialer) HandleCompletion(l *runtime.Loop, tag uint64, cqe *ring.CQE) {
	dl.op = 0
	if cqe.Res < 0 {
		closeFD(dl.fd)
		dl.done <- os.NewSyscallError("connect", cqe.Errno())
		return
	}
	ls, err := stateOf(l)
	if err != nil {
		closeFD(dl.fd)
		dl.done <- err
		return
	}
	c := newConn(ls, dl.cfg, dl.fd, dl.spec.h)
	c.local, _ = localAddr(dl.fd)
	c.remote, _ = peerAddr(dl.fd)
	dl.spec.res.c = c
	c.start()
	dl.done <- nil
}

// dialHandlerTCP connects a handler-API connection with a ring CONNECT.
func dialHandlerTCP(ctx context.Context, l *runtime.Loop, cfg *Config, network string, k netKind, ap netip.AddrPort, spec *dialHandlerSpec) error {
	raddr := net.TCPAddrFromAddrPort(ap)
	fail := func(err error) error { return opErr("dial", network, nil, raddr, "connect", err) }
	if err := ctx.Err(); err != nil {
		return fail(mapCtxErr(err))
	}
	family, _ := socketFor(k, ap)
	fd, err := newSocket(family, unix.SOCK_STREAM, false)
	if err != nil {
		return fail(err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	dl := &dialer{fd: fd, done: make(chan error, 1), cfg: cfg, spec: spec}
	if err := dl.raw.Set(ap, family); err != nil {
		closeFD(fd)
		return fail(err)
	}
	err = l.Post(runtime.TaskFunc(func(l *runtime.Loop) {
		if _, err := stateOf(l); err != nil {
			closeFD(fd)
			dl.done <- err
			return
		}
		sqe, id, err := l.NewOp(dl, 0)
		if err != nil {
			closeFD(fd)
			dl.done <- err
			return
		}
		sqe.PrepConnect(fd, dl.raw.Bytes())
		l.Pin(id, dl)
		dl.op = id
	}))
	if err != nil {
		closeFD(fd)
		return fail(net.ErrClosed)
	}
	select {
	case err = <-dl.done:
	case <-ctx.Done():
		_ = l.Post(runtime.TaskFunc(func(l *runtime.Loop) {
			if dl.op != 0 {
				_ = l.Cancel(dl.op)
			}
		}))
		err = <-dl.done
		if err == nil {
			// Connected just as the context ended: keep the promise of ctx.
			c := spec.res.c
			_ = runOn(l, func(*runtime.Loop) error { c.Close(ctx.Err()); return nil })
		}
		err = mapCtxErr(ctx.Err())
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

func mapCtxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errTimeout
	}
	if errors.Is(err, context.Canceled) {
		return errCanceledDial
	}
	return err
}

// Dial errors in package net's shapes.
var (
	errTimeout      error = &timeoutError{}
	errCanceledDial       = errors.New("operation was canceled")
)

type timeoutError struct{}

func (e *timeoutError) Error() string   { return "i/o timeout" }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
func (e *timeoutError) Is(err error) bool {
	return err == context.DeadlineExceeded || err == os.ErrDeadlineExceeded
}
