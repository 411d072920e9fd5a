//go:build linux

package netio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	goruntime "runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

// The readiness mirror's tests run with mirrorHot at 0, so that every Read
// that may park on the mirror does (in production only a busy set's do).

func forceMirror(t *testing.T) {
	t.Helper()
	if ring.Available() == nil && defaultSockets().mirrorFor() == nil {
		testenv.NeedFeature(t, "the readiness mirror (an io_uring RECV with MSG_DONTWAIT that completes at once)", false)
	}
	old := mirrorHot.Swap(0)
	t.Cleanup(func() { mirrorHot.Store(old) })
}

// parkedOnMirror waits until c's Read is parked on its set's mirror.
func parkedOnMirror(t *testing.T, c net.Conn) {
	t.Helper()
	tc := c.(*netTCPConn)
	waitFor(t, func() bool {
		mc := tc.fd.mc.Load()
		return mc != nil && parked(mc.state.Load())
	}, "a Read parked on the mirror")
}

// TestMirrorEchoKeepsBytesInOrder: 16 connections echo 300 messages each of
// 1 B to 8 KiB through a server whose Reads park on the mirror; every byte
// comes back in order, and the mirror's harvester did reads (on io_uring;
// the fallback is package net's and has none).
func TestMirrorEchoKeepsBytesInOrder(t *testing.T) {
	forceMirror(t)
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			before := StatsOf(nil).MirrorReads
			ln := listenTCP(t, m.cfg)
			var wg sync.WaitGroup
			const conns, msgs = 16, 300
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range conns {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer c.Close()
						buf := make([]byte, 4096)
						for {
							n, err := c.Read(buf)
							if n > 0 {
								if _, werr := c.Write(buf[:n]); werr != nil {
									return
								}
							}
							if err != nil {
								return
							}
						}
					}()
				}
			}()
			errs := make(chan error, conns)
			for i := range conns {
				go func() {
					errs <- func() error {
						c, err := net.Dial("tcp4", ln.Addr().String())
						if err != nil {
							return err
						}
						defer c.Close()
						_ = c.SetDeadline(time.Now().Add(60 * time.Second))
						r := rand.New(rand.NewPCG(uint64(i), 1))
						for range msgs {
							msg := make([]byte, 1+r.IntN(8192))
							for j := range msg {
								msg[j] = byte(r.Uint32())
							}
							if _, err := c.Write(msg); err != nil {
								return err
							}
							got := make([]byte, len(msg))
							if _, err := io.ReadFull(c, got); err != nil {
								return err
							}
							if !bytes.Equal(got, msg) {
								return errors.New("echo differs from what was sent")
							}
						}
						return nil
					}()
				}()
			}
			for range conns {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			ln.Close()
			wg.Wait()
			reads := StatsOf(nil).MirrorReads - before
			t.Logf("reads served by the mirror: %d", reads)
			if m.cfg == nil && reads == 0 {
				t.Error("no Read was served by the mirror")
			}
		})
	}
}

// TestMirrorParkedReadWakes: a Read parked on the mirror returns the data
// that arrives, times out when a deadline is set while it waits, and
// returns net.ErrClosed when the connection is closed meanwhile; after
// SyscallConn it reads through Go's poller and still gets its data.
func TestMirrorParkedReadWakes(t *testing.T) {
	needRing(t)
	forceMirror(t)
	// primed returns a net-face connection whose last Read returned data,
	// its package net peer, and a Read of it running in the background.
	primed := func(t *testing.T) (srv net.Conn, cli *net.TCPConn, done chan error, got *[]byte) {
		srv, cli = tcpPair(t, nil)
		if _, err := cli.Write([]byte("first")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, mirrorMinRead)
		if n, err := srv.Read(buf); err != nil || string(buf[:n]) != "first" {
			t.Fatalf("first Read = %q, %v", buf[:n], err)
		}
		done = make(chan error, 1)
		var b []byte
		go func() {
			n, err := srv.Read(buf)
			b = buf[:n]
			done <- err
		}()
		return srv, cli, done, &b
	}
	wait := func(t *testing.T, done chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("the parked Read did not return within 10s")
			return nil
		}
	}

	t.Run("data", func(t *testing.T) {
		before := StatsOf(nil).MirrorReads
		srv, cli, done, got := primed(t)
		parkedOnMirror(t, srv)
		if _, err := cli.Write([]byte("second")); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, done); err != nil || string(*got) != "second" {
			t.Fatalf("parked Read = %q, %v; want second", *got, err)
		}
		if StatsOf(nil).MirrorReads == before {
			t.Error("the harvester did not read for the parked Read")
		}
	})
	for _, dl := range []struct {
		name     string
		deadline func() time.Time
	}{
		{"deadline", func() time.Time { return time.Now().Add(20 * time.Millisecond) }},
		{"past-deadline", func() time.Time { return time.Unix(1, 0) }},
	} {
		t.Run(dl.name, func(t *testing.T) {
			srv, _, done, _ := primed(t)
			parkedOnMirror(t, srv)
			if err := srv.SetReadDeadline(dl.deadline()); err != nil {
				t.Fatal(err)
			}
			if err := wait(t, done); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("parked Read, then SetReadDeadline (%s) = %v; want a timeout", dl.name, err)
			}
		})
	}
	t.Run("close", func(t *testing.T) {
		srv, _, done, _ := primed(t)
		parkedOnMirror(t, srv)
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, done); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("parked Read after Close = %v; want net.ErrClosed", err)
		}
	})
	t.Run("peer-close", func(t *testing.T) {
		srv, cli, done, _ := primed(t)
		parkedOnMirror(t, srv)
		cli.Close()
		if err := wait(t, done); err != io.EOF {
			t.Fatalf("parked Read after the peer closed = %v; want io.EOF", err)
		}
	})
	t.Run("syscallconn", func(t *testing.T) {
		srv, cli, done, got := primed(t)
		parkedOnMirror(t, srv)
		if _, err := srv.(interface {
			SyscallConn() (syscall.RawConn, error)
		}).SyscallConn(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			return !parked(srv.(*netTCPConn).fd.mc.Load().state.Load())
		}, "the nudged Read to leave the mirror")
		if _, err := cli.Write([]byte("third")); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, done); err != nil || string(*got) != "third" {
			t.Fatalf("Read after SyscallConn = %q, %v; want third", *got, err)
		}
	})
}

// TestMirrorReadParksWithItsDeadline: a Read with a read deadline parks on
// the mirror too. One whose deadline comes times out at it, not before;
// the mirror's timer firing for it sends another connection's Read, whose
// deadline is later, to wait in Go's poller, where it still gets its data;
// and a Read whose deadline never comes is read for by the harvester.
func TestMirrorReadParksWithItsDeadline(t *testing.T) {
	needRing(t)
	forceMirror(t)
	primed := func(t *testing.T) (net.Conn, *net.TCPConn) {
		srv, cli := tcpPair(t, nil)
		if _, err := cli.Write([]byte("first")); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Read(make([]byte, mirrorMinRead)); err != nil {
			t.Fatal(err)
		}
		return srv, cli
	}
	type result struct {
		got string
		err error
		at  time.Time
	}
	read := func(c net.Conn) chan result {
		done := make(chan result, 1)
		go func() {
			buf := make([]byte, mirrorMinRead)
			n, err := c.Read(buf)
			done <- result{string(buf[:n]), err, time.Now()}
		}()
		return done
	}
	parkedWithDeadline := func(c net.Conn) {
		t.Helper()
		waitFor(t, func() bool {
			mc := c.(*netTCPConn).fd.mc.Load()
			return mc != nil && mc.state.Load() == mWaitingDL
		}, "a Read parked on the mirror with its deadline")
	}

	late, lateCli := primed(t)
	if err := late.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	lateDone := read(late)
	parkedWithDeadline(late)

	soon, _ := primed(t)
	deadline := time.Now().Add(50 * time.Millisecond)
	if err := soon.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	soonDone := read(soon)
	r := <-soonDone
	if !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with a deadline = %q, %v; want a timeout", r.got, r.err)
	}
	if r.at.Before(deadline) {
		t.Errorf("Read timed out %v before its deadline", deadline.Sub(r.at))
	}
	// The timer fired for soon: late waits on in Go's poller.
	waitFor(t, func() bool {
		return !parked(late.(*netTCPConn).fd.mc.Load().state.Load())
	}, "the later Read to leave the mirror when the timer fired")
	if _, err := lateCli.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	if r := <-lateDone; r.err != nil || r.got != "second" {
		t.Fatalf("Read with a later deadline = %q, %v; want second", r.got, r.err)
	}

	// Parked with a deadline that does not come, it is read for. (A new
	// connection: late's next Read may go through the poller once, if the
	// mirror saw the edge of "second" that the poller's read spent.)
	c, cli := primed(t)
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := StatsOf(nil).MirrorReads
	done := read(c)
	parkedWithDeadline(c)
	if _, err := cli.Write([]byte("third")); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.got != "third" {
		t.Fatalf("Read with a deadline = %q, %v; want third", r.got, r.err)
	}
	if StatsOf(nil).MirrorReads == before {
		t.Error("the harvester did not read for the Read parked with a deadline")
	}
}

// TestMirrorReadAfterPeerCloseWithDataEndsInEOF: when the peer's last data
// and its FIN arrive together, one epoll edge announces both and a read
// stops at the FIN; the Read after the one that returns the data must end
// in EOF at once, not park for an edge that will not come (nettest's
// BasicIO hung that way under load, on 6.12 and on 6.18).
func TestMirrorReadAfterPeerCloseWithDataEndsInEOF(t *testing.T) {
	onBothPaths(t, func(t *testing.T, srv net.Conn, cli *net.TCPConn) {
		buf := make([]byte, 4096)
		if _, err := cli.Write([]byte("first")); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Read(buf); err != nil { // drained: the next Read may park
			t.Fatal(err)
		}
		if _, err := cli.Write([]byte("last")); err != nil {
			t.Fatal(err)
		}
		cli.Close()
		waitFor(t, func() bool { return tcpState(t, srv) == unix.BPF_TCP_CLOSE_WAIT }, "the FIN to arrive")
		done := make(chan string, 1)
		go func() {
			var got []byte
			for {
				n, err := srv.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					done <- fmt.Sprintf("%q, %v", got, err)
					return
				}
			}
		}()
		select {
		case r := <-done:
			if want := fmt.Sprintf("%q, %v", "last", io.EOF); r != want {
				t.Fatalf("Reads = %s, want %s", r, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no EOF within 10s of the peer's close")
		}
	})
}

// onBothPaths runs f with a net-face connection and its package net peer,
// on io_uring with every Read that may park on the mirror parked there,
// and on the package net fallback.
func onBothPaths(t *testing.T, f func(t *testing.T, srv net.Conn, cli *net.TCPConn)) {
	forceMirror(t)
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			srv, cli := tcpPair(t, m.cfg)
			f(t, srv, cli)
		})
	}
}

// tcpState is c's TCP state (TCP_INFO), read without handing out the
// socket (SyscallConn would keep a net-face Read off the mirror).
func tcpState(t *testing.T, c net.Conn) int {
	t.Helper()
	var state int
	get := func(s int) error {
		info, err := unix.GetsockoptTCPInfo(s, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			state = int(info.State)
		}
		return err
	}
	var err error
	if tc, ok := c.(*netTCPConn); ok {
		err = tc.fd.control(get)
	} else {
		var rc syscall.RawConn
		if rc, err = c.(*net.TCPConn).SyscallConn(); err == nil {
			err = rc.Control(func(s uintptr) { err = get(int(s)) })
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// abortRead is net/http's background read between requests: a Read of
// b started in another goroutine, then ended by a past read deadline
// (after the response is written, in net/http); it returns what that Read
// got and its error.
func abortRead(c net.Conn, b []byte, between func()) (int, error) {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := c.Read(b)
		done <- result{n, err}
	}()
	between()
	_ = c.SetReadDeadline(time.Unix(1, 0))
	r := <-done
	_ = c.SetReadDeadline(time.Time{})
	return r.n, r.err
}

// TestMirrorReadAfterAbortedReadParks: a Read that a deadline ended before
// it got anything (net/http's background read) leaves the connection's
// next Read eligible for the mirror, so the next request's Read parks
// there without a read and the harvester reads it.
func TestMirrorReadAfterAbortedReadParks(t *testing.T) {
	needRing(t)
	forceMirror(t)
	srv, cli := tcpPair(t, nil)
	buf := make([]byte, 4096)
	if _, err := cli.Write([]byte("request 1")); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Read(buf); err != nil || string(buf[:n]) != "request 1" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	for _, size := range []int{1, mirrorMinRead} { // off the mirror, then on it
		if n, err := abortRead(srv, make([]byte, size), func() {}); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("aborted %d-byte Read = %d, %v; want a timeout", size, n, err)
		}
	}
	before := StatsOf(nil).MirrorReads
	done := make(chan error, 1)
	var got []byte
	go func() {
		n, err := srv.Read(buf)
		got = buf[:n]
		done <- err
	}()
	parkedOnMirror(t, srv)
	if _, err := cli.Write([]byte("request 2")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || string(got) != "request 2" {
		t.Fatalf("Read = %q, %v; want request 2", got, err)
	}
	if StatsOf(nil).MirrorReads == before {
		t.Error("the harvester did not read the second request")
	}
}

// TestAbortedReadsLoseNothing: requests arrive while the server aborts its
// background read (before, during and after the past deadline), as a
// pipelining or fast client's do against net/http; every byte reaches a
// Read, whether the background read took it or the next Read did, and no
// Read waits for an edge that an aborted read spent.
func TestAbortedReadsLoseNothing(t *testing.T) {
	onBothPaths(t, func(t *testing.T, srv net.Conn, cli *net.TCPConn) {
		const rounds = 300
		msg := func(i int) []byte { return fmt.Appendf(nil, "req%05d", i) }
		errc := make(chan error, 1)
		go func() {
			err := func() error {
				_ = cli.SetDeadline(time.Now().Add(20 * time.Second))
				reply := make([]byte, 8)
				for i := range rounds {
					if _, err := cli.Write(msg(i)); err != nil {
						return err
					}
					if _, err := io.ReadFull(cli, reply); err != nil {
						return fmt.Errorf("reply %d: %w", i, err)
					}
				}
				return nil
			}()
			if err != nil {
				srv.Close() // a server Read that waits for a spent edge returns
			}
			errc <- err
		}()
		r := rand.New(rand.NewPCG(7, 7))
		buf := make([]byte, 4096)
		var pending []byte
		for i := range rounds {
			for len(pending) < 8 {
				n, err := srv.Read(buf)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				pending = append(pending, buf[:n]...)
			}
			if want := msg(i); !bytes.Equal(pending[:8], want) {
				t.Fatalf("request %d = %q, want %q", i, pending[:8], want)
			}
			pending = pending[8:]
			bg := make([]byte, []int{1, mirrorMinRead}[i%2])
			spin := r.IntN(3)
			n, err := abortRead(srv, bg, func() {
				// The reply lets the client send the next request,
				// which then races the abort.
				if _, err := srv.Write([]byte("reply...")); err != nil {
					t.Error(err)
				}
				for range spin {
					goruntime.Gosched()
				}
			})
			if n == 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("round %d: aborted Read = %d, %v", i, n, err)
			}
			pending = append(pending, bg[:n]...)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
}

// TestMirrorReadAllocatesNothing: a round trip whose server Read parks on
// the mirror and is read for by the harvester allocates nothing, with or
// without a read deadline set before each Read.
func TestMirrorReadAllocatesNothing(t *testing.T) {
	needRing(t)
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	forceMirror(t)
	for _, withDeadline := range []bool{false, true} {
		t.Run(fmt.Sprintf("deadline=%v", withDeadline), func(t *testing.T) {
			srv, cli := tcpPair(t, nil)
			go func() {
				buf := make([]byte, 512)
				for {
					if withDeadline { // as servers with an idle timeout do
						_ = srv.SetReadDeadline(time.Now().Add(time.Minute))
					}
					n, err := srv.Read(buf)
					if err != nil {
						return
					}
					if _, err := srv.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
			msg, got := make([]byte, 64), make([]byte, 64)
			rt := func() {
				if _, err := cli.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(cli, got); err != nil {
					t.Fatal(err)
				}
			}
			rt()
			rt()
			before := StatsOf(nil).MirrorReads
			if n := testing.AllocsPerRun(200, rt); n != 0 {
				t.Errorf("%v allocations per round trip through the mirror, want 0", n)
			}
			if StatsOf(nil).MirrorReads == before {
				t.Error("no Read was served by the mirror")
			}
		})
	}
}

// TestNettestConnTCP4Mirror is nettest's net.Conn contract with every
// eligible Read parked on the mirror.
func TestNettestConnTCP4Mirror(t *testing.T) {
	needRing(t)
	forceMirror(t)
	nettest.TestConn(t, makePipe("tcp", "127.0.0.1:0", nil))
}
