//go:build linux

package echoserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ringwire/ringwire/netio"
)

// TestHandlerNonReaderDoesNotStarveLoop: a peer that sends many small
// messages and never reads its echo must not take the loop's provided
// buffers from the other connections (Config.PauseLeases): a second
// connection on the same loop keeps getting its echo.
func TestHandlerNonReaderDoesNotStarveLoop(t *testing.T) {
	// Without the PauseLeases bound (PauseLeases: 1 << 30) B's echo never
	// arrives: A's send queue holds every buffer of the ring.
	for _, leases := range []int{0, 8} {
		t.Run(fmt.Sprint("leases=", leases), func(t *testing.T) {
			s := start(t, &Config{Loops: 1, PauseLeases: leases, onOpen: func(c *netio.Conn) {
				// A small send buffer: the sends to A block early.
				_ = syscall.SetsockoptInt(c.FD(), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
			}})
			// A's receive buffer is small from the SYN on, so that the
			// server's sends to it block early.
			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
				return errors.Join(err, serr)
			}}
			a, err := d.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()

			// A: small messages, one segment each, whose echo nobody reads:
			// once A's receive buffer and the server's send buffer are full,
			// every further one waits in the server's send queue with its
			// provided buffer (16 KiB for 64 bytes).
			msg := make([]byte, 64)
			const unread = 1500
			for range unread {
				// Each write may take 5s: a deadline for all of them
				// failed under an emulator, where 1500 of them take
				// longer than that without any blocking.
				_ = a.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := a.Write(msg); err != nil {
					t.Fatalf("write on A: %v", err)
				}
				time.Sleep(100 * time.Microsecond)
			}
			time.Sleep(20 * time.Millisecond)
			// B: one ping-pong, which must not wait for buffers.
			got := make([]byte, 4)
			_ = b.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := b.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(b, got); err != nil {
				st := s.Stats()
				t.Fatalf("echo on B after %d unread messages on A: %v; loop ENOBUFS %d, starved %d",
					unread, err, st.Total().ENOBUFS, st.Net.Starved)
			}
			st := s.Stats()
			t.Logf("ENOBUFS %d, starved %d", st.Total().ENOBUFS, st.Net.Starved)
		})
	}
}
