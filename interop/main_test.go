//go:build linux

package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/ringwire/ringwire/netio"
)

// childEnv makes the test binary one of the child processes the restart
// test and the benchmarks start (see child_linux_test.go).
const childEnv = "INTEROP_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	code := m.Run()
	if p, err := httpFilePath(); err == nil {
		_ = os.RemoveAll(filepath.Dir(p))
	}
	if err := netio.CloseDefault(); err != nil {
		fmt.Fprintln(os.Stderr, "netio.CloseDefault:", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
