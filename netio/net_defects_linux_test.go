//go:build linux

package netio

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/runtime"
)

// Regression tests for the net-face defects of issue 12, each named after
// its bug and run on the io_uring path and on the package net fallback (the
// fallback runs the same scenario, which checks the test against package
// net's behaviour).

// TestReadDuringRuntimeCloseCrashed: Read and ReadFrom blocked while their
// runtime closes, and called after it closed, return net.ErrClosed; they once
// copied from receive buffers the runtime had unmapped (a panic for TCP, a
// SIGSEGV for UDP, a data race for a Read copying meanwhile). Package net's
// connections belong to no runtime: on the fallback they keep working.
func TestReadDuringRuntimeCloseCrashed(t *testing.T) {
	needRing(t) // a runtime of its own, on both paths
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			rt, err := runtime.New(&runtime.Config{Loops: 2})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					_ = rt.Close()
				}
			})
			lc := ListenConfig{Runtime: rt, Config: m.cfg}
			ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			const conns = 8
			var peers, served []net.Conn
			defer func() {
				for _, c := range append(peers, served...) {
					_ = c.Close()
				}
			}()
			for range conns {
				p, err := net.Dial("tcp4", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				peers = append(peers, p)
				c, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				served = append(served, c)
			}
			// Readers copy what streams in while the runtime closes.
			var wg sync.WaitGroup
			errs := make(chan error, conns+1)
			stop := make(chan struct{})
			for i, c := range served {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 1000)
					for {
						if _, err := c.Read(buf); err != nil {
							errs <- err
							return
						}
					}
				}()
				go func(p net.Conn) {
					msg := []byte(strings.Repeat("x", 1500+i))
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := p.Write(msg); err != nil {
							return
						}
					}
				}(peers[i])
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 100)
				for {
					if _, _, err := pc.ReadFrom(buf); err != nil {
						errs <- err
						return
					}
				}
			}()
			tx, err := net.Dial("udp4", pc.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			for range 100 {
				_, _ = tx.Write([]byte("datagram"))
			}
			if err := rt.Close(); err != nil {
				t.Fatal(err)
			}
			closed = true
			if m.cfg != nil {
				// Package net's sockets did not close with the runtime:
				// end the readers by closing them.
				for _, c := range served {
					_ = c.Close()
				}
				_ = pc.Close()
			}
			wg.Wait()
			close(stop)
			for range conns + 1 {
				if err := <-errs; !errors.Is(err, net.ErrClosed) {
					t.Errorf("a read ended by the runtime's Close returned %v, want net.ErrClosed", err)
				}
			}
			// After Close: at once, net.ErrClosed.
			if m.cfg == nil {
				if _, err := served[0].Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
					t.Errorf("Read after the runtime closed: %v, want net.ErrClosed", err)
				}
				if _, _, err := pc.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
					t.Errorf("ReadFrom after the runtime closed: %v, want net.ErrClosed", err)
				}
				if _, err := served[0].Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
					t.Errorf("Write after the runtime closed: %v, want net.ErrClosed", err)
				}
			}
		})
	}
}

// TestAcceptAfterRuntimeCloseHung: an Accept blocked when its runtime
// closes returns net.ErrClosed (it once never returned), and so does one
// called afterwards.
func TestAcceptAfterRuntimeCloseHung(t *testing.T) {
	needRing(t) // a runtime of its own, on both paths
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			rt, err := runtime.New(&runtime.Config{Loops: 1})
			if err != nil {
				t.Fatal(err)
			}
			lc := ListenConfig{Runtime: rt, Config: m.cfg}
			ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
			if err != nil {
				_ = rt.Close()
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan error, 1)
			go func() {
				_, err := ln.Accept()
				done <- err
			}()
			if err := rt.Close(); err != nil {
				t.Fatal(err)
			}
			if m.cfg != nil {
				_ = ln.Close() // package net's listener is not the runtime's
			}
			select {
			case err := <-done:
				wantOpErr(t, "Accept blocked across the runtime's Close", err, "accept", net.ErrClosed)
			case <-time.After(10 * time.Second):
				t.Fatal("Accept still blocked 10s after the runtime closed")
			}
			_, err = ln.Accept()
			wantOpErr(t, "Accept after the runtime's Close", err, "accept", net.ErrClosed)
		})
	}
}

// slowReader reads a connection 32 KiB at a time with a pause between
// reads, so that the sender's socket buffer is full most of the time, and
// checks the bytes against want.
func slowReader(c net.Conn, want []byte) error {
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 32<<10)
	got := 0
	for {
		n, err := c.Read(buf)
		for i := 0; i < n; i++ {
			if got+i >= len(want) || buf[i] != want[got+i] {
				return fmt.Errorf("byte %d differs", got+i)
			}
		}
		got += n
		if err == io.EOF {
			if got != len(want) {
				return fmt.Errorf("got %d bytes, want %d", got, len(want))
			}
			return nil
		}
		if err != nil {
			return err
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// TestCopyToSlowReaderSpliceEAGAIN: io.Copy from a file and from a pipe to a
// peer that reads slowly moves every byte. A SPLICE into the non-blocking
// socket once completed with EAGAIN ("splice: resource temporarily
// unavailable") after about 4 MB from a file, and at once from a pipe.
func TestCopyToSlowReaderSpliceEAGAIN(t *testing.T) {
	data := make([]byte, 12<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sources := []struct {
		name string
		open func(t *testing.T) io.Reader
	}{
		{name: "file", open: func(t *testing.T) io.Reader {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}},
		{name: "pipe", open: func(t *testing.T) io.Reader {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			go func() {
				_, _ = w.Write(data)
				w.Close()
			}()
			return r
		}},
	}
	for _, m := range packetModes(t) {
		for _, src := range sources {
			t.Run(m.name+"/"+src.name, func(t *testing.T) {
				c, p := tcpPair(t, m.cfg)
				checked := make(chan error, 1)
				go func() { checked <- slowReader(p, data) }()
				_ = c.SetWriteDeadline(time.Now().Add(60 * time.Second))
				n, err := io.Copy(c, src.open(t))
				if err != nil || n != int64(len(data)) {
					t.Fatalf("io.Copy = %d, %v; want %d bytes", n, err, len(data))
				}
				_ = c.(interface{ CloseWrite() error }).CloseWrite()
				if err := <-checked; err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// queued waits until c has n bytes in its receive queue (SIOCINQ), so that
// a test knows data is there without sleeping on it.
func queued(t *testing.T, c any, n int) {
	t.Helper()
	rc, err := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	}).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got int
		if err := rc.Control(func(fd uintptr) { got, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes queued after 5s, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPastDeadlineReturnedQueuedData: with data already queued, a Read or
// ReadFrom whose deadline has passed times out (package net checks the
// deadline first; netio once returned the queued bytes). Read(nil) returns
// 0, nil with data queued and at EOF.
func TestPastDeadlineReturnedQueuedData(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name+"/tcp", func(t *testing.T) {
			c, p := tcpPair(t, m.cfg)
			if _, err := p.Write([]byte("queued")); err != nil {
				t.Fatal(err)
			}
			queued(t, c, 6)
			if n, err := c.Read(nil); n != 0 || err != nil {
				t.Errorf("Read(nil) with data queued = %d, %v; want 0, nil", n, err)
			}
			_ = c.SetReadDeadline(time.Now().Add(-time.Second))
			n, err := c.Read(make([]byte, 10))
			if n != 0 {
				t.Errorf("Read past its deadline returned %d queued bytes", n)
			}
			wantTimeout(t, "Read past its deadline", err, "read")
			_ = c.SetReadDeadline(time.Time{})
			buf := make([]byte, 10)
			if n, err := c.Read(buf); err != nil || string(buf[:n]) != "queued" {
				t.Fatalf("Read after clearing the deadline = %q, %v", buf[:n], err)
			}
			_ = p.CloseWrite()
			if n, err := c.Read(buf); n != 0 || err != io.EOF {
				t.Fatalf("Read at EOF = %d, %v; want 0, io.EOF", n, err)
			}
			if n, err := c.Read(nil); n != 0 || err != nil {
				t.Errorf("Read(nil) at EOF = %d, %v; want 0, nil", n, err)
			}
		})
		t.Run(m.name+"/udp", func(t *testing.T) {
			pc := listenPacket(t, m.cfg, "udp4", "127.0.0.1:0")
			tx, err := net.Dial("udp4", pc.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if _, err := tx.Write([]byte("queued")); err != nil {
				t.Fatal(err)
			}
			queued(t, pc, 6)
			_ = pc.SetReadDeadline(time.Now().Add(-time.Second))
			n, _, err := pc.ReadFrom(make([]byte, 10))
			if n != 0 {
				t.Errorf("ReadFrom past its deadline returned %d queued bytes", n)
			}
			wantTimeout(t, "ReadFrom past its deadline", err, "read")
			_ = pc.SetReadDeadline(time.Time{})
			buf := make([]byte, 10)
			if n, _, err := pc.ReadFrom(buf); err != nil || string(buf[:n]) != "queued" {
				t.Fatalf("ReadFrom after clearing the deadline = %q, %v", buf[:n], err)
			}
		})
	}
}

// TestLingerCloseStalledLoop: Close of a connection with SetLinger(5) and
// unacknowledged data blocks only its caller (as package net's does), never
// a loop: it once ran close(2) on the loop thread, stalling every other
// connection of that loop for up to 5 s. Another connection on the same
// runtime and loop keeps its round trips going meanwhile.
func TestLingerCloseStalledLoop(t *testing.T) {
	needRing(t) // a runtime of its own, on both paths
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			rt := newRuntime(t, &runtime.Config{Loops: 1})
			lc := ListenConfig{Runtime: rt, Config: m.cfg}
			ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go echoServe(ln)
			// The lingering connection: its peer never reads.
			quiet, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer quiet.Close()
			d := Dialer{Runtime: rt, Config: m.cfg}
			lingering, err := d.Dial("tcp4", quiet.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			peer, err := quiet.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			_ = peer.(*net.TCPConn).SetReadBuffer(4 << 10)
			if err := lingering.(interface{ SetLinger(int) error }).SetLinger(5); err != nil {
				t.Fatal(err)
			}
			_ = lingering.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			_, _ = lingering.Write(bigWrite()) // fills both buffers, then times out
			closed := make(chan struct{})
			go func() { _ = lingering.Close(); close(closed) }()
			active, err := d.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer active.Close()
			start := time.Now()
			for range 50 {
				echoOnce(t, active)
			}
			took := time.Since(start)
			select {
			case <-closed:
				t.Log("the lingering Close returned before the round trips ended")
			default:
			}
			// 50 loopback round trips take milliseconds; a stalled loop
			// would hold them for the linger's 5 s.
			if took > 2*time.Second {
				t.Fatalf("50 round trips took %v beside a lingering Close", took)
			}
			_ = peer.Close() // the peer goes: the lingering Close ends
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("the lingering Close did not return")
			}
		})
	}
}

// TestWriteToIgnoredDeadlineAndClose: a WriteTo whose write deadline has
// passed times out, and one after Close returns net.ErrClosed, as package
// net's do: WriteTo waits in Go's poller like every other call. (The ring
// path it replaced ignored both once its send was posted; loopback cannot
// show that, since its UDP sends never wait.)
func TestWriteToIgnoredDeadlineAndClose(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			pc := listenPacket(t, m.cfg, "udp4", "127.0.0.1:0")
			to := pc.LocalAddr()
			if _, err := pc.WriteTo([]byte("ok"), to); err != nil {
				t.Fatal(err)
			}
			_ = pc.SetWriteDeadline(time.Now().Add(-time.Second))
			_, err := pc.WriteTo([]byte("late"), to)
			wantTimeout(t, "WriteTo past its deadline", err, "write")
			_ = pc.SetWriteDeadline(time.Time{})
			if _, err := pc.WriteTo([]byte("ok"), to); err != nil {
				t.Fatalf("WriteTo after clearing the deadline: %v", err)
			}
			pc.Close()
			_, err = pc.WriteTo([]byte("closed"), to)
			wantOpErr(t, "WriteTo after Close", err, "write", net.ErrClosed)
		})
	}
}

// listenChildEnv makes TestMain run listenChild: listen on the address it
// names with netio (or package net), accept one connection, say "ready" and
// exit without closing anything, as a server killed by SIGTERM does.
const listenChildEnv = "NETIO_TEST_LISTEN_CHILD"

func listenChild(spec string) int {
	addr, mode, _ := strings.Cut(spec, ",")
	lc := ListenConfig{}
	if mode == "fallback" {
		lc.Config = &Config{ForceFallback: true}
	}
	ln, err := lc.Listen(context.Background(), "tcp4", addr)
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	fmt.Println("listening")
	c, err := ln.Accept()
	if err != nil {
		fmt.Println("accept:", err)
		return 1
	}
	_, _ = c.Write([]byte("hi"))
	fmt.Println("ready")
	return 0 // exit with the listener and the connection open
}

// TestPortBoundAfterExit: after a server exits without closing its listener
// (a SIGTERM), the port is free at once for its restart, as with package
// net. With a multishot accept in flight, io_uring's deferred teardown once
// kept it bound for 3-10 ms, and the restart got EADDRINUSE.
func TestPortBoundAfterExit(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			probe, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := probe.Addr().String()
			probe.Close()
			const cycles = 8
			for i := range cycles {
				cmd := exec.Command(exe, "-test.run=^$")
				cmd.Env = append(os.Environ(), listenChildEnv+"="+addr+","+m.name)
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				sc := bufio.NewScanner(out)
				if !sc.Scan() || sc.Text() != "listening" {
					_ = cmd.Wait()
					t.Fatalf("cycle %d: child said %q", i, sc.Text())
				}
				c, err := net.Dial("tcp4", addr)
				if err != nil {
					t.Fatal(err)
				}
				for sc.Scan() {
				}
				if err := cmd.Wait(); err != nil {
					t.Fatalf("cycle %d: child: %v", i, err)
				}
				c.Close()
				// The restart: package net's listener (SO_REUSEADDR), at once.
				ln, err := net.Listen("tcp4", addr)
				if err != nil {
					t.Fatalf("cycle %d: restart right after the exit: %v", i, err)
				}
				ln.Close()
			}
		})
	}
}

// TestKeepAliveOffByDefault: dialed and accepted TCP connections have
// package net's keep-alive defaults (on, 15 s idle, 15 s interval, 9
// probes); a negative KeepAlive turns it off and KeepAliveConfig is applied
// as package net applies it. netio's connections once had keep-alive off.
func TestKeepAliveOffByDefault(t *testing.T) {
	type ka struct{ on, idle, intvl, cnt int }
	get := func(t *testing.T, c any) ka {
		t.Helper()
		rc, err := c.(interface {
			SyscallConn() (syscall.RawConn, error)
		}).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var k ka
		err = rc.Control(func(fd uintptr) {
			k.on, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
			k.idle, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
			k.intvl, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
			k.cnt, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
		})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	tests := []struct {
		name      string
		keepAlive time.Duration
		config    net.KeepAliveConfig
		want      ka // on == 0: only SO_KEEPALIVE is checked
	}{
		{name: "default", want: ka{1, 15, 15, 9}},
		{name: "KeepAlive 30s", keepAlive: 30 * time.Second, want: ka{1, 30, 15, 9}},
		{name: "KeepAlive -1", keepAlive: -1, want: ka{0, 0, 0, 0}},
		{name: "KeepAliveConfig", keepAlive: -1, config: net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second, Interval: 3 * time.Second, Count: 4}, want: ka{1, 7, 3, 4}},
	}
	for _, m := range packetModes(t) {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				lc := ListenConfig{Config: m.cfg, KeepAlive: tt.keepAlive, KeepAliveConfig: tt.config}
				ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				d := Dialer{Config: m.cfg, KeepAlive: tt.keepAlive, KeepAliveConfig: tt.config}
				c, err := d.Dial("tcp4", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				a, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				for side, conn := range map[string]net.Conn{"dialed": c, "accepted": a} {
					got := get(t, conn)
					if tt.want.on == 0 {
						if got.on != 0 {
							t.Errorf("%s: SO_KEEPALIVE on, want off", side)
						}
						continue
					}
					if got != tt.want {
						t.Errorf("%s: keep-alive %+v, want %+v", side, got, tt.want)
					}
				}
			})
		}
	}
}
