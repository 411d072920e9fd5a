package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// childEnv names the check a re-executed test binary runs (see TestChild).
const childEnv = "RINGWIRE_TESTENV_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "examples" {
		LeaveOutExamples(errors.New("ring: io_uring unavailable: a seccomp filter blocks io_uring_setup (EPERM)"))
	}
	goleak.VerifyTestMain(m)
}

// ExampleLeaveOutExamples: a TestMain that calls LeaveOutExamples with what
// ring.Available returned keeps examples that need io_uring from running (and
// failing) where it is blocked.
func ExampleLeaveOutExamples() {
	fmt.Println("the example ran")
	// Output: the example ran
}

// TestLeaveOutExamples runs this package's example in a child whose
// TestMain was told io_uring is unavailable.
func TestLeaveOutExamples(t *testing.T) {
	for _, strict := range []string{"0", "1"} {
		cmd := exec.Command(os.Args[0], "-test.run=^ExampleLeaveOutExamples$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"=examples", StrictEnv+"="+strict)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("RINGWIRE_STRICT=%s: child: %v\n%s", strict, err, out)
		}
		ran := strings.Contains(string(out), "--- PASS: ExampleLeaveOutExamples")
		said := strings.Contains(string(out), "the examples are left out (-test.skip=^Example): ring: io_uring unavailable")
		if strict == "0" && (ran || !said) || strict == "1" && (!ran || said) {
			t.Errorf("RINGWIRE_STRICT=%s: example ran %v, left out and said so %v:\n%s", strict, ran, said, out)
		}
	}
}

// TestChild is the body run in a child process by TestSkipOrFail: a skip or a
// failure ends a test, so each outcome is checked from outside.
func TestChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		t.Skip("run by TestSkipOrFail in a child process")
	case "iouring":
		NeedIOUring(t, errors.New("ring: io_uring unavailable: a seccomp filter blocks io_uring_setup (EPERM)"))
	case "iouring-ok":
		NeedIOUring(t, nil)
	case "feature":
		NeedFeature(t, "IORING_OP_BIND (6.11)", false)
	case "feature-ok":
		NeedFeature(t, "IORING_OP_NOP", true)
	}
	t.Log("reached the end")
}

func TestSkipOrFail(t *testing.T) {
	for _, tt := range []struct {
		name   string
		check  string
		strict bool
		want   []string
	}{
		{name: "io_uring blocked", check: "iouring", want: []string{"--- SKIP: TestChild", "testenv_test.go", ": ring: io_uring unavailable: a seccomp filter"}},
		{name: "io_uring blocked, strict", check: "iouring", strict: true, want: []string{"--- FAIL: TestChild", "RINGWIRE_STRICT=1", "seccomp filter"}},
		{name: "io_uring available", check: "iouring-ok", strict: true, want: []string{"--- PASS: TestChild", "reached the end"}},
		{name: "feature missing", check: "feature", want: []string{"--- SKIP: TestChild", "kernel lacks IORING_OP_BIND (6.11)"}},
		{name: "feature missing, strict", check: "feature", strict: true, want: []string{"--- FAIL: TestChild", "kernel lacks IORING_OP_BIND (6.11) (RINGWIRE_STRICT=1)"}},
		{name: "feature present", check: "feature-ok", strict: true, want: []string{"--- PASS: TestChild", "reached the end"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v", "-test.count=1")
			strict := "0"
			if tt.strict {
				strict = "1"
			}
			cmd.Env = append(os.Environ(), childEnv+"="+tt.check, StrictEnv+"="+strict)
			out, err := cmd.CombinedOutput()
			failed := strings.Contains(tt.want[0], "FAIL")
			if (err != nil) != failed {
				t.Fatalf("child exit: %v, want failure %v\n%s", err, failed, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("child output lacks %q:\n%s", w, out)
				}
			}
			if !failed && !strings.Contains(tt.want[0], "PASS") && strings.Contains(string(out), "reached the end") {
				t.Errorf("a skipped test went on:\n%s", out)
			}
		})
	}
}

func TestStrict(t *testing.T) {
	t.Setenv(StrictEnv, "1")
	if !Strict() {
		t.Fatal("Strict() false with RINGWIRE_STRICT=1")
	}
	t.Setenv(StrictEnv, "")
	if Strict() {
		t.Fatal("Strict() true without RINGWIRE_STRICT")
	}
}
