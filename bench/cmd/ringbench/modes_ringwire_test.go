//go:build linux

package main

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

func skipWithoutUring(t *testing.T) {
	t.Helper()
	testenv.NeedIOUring(t, ring.Available())
}

// TestRingwireEchoModesInProcess starts each ringwire echo mode in-process,
// echoes over a few connections and checks the self-reported counters.
func TestRingwireEchoModesInProcess(t *testing.T) {
	skipWithoutUring(t)
	reg := newRegistry()
	for _, mode := range []string{"ringwire-handler", "ringwire-conn"} {
		t.Run(mode, func(t *testing.T) {
			f, ok := reg.echo[mode]
			if !ok {
				t.Fatalf("mode %s not registered", mode)
			}
			srv, err := f(EchoConfig{Addr: "127.0.0.1:0", Loops: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			msg := bytes.Repeat([]byte("ringbench"), 100)
			const conns, rounds = 3, 50
			for range conns {
				c, err := net.Dial("tcp", srv.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, len(msg))
				for range rounds {
					if _, err := c.Write(msg); err != nil {
						t.Fatal(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						t.Fatal(err)
					}
				}
				_ = c.Close()
			}
			// ringwire-handler counts its loops' io_uring_enter calls;
			// ringwire-conn has no loops and counts nothing.
			wantSys := func(st ServerStats) bool {
				if mode == "ringwire-conn" {
					return st.SyscallName == "" && st.Syscalls == 0
				}
				return st.SyscallName == "io_uring_enter" && st.Syscalls > 0
			}
			live := srv.Stats()
			if !wantSys(live) {
				t.Errorf("self-reported syscalls while running: %d %q", live.Syscalls, live.SyscallName)
			}
			// Counters are exact once Close has joined the server's goroutines.
			if err := srv.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			st := srv.Stats()
			if st.Conns != conns || st.Bytes != conns*rounds*int64(len(msg)) {
				t.Errorf("stats %+v, want %d conns and %d bytes", st, conns, conns*rounds*len(msg))
			}
			if !wantSys(st) {
				t.Errorf("self-reported syscalls %d %q", st.Syscalls, st.SyscallName)
			}
			if err := srv.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

// TestSmokeRingwire runs one tiny bounded TCP row for the ringwire modes
// through the real subprocess path (`ringbench serve`, stats over stdin and
// stdout), with gonet as the baseline, and checks their cells.
func TestSmokeRingwire(t *testing.T) {
	skipWithoutUring(t)
	var out, errb bytes.Buffer
	err := realMain([]string{
		"-modes", "gonet,ringwire-handler,ringwire-conn", "-baseline", "gonet",
		"-conns", "4", "-depth", "2", "-size", "64",
		"-duration", "200ms", "-warmup", "50ms", "-rounds", "1",
	}, &out, &errb)
	if err != nil {
		t.Fatalf("ringbench: %v\nstderr:\n%s\nstdout:\n%s", err, errb.String(), out.String())
	}
	md := out.String()
	rows := parseTable(t, md, "## TCP echo")
	if len(rows) != 3 {
		t.Fatalf("got %d TCP rows, want 3:\n%s", len(rows), md)
	}
	for _, r := range rows[1:] {
		if !strings.HasPrefix(r["mode"], "ringwire-") {
			t.Errorf("row mode %q", r["mode"])
		}
		positive(t, r, "msgs/s", "p50 µs", "p99 µs", "srv RSS MiB", "msgs/s ×gonet")
		self := strings.Fields(r["self-rep sys/msg"])
		switch {
		case r["mode"] == "ringwire-conn":
			// netio's sockets wait in Go's poller: no loops to count.
			if r["self-rep sys/msg"] != "n/a" {
				t.Errorf("%s: self-rep sys/msg = %q, want n/a", r["mode"], r["self-rep sys/msg"])
			}
		case len(self) != 2 || self[1] != "io_uring_enter":
			t.Errorf("%s: self-rep sys/msg = %q, want \"N io_uring_enter\"", r["mode"], r["self-rep sys/msg"])
		default:
			if v, err := strconv.ParseFloat(self[0], 64); err != nil || v <= 0 {
				t.Errorf("%s: self-reported io_uring_enter/msg = %q", r["mode"], self[0])
			}
		}
		if strings.Contains(r["bottleneck"], "ERR") {
			t.Errorf("%s: %s", r["mode"], r["bottleneck"])
		}
	}
}

// TestCloseIdempotentEveryMode starts every registered echo and relay mode
// and closes it twice: both calls must succeed (the second returns the
// first's result) and leave no goroutine behind (goleak in TestMain).
func TestCloseIdempotentEveryMode(t *testing.T) {
	skipWithoutUring(t)
	reg := newRegistry()
	check := func(t *testing.T, srv Server, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	for mode, f := range reg.echo {
		t.Run("echo/"+mode, func(t *testing.T) {
			srv, err := f(EchoConfig{Addr: "127.0.0.1:0", Loops: 1})
			check(t, srv, err)
		})
	}
	for mode, f := range reg.relay {
		t.Run("relay/"+mode, func(t *testing.T) {
			srv, err := f(RelayConfig{Addr: "127.0.0.1:0", Dest: "127.0.0.1:9", Streams: 2, Loops: 1})
			check(t, srv, err)
		})
	}
}
