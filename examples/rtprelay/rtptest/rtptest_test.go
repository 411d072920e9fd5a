package rtptest

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStreamPacket(t *testing.T) {
	st := Stream{SSRC: 9, PayloadType: 8, FirstSeq: 65535, Count: 3}
	b := st.Packet(1)
	p, err := rtpcheck.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != G711PacketLen || p.SequenceNumber != 0 || p.Timestamp != 160 || p.PayloadType != 8 || p.SSRC != 9 || p.Marker {
		t.Errorf("packet 1: %d bytes, %+v", len(b), p)
	}
	if p0, _ := rtpcheck.Parse(st.Packet(0)); !p0.Marker {
		t.Error("first packet lacks the marker bit")
	}
	want := make([]byte, G711PayloadLen)
	FillPayload(want, 9, 0)
	if !bytes.Equal(p.Payload(b), want) {
		t.Error("payload differs from FillPayload")
	}
	other := make([]byte, G711PayloadLen)
	FillPayload(other, 9, 1)
	if bytes.Equal(other, want) {
		t.Error("payloads of consecutive packets are equal")
	}
}

func TestMalformedReasons(t *testing.T) {
	seen := map[rtpcheck.Reason]bool{}
	for _, b := range Malformed(5) {
		if _, err := rtpcheck.Parse(b.Data); err != b.Reason.Err() {
			t.Errorf("%s: Parse = %v, want %v", b.Name, err, b.Reason)
		}
		seen[b.Reason] = true
	}
	for r := rtpcheck.TooShort; r <= rtpcheck.BadRTCPType; r++ {
		if !seen[r] {
			t.Errorf("Malformed lacks %v", r)
		}
	}
	if p, err := rtpcheck.Parse(RTCPCompound(5)); err != nil || p.Kind != rtpcheck.KindRTCP || p.RTCPCount != 2 {
		t.Errorf("RTCPCompound: %+v, %v", p, err)
	}
}

func pair(t *testing.T) (a, b *net.UDPConn) {
	t.Helper()
	a, b = listenN(t, 1)[0], listenN(t, 1)[0]
	t.Cleanup(func() { a.Close() })
	return a, b
}

func TestReceiverExact(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	from, to := pair(t)
	st := Stream{SSRC: 1, FirstSeq: 65500, Count: 100}
	r := NewReceiver(to, st)
	defer r.Close()
	n, err := (&Sender{Conn: from, To: r.Addr(), Stream: st, Interval: 20 * time.Microsecond, Before: func(k int) [][]byte {
		if k == 3 {
			return [][]byte{RTCPCompound(1)}
		}
		return nil
	}}).Send(ctx)
	if err != nil || n != st.Count {
		t.Fatalf("Send = %d, %v", n, err)
	}
	res := r.Wait(ctx, 5*time.Millisecond)
	if err := res.Err(st.Count); err != nil || res.RTCP != 1 || res.From != addrOf(from) {
		t.Errorf("result %+v, %v", res, err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestReceiverDetects checks that a Receiver notices each kind of damage.
func TestReceiverDetects(t *testing.T) {
	st := Stream{SSRC: 7, FirstSeq: 10, Count: 5}
	corrupt := st.Packet(2)
	corrupt[len(corrupt)-1] ^= 1
	tests := []struct {
		name  string
		send  [][]byte
		check func(*Result) bool
	}{
		{"missing", [][]byte{st.Packet(0), st.Packet(1), st.Packet(3), st.Packet(4)}, func(r *Result) bool { return r.Received == 4 && r.OutOfOrder == 1 }},
		{"duplicate", [][]byte{st.Packet(0), st.Packet(1), st.Packet(1), st.Packet(2), st.Packet(3), st.Packet(4)}, func(r *Result) bool { return r.Duplicates == 1 }},
		{"reordered", [][]byte{st.Packet(0), st.Packet(2), st.Packet(1), st.Packet(3), st.Packet(4)}, func(r *Result) bool { return r.OutOfOrder == 2 }},
		{"corrupt", [][]byte{st.Packet(0), st.Packet(1), corrupt, st.Packet(3), st.Packet(4)}, func(r *Result) bool { return r.Corrupt == 1 }},
		{"foreign", [][]byte{st.Packet(0), st.Packet(1), st.Packet(2), st.Packet(3), st.Packet(4), (&Stream{SSRC: 8, Count: 1}).Packet(0)}, func(r *Result) bool { return r.Foreign == 1 }},
		{"past the end", [][]byte{st.Packet(0), st.Packet(1), st.Packet(2), st.Packet(3), st.Packet(4), st.Packet(5)}, func(r *Result) bool { return r.Foreign == 1 }},
		{"invalid", [][]byte{st.Packet(0), st.Packet(1), st.Packet(2), st.Packet(3), st.Packet(4), {0x40, 0}}, func(r *Result) bool { return r.Invalid == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			from, to := pair(t)
			r := NewReceiver(to, st)
			defer r.Close()
			for _, b := range tt.send {
				if _, err := from.WriteToUDPAddrPort(b, r.Addr()); err != nil {
					t.Fatal(err)
				}
			}
			res := r.WaitFor(ctx, func(r *Result) bool {
				return r.Received+r.Duplicates+r.Foreign+r.Invalid >= len(tt.send)
			})
			if !tt.check(&res) {
				t.Errorf("result %+v", res)
			}
			if err := res.Err(st.Count); err == nil || !strings.Contains(err.Error(), "first problem") {
				t.Errorf("Err = %v, want a failure", err)
			}
		})
	}
}

func TestSenderCadenceAndCancel(t *testing.T) {
	from, to := pair(t)
	defer to.Close()
	st := Stream{SSRC: 1, Count: 6}
	start := time.Now()
	if _, err := (&Sender{Conn: from, To: addrOf(to), Stream: st, Interval: G711Interval}).Send(context.Background()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 5*G711Interval {
		t.Errorf("6 packets at 20 ms took %v, want >= 100ms", el)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	n, err := (&Sender{Conn: from, To: addrOf(to), Stream: Stream{SSRC: 1, Count: 1000}, Interval: G711Interval}).Send(ctx)
	if err == nil || n >= 1000 || n < 1 {
		t.Errorf("cancelled Send = %d, %v", n, err)
	}
}
