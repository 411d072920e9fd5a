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
