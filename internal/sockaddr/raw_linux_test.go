//go:build linux

package sockaddr

import (
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
)

func TestUnixRoundTrip(t *testing.T) {
	for _, s := range []string{"127.0.0.1:1", "[::1]:2", "[fe80::1%4]:3"} {
		ap := netip.MustParseAddrPort(s)
		sa, err := ToUnix(ap, FamilyOf(ap))
		if err != nil {
			t.Fatal(err)
		}
		got, err := FromUnix(sa)
		if err != nil || got != ap {
			t.Fatalf("%s: got %v, %v", s, got, err)
		}
	}
}

func TestAnyBytesAccept(t *testing.T) {
	// A real kernel-written sockaddr: getsockname into a RawSockaddrAny view.
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}); err != nil {
		testenv.NeedFeature(t, fmt.Sprintf("IPv6 loopback (%v)", err), false)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := FromUnix(sa)
	var rsa unix.RawSockaddrAny
	rsa.Addr.Family = unix.AF_INET6
	in6 := sa.(*unix.SockaddrInet6)
	b := AnyBytes(&rsa)
	b[2], b[3] = byte(in6.Port>>8), byte(in6.Port)
	copy(b[8:24], in6.Addr[:])
	got, err := Decode(b)
	if err != nil || got != want {
		t.Fatalf("got %v %v, want %v", got, err, want)
	}
}

// TestAccept4AndNames: Accept4, Getsockname and Getpeername read the same
// addresses as x/sys/unix's, and allocate nothing.
func TestAccept4AndNames(t *testing.T) {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 8); err != nil {
		t.Fatal(err)
	}
	lsa, _ := unix.Getsockname(ln)
	var rsa unix.RawSockaddrAny
	if err := Getsockname(ln, &rsa); err != nil {
		t.Fatal(err)
	}
	want, _ := FromUnix(lsa)
	if got, err := Decode(AnyBytes(&rsa)); err != nil || got != want {
		t.Fatalf("Getsockname = %v %v, want %v", got, err, want)
	}
	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c)
	if err := unix.Connect(c, lsa); err != nil {
		t.Fatal(err)
	}
	csa, _ := unix.Getsockname(c)
	client, _ := FromUnix(csa)
	s, err := Accept4(ln, unix.SOCK_CLOEXEC, &rsa)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	if got, err := Decode(AnyBytes(&rsa)); err != nil || got != client {
		t.Fatalf("Accept4 peer = %v %v, want %v", got, err, client)
	}
	if err := Getpeername(s, &rsa); err != nil {
		t.Fatal(err)
	}
	if got, err := Decode(AnyBytes(&rsa)); err != nil || got != client {
		t.Fatalf("Getpeername = %v %v, want %v", got, err, client)
	}
	if err := unix.SetNonblock(ln, true); err != nil {
		t.Fatal(err)
	}
	if fd, err := Accept4(ln, 0, &rsa); fd != -1 || err != unix.EAGAIN {
		t.Errorf("Accept4 with none pending = %d, %v; want -1, EAGAIN", fd, err)
	}
	if n := testing.AllocsPerRun(50, func() {
		_ = Getsockname(s, &rsa)
		_ = Getpeername(s, &rsa)
	}); n != 0 {
		t.Errorf("%v allocations per Getsockname and Getpeername, want 0", n)
	}
}
