package rtpcheck_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
)

func ExampleParse() {
	// A G.711 µ-law RTP header: V=2, PT 0, seq 1, timestamp 160, SSRC 0x1234.
	b := []byte{0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, 0x00, 0x00, 0x12, 0x34, 0xff, 0xff}
	p, err := rtpcheck.Parse(b)
	fmt.Println(p.Kind, p.SequenceNumber, p.Timestamp, len(p.Payload(b)), err)

	b[0] = 0x40 // version 1
	_, err = rtpcheck.Parse(b)
	var r rtpcheck.Reason
	fmt.Println(errors.As(err, &r), r.String())
	// Output:
	// RTP 1 160 2 <nil>
	// true BadVersion
}

func ExampleStream() {
	s := rtpcheck.NewStream(nil) // clock rate from the payload type: 8000 Hz for PT 0
	for i, seq := range []uint16{1, 2, 4, 3, 3, 6} {
		p := rtpcheck.Packet{Kind: rtpcheck.KindRTP, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 7}
		s.Receive(&p, 172, time.Duration(i)*20*time.Millisecond)
		s.Sent(172, 10*time.Microsecond)
	}
	sn := s.Snapshot()
	fmt.Println(sn.Expected, sn.Received, sn.Lost, sn.Reordered, sn.Duplicates)
	// Output: 6 5 1 1 1
}
