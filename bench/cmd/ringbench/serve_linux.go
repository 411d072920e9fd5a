//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// helloMsg is the first line a server subprocess prints on stdout.
type helloMsg struct {
	Addr  string   `json:"addr"`
	Addrs []string `json:"addrs,omitempty"` // per-stream ingress addresses (IngressServer)
	PID   int      `json:"pid"`
	Mode  string   `json:"mode"`
}

// statsMsg is printed on stdout for each "stats" line read on stdin, and once
// more (Final set) when stdin closes or SIGTERM arrives, just before exit.
type statsMsg struct {
	Stats ServerStats `json:"stats"`
	Final bool        `json:"final,omitempty"`
}

// runServe is `ringbench serve`: start one server, print its address, answer
// "stats" on stdin, exit when stdin closes.
func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	kind := fs.String("kind", "echo", "server kind: echo (TCP) or relay (UDP)")
	mode := fs.String("mode", "gonet", "server mode (see `ringbench -list`)")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	to := fs.String("to", "", "relay: destination address")
	streams := fs.Int("streams", 1, "relay: number of RTP streams the load will send")
	cpus := fs.String("cpus", "", "pin every thread of this process to these CPUs (\"0\", \"0-1\", \"0,2\")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	loops := 0
	if *cpus != "" {
		set, err := parseCPUList(*cpus)
		if err != nil {
			return err
		}
		if err := pinProcess(set); err != nil {
			return err
		}
		loops = len(set)
	}
	reg := newRegistry()
	var (
		srv Server
		err error
	)
	switch *kind {
	case "echo":
		f, ok := reg.echo[*mode]
		if !ok {
			return fmt.Errorf("ringbench serve: unknown echo mode %q (have %s)", *mode, strings.Join(sortedModes(reg.echo, defaultEchoOrder), ", "))
		}
		srv, err = f(EchoConfig{Addr: *addr, Loops: loops})
	case "relay":
		f, ok := reg.relay[*mode]
		if !ok {
			return fmt.Errorf("ringbench serve: unknown relay mode %q (have %s)", *mode, strings.Join(sortedModes(reg.relay, defaultRelayOrder), ", "))
		}
		if *to == "" {
			return errors.New("ringbench serve: relay needs -to")
		}
		srv, err = f(RelayConfig{Addr: *addr, Dest: *to, Streams: *streams, Loops: loops})
	default:
		return fmt.Errorf("ringbench serve: unknown kind %q", *kind)
	}
	if err != nil {
		return fmt.Errorf("ringbench serve: start %s: %w", *mode, err)
	}
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	hello := helloMsg{Addr: srv.Addr().String(), PID: os.Getpid(), Mode: *mode}
	if is, ok := srv.(IngressServer); ok {
		for _, a := range is.IngressAddrs() {
			hello.Addrs = append(hello.Addrs, a.String())
		}
	}
	_ = enc.Encode(hello)
	_ = out.Flush()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	cmds := make(chan string)
	go func() { // ends with stdin; the process exits right after, so it is not joined
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmds <- strings.TrimSpace(sc.Text())
		}
		close(cmds)
	}()
	for {
		select {
		case c, ok := <-cmds:
			if ok {
				if c == "stats" {
					_ = enc.Encode(statsMsg{Stats: srv.Stats()})
					_ = out.Flush()
				}
				continue
			}
		case <-sig:
		}
		_ = enc.Encode(statsMsg{Stats: srv.Stats(), Final: true})
		_ = out.Flush()
		return srv.Close()
	}
}

// listenerAddr reads a gnet engine's bound listener address.
func listenerAddr(eng gnet.Engine) (net.Addr, error) {
	fd, err := eng.Dup()
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, os.NewSyscallError("getsockname", err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}, nil
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}, nil
	}
	return nil, fmt.Errorf("gnet: listener address of type %T", sa)
}

// parseCPUList parses "0", "0-1", "0,2-3".
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("ringbench: bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("ringbench: bad CPU list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("ringbench: empty CPU list %q", s)
	}
	return cpus, nil
}

func cpuSet(cpus []int) *unix.CPUSet {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return &set
}

// pinProcess sets the affinity of every thread of this process (threads
// created later inherit it from their creator) and GOMAXPROCS to match.
func pinProcess(cpus []int) error {
	set := cpuSet(cpus)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
			return os.NewSyscallError("sched_setaffinity", err)
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}

// allowedCPUs is the number of CPUs in this process's affinity mask.
func allowedCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return runtime.NumCPU()
	}
	return set.Count()
}
