//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getpid() == 1 {
		guestMain()
		return
	}
	if err := hostMain(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kernelmatrix:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	src         string
	cache       string
	series      []string
	images      []string
	modes       []string
	pkgs        []string
	run         string
	count       int
	strict      bool
	memMiB      int
	cpus        int
	testTimeout time.Duration
	bootTimeout time.Duration
	accel       string
	out         string
	keep        bool
	failOnFail  bool
	rerun       bool
}

var allModes = []string{"on", "sysctl", "seccomp"}

func parseOptions(args []string, errOut io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("kernelmatrix", flag.ContinueOnError)
	fs.SetOutput(errOut)
	home, _ := os.UserHomeDir()
	cacheDefault := filepath.Join(home, ".cache", "ringwire-kernels")
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		cacheDefault = filepath.Join(x, "ringwire-kernels")
	}
	series := fs.String("series", "6.1,6.12", "Debian cloud kernel series to fetch and boot (comma-separated; empty for none)")
	images := fs.String("kernel", os.Getenv("KERNELS"), "more kernel images (bzImage) to boot, comma- or space-separated (default $KERNELS)")
	modes := fs.String("modes", strings.Join(allModes, ","), "modes: on, sysctl (kernel.io_uring_disabled=2), seccomp (EPERM filter)")
	pkgs := fs.String("pkgs", "./...", "package patterns whose test binaries run in the guest (comma-separated)")
	fs.StringVar(&o.src, "src", ".", "module root to build the test binaries from")
	fs.StringVar(&o.cache, "cache", cacheDefault, "cache directory for kernels (never inside the repository)")
	fs.StringVar(&o.run, "run", "", "passed to the test binaries as -test.run")
	fs.IntVar(&o.count, "count", 1, "passed to the test binaries as -test.count: run each test this many times (to make a rare race likely)")
	fs.BoolVar(&o.strict, "strict", false, "run the tests with RINGWIRE_STRICT=1")
	fs.IntVar(&o.memMiB, "mem", 2048, "guest memory in MiB")
	fs.IntVar(&o.cpus, "smp", 2, "guest CPUs")
	fs.DurationVar(&o.testTimeout, "test-timeout", 12*time.Minute, "longest a test binary may run (its -test.timeout is a minute less)")
	fs.DurationVar(&o.bootTimeout, "boot-timeout", 60*time.Minute, "longest one guest may run")
	fs.StringVar(&o.accel, "accel", "auto", "auto (KVM where it works, else TCG), kvm or tcg")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (initramfs, serial logs)")
	fs.BoolVar(&o.failOnFail, "fail", true, "exit with status 1 when a test fails")
	fs.BoolVar(&o.rerun, "rerun", true, "rerun the tests that failed once; one that passes then is reported as flaky, not failed")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.series = splitList(*series)
	o.images = splitList(*images)
	o.modes = splitList(*modes)
	o.pkgs = splitList(*pkgs)
	for _, m := range o.modes {
		if !contains(allModes, m) {
			return nil, fmt.Errorf("unknown mode %q (%s)", m, strings.Join(allModes, ", "))
		}
	}
	if o.testTimeout < 2*time.Minute {
		return nil, errors.New("-test-timeout must be at least 2m")
	}
	if len(o.series)+len(o.images) == 0 {
		return nil, errors.New("no kernels: give -series or -kernel")
	}
	return &o, nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func hostMain(args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "kernelmatrix: "+format+"\n", a...) }

	if err := os.MkdirAll(o.cache, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.cache, "work-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("work directory %s", work)
	} else {
		defer os.RemoveAll(work)
	}

	var kernels []kernel
	for _, s := range o.series {
		k, err := debianKernel(ctx, o.cache, s, logf)
		if err != nil {
			return fmt.Errorf("kernel series %s: %w", s, err)
		}
		kernels = append(kernels, k)
	}
	for _, img := range o.images {
		k, err := imageKernel(img)
		if err != nil {
			return err
		}
		kernels = append(kernels, k)
	}

	start := time.Now()
	tests, err := buildTests(ctx, o, work, logf)
	if err != nil {
		return err
	}
	initrd := filepath.Join(work, "initramfs.cpio")
	if err := writeInitramfs(initrd, work, tests, o); err != nil {
		return err
	}
	logf("built %d test binaries and the initramfs in %v", len(tests), time.Since(start).Round(time.Second))

	acc := chooseAccel(o.accel)
	logf("accelerator: %s", acc.name)
	var results []*bootResult
	for _, k := range kernels {
		for _, mode := range o.modes {
			if err := ctx.Err(); err != nil {
				return err
			}
			logf("booting %s, mode %s", k.label, mode)
			r := boot(ctx, o, acc, k, mode, initrd, work, tests, logf)
			if r.err != "" && !r.ranAny() && ctx.Err() == nil {
				// The guest died before its first test binary started: a
				// boot failure of the emulated kernel (seen once under TCG,
				// an oops in devtmpfs at 1.7 s), not a test result. Boot
				// once more; the report keeps the second boot.
				logf("%s %s: the guest stopped before any test ran (%s); booting it again", k.label, mode, r.err)
				r = boot(ctx, o, acc, k, mode, initrd, work, tests, logf)
			}
			results = append(results, r)
			logf("%s %s: %s in %v", k.label, mode, r.summary(), r.elapsed.Round(time.Second))
		}
	}
	rep := report(results, acc.name, o)
	fmt.Fprint(stdout, rep)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep), 0o644); err != nil {
			return err
		}
	}
	for _, r := range results {
		if r.failed() && o.failOnFail {
			return errors.New("some tests failed")
		}
	}
	return nil
}

// testBinary is one package's test binary.
type testBinary struct {
	ImportPath string
	Name       string // file name under /t
	Dir        string // package directory relative to the module root
	AbsDir     string
}

// buildTests builds every test binary static for linux/amd64, and this
// program as /init.
func buildTests(ctx context.Context, o *options, work string, logf func(string, ...any)) ([]testBinary, error) {
	src, err := filepath.Abs(o.src)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	list := exec.CommandContext(ctx, "go", append([]string{
		"list", "-f",
		"{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}",
	}, o.pkgs...)...)
	list.Dir, list.Env, list.Stderr = src, env, os.Stderr
	out, err := list.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var tests []testBinary
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		ip, dir, ok := strings.Cut(line, " ")
		if !ok || strings.HasSuffix(ip, "/internal/kernelmatrix") {
			continue // this program's own tests are the host's
		}
		rel, err := filepath.Rel(src, dir)
		if err != nil {
			return nil, err
		}
		name := strings.ReplaceAll(rel, string(filepath.Separator), "_") + ".test"
		if seen[name] {
			return nil, fmt.Errorf("two packages make %s", name)
		}
		seen[name] = true
		tests = append(tests, testBinary{ImportPath: ip, Name: name, Dir: rel, AbsDir: dir})
	}
	if len(tests) == 0 {
		return nil, errors.New("no packages with tests")
	}
	tdir := filepath.Join(work, "t")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return nil, err
	}
	for _, tb := range tests {
		logf("go test -c %s", tb.ImportPath)
		b := exec.CommandContext(ctx, "go", "test", "-c", "-ldflags=-s -w", "-o", filepath.Join(tdir, tb.Name), tb.ImportPath)
		b.Dir, b.Env, b.Stdout, b.Stderr = src, env, os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return nil, fmt.Errorf("go test -c %s: %w", tb.ImportPath, err)
		}
	}
	// /init is this program, built from the module the command runs in (the
	// source under test may be an older tree without it).
	b := exec.CommandContext(ctx, "go", "build", "-ldflags=-s -w", "-o", filepath.Join(work, "init"),
		"github.com/ringwire/ringwire/internal/kernelmatrix")
	b.Env, b.Stdout, b.Stderr = env, os.Stderr, os.Stderr
	if err := b.Run(); err != nil {
		return nil, fmt.Errorf("go build init: %w", err)
	}
	sort.SliceStable(tests, func(i, j int) bool { return tests[i].Dir < tests[j].Dir })
	return tests, nil
}

// writeInitramfs packs /init, the test binaries, the packages' testdata and
// the guest's configuration.
func writeInitramfs(path, work string, tests []testBinary, o *options) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	c := newCPIO(f)
	for _, d := range []string{"dev", "proc", "sys", "tmp", "root", "etc", "t", "src", "bin"} {
		c.dir(d)
	}
	c.charDev("dev/console", 5, 1)
	if err := c.fileFrom("init", filepath.Join(work, "init"), 0o755); err != nil {
		return err
	}
	c.file("etc/hosts", []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), 0o644)
	c.file("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	c.file("etc/group", []byte("root:x:0:\n"), 0o644)
	gc := guestConfig{Strict: o.strict, Timeout: o.testTimeout, Rerun: o.rerun}
	if o.run != "" {
		gc.Args = append(gc.Args, "-test.run="+o.run)
	}
	if o.count > 1 {
		gc.Args = append(gc.Args, fmt.Sprintf("-test.count=%d", o.count))
	}
	for _, tb := range tests {
		if err := c.fileFrom("t/"+tb.Name, filepath.Join(work, "t", tb.Name), 0o755); err != nil {
			return err
		}
		gc.Tests = append(gc.Tests, guestTest{Name: tb.Name, Dir: tb.Dir})
		if err := c.tree("src/"+filepath.ToSlash(tb.Dir)+"/testdata", filepath.Join(tb.AbsDir, "testdata")); err != nil {
			return err
		}
	}
	cfg, err := json.Marshal(gc)
	if err != nil {
		return err
	}
	c.file(strings.TrimPrefix(guestConfigPath, "/"), cfg, 0o644)
	if err := c.close(); err != nil {
		return err
	}
	return f.Close()
}

var nameRE = regexp.MustCompile(`[^A-Za-z0-9._+-]+`)
