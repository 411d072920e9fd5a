//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ringwire/ringwire/examples/echo/echoserver"
	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

// The test binary is also the echo command: with echoMainEnv=1 it runs main
// with its arguments, after blocking io_uring with a seccomp filter when
// echoBlockEnv=1, the way a container's default profile does.
const (
	echoMainEnv  = "RINGWIRE_ECHO_MAIN"
	echoBlockEnv = "RINGWIRE_ECHO_BLOCK_IO_URING"
)

func TestMain(m *testing.M) {
	if os.Getenv(echoMainEnv) == "1" {
		if os.Getenv(echoBlockEnv) == "1" {
			if err := testenv.BlockIOUring(syscall.EPERM); err != nil {
				fmt.Fprintln(os.Stderr, "echo test: cannot install the seccomp filter:", err)
				os.Exit(3)
			}
		}
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// needIOUring skips (or fails under RINGWIRE_STRICT=1) where io_uring
// cannot be used.
func needIOUring(t *testing.T) {
	t.Helper()
	testenv.NeedIOUring(t, ring.Available())
}

// echoClients opens conns connections to addr and, on each, writes msgs
// messages of growing sizes, reading each echo back and comparing it. It
// returns the number of bytes echoed.
func echoClients(t *testing.T, addr string, conns, msgs int) int64 {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		errs  []error
	)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := echoOne(addr, i, msgs)
			mu.Lock()
			total += n
			if err != nil {
				errs = append(errs, fmt.Errorf("conn %d: %w", i, err))
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return total
}

// msgSizes cycles from one byte to beyond a provided buffer (16 KiB) and the
// SEND_ZC threshold (32 KiB).
var msgSizes = []int{1, 64, 1500, 16 << 10, 16<<10 + 1, 100 << 10}

func echoOne(addr string, id, msgs int) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return 0, err
	}
	var total int64
	for m := range msgs {
		size := msgSizes[(id+m)%len(msgSizes)]
		out := make([]byte, size)
		for i := range out {
			out[i] = byte(id*31 + m*7 + i)
		}
		werr := make(chan error, 1)
		go func() { _, err := c.Write(out); werr <- err }() // large messages: write while reading
		in := make([]byte, size)
		_, rerr := io.ReadFull(c, in)
		if err := errors.Join(<-werr, rerr); err != nil {
			return total, fmt.Errorf("message %d (%d bytes): %w", m, size, err)
		}
		if !bytes.Equal(in, out) {
			return total, fmt.Errorf("message %d (%d bytes): echo differs", m, size)
		}
		total += int64(size)
	}
	return total, nil
}

// statsRe picks the summary line WriteTo prints.
var statsRe = regexp.MustCompile(`echo stats \(api=(\w+)\): connections (\d+) \(open (\d+)\), bytes echoed (\d+)`)

// checkStats checks the printed statistics against what the clients did. On
// io_uring they hold the loops' and netio's counters; on package net, why.
func checkStats(t *testing.T, out, api string, conns int, bytes int64, onNet bool) {
	t.Helper()
	m := statsRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no stats summary in output:\n%s", out)
	}
	if m[1] != api || m[2] != strconv.Itoa(conns) || m[3] != "0" || m[4] != strconv.FormatInt(bytes, 10) {
		t.Errorf("stats summary %q, want api=%s connections %d (open 0), bytes echoed %d", m[0], api, conns, bytes)
	}
	if onNet {
		if !strings.Contains(out, "served by package net: ring: io_uring unavailable") {
			t.Errorf("output does not say it served on package net, and why:\n%s", out)
		}
		return
	}
	want := fmt.Sprintf("netio: accepted %d, accept errors 0,", conns)
	if api == string(echoserver.APIConn) {
		// netio's own sockets in Go's poller: no loops, no ring.
		if strings.Contains(out, "total") {
			t.Errorf("the conn server reports event loops:\n%s", out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
		return
	}
	total := regexp.MustCompile(`(?m)^\s*total\s+-\s+(\d+)\s+(\d+)\s+(\d+)\s`).FindStringSubmatch(out)
	if total == nil {
		t.Fatalf("no total row in output:\n%s", out)
	}
	for i, name := range []string{"sqes", "cqes", "enters"} {
		if n, _ := strconv.ParseUint(total[i+1], 10, 64); n == 0 {
			t.Errorf("total %s is 0:\n%s", name, out)
		}
	}
	if !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// TestRun runs the server in-process on port 0 in both API modes, echoes from
// several connections, cancels the context and checks the clean shutdown and
// the statistics printed.
func TestRun(t *testing.T) {
	needIOUring(t)
	for _, api := range []echoserver.API{echoserver.APIHandler, echoserver.APIConn} {
		t.Run(string(api), func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addrc := make(chan net.Addr, 1)
			o := options{
				server: echoserver.Config{Addr: "127.0.0.1:0", Loops: 2, API: api},
				ready:  func(a net.Addr) { addrc <- a },
			}
			var out bytes.Buffer
			done := make(chan error, 1)
			go func() { done <- run(ctx, o, &out, zap.New(core)) }()
			var addr net.Addr
			select {
			case addr = <-addrc:
			case err := <-done:
				t.Fatalf("run: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("server did not start within 10s")
			}
			const conns, msgs = 6, 12
			n := echoClients(t, addr.String(), conns, msgs)
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run returned %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("run did not return within 15s of cancel")
			}
			checkStats(t, out.String(), string(api), conns, n, false)
			t.Logf("stats printed:\n%s", out.String())
			start := logs.FilterMessage("echo: listening").All()
			if len(start) != 1 {
				t.Fatalf("want one startup log line, got %d", len(start))
			}
			if got := start[0].ContextMap()["addr"]; got != addr.String() {
				t.Errorf("startup line addr = %v, want %v", got, addr)
			}
			if w := logs.FilterLevelExact(zap.WarnLevel).All(); len(w) > 0 {
				t.Errorf("warnings logged: %v", w)
			}
		})
	}
}

// TestShutdownWithOpenConns stops the server while clients still hold
// connections open (idle and mid-stream): it must close them and return.
func TestShutdownWithOpenConns(t *testing.T) {
	needIOUring(t)
	for _, api := range []echoserver.API{echoserver.APIHandler, echoserver.APIConn} {
		t.Run(string(api), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addrc := make(chan net.Addr, 1)
			o := options{
				server: echoserver.Config{Addr: "127.0.0.1:0", Loops: 2, API: api},
				ready:  func(a net.Addr) { addrc <- a },
			}
			var out bytes.Buffer
			done := make(chan error, 1)
			go func() { done <- run(ctx, o, &out, nil) }()
			addr := <-addrc
			var cs []net.Conn
			for range 4 {
				c, err := net.Dial("tcp", addr.String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 4)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Fatal(err)
				}
				cs = append(cs, c)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run returned %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("run did not return within 15s of cancel")
			}
			checkStats(t, out.String(), string(api), 4, 16, false)
			for i, c := range cs {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := c.Read(make([]byte, 1)); err == nil {
					t.Errorf("conn %d: read %d bytes after shutdown, want EOF or reset", i, n)
				}
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantAPI echoserver.API
		wantErr bool
	}{
		{name: "defaults", args: nil, wantAPI: echoserver.APIHandler},
		{name: "conn", args: []string{"-api=conn", "-loops", "3"}, wantAPI: echoserver.APIConn},
		{name: "bad api", args: []string{"-api=epoll"}, wantErr: true},
		{name: "zero loops", args: []string{"-loops=0"}, wantErr: true},
		{name: "extra arg", args: []string{"x"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFlags(%q) error %v, wantErr %v", tt.args, err, tt.wantErr)
			}
			if err == nil && o.server.API != tt.wantAPI {
				t.Errorf("API = %q, want %q", o.server.API, tt.wantAPI)
			}
			if err == nil && tt.name == "defaults" && o.server.Addr != "127.0.0.1:7007" {
				t.Errorf("default addr %q", o.server.Addr)
			}
		})
	}
}

// TestSubprocessSIGINT runs the command (this test binary as echo) on port
// 0, echoes, sends SIGINT and checks exit status 0 and the statistics on
// stdout.
func TestSubprocessSIGINT(t *testing.T) {
	needIOUring(t)
	for _, api := range []string{"handler", "conn"} {
		t.Run(api, func(t *testing.T) {
			p := startEcho(t, false, api)
			addr, _ := p.listening(t, api)
			const conns, msgs = 3, 8
			n := echoClients(t, addr, conns, msgs)
			p.interrupt(t)
			checkStats(t, p.stdout.String(), api, conns, n, false)
		})
	}
}

// TestSubprocessIOUringBlocked runs the command where a seccomp filter
// blocks io_uring, as in a container with Docker's default profile: -api conn
// serves on package net and says so, -api handler exits with status 1 and
// says why.
func TestSubprocessIOUringBlocked(t *testing.T) {
	// The reason the child gives: the filter's, unless io_uring is off for
	// this process already (a container, kernel.io_uring_disabled).
	reason := "a seccomp filter blocks io_uring_setup"
	if err := ring.Available(); err != nil {
		reason = err.Error()
	}
	t.Run("conn", func(t *testing.T) {
		p := startEcho(t, true, "conn")
		addr, logged := p.listening(t, "conn")
		if !strings.Contains(strings.Join(logged, "\n"), `"msg":"echo: -api conn serves on package net"`) ||
			!strings.Contains(strings.Join(logged, "\n"), reason) {
			t.Errorf("no warning saying %q before listening: %q", reason, logged)
		}
		const conns, msgs = 3, 8
		n := echoClients(t, addr, conns, msgs)
		p.interrupt(t)
		checkStats(t, p.stdout.String(), "conn", conns, n, true)
	})
	t.Run("handler", func(t *testing.T) {
		p := startEcho(t, true, "handler")
		err := p.wait(t, 15*time.Second)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit: %v, want status 1\nstderr:\n%s", err, p.stderr())
		}
		for _, w := range []string{"echo: -api handler cannot run without io_uring", "-api conn can", reason} {
			if !strings.Contains(p.stderr(), w) {
				t.Errorf("stderr lacks %q:\n%s", w, p.stderr())
			}
		}
	})
}

// echoProc is the echo command running in a child process.
type echoProc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	lines  chan string // stderr, line by line
	mu     sync.Mutex
	errOut []string // stderr lines read so far
	done   chan error

	exited  bool // done has been received from
	exitErr error
}

// startEcho starts this test binary as the echo command on 127.0.0.1:0 with
// two loops and the given API; blocked installs the seccomp filter first.
func startEcho(t *testing.T, blocked bool, api string) *echoProc {
	t.Helper()
	p := &echoProc{lines: make(chan string, 64), done: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0], "-addr", "127.0.0.1:0", "-loops", "2", "-api", api)
	p.cmd.Env = append(os.Environ(), echoMainEnv+"=1")
	if blocked {
		p.cmd.Env = append(p.cmd.Env, echoBlockEnv+"=1")
	}
	p.cmd.Stdout = &p.stdout
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.errOut = append(p.errOut, sc.Text())
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default: // nobody is looking for the startup line any more
			}
		}
		close(p.lines)
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if !p.exited {
			_ = p.cmd.Process.Kill()
			p.exitErr = <-p.done
		}
	})
	return p
}

func (p *echoProc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.errOut, "\n")
}

// listening waits for the startup line, checks its api and returns the
// address and the lines logged up to it.
func (p *echoProc) listening(t *testing.T, api string) (string, []string) {
	t.Helper()
	var logged []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("server exited before listening: %q", logged)
			}
			logged = append(logged, l)
			var e struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
				API  string `json:"api"`
			}
			if json.Unmarshal([]byte(l), &e) == nil && e.Msg == "echo: listening" {
				if e.API != api {
					t.Errorf("startup line api %q, want %q", e.API, api)
				}
				return e.Addr, logged
			}
		case <-deadline:
			t.Fatalf("no startup line within 10s: %q", logged)
		}
	}
}

// interrupt sends SIGINT and checks the exit status is 0.
func (p *echoProc) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit after SIGINT: %v\nstdout:\n%s\nstderr:\n%s", err, p.stdout.String(), p.stderr())
	}
}

// wait returns the process's exit error, or fails the test after d.
func (p *echoProc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case p.exitErr = <-p.done:
		p.exited = true
		return p.exitErr
	case <-time.After(d):
		t.Fatalf("no exit within %v\nstderr:\n%s", d, p.stderr())
		return nil
	}
}
