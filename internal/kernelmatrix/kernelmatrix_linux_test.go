//go:build linux

package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNaturalLessPicksNewestDebianKernel(t *testing.T) {
	for _, tt := range []struct{ older, newer string }{
		{"linux-image-6.1.0-9-cloud-amd64", "linux-image-6.1.0-57-cloud-amd64"},
		{"linux-image-6.12.95+deb12-cloud-amd64", "linux-image-6.12.118+deb12-cloud-amd64"},
		{"linux-image-6.12.90+deb12-cloud-amd64", "linux-image-6.12.90+deb12.1-cloud-amd64"},
	} {
		if !naturalLess(tt.older, tt.newer) || naturalLess(tt.newer, tt.older) {
			t.Errorf("naturalLess: want %s before %s", tt.older, tt.newer)
		}
	}
}

// cpioEntry is one member of a newc archive as readCPIO parses it back.
type cpioEntry struct {
	name         string
	mode         uint32
	rdev         [2]uint32
	data         string
	headerOffset int
}

// readCPIO parses a newc archive the way the kernel's unpacker does:
// 110-byte headers, names and data each padded to 4 bytes.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	hex := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("header at %d: field %d: %v", off, i, err)
		}
		return uint32(v)
	}
	pad := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off%4 != 0 || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at %d", off)
		}
		e := cpioEntry{mode: hex(1), rdev: [2]uint32{hex(9), hex(10)}, headerOffset: off}
		size, nameSize := int(hex(6)), int(hex(11))
		e.name = string(b[off+110 : off+110+nameSize-1])
		if b[off+110+nameSize-1] != 0 {
			t.Fatalf("%s: name not NUL-terminated", e.name)
		}
		off = pad(off + 110 + nameSize)
		e.data = string(b[off : off+size])
		off = pad(off + size)
		if e.name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func TestCPIOIsNewcTheKernelUnpacks(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(src+"/init", []byte("#!init"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(src+"/td/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src+"/td/sub/x", []byte("xyz"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	c := newCPIO(&buf)
	c.dir("dev")
	c.charDev("dev/console", 5, 1)
	if err := c.fileFrom("init", src+"/init", 0o755); err != nil {
		t.Fatal(err)
	}
	c.file("etc/hosts", []byte("127.0.0.1 localhost\n"), 0o644)
	if err := c.tree("src/pkg/testdata", src+"/td"); err != nil {
		t.Fatal(err)
	}
	if err := c.tree("src/none/testdata", src+"/absent"); err != nil {
		t.Fatal(err)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	got := map[string]cpioEntry{}
	var order []string
	for _, e := range readCPIO(t, buf.Bytes()) {
		got[e.name] = e
		order = append(order, e.name)
	}
	want := []string{
		"dev", "dev/console", "init", "etc", "etc/hosts", "src", "src/pkg", "src/pkg/testdata",
		"src/pkg/testdata/sub", "src/pkg/testdata/sub/x",
	}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Fatalf("members %q, want %q (each directory before what it holds)", order, want)
	}
	if e := got["dev/console"]; e.mode != modeChar|0o600 || e.rdev != [2]uint32{5, 1} {
		t.Errorf("dev/console: mode %o rdev %v", e.mode, e.rdev)
	}
	if e := got["init"]; e.mode != modeFile|0o755 || e.data != "#!init" {
		t.Errorf("init: mode %o data %q", e.mode, e.data)
	}
	if e := got["src/pkg/testdata/sub/x"]; e.data != "xyz" || got["src/pkg/testdata/sub"].mode != modeDir|0o755 {
		t.Errorf("testdata: %+v", e)
	}
}

// A results port as the guest writes it: two packages, one with a failing
// subtest, one cut short by the guest dying.
const sampleResults = `@@ENV uname=6.1.0-57-cloud-amd64 cpus=2 thp=always
@@MODE ok io_uring as the kernel ships it
@@BEGIN ring.test
=== RUN   TestA
--- PASS: TestA (0.00s)
=== RUN   TestB
    b_test.go:10: kernel lacks IORING_OP_BIND (6.11)
--- SKIP: TestB (0.00s)
=== RUN   TestC
=== RUN   TestC/sub
    c_test.go:20: got 1, want 2
--- FAIL: TestC/sub (0.01s)
--- FAIL: TestC (0.01s)
=== RUN   TestF
    f_test.go:30: broken for good
--- FAIL: TestF (0.00s)
FAIL
@@END ring.test rc=1 secs=0.5
@@BEGIN ring.test rerun
=== RUN   TestC
=== RUN   TestC/sub
--- PASS: TestC/sub (0.01s)
--- PASS: TestC (0.01s)
=== RUN   TestF
    f_test.go:30: broken for good
--- FAIL: TestF (0.00s)
FAIL
@@END ring.test rerun rc=1 secs=0.1
@@BEGIN runtime.test
=== RUN   TestD
--- PASS: TestD (0.00s)
=== RUN   TestE
`

func TestParseResults(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command (go tool test2json)")
	}
	tests := []testBinary{
		{ImportPath: "example.com/m/ring", Name: "ring.test", Dir: "ring"},
		{ImportPath: "example.com/m/runtime", Name: "runtime.test", Dir: "runtime"},
		{ImportPath: "example.com/m/netio", Name: "netio.test", Dir: "netio"},
	}
	r := &bootResult{kernel: "6.1", mode: "on", elapsed: time.Minute}
	parseResults(r, []byte(sampleResults), tests)
	if r.env != "uname=6.1.0-57-cloud-amd64 cpus=2 thp=always" || r.na != "" {
		t.Fatalf("env %q, na %q", r.env, r.na)
	}
	if r.err == "" || !r.failed() {
		t.Fatal("a guest that stopped before @@DONE is not reported")
	}
	ring, rt, nio := r.pkgs[0], r.pkgs[1], r.pkgs[2]
	if ring.pass != 1 || ring.skip != 1 || ring.fail != 1 || ring.flaky != 1 || ring.rc != 1 || ring.secs != 0.5 {
		t.Errorf("ring: %d pass %d skip %d fail %d flaky rc %d %.1fs", ring.pass, ring.skip, ring.fail, ring.flaky, ring.rc, ring.secs)
	}
	if len(ring.failures) != 1 || ring.failures[0].test != "TestF" || !strings.Contains(ring.failures[0].text, "broken for good") {
		t.Errorf("ring failures: %+v", ring.failures)
	}
	if len(ring.flakes) != 1 || ring.flakes[0].test != "TestC/sub" || !strings.Contains(ring.flakes[0].text, "got 1, want 2") {
		t.Errorf("ring flakes: %+v", ring.flakes)
	}
	if rt.pass != 1 || rt.ended || len(rt.failures) == 0 || !strings.Contains(rt.failures[len(rt.failures)-1].text, "stopped during this package") {
		t.Errorf("runtime: %+v", rt)
	}
	if nio.started {
		t.Error("netio started")
	}
	rep := report([]*bootResult{r}, "tcg", &options{cpus: 2, memMiB: 2048})
	if ring.skips["kernel lacks IORING_OP_BIND (6.11)"] != 1 {
		t.Errorf("ring skips: %v", ring.skips)
	}
	for _, w := range []string{
		"ring", "runtime", "netio", "not run", "TestC/sub", "got 1, want 2", "guest: uname=6.1.0-57",
		"Flaky (failed, then passed when rerun)", "TestF", "broken for good",
		"1  ring: kernel lacks IORING_OP_BIND (6.11)",
	} {
		if !strings.Contains(rep, w) {
			t.Errorf("report lacks %q:\n%s", w, rep)
		}
	}

	na := &bootResult{kernel: "6.1", mode: "sysctl"}
	parseResults(na, []byte("@@ENV x\n@@MODE n/a the kernel has no kernel.io_uring_disabled (Linux 6.6)\n@@DONE\n"), tests)
	if na.na == "" || na.failed() || len(na.pkgs) != 0 {
		t.Errorf("n/a mode: %+v", na)
	}
}

func TestFailedTests(t *testing.T) {
	out := "=== RUN   TestA\n--- PASS: TestA (0.00s)\n=== RUN   TestB\n    --- FAIL: TestB/x (0.00s)\n\x16--- FAIL: TestB (0.00s)\n--- FAIL: TestC.D (1.00s)\nFAIL\n"
	if got := strings.Join(failedTests([]byte(out)), "|"); got != `TestB|TestC\.D` {
		t.Errorf("failedTests = %q", got)
	}
}

func TestParseOptions(t *testing.T) {
	t.Setenv("KERNELS", "/a/bzImage /b/bzImage")
	o, err := parseOptions([]string{"-series", "6.1", "-modes", "on,seccomp"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.series, ",") != "6.1" || strings.Join(o.modes, ",") != "on,seccomp" || len(o.images) != 2 {
		t.Errorf("options %+v", o)
	}
	for _, bad := range [][]string{{"-modes", "off"}, {"-test-timeout", "1m"}, {"-series", "", "-kernel", ""}, {"extra"}} {
		t.Setenv("KERNELS", "")
		if _, err := parseOptions(bad, io.Discard); err == nil {
			t.Errorf("parseOptions(%q) accepted", bad)
		}
	}
}
