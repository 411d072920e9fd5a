package rtptest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
)

// G.711 defaults: 20 ms of 8 kHz µ-law per packet.
const (
	G711PayloadLen = 160                   // payload bytes per packet
	G711PacketLen  = 12 + G711PayloadLen   // datagram bytes, with the RTP header
	G711Interval   = 20 * time.Millisecond // packet cadence
)

// FillPayload fills p with the bytes packet seq of stream ssrc carries, so a
// receiver can verify every byte.
func FillPayload(p []byte, ssrc uint32, seq uint16) {
	x := ssrc*2654435761 + uint32(seq)*40503
	for i := range p {
		x = x*1664525 + 1013904223
		p[i] = byte(x >> 24)
	}
}

// Stream describes one RTP stream a Sender sends and a Receiver expects.
type Stream struct {
	// SSRC identifies the stream.
	SSRC uint32
	// PayloadType is the RTP payload type (0, PCMU, by default).
	PayloadType uint8
	// FirstSeq is the first sequence number; the stream may wrap.
	FirstSeq uint16
	// Count is the number of packets.
	Count int
	// PayloadLen is the payload size; 0 means G711PayloadLen.
	PayloadLen int
}

func (s *Stream) payloadLen() int {
	if s.PayloadLen == 0 {
		return G711PayloadLen
	}
	return s.PayloadLen
}

// Packet returns packet k (0-based) of the stream: a 12-byte RTP header
// (RFC 3550 section 5.1: version 2, no padding, extension or CSRC) with
// sequence FirstSeq+k, timestamp 160×k (one 20 ms G.711 frame per packet) and
// the marker bit on the first packet, then FillPayload's payload.
// bench/rtpinterop checks these bytes against pion/rtp's Marshal.
func (s *Stream) Packet(k int) []byte {
	seq := s.FirstSeq + uint16(k)
	b := make([]byte, 12, 12+s.payloadLen())
	b[0] = 2 << 6
	b[1] = s.PayloadType & 0x7f
	if k == 0 {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], uint32(k)*G711PayloadLen)
	binary.BigEndian.PutUint32(b[8:], s.SSRC)
	b = b[:12+s.payloadLen()]
	FillPayload(b[12:], s.SSRC, seq)
	return b
}

// Sender sends a Stream.
type Sender struct {
	// Conn is the socket sent from; the caller owns it.
	Conn *net.UDPConn
	// To is the destination.
	To netip.AddrPort
	// Stream is what to send.
	Stream Stream
	// Interval is the time between packets (G711Interval for real time); 0
	// sends as fast as possible. Pacing follows a schedule from the start,
	// so a late wake-up sends a short burst to catch up.
	Interval time.Duration
	// Before, if set, returns extra datagrams to send just before packet k
	// (malformed ones, RTCP).
	Before func(k int) [][]byte
}

// Send sends the stream, stopping early when ctx is done. It returns the
// number of stream packets sent.
func (s *Sender) Send(ctx context.Context) (int, error) {
	start := time.Now()
	for k := range s.Stream.Count {
		if err := ctx.Err(); err != nil {
			return k, err
		}
		if s.Interval > 0 {
			if d := time.Until(start.Add(time.Duration(k) * s.Interval)); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return k, ctx.Err()
				case <-t.C:
				}
			}
		}
		if s.Before != nil {
			for _, extra := range s.Before(k) {
				if _, err := s.Conn.WriteToUDPAddrPort(extra, s.To); err != nil {
					return k, fmt.Errorf("rtptest: send extra before %d: %w", k, err)
				}
			}
		}
		if _, err := s.Conn.WriteToUDPAddrPort(s.Stream.Packet(k), s.To); err != nil {
			return k, fmt.Errorf("rtptest: send %d: %w", k, err)
		}
	}
	return s.Stream.Count, nil
}

// Result is what a Receiver saw.
type Result struct {
	// Received counts distinct packets of the expected stream.
	Received int
	// Duplicates counts repeated ones.
	Duplicates int
	// OutOfOrder counts packets that were not the one after the previous.
	OutOfOrder int
	// Corrupt counts packets of the stream with a wrong payload type,
	// payload length or payload bytes.
	Corrupt int
	// Foreign counts valid RTP of another SSRC or outside the expected
	// sequence range; Invalid counts datagrams rtpcheck rejects.
	Foreign, Invalid int
	// RTCP counts valid RTCP datagrams.
	RTCP int
	// From is the source of the last datagram: the relay's sending address.
	From netip.AddrPort
	// First describes the first problem seen, if any.
	First string
}

// Err returns nil if exactly want packets arrived, each once, in order and
// intact, and nothing foreign or invalid did; otherwise it describes the
// result.
func (r *Result) Err(want int) error {
	if r.Received == want && r.Duplicates == 0 && r.OutOfOrder == 0 && r.Corrupt == 0 && r.Foreign == 0 && r.Invalid == 0 {
		return nil
	}
	return fmt.Errorf("rtptest: received %d/%d, %d duplicate, %d out of order, %d corrupt, %d foreign, %d invalid; first problem: %s",
		r.Received, want, r.Duplicates, r.OutOfOrder, r.Corrupt, r.Foreign, r.Invalid, r.First)
}

// Receiver checks one Stream arriving on a socket: every sequence number
// exactly once, in order, with its payload intact.
type Receiver struct {
	conn   *net.UDPConn
	stream Stream

	mu     sync.Mutex
	want   []byte // scratch for the expected payload
	res    Result
	seen   []bool
	next   int // index expected next
	change chan struct{}
	done   chan struct{}
}

// NewReceiver starts reading conn, which it owns from then on (Close closes
// it), checking for stream.
func NewReceiver(conn *net.UDPConn, stream Stream) *Receiver {
	r := &Receiver{conn: conn, stream: stream, seen: make([]bool, stream.Count), change: make(chan struct{}), done: make(chan struct{})}
	_ = conn.SetReadBuffer(1 << 20)
	go r.loop()
	return r
}

// Addr returns the socket's local address.
func (r *Receiver) Addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Conn returns the socket, to send the reverse direction from it.
func (r *Receiver) Conn() *net.UDPConn { return r.conn }

func (r *Receiver) loop() {
	defer close(r.done)
	buf := make([]byte, 65536)
	for {
		n, src, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.record(buf[:n], src)
	}
}

func (r *Receiver) problem(counter *int, format string, args ...any) {
	*counter++
	if r.res.First == "" {
		r.res.First = fmt.Sprintf(format, args...)
	}
}

func (r *Receiver) record(b []byte, src netip.AddrPort) {
	r.mu.Lock()
	defer func() {
		close(r.change)
		r.change = make(chan struct{})
		r.mu.Unlock()
	}()
	r.res.From = src
	p, err := rtpcheck.Parse(b)
	switch {
	case err != nil:
		r.problem(&r.res.Invalid, "invalid datagram from %v: %v", src, err)
		return
	case p.Kind == rtpcheck.KindRTCP:
		r.res.RTCP++
		return
	}
	k := int(p.SequenceNumber - r.stream.FirstSeq)
	if p.SSRC != r.stream.SSRC || k >= r.stream.Count {
		r.problem(&r.res.Foreign, "foreign packet ssrc %#x seq %d from %v", p.SSRC, p.SequenceNumber, src)
		return
	}
	if r.seen[k] {
		r.problem(&r.res.Duplicates, "duplicate seq %d", p.SequenceNumber)
		return
	}
	r.seen[k] = true
	r.res.Received++
	if k != r.next {
		r.problem(&r.res.OutOfOrder, "seq %d (packet %d) arrived when packet %d was due", p.SequenceNumber, k, r.next)
	}
	r.next = max(r.next, k+1)
	if len(r.want) != r.stream.payloadLen() {
		r.want = make([]byte, r.stream.payloadLen())
	}
	want := r.want
	FillPayload(want, r.stream.SSRC, p.SequenceNumber)
	if got := p.Payload(b); p.PayloadType != r.stream.PayloadType || string(got) != string(want) {
		r.problem(&r.res.Corrupt, "seq %d: pt %d, payload of %d bytes differs", p.SequenceNumber, p.PayloadType, len(got))
	}
}

// Result returns what has arrived so far.
func (r *Receiver) Result() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res
}

// WaitFor waits until cond holds for the result or ctx is done, and returns
// the last result.
func (r *Receiver) WaitFor(ctx context.Context, cond func(*Result) bool) Result {
	for {
		r.mu.Lock()
		res, ch := r.res, r.change
		r.mu.Unlock()
		if cond(&res) {
			return res
		}
		select {
		case <-ctx.Done():
			return res
		case <-ch:
		}
	}
}

// Wait waits until the whole stream has arrived or ctx is done, then a
// further settle time for late duplicates or strays, and returns the result.
func (r *Receiver) Wait(ctx context.Context, settle time.Duration) Result {
	r.WaitFor(ctx, func(res *Result) bool { return res.Received >= r.stream.Count })
	if settle > 0 {
		t := time.NewTimer(settle)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return r.Result()
}

// Close closes the socket and waits for the reading goroutine.
func (r *Receiver) Close() error {
	err := r.conn.Close()
	<-r.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
