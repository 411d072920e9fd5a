// Command kernelmatrix runs ringwire's tests on other kernels than the
// machine's own, under QEMU, and prints one table: kernel × mode × package,
// with pass/fail/skip counts and every failure's text.
//
//	go run ./internal/kernelmatrix                      # Debian's newest 6.1 and 6.12
//	go run ./internal/kernelmatrix -series 6.1 -modes on,seccomp
//	KERNELS=/path/to/bzImage go run ./internal/kernelmatrix
//
// (`make test-kernels` runs the first line.) What it does:
//
//   - Builds each package's test binary static (CGO_ENABLED=0, go test -c)
//     and itself, static, as the guest's /init, and packs them with /etc/hosts
//     into an initramfs (a newc cpio written here, no busybox).
//   - Fetches Debian's newest cloud kernel of each series with apt-get
//     download, from bookworm, bookworm-security and bookworm-backports,
//     through an apt configuration of its own under the cache directory
//     (~/.cache/ringwire-kernels), and unpacks it there with dpkg-deb -x. It
//     never installs a kernel. Images in $KERNELS (or -kernel) are used as
//     they are.
//   - Boots each kernel once per mode, one guest at a time, under nice: KVM
//     where /dev/kvm can create a VM, otherwise TCG (-accel
//     tcg,thread=multi -cpu max). The guest's /init mounts proc, sys,
//     devtmpfs and a tmpfs, brings lo up with 127.0.0.1, ::1 and a ULA
//     address (so nettest has IPv6), applies the mode, runs each test binary
//     with -test.v=test2json in turn, writes their output to the second
//     serial port and powers off.
//   - Runs the top-level tests that failed once more (-rerun, on by
//     default): under TCG a test bound to wall-clock time can miss its mark
//     once. A test that passes the second time is counted as flaky, with its
//     first failure's text, and does not fail the run.
//   - Converts the output with go tool test2json and prints the table.
//
// The modes:
//
//   - on: io_uring as the kernel ships it.
//   - sysctl: kernel.io_uring_disabled=2, on kernels that have it (6.6 and
//     later); "n/a" on the others.
//   - seccomp: a seccomp filter, installed with NO_NEW_PRIVS before the tests
//     start, that fails io_uring_setup, io_uring_enter and io_uring_register
//     with EPERM, as Docker's default profile does.
//
// The guest has no network beyond lo and no Go toolchain. Its socket buffers
// are raised (net.core.rmem_max 4 MiB, rmem_default 1 MiB): under TCG the
// tests run tens of times slower than natively, and datagrams sent at a
// test's usual pace would otherwise overflow a slow receiver's default
// buffer. Transparent huge pages stay as the kernel sets them (Debian:
// "always"). Tests run without
// RINGWIRE_STRICT unless -strict is given, so a feature the kernel lacks
// shows as a skip.
package main
