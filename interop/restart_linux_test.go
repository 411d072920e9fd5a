//go:build linux

package interop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// restartCycles is how many times TestRestart kills and restarts a server.
const restartCycles = 20

// restartServerChild is the server of TestRestart: it waits for "go" on
// stdin, listens on $INTEROP_ADDR with $INTEROP_STACK, prints "ready ADDR"
// (or "bind-error ERRNO: err" and exits), and echoes lines on every
// connection until SIGTERM ends the process. It never closes its listener,
// as a server killed by its supervisor does not.
func restartServerChild() error {
	st, rt, err := stackByName(os.Getenv("INTEROP_STACK"))
	if err != nil {
		return err
	}
	_ = rt // the process dies with it, as a killed server's runtime does
	in := bufio.NewReader(os.Stdin)
	if l, err := in.ReadString('\n'); err != nil || l != "go\n" {
		return fmt.Errorf("waiting for go: %q, %v", l, err)
	}
	ln, err := st.listen(context.Background(), "tcp", os.Getenv("INTEROP_ADDR"))
	if err != nil {
		name := "other"
		var errno syscall.Errno
		if errors.As(err, &errno) {
			name = unix.ErrnoName(errno)
		}
		fmt.Printf("bind-error %s: %v\n", name, err)
		return nil
	}
	if err := checkType(st, "Listen", ln); err != nil {
		return err
	}
	fmt.Printf("ready %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

// TestRestart kills a server process with SIGTERM and starts it again on
// the same port at once, 20 times, as a supervisor does: the next process
// is already started and waiting, and binds the moment the previous one
// has exited. Package net frees the port when the process exits (its
// SO_REUSEADDR listener binds again at once, with the old connections in
// TIME_WAIT); the restart must get the port every time, and every
// connection to the new process must be served (none may land on a socket
// the dead process left listening).
func TestRestart(t *testing.T) {
	ss := stacks(t)
	for _, st := range ss {
		t.Run(st.name, func(t *testing.T) {
			runRestart(t, st)
		})
	}
}

func runRestart(t *testing.T, st *stack) {
	addr := "127.0.0.1:0"
	inUse := 0
	var worst time.Duration
	var firstErr string
	busy, firstBusy := 0, ""

	// start tells the waiting server child to bind and returns it with its
	// answer ("ready ADDR" or "bind-error ..."); prepare starts the next
	// one, which waits for start.
	pending := startChildT(t, "restart-server", "INTEROP_STACK="+st.name, "INTEROP_ADDR="+addr)
	start := func() (*child, string) {
		c := pending
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			t.Fatalf("%s: telling the server to bind: %v", st.name, err)
		}
		l, err := c.line(20 * time.Second)
		if err != nil {
			t.Fatalf("%s: server child: %v", st.name, err)
		}
		return c, l
	}
	prepare := func() { pending = startChildT(t, "restart-server", "INTEROP_STACK="+st.name, "INTEROP_ADDR="+addr) }

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for cycle := 0; cycle <= restartCycles; cycle++ {
		c, l := start()
		tried := time.Now()
		for strings.HasPrefix(l, "bind-error") {
			if cycle == 0 {
				t.Fatalf("%s: the first server could not listen: %s", st.name, l)
			}
			if firstErr == "" {
				firstErr = l
			}
			if !strings.HasPrefix(l, "bind-error EADDRINUSE") {
				t.Fatalf("%s: restart %d: %s", st.name, cycle, l)
			}
			inUse++
			// Keep the cycles going: bind again until the port is free.
			for strings.HasPrefix(l, "bind-error") {
				if time.Since(tried) > 10*time.Second {
					t.Fatalf("%s: restart %d: the port stayed bound for 10s after the previous server exited: %s", st.name, cycle, l)
				}
				<-c.waited
				prepare()
				c, l = start()
			}
			worst = max(worst, time.Since(tried))
		}
		if cycle == 0 {
			addr = strings.TrimPrefix(l, "ready ")
		}
		if cycle < restartCycles {
			prepare() // the supervisor's next process, waiting to bind
		}
		// Every connection to the new server is served, and one stays
		// open across the kill.
		for i := range 4 {
			conn, err := echoOnce(addr, fmt.Sprintf("cycle %d conn %d\n", cycle, i))
			if err != nil {
				t.Fatalf("%s: after restart %d, connection %d: %v", st.name, cycle, i, err)
			}
			conns = append(conns, conn)
		}
		if cycle == restartCycles {
			break
		}
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("%s: SIGTERM: %v", st.name, err)
		}
		<-c.waited
		// The port must be free the moment the process is gone, for any
		// program: a package net listener (SO_REUSEADDR, no SO_REUSEPORT)
		// cannot share it with a listener the dead process left behind.
		// One attempt, so that the restart below still comes at once.
		if ln, err := net.Listen("tcp", addr); err != nil {
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("%s: restart %d: probing the port: %v", st.name, cycle, err)
			}
			busy++
			if firstBusy == "" {
				firstBusy = err.Error()
			}
		} else {
			_ = ln.Close()
		}
		if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Fatalf("%s: restart %d: the server ended with %v, not by SIGTERM; stderr: %s", st.name, cycle, c.cmd.ProcessState, c.stderr.String())
		}
		for _, conn := range conns {
			_ = conn.Close()
		}
		conns = conns[:0]
	}
	t.Logf("%s: %d of %d restarts got EADDRINUSE (free %v after the exit at worst); right after %d of %d exits a package net listener got EADDRINUSE",
		st.name, inUse, restartCycles, worst.Round(time.Microsecond), busy, restartCycles)
	if busy > 0 {
		t.Errorf("%s: right after %d of %d SIGTERM exits the port was still bound for a package net listener (SO_REUSEADDR, no SO_REUSEPORT); package net frees it at exit. First: %s",
			st.name, busy, restartCycles, firstBusy)
	}
	if inUse > 0 {
		t.Errorf("%s: %d of %d restarts got EADDRINUSE binding the port the SIGTERMed server had listened on (free again %v after its exit); package net frees it at exit. First: %s",
			st.name, inUse, restartCycles, worst.Round(time.Microsecond), firstErr)
	}
}

// echoOnce connects to addr, sends msg and reads it back within 5 s; it
// returns the connection, still open.
func echoOnce(addr, msg string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		c.Close()
		return nil, err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		c.Close()
		return nil, fmt.Errorf("no echo within 5s (%w): the connection went to a listener nobody serves", err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
