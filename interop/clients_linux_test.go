//go:build linux

package interop

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// needBinary returns the path of a client program, or skips (fails under
// RINGWIRE_STRICT=1, where .ci/run installs it) when it is missing.
func needBinary(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(t, "%s is not installed (apt-get install -y %s)", name, pkg)
	}
	return p
}

// runTool runs a client program with a 60 s bound and returns its stdout.
func runTool(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v; stderr: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// TestCurl fetches from an HTTPS server on each stack with curl over
// HTTP/1.1 and over HTTP/2 (ALPN): a 1 MiB download and a 256 KiB upload
// echoed back, checked byte for byte, and the protocol curl reports.
func TestCurl(t *testing.T) {
	curl := needBinary(t, "curl", "curl")
	ss := stacks(t)
	up := filepath.Join(t.TempDir(), "upload")
	upload := streamBytes(11, 256<<10)
	if err := os.WriteFile(up, upload, 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 1 << 20
	want := sha256.Sum256(streamBytes(n, n))
	wantUp := sha256.Sum256(upload)
	for _, st := range ss {
		t.Run(st.name, func(t *testing.T) {
			scfg, _ := tlsConfigs(t, "h2", "http/1.1")
			ln := listenTCP(t, st)
			startHTTPServer(t, st.name+" server", ln, httpModes[2], scfg)
			base := "https://" + ln.Addr().String()
			for _, v := range []struct{ flag, want string }{{"--http1.1", "1.1"}, {"--http2", "2"}} {
				out, err := runTool(t, curl, "-sS", "-k", v.flag, "--max-time", "30", "-o", "-", "-w", "\n%{http_version} %{http_code}", fmt.Sprintf("%s/bytes?n=%d&seed=%d", base, n, n))
				if err != nil {
					t.Fatalf("%s: curl %s: %v", st.name, v.flag, err)
				}
				body, trailer, _ := cutLast(out, "\n")
				if trailer != v.want+" 200" {
					t.Errorf("%s: curl %s: version and status %q, want %q", st.name, v.flag, trailer, v.want+" 200")
				}
				if got := sha256.Sum256([]byte(body)); got != want {
					t.Errorf("%s: curl %s: %d-byte body differs from the %d bytes served", st.name, v.flag, len(body), n)
				}
				out, err = runTool(t, curl, "-sS", "-k", v.flag, "--max-time", "30", "--data-binary", "@"+up, "-H", "Content-Type: application/octet-stream", "-o", "-", base+"/echo")
				if err != nil {
					t.Fatalf("%s: curl %s upload: %v", st.name, v.flag, err)
				}
				if got := sha256.Sum256([]byte(out)); got != wantUp {
					t.Errorf("%s: curl %s: echo of the %d-byte upload came back as %d different bytes", st.name, v.flag, len(upload), len(out))
				}
			}
		})
	}
}

var h2loadRE = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)

// TestH2load loads an HTTPS (HTTP/2) server on each stack with nghttp2's
// h2load: 2000 requests over 4 connections, 8 streams each, every one of
// which must succeed with a 2xx.
func TestH2load(t *testing.T) {
	h2load := needBinary(t, "h2load", "nghttp2-client")
	ss := stacks(t)
	const total = 2000
	for _, st := range ss {
		t.Run(st.name, func(t *testing.T) {
			scfg, _ := tlsConfigs(t, "h2", "http/1.1")
			ln := listenTCP(t, st)
			startHTTPServer(t, st.name+" server", ln, httpModes[2], scfg)
			out, err := runTool(t, h2load, "-n", fmt.Sprint(total), "-c", "4", "-m", "8", "-T", "20", "https://"+ln.Addr().String()+"/bytes?n=4096&seed=1")
			if err != nil {
				t.Fatalf("%s: h2load: %v\n%s", st.name, err, out)
			}
			m := h2loadRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("%s: h2load printed no request summary:\n%s", st.name, out)
			}
			if m[4] != fmt.Sprint(total) || !strings.Contains(out, fmt.Sprintf("status codes: %d 2xx", total)) {
				t.Errorf("%s: h2load: %s (want %d succeeded, all 2xx)\n%s", st.name, m[0], total, out)
			}
			if !strings.Contains(out, "Application protocol: h2") {
				t.Errorf("%s: h2load did not negotiate h2:\n%s", st.name, out)
			}
		})
	}
}

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
