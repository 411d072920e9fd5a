//go:build linux

package netio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ringwire/ringwire/ring"
)

// withAvailability makes fallback ask probe instead of ring.Available, as if
// the process had just started, and returns a restore func (also registered
// with t.Cleanup; calling it twice is harmless) that puts ring.Available back
// and clears the cached answer, so the next caller probes the real kernel.
// No netio test calls t.Parallel, so no test that needs the ring runs while
// the probe is swapped.
func withAvailability(t *testing.T, probe func() error) (restore func()) {
	t.Helper()
	availableFn = probe
	availOnce = sync.Once{}
	availErr = nil
	unavailLog.Store(false)
	var once sync.Once
	restore = func() {
		once.Do(func() {
			availableFn = ring.Available
			availOnce = sync.Once{}
			availErr = nil
			unavailLog.Store(false)
		})
	}
	t.Cleanup(restore)
	return restore
}

// seccompEPERM is the error ring.Available returns when a seccomp filter
// refuses io_uring_setup, built the way ring/available_linux.go builds it.
func seccompEPERM() error {
	reason := fmt.Errorf("%w: %s", ring.ErrUnavailable,
		"a seccomp filter blocks io_uring_setup (EPERM), as Docker's and containerd's default profiles do; run with a profile that allows io_uring_setup, io_uring_enter and io_uring_register")
	return fmt.Errorf("%w: %w", reason, os.NewSyscallError("io_uring_setup", syscall.EPERM))
}

// TestFallbackWhenUnavailable: when the availability probe says no (EPERM
// from a seccomp filter), Listen, Dial and ListenPacket return package net's
// objects that carry traffic, the reason is logged once as a Warn across
// every call, and the handler API refuses with an error.
func TestFallbackWhenUnavailable(t *testing.T) {
	probeErr := seccompEPERM()
	var probes atomic.Int32
	restore := withAvailability(t, func() error {
		probes.Add(1)
		return probeErr
	})
	core, logs := observer.New(zap.DebugLevel)
	cfg := &Config{Logger: zap.New(core)}
	lc := ListenConfig{Config: cfg}
	d := Dialer{Config: cfg, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msg := []byte("fallback echo")

	for i := 0; i < 3; i++ {
		// TCP: a *net.TCPListener echoing to a *net.TCPConn.
		ln, err := lc.Listen(ctx, "tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ln.(*net.TCPListener); !ok {
			ln.Close()
			t.Fatalf("Listen returned %T, want *net.TCPListener", ln)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.Copy(c, c)
		}()
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			ln.Close()
			wg.Wait()
			t.Fatal(err)
		}
		if _, ok := c.(*net.TCPConn); !ok {
			t.Errorf("Dial returned %T, want *net.TCPConn", c)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, len(msg))
		if _, err := c.Write(msg); err != nil {
			t.Errorf("tcp write: %v", err)
		} else if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			t.Errorf("tcp echo: %q %v", got, err)
		}
		c.Close()
		ln.Close()
		wg.Wait()

		// UDP: a *net.UDPConn from ListenPacket echoing to a dialled *net.UDPConn.
		pc, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := pc.(*net.UDPConn); !ok {
			pc.Close()
			t.Fatalf("ListenPacket returned %T, want *net.UDPConn", pc)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			_ = pc.SetDeadline(time.Now().Add(10 * time.Second))
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}()
		uc, err := d.DialContext(ctx, "udp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			wg.Wait()
			t.Fatal(err)
		}
		if _, ok := uc.(*net.UDPConn); !ok {
			t.Errorf("Dial udp returned %T, want *net.UDPConn", uc)
		}
		_ = uc.SetDeadline(time.Now().Add(5 * time.Second))
		got = make([]byte, 64)
		if _, err := uc.Write(msg); err != nil {
			t.Errorf("udp write: %v", err)
		} else if n, err := uc.Read(got); err != nil || string(got[:n]) != string(msg) {
			t.Errorf("udp echo: %q %v", got[:n], err)
		}
		uc.Close()
		pc.Close()
		wg.Wait()
	}

	// The package functions take the same path (their logger is a no-op).
	ln, err := Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ln.(*net.TCPListener); !ok {
		t.Errorf("netio.Listen returned %T, want *net.TCPListener", ln)
	}
	ln.Close()

	// The handler API has no net fallback: every entry point says so.
	// Nothing is opened on success, so nothing needs closing: a non-nil
	// result is reported (and leaks loops, which goleak then reports too).
	handlerCalls := []struct {
		name string
		call func() (opened bool, err error)
	}{
		{name: "Serve", call: func() (bool, error) {
			s, err := lc.Serve(ctx, "tcp4", "127.0.0.1:0", newEcho(false))
			return s != nil, err
		}},
		{name: "DialHandler", call: func() (bool, error) {
			c, err := d.DialHandler(ctx, "tcp4", "127.0.0.1:9", newEcho(false))
			return c != nil, err
		}},
		{name: "ListenUDP", call: func() (bool, error) {
			u, err := lc.ListenUDP(ctx, "udp4", "127.0.0.1:0", udpEcho{})
			return u != nil, err
		}},
		{name: "DialUDP", call: func() (bool, error) {
			u, err := d.DialUDP(ctx, "udp4", "127.0.0.1:9", udpEcho{})
			return u != nil, err
		}},
	}
	for _, hc := range handlerCalls {
		opened, err := hc.call()
		var oe *net.OpError
		if opened || !errors.Is(err, errNoHandlerFallback) || !errors.As(err, &oe) {
			t.Errorf("%s on the fallback: opened=%v err=%v (%T), want a *net.OpError wrapping errNoHandlerFallback", hc.name, opened, err, err)
		}
	}

	// Asked, netio says why it fell back, without probing again.
	if got := FallbackReason(cfg); got != probeErr {
		t.Errorf("FallbackReason = %v, want the probe's %v", got, probeErr)
	}
	if got := FallbackReason(&Config{ForceFallback: true}); got != ErrForcedFallback {
		t.Errorf("FallbackReason with ForceFallback = %v, want ErrForcedFallback", got)
	}
	if n := probes.Load(); n != 1 {
		t.Errorf("availability probed %d times, want once", n)
	}
	warns := logs.FilterMessageSnippet("io_uring unavailable").AllUntimed()
	if len(warns) != 1 {
		t.Fatalf("fallback logged %d times, want once; all logs: %v", len(warns), logs.AllUntimed())
	}
	w := warns[0]
	if w.Level != zapcore.WarnLevel {
		t.Errorf("fallback logged at %v, want warn", w.Level)
	}
	if got := w.ContextMap()["error"]; got != probeErr.Error() {
		t.Errorf("fallback log carries error %q, want the reason %q", got, probeErr.Error())
	}
	t.Logf("logged: %s: %v", w.Message, w.ContextMap()["error"])

	// Back on the real probe, netio serves on io_uring again.
	restore()
	needRing(t) // the rest checks that the net face is back on its own sockets
	if err := FallbackReason(nil); err != nil {
		t.Errorf("FallbackReason with io_uring available = %v, want nil", err)
	}
	ln, err = lc.Listen(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, ok := ln.(*net.TCPListener); ok {
		t.Errorf("after restoring the probe, Listen still returned %T", ln)
	}
}
