//go:build linux

package netio

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Memory and service beside many connections, net face against package net
// (plain TCP), each server in a fresh child process so that memory earlier
// benchmarks freed cannot hide the cost; the many clients run in a
// grandchild (dialerChild), so each side needs only n descriptors.
//
//	go test -run '^$' -bench 'ManyConns' -benchtime 2000x ./netio/
//
// reports, per implementation, the server's RSS and Go heap per connection
// (rss-B/conn, heap-B/conn) and the round trip of one more connection
// served beside them (ns/op).

// manyConnsEnv makes TestMain run manyConnsServer.
const manyConnsEnv = "NETIO_BENCH_MANY_CONNS"

// BenchmarkManyConns: "idle" holds 10 000 connections, each with a
// goroutine blocked in Read, as a goroutine-per-connection server does;
// "unread" holds 300 connections that were each sent 4 KiB and whose
// application never reads (issue #13: with receives into the loop's
// provided buffers, these once took every buffer of a loop and starved the
// next connection for seconds).
func BenchmarkManyConns(b *testing.B) {
	needRing(b)
	for _, sc := range []struct {
		name  string
		n     int
		bytes int
		read  bool
	}{
		{name: "idle", n: 10000, read: true},
		{name: "unread", n: 300, bytes: 4 << 10},
	} {
		for _, impl := range []string{"netio", "gonet"} {
			b.Run(sc.name+"/impl="+impl, func(b *testing.B) {
				raiseNofile(b, uint64(sc.n)+1000)
				benchManyConns(b, impl, sc.n, sc.bytes, sc.read)
			})
		}
	}
}

func benchManyConns(b *testing.B, impl string, n, bytes int, read bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d,%t", manyConnsEnv, impl, n, bytes, read))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("server child: %q %v", line, err)
	}
	var addr string
	var rss0, rss1, heap0, heap1 int64
	if _, err := fmt.Sscanf(line, "ready addr=%s rss0=%d rss1=%d heap0=%d heap1=%d", &addr, &rss0, &rss1, &heap0, &heap1); err != nil {
		b.Fatalf("server child said %q: %v", line, err)
	}
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg, buf := make([]byte, 64), make([]byte, 64)
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rss1-rss0)/float64(n), "rss-B/conn")
	b.ReportMetric(float64(heap1-heap0)/float64(n), "heap-B/conn")
}

// manyConnsServer is BenchmarkManyConns's server child: it listens with
// impl, accepts n connections from a dialer grandchild (which sends bytes
// on each), reads them (a goroutine per connection blocked in Read) or
// never does, then prints its RSS and Go heap before and after, and echoes
// on the next connection until stdin closes.
func manyConnsServer(spec string) int {
	f := strings.Split(spec, ",")
	impl := f[0]
	n, _ := strconv.Atoi(f[1])
	bytes, _ := strconv.Atoi(f[2])
	read := f[3] == "true"
	var ln net.Listener
	var err error
	if impl == "netio" {
		ln, err = Listen("tcp4", "127.0.0.1:0")
	} else {
		ln, err = plainTCPListen("tcp4", "127.0.0.1:0")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	addr := ln.Addr().String()
	var held []net.Conn
	accept := func() net.Conn {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "accept:", err)
			os.Exit(1)
		}
		held = append(held, c)
		return c
	}
	serve := func(c net.Conn) {
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}
	// A first connection, so that everything a connection needs exists
	// before the baseline.
	warm, err := net.Dial("tcp4", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go serve(accept())

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("NETIO_TEST_DIALER=%s,%d,%d,wait", addr, n, bytes))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	out := bufio.NewReader(stdout)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if line, err := out.ReadString('\n'); err != nil || line != "started\n" {
		fmt.Fprintf(os.Stderr, "dialer: %q %v\n", line, err)
		return 1
	}
	goruntime.GC()
	var ms0, ms1 goruntime.MemStats
	goruntime.ReadMemStats(&ms0)
	rss0 := rssNow()
	if _, err := io.WriteString(stdin, "dial\n"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for range n {
		c := accept()
		if read {
			go serve(c)
		}
	}
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		fmt.Fprintf(os.Stderr, "dialer: %q %v\n", line, err)
		return 1
	}
	goruntime.GC()
	goruntime.ReadMemStats(&ms1)
	rss1 := rssNow()
	fmt.Printf("ready addr=%s rss0=%d rss1=%d heap0=%d heap1=%d\n", addr, rss0, rss1, ms0.HeapInuse, ms1.HeapInuse)
	go func() {
		c := accept()
		_, _ = io.Copy(c, c)
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	stdin.Close()
	_ = cmd.Wait()
	warm.Close()
	for _, c := range held {
		_ = c.Close()
	}
	_ = ln.Close()
	return 0
}

// rssNow is the process's resident set in bytes (0 where /proc cannot tell).
func rssNow() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// dialAndSend connects to addr and sends bytes zero bytes (the dialer
// grandchild's connections).
func dialAndSend(sa *unix.SockaddrInet4, bytes int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if bytes > 0 {
		if _, err := unix.Write(fd, make([]byte, bytes)); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}
