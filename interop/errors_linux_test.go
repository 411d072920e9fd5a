//go:build linux

package interop

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestErrorShapes provokes the errors that libraries branch on (net/http
// on net.ErrClosed from Accept, gRPC and quic-go on timeouts, every reader
// on a bare io.EOF) and requires netio's to have package net's shape: the
// same chain of wrapped types, operations and errnos, the same sentinels
// under errors.Is, the same Timeout(), and the same text up to addresses.
func TestErrorShapes(t *testing.T) {
	ss := stacks(t)
	cases := []struct {
		name string
		run  func(t *testing.T, st *stack) error
	}{
		{"dial-refused", func(t *testing.T, st *stack) error {
			ln := listenTCP(t, netStack)
			addr := ln.Addr().String()
			_ = ln.Close()
			c, err := st.dial(context.Background(), "tcp", addr)
			if err == nil {
				_ = c.Close()
			}
			return err
		}},
		{"read-timeout", func(t *testing.T, st *stack) error {
			c, _ := tcpPair(t, st)
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := c.Read(make([]byte, 10))
			return err
		}},
		// net/http wakes its background reader with a deadline in the past
		// (connReader.abortPendingRead); package net times out before it
		// looks at data already queued. The 50 ms only gives the byte time
		// to arrive: if it has not, the read times out on either stack.
		{"read-past-deadline-with-data-queued", func(t *testing.T, st *stack) error {
			c, peer := tcpPair(t, st)
			if _, err := peer.Write([]byte("x")); err != nil {
				return err
			}
			time.Sleep(50 * time.Millisecond)
			_ = c.SetReadDeadline(time.Now().Add(-time.Second))
			n, err := c.Read(make([]byte, 10))
			if err == nil {
				return fmt.Errorf("read %d queued bytes despite a deadline in the past", n)
			}
			return err
		}},
		{"read-eof", func(t *testing.T, st *stack) error {
			c, peer := tcpPair(t, st)
			_ = peer.Close()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := c.Read(make([]byte, 10))
			return err
		}},
		{"read-after-close", func(t *testing.T, st *stack) error {
			c, _ := tcpPair(t, st)
			_ = c.Close()
			_, err := c.Read(make([]byte, 10))
			return err
		}},
		{"write-after-close", func(t *testing.T, st *stack) error {
			c, _ := tcpPair(t, st)
			_ = c.Close()
			_, err := c.Write([]byte("x"))
			return err
		}},
		{"close-twice", func(t *testing.T, st *stack) error {
			c, _ := tcpPair(t, st)
			_ = c.Close()
			return c.Close()
		}},
		{"accept-after-close", func(t *testing.T, st *stack) error {
			ln := listenTCP(t, st)
			_ = ln.Close()
			_, err := ln.Accept()
			return err
		}},
		{"accept-during-close", func(t *testing.T, st *stack) error {
			ln := listenTCP(t, st)
			errc := make(chan error, 1)
			go func() { _, err := ln.Accept(); errc <- err }()
			time.Sleep(20 * time.Millisecond) // let Accept block; either way the error must be the same
			_ = ln.Close()
			select {
			case err := <-errc:
				return err
			case <-time.After(5 * time.Second):
				return fmt.Errorf("Accept still blocked 5s after the listener closed")
			}
		}},
		{"udp-readfrom-timeout", func(t *testing.T, st *stack) error {
			pc := listenUDP(t, st)
			_ = pc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, _, err := pc.ReadFrom(make([]byte, 10))
			return err
		}},
		{"udp-readfrom-after-close", func(t *testing.T, st *stack) error {
			pc := listenUDP(t, st)
			_ = pc.Close()
			_, _, err := pc.ReadFrom(make([]byte, 10))
			return err
		}},
		{"udp-writeto-after-close", func(t *testing.T, st *stack) error {
			pc := listenUDP(t, st)
			to := pc.LocalAddr()
			_ = pc.Close()
			_, err := pc.WriteTo([]byte("x"), to)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ref string
			for _, st := range ss {
				shape := errShape(tc.run(t, st))
				t.Logf("%s: %s", st.name, shape)
				if !st.netio {
					ref = shape
					continue
				}
				if shape != ref {
					t.Errorf("%s: %s: error shape differs from package net's:\n netio: %s\n   net: %s", st.name, tc.name, shape, ref)
				}
			}
		})
	}
}

// acceptFrom dials ln (st's listener) with package net and returns the
// connection ln accepted; both ends close when t ends.
func acceptFrom(t *testing.T, st *stack, ln net.Listener) net.Conn {
	t.Helper()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			acc <- c
		}
		close(acc)
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Close() })
	accepted, ok := <-acc
	if !ok {
		t.Fatalf("%s: Accept failed", st.name)
	}
	t.Cleanup(func() { _ = accepted.Close() })
	return accepted
}

// tcpPair returns a connection made by st (dialed, to a package net
// listener) and the package net end it is connected to; both close when t
// ends.
func tcpPair(t *testing.T, st *stack) (c, peer net.Conn) {
	t.Helper()
	ln := listenTCP(t, netStack)
	acc := make(chan net.Conn, 1)
	go func() {
		a, err := ln.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- a
	}()
	c, err := dialer(st)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("%s: Dial: %v", st.name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	peer, ok := <-acc
	if !ok {
		t.Fatalf("accept failed")
	}
	t.Cleanup(func() { _ = peer.Close() })
	return c, peer
}
