//go:build linux

package bufring

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
	"golang.org/x/sys/unix"
)

// lowMemlock locks the test goroutine to its thread, drops CAP_IPC_LOCK from
// that thread and lowers RLIMIT_MEMLOCK to 256 KiB until the test ends. The
// thread stays locked and dies with the test goroutine, so the dropped
// capability never reaches another goroutine.
func lowMemlock(t *testing.T) {
	t.Helper()
	_, err := probe()
	testenv.NeedIOUring(t, err)
	runtime.LockOSThread() // deliberately never unlocked
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		testenv.NeedFeature(t, fmt.Sprintf("capget (%v)", err), false)
	}
	const capIPCLock = 14
	if caps[0].Effective&(1<<capIPCLock) != 0 {
		caps[0].Effective &^= 1 << capIPCLock
		if err := unix.Capset(&hdr, &caps[0]); err != nil {
			testenv.NeedFeature(t, fmt.Sprintf("dropping CAP_IPC_LOCK (%v)", err), false)
		}
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = 256 << 10
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		testenv.NeedFeature(t, fmt.Sprintf("lowering RLIMIT_MEMLOCK (%v)", err), false)
	}
	t.Cleanup(func() {
		if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &old); err != nil {
			t.Errorf("restore RLIMIT_MEMLOCK: %v", err)
		}
	})
}

// TestRegisterFixedENOMEMNamesMemlock registers more than RLIMIT_MEMLOCK from a
// thread without CAP_IPC_LOCK and checks the error says what to raise and by
// how much.
func TestRegisterFixedENOMEMNamesMemlock(t *testing.T) {
	lowMemlock(t)
	r, err := ring.New(&ring.Config{Entries: 4, Flags: ring.SetupSingleIssuer | ring.SetupDeferTaskrun})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := newArena(t, &ArenaConfig{Classes: []Class{{4096, 1024}}}) // 4 MiB
	err = RegisterFixed(r, a)
	if err == nil {
		_ = r.UnregisterBuffers()
		t.Fatal("registering 4 MiB under a 256 KiB RLIMIT_MEMLOCK succeeded")
	}
	t.Log(err)
	if !errors.Is(err, syscall.ENOMEM) || !strings.Contains(err.Error(), "RLIMIT_MEMLOCK") || !strings.Contains(err.Error(), "4194304") {
		t.Fatalf("error %q does not wrap ENOMEM, name RLIMIT_MEMLOCK and the 4194304 bytes needed", err)
	}
	if _, ok := a.FixedIndex(); ok {
		t.Fatal("failed registration recorded a fixed index")
	}
}

// TestNewGroupENOMEMNamesMemlock registers a provided buffer ring whose entries
// (32768 x 16 bytes = 512 KiB, pinned by the kernel) exceed a 256 KiB
// RLIMIT_MEMLOCK. Kernels that charge the pinned ring to RLIMIT_MEMLOCK fail
// with ENOMEM, and the error must name the limit and the bytes; kernels that
// do not charge it register the group, and the test says so.
func TestNewGroupENOMEMNamesMemlock(t *testing.T) {
	lowMemlock(t)
	p, _ := probe()
	testenv.NeedFeature(t, "IORING_REGISTER_PBUF_RING (5.19)", p.BufRing)
	r, err := ring.New(&ring.Config{Entries: 4, Flags: ring.SetupSingleIssuer | ring.SetupDeferTaskrun})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	g, err := NewGroup(r, &Config{GroupID: 9, Count: MaxCount, Size: 16})
	if err == nil {
		_ = g.Close()
		// Linux 6.1 and 6.12 do not charge it; 6.18 does.
		testenv.NeedFeature(t, "a kernel that charges a provided buffer ring to RLIMIT_MEMLOCK", false)
	}
	t.Log(err)
	if !errors.Is(err, syscall.ENOMEM) || !strings.Contains(err.Error(), "RLIMIT_MEMLOCK") || !strings.Contains(err.Error(), "524288") {
		t.Fatalf("error %q does not wrap ENOMEM, name RLIMIT_MEMLOCK and the 524288 bytes needed", err)
	}
}
