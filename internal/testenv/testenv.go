// Package testenv holds the environment checks that ringwire's tests share,
// like Go's internal/testenv: whether io_uring can be used here, whether the
// kernel has a feature a test needs, and whether RINGWIRE_STRICT=1 says it
// must have everything.
//
// Without RINGWIRE_STRICT=1 a test whose requirement is not met skips, with
// the reason in the skip message; with it, the test fails with that reason.
// CI sets it on a kernel that has every feature, so that no test goes quietly
// missing there; on an older kernel, in a container that blocks io_uring or
// under `make test-kernels`, tests run without it and skip.
//
// The package does not import ring: ring's own tests use it, and an import
// of ring here would be a cycle. Callers pass what ring.Available (or
// ring.ProbeKernel) returned instead.
//
// # Concurrency
//
// Every function is safe for concurrent use.
package testenv

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// StrictEnv is the environment variable that turns skips into failures.
const StrictEnv = "RINGWIRE_STRICT"

// Strict reports whether RINGWIRE_STRICT=1: the kernel must have every
// feature, so a test that cannot run fails instead of skipping.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// NeedIOUring skips t, or fails it under RINGWIRE_STRICT=1, when unavailable
// is not nil. unavailable is what ring.Available (or ring.ProbeKernel,
// ring.New) returned: an error that says why io_uring cannot be used (no
// io_uring in the kernel, a seccomp profile, kernel.io_uring_disabled...), and
// it is the skip message.
func NeedIOUring(t testing.TB, unavailable error) {
	t.Helper()
	if unavailable == nil {
		return
	}
	if Strict() {
		t.Fatalf("%v (%s=1)", unavailable, StrictEnv)
	}
	t.Skip(unavailable.Error())
}

// NeedFeature skips t, or fails it under RINGWIRE_STRICT=1, unless ok. name
// is the kernel feature (IORING_SETUP_NO_SQARRAY, IORING_OP_BIND...), best
// with the Linux version that brought it.
func NeedFeature(t testing.TB, name string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if Strict() {
		t.Fatalf("kernel lacks %s (%s=1)", name, StrictEnv)
	}
	t.Skipf("kernel lacks %s", name)
}

// LeaveOutExamples is for TestMain, before m.Run. Where unavailable (what
// ring.Available returned) is not nil and RINGWIRE_STRICT is unset, it sets
// -test.skip to ^Example, so that the package's examples do not run, and says
// so on stderr: an example cannot skip itself, and one that drives io_uring
// prints something else without it. Under RINGWIRE_STRICT=1 the examples run
// (and fail). A -test.skip given on the command line is left as it is.
func LeaveOutExamples(unavailable error) {
	if unavailable == nil || Strict() {
		return
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.skip")
	if f == nil || f.Value.String() != "" {
		fmt.Fprintf(os.Stderr, "testenv: io_uring unavailable, and the examples that need it will fail: %v\n", unavailable)
		return
	}
	if err := f.Value.Set("^Example"); err != nil {
		panic(err)
	}
	fmt.Fprintf(os.Stderr, "testenv: io_uring unavailable, so the examples are left out (-test.skip=^Example): %v\n", unavailable)
}
