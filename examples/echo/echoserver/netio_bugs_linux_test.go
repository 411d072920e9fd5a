//go:build linux

package echoserver

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ringwire/ringwire/netio"
	"github.com/ringwire/ringwire/runtime"
)

// TestNetConnUnreadSmallMessagesStarveLoop pins a netio net.Conn bug: a
// connection whose application does not Read keeps one provided buffer
// (16 KiB) per received segment, however small, and pauses only when the
// bytes reach Config.ReadAhead (256 KiB). 300 unread 64-byte messages
// therefore hold more than the loop's whole buffer ring (256 buffers) while
// counting 19 KiB, and every other connection of the loop is starved: its
// receive ends with ENOBUFS and is re-armed only when buffers come back,
// which they never do. The echo on the second connection never arrived.
// Fixed by netio's cap on the buffers that connections whose readers are not
// reading may hold (a share of the loop's group).
func TestNetConnUnreadSmallMessagesStarveLoop(t *testing.T) {
	skipWithoutUring(t)
	rt, err := runtime.New(&runtime.Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	lc := netio.ListenConfig{Runtime: rt}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	accepted := make(chan net.Conn, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	// Connection A: the server never reads it.
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sa := <-accepted
	defer sa.Close()
	msg := make([]byte, 64)
	const unread = 300
	for range unread {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Microsecond) // one segment, one receive completion each
	}
	time.Sleep(50 * time.Millisecond)

	// Connection B: an ordinary echo.
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sb := <-accepted
	defer sb.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1024)
		for {
			n, err := sb.Read(buf)
			if n > 0 {
				if _, err := sb.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	_ = b.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := b.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	_, rerr := io.ReadFull(b, got)
	var enobufs uint64
	for _, s := range rt.Stats() {
		enobufs += s.ENOBUFS
	}
	st := netio.StatsOf(rt)
	if rerr != nil {
		t.Fatalf("netio: %d unread 64-byte messages on one net.Conn starve another connection of the loop: "+
			"its echo did not arrive within 2s (%v); ENOBUFS CQEs %d, starved receives %d",
			unread, rerr, enobufs, st.Starved)
	}
	t.Logf("echo arrived; ENOBUFS %d, starved %d", enobufs, st.Starved)
}

// TestNetConnCloseReturns pins a netio bug: closing an accepted net.Conn
// whose Write never used the fd (no goroutine inside send(2)) must return.
// fdGuard.close (netio/fdguard_linux.go) closed the fd but never closed
// g.done, which tcpConn.Close waits for.
func TestNetConnCloseReturns(t *testing.T) {
	skipWithoutUring(t)
	rt, err := runtime.New(&runtime.Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	lc := netio.ListenConfig{Runtime: rt}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sc.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("netio net.Conn Close did not return within 3s (fdGuard.close never closes done)")
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read after server Close: %v, want EOF", err)
	}
}
