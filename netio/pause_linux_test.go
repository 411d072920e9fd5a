//go:build linux

package netio

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// TestPausedReceiveAlwaysResumes: with a small read-ahead the receive pauses
// and resumes all the time. A Read about to block on a paused receive must
// see to it that the loop looks at resuming: it once left its consumed
// buffers for the loop's next receive (which a paused receive never makes),
// and when the loop paused just after the reader looked, both waited for the
// other (the hang TestPauseCancelAfterResumeKeepsConn's FutureTimeout met
// once in a CI run). A package net peer streams data in odd-sized writes
// while the reader reads in small pieces; every round must finish. The
// window is narrow: under -race with three CPU hogs on this 2-CPU machine,
// -count=150 of this test hung twice before the fix and never after it.
func TestPausedReceiveAlwaysResumes(t *testing.T) {
	needRing(t)
	const rounds, size = 40, 256 << 10
	c, p := tcpPair(t, &Config{ReadAhead: 4 << 10})
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 13)
	}
	got := make([]byte, size)
	for r := range rounds {
		werr := make(chan error, 1)
		go func() {
			b := data
			for k := 1; len(b) > 0; k++ {
				n := min(len(b), 100+k*37%3000)
				if _, err := p.Write(b[:n]); err != nil {
					werr <- err
					return
				}
				b = b[n:]
			}
			werr <- nil
		}()
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n := 0
		for n < size {
			m, err := c.Read(got[n:min(size, n+1+(n*7)%700)])
			n += m
			if err != nil {
				t.Fatalf("round %d: Read after %d of %d bytes: %v", r, n, size, err)
			}
		}
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("round %d: bytes differ", r)
		}
	}
	_ = p.CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(got[:1]); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer's FIN = %d, %v; want EOF", n, err)
	}
}
