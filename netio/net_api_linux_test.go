//go:build linux

package netio

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// methodDiff returns the methods of want's method set that got lacks or has
// with another signature, and the exported methods got has beyond it.
func methodDiff(got, want reflect.Type) (missing, extra []string) {
	have := map[string]reflect.Type{}
	for i := range got.NumMethod() {
		m := got.Method(i)
		have[m.Name] = m.Type
	}
	for i := range want.NumMethod() {
		m := want.Method(i)
		g, ok := have[m.Name]
		// Compare without the receiver.
		if !ok || !sameSignature(g, m.Type) {
			missing = append(missing, m.Name)
		}
		delete(have, m.Name)
	}
	for name := range have {
		extra = append(extra, name)
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

func sameSignature(a, b reflect.Type) bool {
	if a.NumIn() != b.NumIn() || a.NumOut() != b.NumOut() || a.IsVariadic() != b.IsVariadic() {
		return false
	}
	for i := 1; i < a.NumIn(); i++ {
		if a.In(i) != b.In(i) {
			return false
		}
	}
	for i := range a.NumOut() {
		if a.Out(i) != b.Out(i) {
			return false
		}
	}
	return true
}

// TestNetFaceMethodSetsMatchNet: the net face's TCP connection, UDP socket
// and TCP listener have exactly the method sets of *net.TCPConn,
// *net.UDPConn and *net.TCPListener: every method libraries look for
// (SyscallConn, ReadMsgUDP, SetKeepAliveConfig, File, ...) with the same
// signature, and nothing more (no handler callbacks).
func TestNetFaceMethodSetsMatchNet(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			ln := listenTCP(t, m.cfg)
			d := Dialer{Config: m.cfg}
			c, err := d.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			pc := listenPacket(t, m.cfg, "udp4", "127.0.0.1:0")
			for _, tt := range []struct {
				name      string
				got, want reflect.Type
			}{
				{"TCP conn", reflect.TypeOf(c), reflect.TypeOf(&net.TCPConn{})},
				{"UDP conn", reflect.TypeOf(pc), reflect.TypeOf(&net.UDPConn{})},
				{"TCP listener", reflect.TypeOf(ln), reflect.TypeOf(&net.TCPListener{})},
			} {
				missing, extra := methodDiff(tt.got, tt.want)
				if len(missing) > 0 || len(extra) > 0 {
					t.Errorf("%s %v: missing or different %v; extra %v", tt.name, tt.got, missing, extra)
				}
			}
		})
	}
}

// TestSyscallConnForXNetIPv4: golang.org/x/net/ipv4 accepts the net face's
// connections (it needs SyscallConn, and ReadMsgUDP or SetLinger to tell
// UDP from TCP) and sets the TOS byte through them (DSCP EF, 0xb8, as RTP
// media is marked).
func TestSyscallConnForXNetIPv4(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			pc := listenPacket(t, m.cfg, "udp4", "127.0.0.1:0")
			p := ipv4.NewPacketConn(pc)
			if err := p.SetTOS(0xb8); err != nil {
				t.Fatalf("ipv4.PacketConn.SetTOS: %v", err)
			}
			if tos, err := p.TOS(); err != nil || tos != 0xb8 {
				t.Fatalf("UDP TOS = %#x, %v; want 0xb8", tos, err)
			}
			c, _ := tcpPair(t, m.cfg)
			tc := ipv4.NewConn(c)
			if err := tc.SetTOS(0xb8); err != nil {
				t.Fatalf("ipv4.Conn.SetTOS: %v", err)
			}
			if tos, err := tc.TOS(); err != nil || tos != 0xb8 {
				t.Fatalf("TCP TOS = %#x, %v; want 0xb8", tos, err)
			}
		})
	}
}

// TestUDPMsgAndAllocs: the net face's UDP socket reads and writes without
// allocating (ReadFromUDPAddrPort, WriteToUDPAddrPort), returns an empty
// datagram as 0, nil (not io.EOF), reports MSG_TRUNC from ReadMsgUDP, hands
// back control messages (IP_TOS, once IP_RECVTOS is set through
// SyscallConn), and sends control messages (UDP_SEGMENT: one WriteMsgUDP of
// 3000 bytes in 1000-byte segments arrives as three datagrams).
func TestUDPMsgAndAllocs(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			rx := listenPacket(t, m.cfg, "udp4", "127.0.0.1:0").(udpMsgConn)
			tx := listenPacket(t, m.cfg, "udp4", "127.0.0.1:0").(udpMsgConn)
			_ = rx.SetDeadline(time.Now().Add(10 * time.Second))
			to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
			buf := make([]byte, 2000)

			msg := []byte("datagram")
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := tx.WriteToUDPAddrPort(msg, to); err != nil {
					t.Fatal(err)
				}
				if n, _, err := rx.ReadFromUDPAddrPort(buf); err != nil || n != len(msg) {
					t.Fatalf("ReadFromUDPAddrPort = %d, %v", n, err)
				}
			})
			if allocs != 0 && m.cfg == nil {
				t.Errorf("%v allocs per datagram written and read, want 0", allocs)
			}

			if _, err := tx.WriteToUDPAddrPort(nil, to); err != nil {
				t.Fatal(err)
			}
			if n, _, err := rx.ReadFrom(buf); n != 0 || err != nil {
				t.Errorf("empty datagram: ReadFrom = %d, %v; want 0, nil", n, err)
			}

			if _, err := tx.WriteToUDPAddrPort(make([]byte, 100), to); err != nil {
				t.Fatal(err)
			}
			n, _, flags, _, err := rx.ReadMsgUDP(buf[:10], nil)
			if err != nil || n != 10 || flags&unix.MSG_TRUNC == 0 {
				t.Errorf("ReadMsgUDP of a 100-byte datagram into 10 bytes = %d, flags %#x, %v; want 10 and MSG_TRUNC", n, flags, err)
			}

			rc, err := rx.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			if err := rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1) }); err != nil {
				t.Fatal(err)
			}
			if err := ipv4.NewPacketConn(tx).SetTOS(0xb8); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.WriteToUDPAddrPort(msg, to); err != nil {
				t.Fatal(err)
			}
			oob := make([]byte, 64)
			_, oobn, _, _, err := rx.ReadMsgUDP(buf, oob)
			if err != nil {
				t.Fatal(err)
			}
			cms, err := unix.ParseSocketControlMessage(oob[:oobn])
			tos := -1
			for _, cm := range cms {
				if cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_TOS && len(cm.Data) > 0 {
					tos = int(cm.Data[0])
				}
			}
			if err != nil || tos != 0xb8 {
				t.Errorf("ReadMsgUDP control messages: TOS %#x (%v), want 0xb8", tos, err)
			}
			if err := rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 0) }); err != nil {
				t.Fatal(err)
			}

			// struct cmsghdr on linux/amd64 and arm64: a 64-bit length, then
			// level and type; the segment size follows.
			gso := make([]byte, unix.CmsgSpace(2))
			binary.NativeEndian.PutUint64(gso[0:], uint64(unix.CmsgLen(2)))
			binary.NativeEndian.PutUint32(gso[8:], unix.SOL_UDP)
			binary.NativeEndian.PutUint32(gso[12:], unix.UDP_SEGMENT)
			binary.NativeEndian.PutUint16(gso[unix.CmsgLen(0):], 1000)
			if _, _, err := tx.WriteMsgUDPAddrPort(make([]byte, 3000), gso, to); err != nil {
				t.Fatalf("WriteMsgUDPAddrPort with UDP_SEGMENT: %v", err)
			}
			for i := range 3 {
				if n, _, err := rx.ReadFromUDPAddrPort(buf); err != nil || n != 1000 {
					t.Fatalf("segment %d: %d bytes, %v; want 1000", i, n, err)
				}
			}
		})
	}
}

// udpMsgConn is the part of *net.UDPConn's method set the tests use.
type udpMsgConn interface {
	net.PacketConn
	SyscallConn() (syscall.RawConn, error)
	ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error)
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error)
}

// TestDialerAndListenConfigOptions: Dialer.LocalAddr binds before the
// connect (TCP and UDP), and Control and ControlContext run on the new
// socket before it is bound or connected, with package net's network and
// address strings, on both paths.
func TestDialerAndListenConfigOptions(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			type call struct{ network, address string }
			var calls []call
			ctrl := func(network, address string, c syscall.RawConn) error {
				calls = append(calls, call{network, address})
				var serr error
				if err := c.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
				}); err != nil {
					return err
				}
				return serr
			}
			lc := ListenConfig{Config: m.cfg, Control: ctrl}
			ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			reuse := func(c any) int {
				rc, err := c.(interface {
					SyscallConn() (syscall.RawConn, error)
				}).SyscallConn()
				if err != nil {
					t.Fatal(err)
				}
				v := -1
				_ = rc.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT) })
				return v
			}
			if reuse(ln) != 1 {
				t.Error("ListenConfig.Control's SO_REUSEPORT is not on the listener")
			}
			local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: freePort(t)}
			d := Dialer{Config: m.cfg, LocalAddr: local, ControlContext: func(_ context.Context, network, address string, c syscall.RawConn) error {
				return ctrl(network, address, c)
			}}
			c, err := d.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.LocalAddr().String(); got != local.String() {
				t.Errorf("dialed from %s, want Dialer.LocalAddr %s", got, local)
			}
			if reuse(c) != 1 {
				t.Error("Dialer.ControlContext's SO_REUSEPORT is not on the connection")
			}
			want := []call{{"tcp4", "127.0.0.1:0"}, {"tcp4", ln.Addr().String()}}
			if len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
				t.Errorf("Control calls %v, want %v", calls, want)
			}
			pc := listenPacket(t, m.cfg, "udp4", "127.0.0.1:0")
			ulocal := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: freePort(t)}
			ud := Dialer{Config: m.cfg, LocalAddr: ulocal}
			uc, err := ud.Dial("udp4", pc.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer uc.Close()
			if _, err := uc.Write([]byte("from")); err != nil {
				t.Fatal(err)
			}
			_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, from, err := pc.ReadFrom(make([]byte, 8))
			if err != nil || from.String() != ulocal.String() {
				t.Errorf("datagram from %v (%v), want Dialer.LocalAddr %v", from, err, ulocal)
			}
		})
	}
}

// freePort returns a TCP/UDP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
