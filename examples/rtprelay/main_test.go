package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringwire/ringwire/examples/rtprelay/relay"
	"github.com/ringwire/ringwire/examples/rtprelay/ringrelay"
	"github.com/ringwire/ringwire/examples/rtprelay/rtptest"
	"github.com/ringwire/ringwire/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for the relay's printer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// started returns a channel closed once out has a line: the relay prints its
// first report one -stats interval after it has bound its sockets. It gives
// up (closes the channel) after 10 s or when ctx is done.
func started(ctx context.Context, out *syncBuffer) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(5 * time.Millisecond) {
			if strings.Contains(out.String(), "\n") {
				return
			}
		}
	}()
	return ch
}

// TestRunCLI runs the command's flag path end to end with each transport:
// two streams, JSON statistics, on ports found free just before (the relay
// binds them itself, as the command does).
func TestRunCLI(t *testing.T) {
	for _, impl := range []string{"ringwire", "go"} {
		t.Run(impl, func(t *testing.T) {
			if impl == "ringwire" {
				testenv.NeedIOUring(t, ringrelay.Available())
			}
			testRunCLI(t, impl)
		})
	}
}

func testRunCLI(t *testing.T, impl string) {
	lo := netip.MustParseAddr("127.0.0.1")
	dests, err := relay.ListenConsecutiveUDP(lo, 2, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ctx context.Context
	var cancel context.CancelFunc
	var out, errOut syncBuffer
	done := make(chan error, 1)
	var in netip.AddrPort
	for try := 0; ; try++ { // the freed ingress ports may be taken meanwhile: retry
		probe, err := relay.ListenConsecutiveUDP(lo, 2, 100)
		if err != nil {
			t.Fatal(err)
		}
		in = probe[0].LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
		probe[0].Close()
		probe[1].Close()
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
		args := []string{"-in", in.String(), "-out", dests[0].LocalAddr().String(), "-streams", "2", "-json", "-stats", "10ms", "-impl", impl}
		go func() { done <- run(ctx, args, &out, &errOut) }()
		select {
		case err := <-done:
			cancel()
			if try < 5 && strings.Contains(err.Error(), "address already in use") {
				continue
			}
			t.Fatalf("run: %v", err)
		case <-started(ctx, &out):
		}
		break
	}
	var rs []*rtptest.Receiver
	for i, c := range dests {
		st := rtptest.Stream{SSRC: uint32(i + 1), Count: 50}
		r := rtptest.NewReceiver(c, st)
		defer r.Close()
		rs = append(rs, r)
		src, _ := relay.ListenConsecutiveUDP(lo, 1, 10)
		defer src[0].Close()
		if _, err := (&rtptest.Sender{Conn: src[0], To: netip.AddrPortFrom(lo, in.Port()+uint16(i)), Stream: st, Interval: 100 * time.Microsecond}).Send(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range rs {
		if res := r.Wait(ctx, 0); res.Err(50) != nil {
			t.Errorf("stream %d: %v", i, res.Err(50))
		}
	}
	time.Sleep(30 * time.Millisecond) // at least one more report
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v (stderr %s)", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var last relay.Report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	for i := range 2 {
		l, ok := last.Leg(i, relay.Forward, 0)
		if !ok || l.Stats.Received != 50 || l.Stats.PacketsOut != 50 || l.Local != netip.AddrPortFrom(lo, in.Port()+uint16(i)).String() {
			t.Errorf("leg %d: %+v", i, l)
		}
	}
	if impl == "ringwire" && (last.Transport["loops"] != 1 || last.Transport["sends"] != 100) {
		t.Errorf("transport counters %v", last.Transport)
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-in", "127.0.0.1:1"},
		{"-in", "127.0.0.1:1", "-out", "127.0.0.1:2", "-impl", "nope"},
		{"-in", "127.0.0.1:1", "-out", "127.0.0.1:2", "stray"},
		{"-bogus"},
	} {
		var errOut bytes.Buffer
		if err := run(context.Background(), args, &errOut, &errOut); err == nil {
			t.Errorf("run(%s) succeeded", strconv.Quote(strings.Join(args, " ")))
		}
	}
}
