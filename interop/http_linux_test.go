//go:build linux

package interop

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// httpSizes are the body sizes every HTTP scenario moves each way.
var httpSizes = []int{0, 1, 1400, 64 << 10, 1 << 20, 4 << 20}

// httpHandler serves the routes the HTTP scenarios (and curl, h2load and
// the HTTP benchmarks) use:
//
//	GET  /small            a fixed 13-byte body
//	GET  /bytes?n=N&seed=S N bytes of stream S, written in 32 KiB pieces
//	POST /echo             the request body back, with its Content-Length
//	GET  /file             httpFileSize bytes of stream 5 from a file, with
//	                       io.Copy (over plain HTTP/1.1 the response writer
//	                       hands the *os.File to the conn's ReadFrom:
//	                       sendfile or splice)
//
// A handler whose write fails reports the error to errs, if not nil.
func httpHandler(errs *firstError) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, _ *http.Request) {
		f, err := httpFile()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Length", strconv.Itoa(httpFileSize))
		if n, err := io.Copy(w, f); err != nil {
			errs.set(fmt.Errorf("GET /file: io.Copy(ResponseWriter, *os.File) after %d bytes: %w", n, err))
		}
	})
	mux.HandleFunc("GET /small", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello, world\n")
	})
	mux.HandleFunc("GET /bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err1 := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		seed, err2 := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
		if err1 != nil || err2 != nil || n < 0 || n > 1<<30 {
			http.Error(w, "bad n or seed", http.StatusBadRequest)
			return
		}
		_, _ = io.CopyBuffer(w, newPRNGReader(seed, n), make([]byte, 32<<10))
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	return mux
}

// firstError keeps the first error set on it; a nil *firstError drops them.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// httpFileSize is the size of the file GET /file serves: more than a
// loopback socket's send buffer holds, so that a slow reader makes the
// server's sends wait.
const httpFileSize = 16 << 20

var httpFilePath = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ringwire-interop-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "file")
	return p, os.WriteFile(p, streamBytes(5, httpFileSize), 0o600)
})

// httpFile opens the file GET /file serves, writing it on first use. The
// directory is removed by TestMain.
func httpFile() (*os.File, error) {
	p, err := httpFilePath()
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// httpMode is one way of speaking HTTP.
type httpMode struct {
	name  string
	tls   bool
	h2    bool
	proto string // what resp.Proto must say
}

var httpModes = []httpMode{
	{name: "http1", proto: "HTTP/1.1"},
	{name: "https1", tls: true, proto: "HTTP/1.1"},
	{name: "h2", tls: true, h2: true, proto: "HTTP/2.0"},
}

func protocols(h1, h2 bool) *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(h1)
	p.SetHTTP2(h2)
	return &p
}

// startHTTPServer serves httpHandler on ln (with TLS in the TLS modes) and
// registers a cleanup that shuts it down and checks that Serve returned
// http.ErrServerClosed, which needs Accept to fail with net.ErrClosed once
// the listener is closed.
func startHTTPServer(t testing.TB, who string, ln net.Listener, m httpMode, scfg *tls.Config) *firstError {
	t.Helper()
	errs := new(firstError)
	srv := &http.Server{
		Handler:           httpHandler(errs),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if m.tls {
		srv.TLSConfig = scfg
		srv.Protocols = protocols(true, m.h2)
	}
	served := make(chan error, 1)
	go func() {
		if m.tls {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("%s: http.Server.Shutdown: %v", who, err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("%s: Serve returned %v, want http.ErrServerClosed (Accept after Close must fail with net.ErrClosed)", who, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Serve did not return within 10s of Shutdown (Accept blocked after the listener closed)", who)
		}
	})
	return errs
}

// TestHTTP runs net/http over HTTP/1.1, HTTPS (HTTP/1.1 over crypto/tls)
// and HTTP/2 over TLS, netio on either end and on both, and compares every
// response (status, protocol, framing and body) with package net's.
func TestHTTP(t *testing.T) {
	ss := stacks(t)
	for _, m := range httpModes {
		t.Run(m.name, func(t *testing.T) {
			var res results
			for _, p := range pairs(ss, true) {
				t.Run(p.String(), func(t *testing.T) {
					res.record(t, p, runHTTP(t, p, m))
				})
			}
		})
	}
}

func runHTTP(t *testing.T, p pair, m httpMode) []string {
	scfg, ccfg := tlsConfigs(t, "h2", "http/1.1")
	ln := listenTCP(t, p.server)
	serverErrs := startHTTPServer(t, p.server.name+" server", ln, m, scfg)

	var dials, reused atomic.Int64
	dial := dialer(p.client)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			dials.Add(1)
			return dial(ctx, network, address)
		},
		MaxIdleConnsPerHost: 32,
		DisableCompression:  true,
		Protocols:           protocols(true, m.h2),
	}
	if m.tls {
		tr.TLSClientConfig = ccfg
	}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	scheme := "http"
	if m.tls {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	who := p.netioSide()

	do := func(method, path string, body io.Reader, size int64) (string, error) {
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			return "", err
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) {
				if info.Reused {
					reused.Add(1)
				}
			},
		}))
		req.ContentLength = size
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		if err != nil {
			return "", fmt.Errorf("reading the body of %s %s after %d bytes: %w", method, path, n, err)
		}
		if resp.Proto != m.proto {
			return "", fmt.Errorf("%s %s: response protocol %s, want %s", method, path, resp.Proto, m.proto)
		}
		return fmt.Sprintf("%s %s body=%d -> %d %s cl=%d te=%v n=%d sha256=%x",
			method, path, size, resp.StatusCode, resp.Proto, resp.ContentLength, resp.TransferEncoding, n, h.Sum(nil)[:8]), nil
	}

	var out []string
	must := func(line string, err error) {
		t.Helper()
		if err != nil {
			if serr := serverErrs.get(); serr != nil {
				t.Fatalf("%s: %s: %v; the server's handler: %v", who, m.name, err, serr)
			}
			t.Fatalf("%s: %s: %v", who, m.name, err)
		}
		out = append(out, line)
	}
	must(do("GET", "/small", nil, 0))
	for _, n := range httpSizes {
		must(do("GET", fmt.Sprintf("/bytes?n=%d&seed=%d", n, n), nil, 0))
		must(do("POST", "/echo", newPRNGReader(uint64(n)+7, int64(n)), int64(n)))
	}
	// A body of unknown length: chunked in HTTP/1.1, DATA frames until
	// END_STREAM in HTTP/2.
	must(do("POST", "/echo", io.NopCloser(newPRNGReader(99, 300_000)), -1))
	t.Logf("%s: %s: %d of %d sequential requests reused a connection", who, m.name, reused.Load(), len(out))
	if r := reused.Load(); r < int64(len(out))-2 {
		t.Errorf("%s: %s: %d of %d sequential requests went on a reused connection: keep-alive connections are not being reused", who, m.name, r, len(out))
	}

	// Concurrent requests: several connections in HTTP/1.1, streams of
	// one connection in HTTP/2.
	const workers, each = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	lines := make(chan string, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := 1000 * (w*each + i)
				line, err := do("GET", fmt.Sprintf("/bytes?n=%d&seed=%d", n, w), nil, 0)
				if err != nil {
					errs <- err
					return
				}
				lines <- line
			}
		})
	}
	wg.Wait()
	close(errs)
	close(lines)
	for err := range errs {
		t.Errorf("%s: %s: concurrent requests: %v", who, m.name, err)
	}
	got := make(map[string]bool)
	for l := range lines {
		got[l] = true
	}
	out = append(out, fmt.Sprintf("concurrent: %d distinct responses", len(got)))

	// A large file to a reader that keeps up, then to one that reads
	// 64 KiB every 2 ms: the server's send must wait for room in the
	// socket, not fail.
	must(do("GET", "/file", nil, 0))
	must(slowGet(client, base+"/file", m, 64<<10, 2*time.Millisecond))

	if d := dials.Load(); m.h2 && d != 1 {
		t.Errorf("%s: h2: %d connections dialed, want 1 (HTTP/2 multiplexes every request on one)", who, d)
	}
	return out
}

// slowGet fetches url reading chunk bytes every pause, as a client on a
// slow link does, and describes the response as do does.
func slowGet(client *http.Client, url string, m httpMode, chunk int, pause time.Duration) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	h := sha256.New()
	buf := make([]byte, chunk)
	var n int64
	for {
		k, err := io.ReadFull(resp.Body, buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("slow reader: GET %s after %d bytes: %w", url, n, err)
		}
		time.Sleep(pause)
	}
	if resp.Proto != m.proto {
		return "", fmt.Errorf("slow reader: response protocol %s, want %s", resp.Proto, m.proto)
	}
	return fmt.Sprintf("slow GET /file -> %d %s cl=%d n=%d sha256=%x", resp.StatusCode, resp.Proto, resp.ContentLength, n, h.Sum(nil)[:8]), nil
}
