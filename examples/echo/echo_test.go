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
	"path/filepath"
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
	"github.com/ringwire/ringwire/ring"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// skipWithoutUring skips (or fails under RINGWIRE_STRICT=1) where io_uring
// cannot be used.
func skipWithoutUring(t *testing.T) {
	t.Helper()
	if err := ring.Available(); err != nil {
		if os.Getenv("RINGWIRE_STRICT") == "1" {
			t.Fatalf("io_uring unavailable: %v", err)
		}
		t.Skipf("io_uring unavailable: %v", err)
	}
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

// checkStats checks the printed statistics against what the clients did.
func checkStats(t *testing.T, out, api string, conns int, bytes int64) {
	t.Helper()
	m := statsRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no stats summary in output:\n%s", out)
	}
	if m[1] != api || m[2] != strconv.Itoa(conns) || m[3] != "0" || m[4] != strconv.FormatInt(bytes, 10) {
		t.Errorf("stats summary %q, want api=%s connections %d (open 0), bytes echoed %d", m[0], api, conns, bytes)
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
	want := fmt.Sprintf("netio: accepted %d,", conns)
	if !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// TestRun runs the server in-process on port 0 in both API modes, echoes from
// several connections, cancels the context and checks the clean shutdown and
// the statistics printed.
func TestRun(t *testing.T) {
	skipWithoutUring(t)
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
			checkStats(t, out.String(), string(api), conns, n)
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
	skipWithoutUring(t)
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
			checkStats(t, out.String(), string(api), 4, 16)
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

// TestSubprocessSIGINT builds the command, runs it on port 0, echoes, sends
// SIGINT and checks exit status 0 and the statistics on stdout.
func TestSubprocessSIGINT(t *testing.T) {
	skipWithoutUring(t)
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "echo")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, api := range []string{"handler", "conn"} {
		t.Run(api, func(t *testing.T) {
			cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-loops", "2", "-api", api)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			killed := false
			t.Cleanup(func() {
				if !killed {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			})
			// The first stderr line is the zap startup line, in JSON.
			lines := make(chan string, 64)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			var addr string
			var logged []string
			deadline := time.After(10 * time.Second)
			for addr == "" {
				select {
				case l, ok := <-lines:
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
						addr = e.Addr
					}
				case <-deadline:
					t.Fatalf("no startup line within 10s: %q", logged)
				}
			}
			const conns, msgs = 3, 8
			n := echoClients(t, addr, conns, msgs)
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			werr := make(chan error, 1)
			go func() {
				for range lines { // drain stderr so the process never blocks on it
				}
				werr <- cmd.Wait()
			}()
			select {
			case err := <-werr:
				killed = true
				if err != nil {
					t.Fatalf("exit after SIGINT: %v\nstdout:\n%s", err, stdout.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatal("no exit within 15s of SIGINT")
			}
			checkStats(t, stdout.String(), api, conns, n)
		})
	}
}
