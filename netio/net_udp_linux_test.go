//go:build linux

package netio

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

// The table below follows Go's net/timeout_test.go (TestReadFromTimeout,
// TestWriteToTimeout) and net/udpsock_test.go; each case runs on the
// io_uring path and on the forced fallback, which checks the test itself.

// packetModes are the two paths a net-face test runs on: netio's own
// sockets ("ring") and the package net fallback. Where io_uring is
// unavailable only the fallback runs (and under RINGWIRE_STRICT=1 the test
// fails, as every test that needs io_uring does).
func packetModes(t *testing.T) []struct {
	name string
	cfg  *Config
} {
	t.Helper()
	modes := []struct {
		name string
		cfg  *Config
	}{
		{name: "ring", cfg: nil},
		{name: "fallback", cfg: &Config{ForceFallback: true}},
	}
	if err := ring.Available(); err != nil {
		if testenv.Strict() {
			testenv.NeedIOUring(t, err)
		}
		t.Logf("only the package net fallback runs: %v", err)
		return modes[1:]
	}
	return modes
}

// listenTCP is a net-face TCP listener of cfg on an IPv4 loopback port,
// closed when the test ends.
func listenTCP(t *testing.T, cfg *Config) net.Listener {
	t.Helper()
	lc := ListenConfig{Config: cfg}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func listenPacket(t *testing.T, cfg *Config, network, addr string) net.PacketConn {
	t.Helper()
	lc := ListenConfig{Config: cfg}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

func TestPacketConnReadFromTimeout(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
	}{
		{name: "past", timeout: -5 * time.Second},
		{name: "now", timeout: 0},
		{name: "50ms", timeout: 50 * time.Millisecond},
	}
	for _, m := range packetModes(t) {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				pc := listenPacket(t, m.cfg, "udp", "127.0.0.1:0")
				deadline := time.Now().Add(tt.timeout)
				if err := pc.SetReadDeadline(deadline); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 2; i++ {
					n, addr, err := pc.ReadFrom(make([]byte, 16))
					if n != 0 || addr != nil || !isTimeout(err) {
						t.Fatalf("#%d: ReadFrom = %d, %v, %v; want 0, nil, timeout", i, n, addr, err)
					}
					var oe *net.OpError
					if !errors.As(err, &oe) || oe.Op != "read" {
						t.Fatalf("#%d: error %T %v is not a read *net.OpError", i, err, err)
					}
				}
				// Against the deadline itself: a clock read after setting it
				// could be late enough (under QEMU) to make a ReadFrom that
				// waited for the deadline look early.
				if now := time.Now(); tt.timeout > 0 && now.Before(deadline) {
					t.Fatalf("returned %v before the deadline", deadline.Sub(now))
				}
			})
		}
	}
}

func TestPacketConnWriteToTimeout(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			pc := listenPacket(t, m.cfg, "udp", "127.0.0.1:0")
			if err := pc.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				n, err := pc.WriteTo([]byte("x"), pc.LocalAddr())
				if n != 0 || !isTimeout(err) {
					t.Fatalf("#%d: WriteTo = %d, %v; want 0, timeout", i, n, err)
				}
			}
			if err := pc.SetWriteDeadline(time.Time{}); err != nil {
				t.Fatal(err)
			}
			if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); err != nil {
				t.Fatalf("after clearing the deadline: %v", err)
			}
		})
	}
}

func TestPacketConnDeadlineMovedWhileBlocked(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			pc := listenPacket(t, m.cfg, "udp", "127.0.0.1:0")
			if err := pc.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				_, _, err := pc.ReadFrom(make([]byte, 8))
				errc <- err
			}()
			time.Sleep(20 * time.Millisecond)
			start := time.Now()
			if err := pc.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !isTimeout(err) {
					t.Fatalf("ReadFrom: %v, want timeout", err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("took %v after the deadline moved", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ReadFrom still blocked 5s after the deadline moved to 30ms")
			}
		})
	}
}

func TestPacketConnCloseUnblocksReadFrom(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			lc := ListenConfig{Config: m.cfg}
			pc, err := lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				_, _, err := pc.ReadFrom(make([]byte, 8))
				errc <- err
			}()
			time.Sleep(20 * time.Millisecond)
			if err := pc.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not unblock ReadFrom")
			}
			if _, _, err := pc.ReadFrom(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("ReadFrom on closed: %v", err)
			}
			if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("WriteTo on closed: %v", err)
			}
			if err := pc.Close(); err == nil {
				t.Fatal("second Close returned nil")
			}
		})
	}
}

func TestPacketConnRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		network string
		addr    string
		sizes   []int
	}{
		{name: "udp4", network: "udp4", addr: "127.0.0.1:0", sizes: []int{0, 1, 1200, 9000}},
		{name: "udp6", network: "udp6", addr: "[::1]:0", sizes: []int{0, 1, 1200}},
		{name: "udp", network: "udp", addr: "127.0.0.1:0", sizes: []int{5}},
	}
	for _, m := range packetModes(t) {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				a := listenPacket(t, m.cfg, tt.network, tt.addr)
				b := listenPacket(t, m.cfg, tt.network, tt.addr)
				buf := make([]byte, 65536)
				for _, size := range tt.sizes {
					msg := make([]byte, size)
					for i := range msg {
						msg[i] = byte(i)
					}
					if n, err := a.WriteTo(msg, b.LocalAddr()); err != nil || n != size {
						t.Fatalf("WriteTo(%d) = %d, %v", size, n, err)
					}
					_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
					n, from, err := b.ReadFrom(buf)
					if err != nil || n != size {
						t.Fatalf("ReadFrom = %d, %v; want %d", n, err, size)
					}
					if from.String() != a.LocalAddr().String() {
						t.Fatalf("from %v, want %v", from, a.LocalAddr())
					}
					for i := 0; i < n; i++ {
						if buf[i] != byte(i) {
							t.Fatalf("byte %d = %d", i, buf[i])
						}
					}
				}
				// A short buffer gets the head of the datagram, as in package net.
				if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				small := make([]byte, 2)
				if n, _, err := b.ReadFrom(small); err != nil || n != 2 || string(small) != "he" {
					t.Fatalf("short ReadFrom = %d %q %v", n, small, err)
				}
			})
		}
	}
}

func TestPacketConnConnected(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			srv := listenPacket(t, m.cfg, "udp", "127.0.0.1:0")
			d := Dialer{Config: m.cfg}
			c, err := d.Dial("udp", srv.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := srv.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("server ReadFrom = %q, %v", buf[:n], err)
			}
			if _, err := srv.WriteTo([]byte("pong"), from); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err = c.Read(buf)
			if err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("client Read = %q, %v", buf[:n], err)
			}
			if pc, ok := c.(net.PacketConn); ok {
				if _, err := pc.WriteTo([]byte("x"), srv.LocalAddr()); err == nil {
					t.Fatal("WriteTo on a connected socket succeeded")
				}
			}
		})
	}
}

// TestPacketConnConnRefused: a connected UDP socket that sent to a closed
// port reads ECONNREFUSED (from the ICMP port unreachable), then goes on.
func TestPacketConnConnRefused(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			closed := listenPacket(t, nil, "udp", "127.0.0.1:0")
			addr := closed.LocalAddr().String()
			closed.Close()
			d := Dialer{Config: m.cfg}
			c, err := d.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var got error
			for i := 0; i < 10 && got == nil; i++ {
				if _, err := c.Write([]byte("x")); err != nil {
					got = err
					break
				}
				_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				_, err := c.Read(make([]byte, 8))
				if err != nil && !isTimeout(err) {
					got = err
				}
			}
			if !isConnRefused(got) {
				t.Fatalf("got %v, want ECONNREFUSED", got)
			}
			var oe *net.OpError
			if !errors.As(got, &oe) {
				t.Fatalf("error %T is not *net.OpError", got)
			}
		})
	}
}

func TestPacketConnConcurrentReadWrite(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			a := listenPacket(t, m.cfg, "udp", "127.0.0.1:0")
			b := listenPacket(t, m.cfg, "udp", "127.0.0.1:0")
			const n = 200
			var wg sync.WaitGroup
			got := make(chan int, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 64)
				cnt := 0
				for {
					_ = b.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
					if _, _, err := b.ReadFrom(buf); err != nil {
						break
					}
					cnt++
					if cnt == n {
						break
					}
				}
				got <- cnt
			}()
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n/4; i++ {
						if _, err := a.WriteTo([]byte("datagram"), b.LocalAddr()); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if c := <-got; c < n*9/10 {
				t.Fatalf("received %d of %d datagrams on loopback", c, n)
			}
		})
	}
}

// TestPacketConnLateReaderGetsQueuedInOrder: datagrams that arrive while
// nobody reads wait in the socket's own receive buffer (not in the loop's
// buffers); a reader that comes late gets every one, in order.
func TestPacketConnLateReaderGetsQueuedInOrder(t *testing.T) {
	needRing(t)
	const n = 100
	pc := listenPacket(t, nil, "udp4", "127.0.0.1:0")
	tx, err := net.DialUDP("udp4", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	msg := make([]byte, 100)
	for i := range n {
		msg[0], msg[1] = byte(i), byte(i>>8)
		if _, err := tx.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := pc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 200)
	for i := range n {
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if got := int(buf[0]) | int(buf[1])<<8; k != len(msg) || got != i {
			t.Fatalf("datagram %d: got number %d (%d bytes)", i, got, k)
		}
	}
}
