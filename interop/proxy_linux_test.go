//go:build linux

package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// proxyBulk is what TestProxy moves through the proxy each way.
const proxyBulk = 1 << 30

// closeWriter is the half-close *net.TCPConn has; a proxy needs it to pass
// an EOF on without dropping the other direction.
type closeWriter interface{ CloseWrite() error }

// proxy accepts on ln and, for each connection, dials upstream with dial
// and copies both ways with io.Copy, passing each EOF on with CloseWrite: the
// smallest TCP proxy a Go programmer writes. Errors go to errs. It returns
// when ln is closed and every connection it served has ended.
func proxy(ln net.Listener, dial func(context.Context, string, string) (net.Conn, error), upstream string, errs chan<- error) {
	var wg sync.WaitGroup
	defer wg.Wait()
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				report(fmt.Errorf("proxy: Accept: %w", err))
			}
			return
		}
		wg.Go(func() {
			defer c.Close()
			up, err := dial(context.Background(), "tcp", upstream)
			if err != nil {
				report(fmt.Errorf("proxy: dialing upstream: %w", err))
				return
			}
			defer up.Close()
			var inner sync.WaitGroup
			pipe := func(dst, src net.Conn, name string) {
				if _, err := io.Copy(dst, src); err != nil {
					report(fmt.Errorf("proxy: io.Copy %s: %w", name, err))
					_ = dst.Close()
					_ = src.Close()
					return
				}
				cw, ok := dst.(closeWriter)
				if !ok {
					report(fmt.Errorf("proxy: %T has no CloseWrite", dst))
					return
				}
				if err := cw.CloseWrite(); err != nil {
					report(fmt.Errorf("proxy: CloseWrite %s: %w", name, err))
				}
			}
			inner.Go(func() { pipe(up, c, "client->upstream") })
			pipe(c, up, "upstream->client")
			inner.Wait()
		})
	}
}

// echoServer is a package net server that sends back what it reads until
// EOF, then half-closes.
func echoServer(t testing.TB) net.Listener {
	t.Helper()
	ln := listenTCP(t, netStack)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	return ln
}

// TestProxy runs an io.Copy proxy on each stack (its listener and its
// upstream dial) between a package net client and a package net echo
// server, and moves 1 GiB each way through it, byte-verified against the
// pseudo-random stream the client sent, with half-closes passed on both
// ways. A netio proxy gets three times the net proxy's time plus 10 s.
func TestProxy(t *testing.T) {
	ss := stacks(t)
	var ref time.Duration
	for _, st := range ss {
		t.Run(st.name, func(t *testing.T) {
			limit := 3*ref + 10*time.Second
			if !st.netio {
				limit = 5 * time.Minute
			}
			d := runProxy(t, st, proxyBulk, limit)
			if !st.netio {
				ref = d
			}
		})
	}
}

func runProxy(t *testing.T, st *stack, size int64, limit time.Duration) time.Duration {
	up := echoServer(t)
	ln := listenTCP(t, st)
	errs := make(chan error, 1)
	done := make(chan struct{})
	go func() { defer close(done); proxy(ln, dialer(st), up.Addr().String(), errs) }()
	t.Cleanup(func() { _ = ln.Close(); <-done })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dialing the %s proxy: %v", st.name, err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(limit))
	sent := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(c, newPRNGReader(7, size), make([]byte, 256<<10))
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		sent <- err
	}()
	v := newVerifier(7)
	got, rerr := io.CopyBuffer(v, c, make([]byte, 256<<10))
	d := time.Since(start)
	serr := <-sent
	var perr error
	select {
	case perr = <-errs:
	default:
	}
	if rerr != nil || serr != nil || got != size {
		t.Fatalf("%s: proxy moved %s of %s back in %v (limit %v): read: %v; write: %v; proxy: %v",
			st.name, mib(got), mib(size), d.Round(time.Millisecond), limit, rerr, serr, perr)
	}
	if perr != nil {
		t.Fatalf("%s: %v", st.name, perr)
	}
	t.Logf("%s proxy: %s each way, verified, in %v (%.0f MiB/s)", st.name, mib(size), d.Round(time.Millisecond), float64(size)/(1<<20)/d.Seconds())
	return d
}
