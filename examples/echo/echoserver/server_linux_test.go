//go:build linux

package echoserver

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// skipWithoutUring skips (or fails under RINGWIRE_STRICT=1) where io_uring
// cannot be used.
func skipWithoutUring(t *testing.T) {
	t.Helper()
	testenv.NeedIOUring(t, ring.Available())
}

func start(t *testing.T, cfg *Config) *Server {
	t.Helper()
	skipWithoutUring(t)
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestBackpressure writes far more than the socket buffers and PauseAt hold
// before reading anything: the handler-API server must pause receiving
// instead of dropping or failing, and every byte must come back in order.
func TestBackpressure(t *testing.T) {
	for _, api := range []API{APIHandler, APIConn} {
		t.Run(string(api), func(t *testing.T) {
			s := start(t, &Config{Loops: 1, API: api})
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			const total = 8 << 20
			out := make([]byte, total)
			for i := range out {
				out[i] = byte(i*7 + i>>13)
			}
			werr := make(chan error, 1)
			go func() {
				// Write everything first; the reader starts 300ms late so
				// that the server's queue fills and it must pause.
				_, err := c.Write(out)
				werr <- err
			}()
			time.Sleep(300 * time.Millisecond)
			in := make([]byte, total)
			if _, err := io.ReadFull(c, in); err != nil {
				t.Fatalf("read echo: %v", err)
			}
			if err := <-werr; err != nil {
				t.Fatalf("write: %v", err)
			}
			if !bytes.Equal(in, out) {
				i := 0
				for in[i] == out[i] {
					i++
				}
				t.Fatalf("echo differs from byte %d", i)
			}
			if err := s.Close(); err != nil { // join the server: counters final
				t.Fatal(err)
			}
			if st := s.Stats(); st.Open != 0 || st.Bytes != total || st.Conns != 1 {
				t.Errorf("stats: bytes %d conns %d open %d, want %d, 1, 0", st.Bytes, st.Conns, st.Open, total)
			}
		})
	}
}

// TestHalfClose: after the client's FIN the server echoes what it has
// and closes; the client reads everything, then EOF.
func TestHalfClose(t *testing.T) {
	for _, api := range []API{APIHandler, APIConn} {
		t.Run(string(api), func(t *testing.T) {
			s := start(t, &Config{Loops: 1, API: api})
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			msg := bytes.Repeat([]byte("half-close "), 1000)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("echo %d bytes, want %d", len(got), len(msg))
			}
			deadline := time.Now().Add(5 * time.Second)
			for s.Stats().Open != 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if o := s.Stats().Open; o != 0 {
				t.Errorf("open connections %d after the peer's close, want 0", o)
			}
		})
	}
}

func TestCloseIdempotent(t *testing.T) {
	s := start(t, &Config{Loops: 1})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Error("dial succeeded after Close")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "bad api", cfg: Config{API: "epoll"}},
		{name: "negative loops", cfg: Config{Loops: -1}},
		{name: "negative pause", cfg: Config{PauseAt: -1}},
		{name: "negative pause leases", cfg: Config{PauseLeases: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Start(&tt.cfg); err == nil {
				_ = s.Close()
				t.Fatal("Start succeeded")
			}
		})
	}
	if _, err := ParseAPI("conn"); err != nil {
		t.Error(err)
	}
	var nilCfg *Config
	c, err := nilCfg.withDefaults()
	if err != nil || c.API != APIHandler || c.Addr != "127.0.0.1:0" || c.PauseAt != DefaultPauseAt {
		t.Errorf("nil Config defaults: %+v, %v", c, err)
	}
}
