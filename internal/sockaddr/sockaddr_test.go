package sockaddr

import (
	"net/netip"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		family int
		size   int
		want   string
	}{
		{name: "v4", in: "127.0.0.1:8080", family: FamilyInet, size: SizeofInet4, want: "127.0.0.1:8080"},
		{name: "v4 port 0", in: "10.1.2.3:0", family: FamilyInet, size: SizeofInet4, want: "10.1.2.3:0"},
		{name: "v6 loopback", in: "[::1]:443", family: FamilyInet6, size: SizeofInet6, want: "[::1]:443"},
		{name: "v4 on v6 socket is mapped, decoded unmapped", in: "127.0.0.1:5", family: FamilyInet6, size: SizeofInet6, want: "127.0.0.1:5"},
		{name: "mapped on v4 socket", in: "[::ffff:1.2.3.4]:9", family: FamilyInet, size: SizeofInet4, want: "1.2.3.4:9"},
		{name: "numeric zone", in: "[fe80::1%7]:65535", family: FamilyInet6, size: SizeofInet6, want: "[fe80::1%7]:65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Raw
			if err := r.Set(netip.MustParseAddrPort(tt.in), tt.family); err != nil {
				t.Fatal(err)
			}
			if int(r.Len) != tt.size {
				t.Fatalf("len %d, want %d", r.Len, tt.size)
			}
			got, err := Decode(r.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	var buf [SizeofInet6]byte
	tests := []struct {
		name   string
		ap     netip.AddrPort
		family int
		dst    []byte
		want   error
	}{
		{name: "v6 on v4 socket", ap: netip.MustParseAddrPort("[::1]:1"), family: FamilyInet, dst: buf[:], want: ErrFamilyAddrV6},
		{name: "invalid", ap: netip.AddrPort{}, family: FamilyInet, dst: buf[:], want: ErrInvalidAddr},
		{name: "short v4", ap: netip.MustParseAddrPort("1.1.1.1:1"), family: FamilyInet, dst: buf[:15], want: ErrShort},
		{name: "short v6", ap: netip.MustParseAddrPort("[::1]:1"), family: FamilyInet6, dst: buf[:27], want: ErrShort},
		{name: "bad family", ap: netip.MustParseAddrPort("[::1]:1"), family: 1, dst: buf[:], want: ErrFamily},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Encode(tt.dst, tt.ap, tt.family); err != tt.want {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{name: "empty", in: nil, want: ErrShort},
		{name: "short v4", in: []byte{FamilyInet, 0, 1, 2}, want: ErrShort},
		{name: "short v6", in: make27(), want: ErrShort},
		{name: "unix family", in: []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, want: ErrFamily},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.in); err != tt.want {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func make27() []byte { b := make([]byte, 27); b[0] = FamilyInet6; return b }

func TestNoAllocs(t *testing.T) {
	var r Raw
	ap4 := netip.MustParseAddrPort("127.0.0.1:9")
	ap6 := netip.MustParseAddrPort("[::1]:9")
	n := testing.AllocsPerRun(100, func() {
		_ = r.Set(ap4, FamilyInet)
		_, _ = Decode(r.Bytes())
		_ = r.Set(ap6, FamilyInet6)
		_, _ = Decode(r.Bytes())
	})
	if n != 0 {
		t.Fatalf("%v allocs per encode/decode, want 0", n)
	}
}

func FuzzDecode(f *testing.F) {
	var r Raw
	_ = r.Set(netip.MustParseAddrPort("127.0.0.1:80"), FamilyInet)
	f.Add(append([]byte(nil), r.Bytes()...))
	_ = r.Set(netip.MustParseAddrPort("[fe80::1%3]:80"), FamilyInet6)
	f.Add(append([]byte(nil), r.Bytes()...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ap, err := Decode(b)
		if err != nil {
			return
		}
		// A decoded address re-encodes to the same address.
		fam := FamilyOf(ap)
		var r Raw
		if err := r.Set(ap, fam); err != nil {
			t.Fatalf("re-encode %v: %v", ap, err)
		}
		back, err := Decode(r.Bytes())
		if err != nil || back != ap {
			t.Fatalf("round trip %v -> %v, %v", ap, back, err)
		}
	})
}
