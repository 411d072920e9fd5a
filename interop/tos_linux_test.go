//go:build linux

package interop

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// tosEF is DSCP Expedited Forwarding (46) in the TOS byte: how RTP media is
// marked.
const tosEF = 0xb8

// tosReceiver is a socket with IP_RECVTOS that reports the TOS byte of what
// arrives, from the IP_TOS control message recvmsg returns: the byte on the
// wire, not what the sender's setsockopt claims.
type tosReceiver struct {
	fd  int
	raw bool // IPPROTO_TCP raw socket: sees every TCP segment, IP header included
}

func newTOSReceiver(t testing.TB, raw bool) *tosReceiver {
	t.Helper()
	var fd int
	var err error
	if raw {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if errors.Is(err, unix.EPERM) {
			skipOrFail(t, "a raw IPPROTO_TCP socket to see TCP segments' TOS needs CAP_NET_RAW: %v", err)
		}
	} else {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		t.Fatalf("receiver socket: %v", err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTOS, 1); err != nil {
		t.Fatalf("receiver IP_RECVTOS: %v", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000}); err != nil {
		t.Fatalf("receiver SO_RCVTIMEO: %v", err)
	}
	if !raw {
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatalf("receiver bind: %v", err)
		}
	}
	return &tosReceiver{fd: fd, raw: raw}
}

func (r *tosReceiver) addr(t testing.TB) netip.AddrPort {
	sa, err := unix.Getsockname(r.fd)
	if err != nil {
		t.Fatalf("receiver getsockname: %v", err)
	}
	in := sa.(*unix.SockaddrInet4)
	return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port))
}

// tosOf waits up to 5 s for a datagram (or, raw, a TCP segment whose
// payload is payload) and returns its TOS from the IP_TOS control message.
func (r *tosReceiver) tosOf(payload string) (int, error) {
	buf := make([]byte, 65536)
	oob := make([]byte, unix.CmsgSpace(4)*4)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, oobn, _, _, err := unix.Recvmsg(r.fd, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("recvmsg: %w", err)
		}
		data := buf[:n]
		if r.raw {
			// IPv4 header, then the TCP header, then the payload.
			if n < 20 {
				continue
			}
			ihl := int(data[0]&0x0f) * 4
			if n < ihl+20 {
				continue
			}
			doff := int(data[ihl+12]>>4) * 4
			if n < ihl+doff {
				continue
			}
			data = data[ihl+doff:]
		}
		if string(data) != payload {
			continue
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return 0, fmt.Errorf("parsing control messages: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TOS && len(m.Data) >= 1 {
				return int(m.Data[0]), nil
			}
		}
		return 0, errors.New("no IP_TOS control message with IP_RECVTOS set")
	}
	return 0, fmt.Errorf("no packet carrying %q within 5s", payload)
}

// TestTOS marks sockets EF with golang.org/x/net/ipv4 SetTOS, as a media
// server does, and checks the TOS byte on the wire with IP_RECVTOS: a
// dialed UDP conn (ipv4.NewConn), a ListenPacket conn (ipv4.NewPacketConn),
// and a dialed and an accepted TCP conn (ipv4.NewConn).
func TestTOS(t *testing.T) {
	ss := stacks(t)
	for _, st := range ss {
		t.Run(st.name, func(t *testing.T) {
			t.Run("udp-dial", func(t *testing.T) {
				r := newTOSReceiver(t, false)
				c, err := dialer(st)(context.Background(), "udp", r.addr(t).String())
				if err != nil {
					t.Fatalf("%s: Dial udp: %v", st.name, err)
				}
				defer c.Close()
				checkTOS(t, st, "UDP Dial", ipv4.NewConn(c), r, func(p []byte) error { _, err := c.Write(p); return err })
			})
			t.Run("udp-listenpacket", func(t *testing.T) {
				r := newTOSReceiver(t, false)
				pc := listenUDP(t, st)
				to := net.UDPAddrFromAddrPort(r.addr(t))
				checkTOS(t, st, "UDP ListenPacket", ipv4.NewPacketConn(pc), r, func(p []byte) error { _, err := pc.WriteTo(p, to); return err })
			})
			t.Run("tcp-dial", func(t *testing.T) {
				r := newTOSReceiver(t, true)
				ln := listenTCP(t, netStack)
				go drain(ln)
				c, err := dialer(st)(context.Background(), "tcp", ln.Addr().String())
				if err != nil {
					t.Fatalf("%s: Dial tcp: %v", st.name, err)
				}
				defer c.Close()
				checkTOS(t, st, "TCP Dial", ipv4.NewConn(c), r, func(p []byte) error { _, err := c.Write(p); return err })
			})
			t.Run("tcp-accept", func(t *testing.T) {
				r := newTOSReceiver(t, true)
				ln := listenTCP(t, st)
				peer, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer peer.Close()
				c, err := ln.Accept()
				if err != nil {
					t.Fatalf("%s: Accept: %v", st.name, err)
				}
				defer c.Close()
				checkTOS(t, st, "TCP Accept", ipv4.NewConn(c), r, func(p []byte) error { _, err := c.Write(p); return err })
			})
		})
	}
}

// tosSetter is what ipv4.Conn and ipv4.PacketConn share.
type tosSetter interface {
	SetTOS(int) error
	TOS() (int, error)
}

func checkTOS(t *testing.T, st *stack, what string, c tosSetter, r *tosReceiver, write func([]byte) error) {
	t.Helper()
	if err := c.SetTOS(tosEF); err != nil {
		t.Fatalf("%s: %s: x/net/ipv4 SetTOS(%#x): %v (x/net/ipv4 reaches the socket only through syscall.Conn's SyscallConn)", st.name, what, tosEF, err)
	}
	if got, err := c.TOS(); err != nil || got != tosEF {
		t.Errorf("%s: %s: x/net/ipv4 TOS() = %#x, %v; want %#x", st.name, what, got, err, tosEF)
	}
	var nonce [8]byte
	binary.BigEndian.PutUint64(nonce[:], uint64(time.Now().UnixNano()))
	payload := fmt.Sprintf("tos-probe-%x", nonce)
	if err := write([]byte(payload)); err != nil {
		t.Fatalf("%s: %s: write after SetTOS: %v", st.name, what, err)
	}
	tos, err := r.tosOf(payload)
	if err != nil {
		t.Fatalf("%s: %s: receiver: %v", st.name, what, err)
	}
	if tos != tosEF {
		t.Errorf("%s: %s: TOS on the wire %#x, want %#x (EF)", st.name, what, tos, tosEF)
	}
}
