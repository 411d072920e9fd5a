package relay

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
	"github.com/ringwire/ringwire/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Config
		wantErr string
	}{
		{
			name: "full",
			args: []string{"-in", "127.0.0.1:40000", "-out", "127.0.0.1:50000, [::1]:52000", "-streams", "4", "-latch", "-stats", "2s", "-json", "-clock-rate", "48000", "-max-datagram", "1500"},
			want: Config{
				In:      netip.MustParseAddrPort("127.0.0.1:40000"),
				Out:     []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:50000"), netip.MustParseAddrPort("[::1]:52000")},
				Streams: 4, Latch: true, StatsInterval: 2 * time.Second, JSON: true, ClockRate: 48000, MaxDatagram: 1500,
			},
		},
		{
			name: "defaults",
			args: []string{"-in", "127.0.0.1:40000", "-out", "127.0.0.1:50000"},
			want: Config{In: netip.MustParseAddrPort("127.0.0.1:40000"), Out: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:50000")}, Streams: 1, MaxDatagram: DefaultMaxDatagram},
		},
		{name: "no in", args: []string{"-out", "127.0.0.1:50000"}, wantErr: "no ingress"},
		{name: "no out", args: []string{"-in", "127.0.0.1:1"}, wantErr: "no egress"},
		{name: "hostname", args: []string{"-in", "localhost:1"}, wantErr: "invalid"},
		{name: "out port 0", args: []string{"-in", "127.0.0.1:1", "-out", "127.0.0.1:0"}, wantErr: "invalid egress"},
		{name: "in ports overflow", args: []string{"-in", "127.0.0.1:65535", "-out", "127.0.0.1:5", "-streams", "2"}, wantErr: "exceed 65535"},
		{name: "out ports overflow", args: []string{"-in", "127.0.0.1:5", "-out", "127.0.0.1:65535", "-streams", "2"}, wantErr: "exceed 65535"},
		{name: "in port 0 many streams", args: []string{"-in", "127.0.0.1:0", "-out", "127.0.0.1:5", "-streams", "2"}, wantErr: "nonzero first port"},
		{name: "negative streams", args: []string{"-in", "127.0.0.1:5", "-out", "127.0.0.1:5", "-streams", "-1"}, wantErr: "< 0"},
		{name: "bad clock", args: []string{"-in", "127.0.0.1:5", "-out", "127.0.0.1:5", "-clock-rate", "x"}, wantErr: "clock rate"},
		{name: "max datagram too small", args: []string{"-in", "127.0.0.1:5", "-out", "127.0.0.1:5", "-max-datagram", "11"}, wantErr: "max datagram"},
		{name: "extra args", args: []string{"-in", "127.0.0.1:5", "-out", "127.0.0.1:5", "extra"}, wantErr: "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFlags("rtprelay", tt.args, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.In != tt.want.In || !equalAddrs(got.Out, tt.want.Out) || got.Streams != tt.want.Streams ||
				got.Latch != tt.want.Latch || got.StatsInterval != tt.want.StatsInterval || got.JSON != tt.want.JSON || got.ClockRate != tt.want.ClockRate || got.MaxDatagram != tt.want.MaxDatagram {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	var nilCfg *Config
	if _, err := nilCfg.Validate(); err == nil {
		t.Error("nil config validated")
	}
}

func equalAddrs(a, b []netip.AddrPort) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPlanAddresses(t *testing.T) {
	p, err := NewPlan(&Config{In: netip.MustParseAddrPort("127.0.0.1:40000"), Out: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:50000"), netip.MustParseAddrPort("127.0.0.2:60000")}, Streams: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sessions) != 3 {
		t.Fatalf("%d sessions", len(p.Sessions))
	}
	s := &p.Sessions[2]
	if s.Ingress.String() != "127.0.0.1:40002" || s.Dests[0].Callee.Addr().String() != "127.0.0.1:50002" || s.Dests[1].Callee.Addr().String() != "127.0.0.2:60002" {
		t.Errorf("session 2: %v -> %v, %v", s.Ingress, s.Dests[0].Callee.Addr(), s.Dests[1].Callee.Addr())
	}
}

// rtpPacket is a G.711 packet of SSRC 42: a 12-byte RTP header (version 2,
// payload type 0) and 160 zero bytes.
func rtpPacket(t testing.TB, seq uint16) []byte {
	t.Helper()
	b := make([]byte, 12+160)
	b[0] = 2 << 6
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], uint32(seq)*160)
	binary.BigEndian.PutUint32(b[8:], 42)
	return b
}

func TestAcceptLatching(t *testing.T) {
	caller := netip.MustParseAddrPort("127.0.0.1:1000")
	rogue := netip.MustParseAddrPort("127.0.0.1:1001")
	callee := netip.MustParseAddrPort("127.0.0.1:2000")
	nat := netip.MustParseAddrPort("127.0.0.1:2999")
	p, err := NewPlan(&Config{In: netip.MustParseAddrPort("127.0.0.1:40000"), Out: []netip.AddrPort{callee}, Latch: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &p.Sessions[0]
	bad := []byte{0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

	// Reverse before the caller latched.
	if _, r := s.AcceptReverse(0, rtpPacket(t, 1), nat, p.Now()); r != rtpcheck.Unlatched {
		t.Fatalf("reverse before caller latched: %v", r)
	}
	if !s.Dests[0].Callee.Latched() || s.Dests[0].Callee.Addr() != nat {
		t.Fatalf("callee did not latch to %v: %v", nat, s.Dests[0].Callee.Addr())
	}
	// A malformed packet does not latch.
	if r := s.AcceptForward(bad, rogue, p.Now()); r != rtpcheck.BadVersion {
		t.Fatalf("malformed: %v", r)
	}
	if s.Caller.Latched() {
		t.Fatal("malformed packet latched the caller")
	}
	// IPv4-mapped source latches as plain IPv4.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(caller.Addr().As16()), caller.Port())
	if r := s.AcceptForward(rtpPacket(t, 1), mapped, p.Now()); r != rtpcheck.OK {
		t.Fatalf("first valid: %v", r)
	}
	if s.Caller.Addr() != caller {
		t.Fatalf("caller latched to %v, want %v", s.Caller.Addr(), caller)
	}
	if r := s.AcceptForward(rtpPacket(t, 2), rogue, p.Now()); r != rtpcheck.WrongSource {
		t.Fatalf("rogue after latch: %v", r)
	}
	if r := s.AcceptForward(rtpPacket(t, 2), caller, p.Now()); r != rtpcheck.OK {
		t.Fatalf("caller after latch: %v", r)
	}
	to, r := s.AcceptReverse(0, rtpPacket(t, 2), nat, p.Now())
	if r != rtpcheck.OK || to != caller {
		t.Fatalf("reverse = %v, %v; want %v", to, r, caller)
	}
	if _, r := s.AcceptReverse(0, rtpPacket(t, 3), callee, p.Now()); r != rtpcheck.WrongSource {
		t.Fatalf("reverse from configured address after NAT latch: %v", r)
	}

	rep := p.Report()
	fwd, ok := rep.Leg(0, Forward, 0)
	if !ok || fwd.Stats.Received != 2 || fwd.Stats.Drops[rtpcheck.BadVersion] != 1 || fwd.Stats.Drops[rtpcheck.WrongSource] != 1 {
		t.Errorf("forward leg %+v", fwd)
	}
	rev, ok := rep.Leg(0, Reverse, 0)
	if !ok || rev.Stats.Received != 1 || rev.Stats.Drops[rtpcheck.Unlatched] != 1 || rev.Peer != nat.String() {
		t.Errorf("reverse leg %+v", rev)
	}
	if rep.Drops.Total() != 4 {
		t.Errorf("total drops %v", rep.Drops)
	}
}

func TestAcceptNoLatch(t *testing.T) {
	p, err := NewPlan(&Config{In: netip.MustParseAddrPort("127.0.0.1:40000"), Out: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:2000")}})
	if err != nil {
		t.Fatal(err)
	}
	s := &p.Sessions[0]
	for i, src := range []string{"127.0.0.1:1", "127.0.0.1:2"} {
		if r := s.AcceptForward(rtpPacket(t, uint16(i)), netip.MustParseAddrPort(src), p.Now()); r != rtpcheck.OK {
			t.Errorf("from %s: %v", src, r)
		}
	}
	if s.Caller.Latched() {
		t.Error("latched without Latch")
	}
	if _, r := s.AcceptReverse(0, rtpPacket(t, 1), netip.MustParseAddrPort("127.0.0.1:2000"), p.Now()); r != rtpcheck.Unlatched {
		t.Errorf("reverse without Latch: %v", r)
	}
	if n := testing.AllocsPerRun(200, func() {
		_ = s.AcceptForward(rtpPacket(t, 5)[:12], netip.MustParseAddrPort("127.0.0.1:3"), p.Now())
	}); n > 1 { // rtpPacket itself allocates once (the packet)
		t.Errorf("AcceptForward allocates %v times", n-1)
	}
}

func TestAcceptAllocs(t *testing.T) {
	p, err := NewPlan(&Config{In: netip.MustParseAddrPort("127.0.0.1:40000"), Out: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:2000")}, Latch: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &p.Sessions[0]
	b := rtpPacket(t, 1)
	src := netip.MustParseAddrPort("127.0.0.1:1")
	if r := s.AcceptForward(b, src, p.Now()); r != rtpcheck.OK {
		t.Fatalf("AcceptForward: %v", r)
	}
	if _, r := s.AcceptReverse(0, b, netip.MustParseAddrPort("127.0.0.1:2000"), p.Now()); r != rtpcheck.OK {
		t.Fatalf("AcceptReverse: %v", r)
	}
	if n := testing.AllocsPerRun(1000, func() {
		b[3]++
		_ = s.AcceptForward(b, src, p.Now())
		_, _ = s.AcceptReverse(0, b, netip.MustParseAddrPort("127.0.0.1:2000"), p.Now())
		s.Fwd.Sent(len(b), time.Microsecond)
	}); n != 0 {
		t.Errorf("latched Accept path allocates %v times", n)
	}
}

func TestReportOutput(t *testing.T) {
	p, err := NewPlan(&Config{In: netip.MustParseAddrPort("127.0.0.1:40000"), Out: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:2000")}, Streams: 2, Latch: true, StatsInterval: 5 * time.Millisecond, JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Sessions[1].AcceptForward(rtpPacket(t, 9), netip.MustParseAddrPort("127.0.0.1:1"), p.Now()); r != rtpcheck.OK {
		t.Fatalf("AcceptForward: %v", r)
	}
	p.Sessions[1].Fwd.Sent(172, 5*time.Microsecond)
	var text bytes.Buffer
	rep := p.Report()
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[2], "stream 1 fwd 127.0.0.1:40001 <- 127.0.0.1:1: ssrc=0x2a in=1/") || !strings.HasPrefix(lines[1], "stream 0 rev0 ") {
		t.Errorf("text report:\n%s", text.String())
	}

	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := p.PrintEvery(ctx, &out); err != nil {
		t.Fatal(err)
	}
	jl := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(jl) < 2 {
		t.Fatalf("PrintEvery wrote %d lines", len(jl))
	}
	var back Report
	if err := json.Unmarshal([]byte(jl[len(jl)-1]), &back); err != nil {
		t.Fatal(err)
	}
	if l, ok := back.Leg(1, Forward, 0); !ok || l.Stats.PacketsIn != 1 || l.Stats.Latency.Max != 5*time.Microsecond {
		t.Errorf("JSON leg %+v", l)
	}
}

func TestListenConsecutiveUDP(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "::1"} {
		conns, err := ListenConsecutiveUDP(netip.MustParseAddr(ip), 5, 20)
		if err != nil {
			if ip == "::1" {
				testenv.NeedFeature(t, fmt.Sprintf("IPv6 loopback (%v)", err), false)
			}
			t.Fatal(err)
		}
		base := conns[0].LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
		for i, c := range conns {
			if got := c.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port(); got != base+uint16(i) {
				t.Errorf("%s conn %d port %d, want %d", ip, i, got, base+uint16(i))
			}
			c.Close()
		}
	}
	if _, err := ListenConsecutiveUDP(netip.MustParseAddr("127.0.0.1"), 0, 1); err == nil {
		t.Error("n=0 accepted")
	}
}
