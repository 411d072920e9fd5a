//go:build linux

package interop

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// The benchmarks' servers and load generators run in child processes, each
// pinned to its own CPU where there are two, so that the server's CPU time
// can be read from /proc over the measured window with nothing else in its
// process.

// pinProcess sets the affinity of every thread of this process to cpus
// (threads started later inherit it) and GOMAXPROCS to their number.
func pinProcess(spec string) error {
	if spec == "" {
		return nil
	}
	var set unix.CPUSet
	n := 0
	for _, f := range strings.Split(spec, ",") {
		cpu, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("cpu list %q: %w", spec, err)
		}
		set.Set(cpu)
		n++
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return os.NewSyscallError("sched_setaffinity", err)
		}
	}
	goruntime.GOMAXPROCS(n)
	return nil
}

// benchServerChild serves $INTEROP_KIND (http, https, grpc, or proxy to
// $INTEROP_UPSTREAM) on $INTEROP_STACK, pinned to $INTEROP_CPUS; it prints
// "addr ADDR" and serves until its stdin closes.
func benchServerChild() error {
	if err := pinProcess(os.Getenv("INTEROP_CPUS")); err != nil {
		return err
	}
	st, rt, err := stackByName(os.Getenv("INTEROP_STACK"))
	if err != nil {
		return err
	}
	if rt != nil {
		defer rt.Close()
	}
	ln, err := st.listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("%s: Listen: %w", st.name, err)
	}
	if err := checkType(st, "Listen", ln); err != nil {
		return err
	}
	var stop func()
	switch kind := os.Getenv("INTEROP_KIND"); kind {
	case "http", "https":
		srv := &http.Server{Handler: httpHandler(nil), ErrorLog: log.New(io.Discard, "", 0)}
		if kind == "https" {
			cert, err := testCert()
			if err != nil {
				return err
			}
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			go func() { _ = srv.ServeTLS(ln, "", "") }()
		} else {
			go func() { _ = srv.Serve(ln) }()
		}
		stop = func() { _ = srv.Close() }
	case "grpc":
		srv := grpc.NewServer()
		testgrpc.RegisterTestServiceServer(srv, testService{})
		go func() { _ = srv.Serve(ln) }()
		stop = srv.Stop
	case "proxy":
		done := make(chan struct{})
		go func() {
			defer close(done)
			proxy(ln, st.dial, os.Getenv("INTEROP_UPSTREAM"), make(chan error, 1))
		}()
		stop = func() { _ = ln.Close(); <-done }
	default:
		return fmt.Errorf("unknown INTEROP_KIND %q", kind)
	}
	fmt.Printf("addr %s\n", ln.Addr())
	waitStdin()
	stop()
	return nil
}

// loadResult is what one load run did.
type loadResult struct {
	requests int64
	bytes    int64
	dur      time.Duration
	errors   int64
	firstErr string
}

func (r loadResult) String() string {
	return fmt.Sprintf("result %d %d %d %d %s", r.requests, r.bytes, r.dur.Nanoseconds(), r.errors, strings.ReplaceAll(r.firstErr, "\n", " "))
}

func parseLoadResult(line string) (loadResult, error) {
	var r loadResult
	var ns int64
	f := strings.SplitN(line, " ", 6)
	if len(f) < 5 || f[0] != "result" {
		return r, fmt.Errorf("load generator said %q", line)
	}
	var err error
	for i, p := range []*int64{&r.requests, &r.bytes, &ns, &r.errors} {
		if *p, err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return r, fmt.Errorf("load generator said %q", line)
		}
	}
	r.dur = time.Duration(ns)
	if len(f) == 6 {
		r.firstErr = f[5]
	}
	return r, nil
}

// loadgenChild is the in-repo load generator, pinned to $INTEROP_CPUS. For
// $INTEROP_KIND=proxy it first starts the upstream the proxy dials (it
// counts what each connection sends, answers the count and closes) and
// prints "upstream ADDR"; otherwise it prints "ready". Then, for each line
// "run ADDR ARG" on stdin it loads ADDR with $INTEROP_CONNS connections (or
// gRPC callers) for ARG (a duration), or, for proxy, sends ARG bytes on
// each connection, and prints a result line.
func loadgenChild() error {
	if err := pinProcess(os.Getenv("INTEROP_CPUS")); err != nil {
		return err
	}
	kind := os.Getenv("INTEROP_KIND")
	conns, err := strconv.Atoi(os.Getenv("INTEROP_CONNS"))
	if err != nil || conns < 1 {
		return fmt.Errorf("INTEROP_CONNS=%q", os.Getenv("INTEROP_CONNS"))
	}
	if kind == "proxy" {
		up, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer up.Close()
		go countingUpstream(up)
		fmt.Printf("upstream %s\n", up.Addr())
	} else {
		fmt.Println("ready")
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) != 3 || f[0] != "run" {
			return fmt.Errorf("bad command %q", in.Text())
		}
		var r loadResult
		switch kind {
		case "http", "https":
			d, err := time.ParseDuration(f[2])
			if err != nil {
				return err
			}
			r = loadHTTP(f[1], kind == "https", conns, d)
		case "grpc":
			d, err := time.ParseDuration(f[2])
			if err != nil {
				return err
			}
			r = loadGRPC(f[1], conns, d)
		case "proxy":
			n, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return err
			}
			r = loadProxy(f[1], conns, n)
		default:
			return fmt.Errorf("unknown INTEROP_KIND %q", kind)
		}
		fmt.Println(r)
	}
	return in.Err()
}

// errCounter keeps a count of errors and the first one.
type errCounter struct {
	n     atomic.Int64
	once  sync.Once
	first string
}

func (e *errCounter) add(err error) {
	e.n.Add(1)
	e.once.Do(func() { e.first = err.Error() })
}

// loadHTTP sends keep-alive GET /small requests on conns connections, one
// at a time on each, for d.
func loadHTTP(addr string, useTLS bool, conns int, d time.Duration) loadResult {
	var reqs atomic.Int64
	var errs errCounter
	var wg sync.WaitGroup
	req := []byte("GET /small HTTP/1.1\r\nHost: bench\r\n\r\n")
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Go(func() {
			var c net.Conn
			var err error
			if useTLS {
				c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the benchmark server's own self-signed certificate
			} else {
				c, err = net.Dial("tcp", addr)
			}
			if err != nil {
				errs.add(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(deadline.Add(10 * time.Second))
			br := bufio.NewReader(c)
			for time.Now().Before(deadline) {
				if _, err := c.Write(req); err != nil {
					errs.add(err)
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs.add(err)
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs.add(fmt.Errorf("status %d, %v", resp.StatusCode, err))
					return
				}
				reqs.Add(1)
			}
		})
	}
	wg.Wait()
	return loadResult{requests: reqs.Load(), dur: time.Since(start), errors: errs.n.Load(), firstErr: errs.first}
}

// loadGRPC runs callers goroutines making 64-byte UnaryCalls on one
// ClientConn for d.
func loadGRPC(addr string, callers int, d time.Duration) loadResult {
	var errs errCounter
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		errs.add(err)
		return loadResult{errors: 1, firstErr: errs.first}
	}
	defer cc.Close()
	c := testgrpc.NewTestServiceClient(cc)
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: make([]byte, 64)}}
	var reqs atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	defer cancel()
	start := time.Now()
	deadline := start.Add(d)
	for range callers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := c.UnaryCall(ctx, req); err != nil {
					errs.add(err)
					return
				}
				reqs.Add(1)
			}
		})
	}
	wg.Wait()
	return loadResult{requests: reqs.Load(), dur: time.Since(start), errors: errs.n.Load(), firstErr: errs.first}
}

// loadProxy sends n bytes on each of conns connections through the proxy
// at addr, half-closes, and checks the upstream's count that comes back.
func loadProxy(addr string, conns int, n int64) loadResult {
	var errs errCounter
	var wg sync.WaitGroup
	buf := make([]byte, 256<<10)
	fill(newStream(1), buf)
	start := time.Now()
	for range conns {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs.add(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
			for left := n; left > 0; {
				k := min(left, int64(len(buf)))
				if _, err := c.Write(buf[:k]); err != nil {
					errs.add(err)
					return
				}
				left -= k
			}
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				errs.add(err)
				return
			}
			var got [8]byte
			if _, err := io.ReadFull(c, got[:]); err != nil {
				errs.add(fmt.Errorf("waiting for the upstream's count: %w", err))
				return
			}
			if m := int64(binary.BigEndian.Uint64(got[:])); m != n {
				errs.add(fmt.Errorf("upstream received %d bytes, sent %d", m, n))
			}
		})
	}
	wg.Wait()
	return loadResult{requests: int64(conns), bytes: int64(conns) * n, dur: time.Since(start), errors: errs.n.Load(), firstErr: errs.first}
}

// countingUpstream reads each connection to EOF, answers the byte count
// and closes.
func countingUpstream(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			n, _ := io.Copy(io.Discard, c)
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(n))
			_, _ = c.Write(b[:])
		}()
	}
}
