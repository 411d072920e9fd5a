//go:build linux

package interop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Child processes are this test binary started again with childEnv set to
// a mode; TestMain hands them to runChild. They talk to the parent in lines
// on stdout and stop when their stdin closes (or when they are killed).

// runChild runs the child process named by mode and returns its exit code.
func runChild(mode string) int {
	var err error
	switch mode {
	case "restart-server":
		err = restartServerChild()
	case "bench-server":
		err = benchServerChild()
	case "loadgen":
		err = loadgenChild()
	default:
		err = fmt.Errorf("unknown %s=%q", childEnv, mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", mode, err)
		return 1
	}
	return 0
}

// child is a running child process as the parent sees it.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer
	waited chan struct{}
	err    error // Wait's result, once waited is closed
}

// lockedBuffer is a bytes.Buffer safe for the writer goroutine exec starts
// and a reader in the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// startChild starts the test binary as child mode with env added.
func startChild(mode string, env ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.Env = append(cmd.Env, env...)
	c := &child{cmd: cmd, lines: make(chan string, 64), stderr: &lockedBuffer{}, waited: make(chan struct{})}
	cmd.Stderr = c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.waited)
	}()
	return c, nil
}

// line waits up to d for the child's next line of output.
func (c *child) line(d time.Duration) (string, error) {
	select {
	case l, ok := <-c.lines:
		if !ok {
			<-c.waited
			return "", fmt.Errorf("child exited (%v) without a line; stderr: %s", c.err, strings.TrimSpace(c.stderr.String()))
		}
		return l, nil
	case <-time.After(d):
		return "", fmt.Errorf("no line from the child within %v; stderr: %s", d, strings.TrimSpace(c.stderr.String()))
	}
}

// stop closes the child's stdin and waits up to 30 s for it to exit, then
// kills it.
func (c *child) stop() error {
	_ = c.stdin.Close()
	select {
	case <-c.waited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.waited
		return fmt.Errorf("child did not exit within 30s of its stdin closing; stderr: %s", c.stderr.String())
	}
	if c.err != nil {
		return fmt.Errorf("child: %v; stderr: %s", c.err, strings.TrimSpace(c.stderr.String()))
	}
	return nil
}

// kill ends the child at once (used in cleanups).
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.waited
}

// startChildT is startChild for tests: it fails t on error and kills the
// child when t ends if it is still running.
func startChildT(t testing.TB, mode string, env ...string) *child {
	t.Helper()
	c, err := startChild(mode, env...)
	if err != nil {
		t.Fatalf("starting child %s: %v", mode, err)
	}
	t.Cleanup(c.kill)
	return c
}

// waitStdin blocks until stdin closes: a child's signal to stop.
func waitStdin() { _, _ = io.Copy(io.Discard, os.Stdin) }
