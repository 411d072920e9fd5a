//go:build linux

package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ringwire/ringwire/netio"
	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// A stack is one way of making sockets: package net, or netio on the default
// runtime, or netio on a runtime of the test's own. Scenarios take stacks and
// never know which one they run on, except to name it in a failure.
type stack struct {
	name  string // "net", "netio", "netio-rt": prefixes every failure
	netio bool

	listen       func(ctx context.Context, network, address string) (net.Listener, error)
	listenPacket func(ctx context.Context, network, address string) (net.PacketConn, error)
	dial         func(ctx context.Context, network, address string) (net.Conn, error)
}

var netStack = &stack{
	name:         "net",
	listen:       new(net.ListenConfig).Listen,
	listenPacket: new(net.ListenConfig).ListenPacket,
	dial:         new(net.Dialer).DialContext,
}

// netioDefault uses netio's package functions, as a program that changed
// only its import would.
var netioDefault = &stack{
	name:  "netio",
	netio: true,
	listen: func(_ context.Context, network, address string) (net.Listener, error) {
		return netio.Listen(network, address)
	},
	listenPacket: func(_ context.Context, network, address string) (net.PacketConn, error) {
		return netio.ListenPacket(network, address)
	},
	dial: netio.DialContext,
}

// netioOn uses netio.ListenConfig and netio.Dialer on rt.
func netioOn(rt *runtime.Runtime) *stack {
	lc := &netio.ListenConfig{Runtime: rt}
	d := &netio.Dialer{Runtime: rt}
	return &stack{
		name:         "netio-rt",
		netio:        true,
		listen:       lc.Listen,
		listenPacket: lc.ListenPacket,
		dial:         d.DialContext,
	}
}

// stackByName is what a child process uses to rebuild its parent's stack.
// The runtime of "netio-rt" is the child's own; the caller closes it.
func stackByName(name string) (*stack, *runtime.Runtime, error) {
	switch name {
	case "net":
		return netStack, nil, nil
	case "netio":
		return netioDefault, nil, nil
	case "netio-rt":
		rt, err := runtime.New(&runtime.Config{Loops: 2})
		if err != nil {
			return nil, nil, fmt.Errorf("netio-rt: runtime.New: %w", err)
		}
		return netioOn(rt), rt, nil
	}
	return nil, nil, fmt.Errorf("unknown stack %q", name)
}

// needRing skips (or fails under RINGWIRE_STRICT=1) where io_uring is off:
// netio would silently be package net there, and the comparison would say
// nothing.
func needRing(t testing.TB) {
	t.Helper()
	if err := ring.Available(); err != nil {
		skipOrFail(t, "io_uring: %v", err)
	}
}

func strict() bool { return os.Getenv("RINGWIRE_STRICT") == "1" }

// skipOrFail skips with the reason, or fails with it under RINGWIRE_STRICT=1.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if strict() {
		t.Fatalf(format+" (RINGWIRE_STRICT=1)", args...)
	}
	t.Skipf(format, args...)
}

// stacks returns the reference and the two netio stacks. The explicit
// runtime is closed when t ends, after everything the subtests opened.
func stacks(t testing.TB) []*stack {
	t.Helper()
	needRing(t)
	rt, err := runtime.New(&runtime.Config{Loops: 2})
	if err != nil {
		t.Fatalf("netio-rt: runtime.New: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("netio-rt: runtime.Close: %v", err)
		}
	})
	return []*stack{netStack, netioDefault, netioOn(rt)}
}

// A pair says which stack serves and which one connects.
type pair struct{ server, client *stack }

func (p pair) String() string { return "server=" + p.server.name + ",client=" + p.client.name }

// baseline reports whether p is the package net reference run.
func (p pair) baseline() bool { return !p.server.netio && !p.client.netio }

// netioSide names the netio end(s) of p, for failure messages.
func (p pair) netioSide() string {
	switch {
	case p.server.netio && p.client.netio:
		return p.server.name + " server and " + p.client.name + " client"
	case p.server.netio:
		return p.server.name + " server"
	case p.client.netio:
		return p.client.name + " client"
	}
	return "net"
}

// pairs is the reference (net on both ends), each netio stack as the server
// with a net client and as the client of a net server, and, when bothEnds,
// netio on both ends.
func pairs(ss []*stack, bothEnds bool) []pair {
	ref := ss[0]
	out := []pair{{ref, ref}}
	for _, s := range ss[1:] {
		out = append(out, pair{s, ref}, pair{ref, s})
	}
	if bothEnds && len(ss) > 2 {
		out = append(out, pair{ss[1], ss[2]})
	}
	return out
}

// checkType fails unless a netio stack returned one of netio's own objects:
// a silent fallback to package net would make every comparison vacuous.
func checkType(st *stack, what string, v any) error {
	if !st.netio {
		return nil
	}
	typ := reflect.TypeOf(v)
	for typ != nil && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == nil || !strings.HasPrefix(typ.PkgPath(), "github.com/ringwire/") {
		return fmt.Errorf("%s: %s returned %T, package net's own object: netio fell back to package net", st.name, what, v)
	}
	return nil
}

// listenTCP listens on 127.0.0.1:0 on st and checks the object's origin.
func listenTCP(t testing.TB, st *stack) net.Listener {
	t.Helper()
	ln, err := st.listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%s: Listen: %v", st.name, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	if err := checkType(st, "Listen", ln); err != nil {
		t.Fatal(err)
	}
	return ln
}

// listenUDP is listenTCP for ListenPacket.
func listenUDP(t testing.TB, st *stack) net.PacketConn {
	t.Helper()
	pc, err := st.listenPacket(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%s: ListenPacket: %v", st.name, err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if err := checkType(st, "ListenPacket", pc); err != nil {
		t.Fatal(err)
	}
	return pc
}

// dialer returns st's dial function with the origin check folded in, in the
// shape grpc.WithContextDialer and http.Transport.DialContext take.
func dialer(st *stack) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := st.dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if err := checkType(st, "Dial", c); err != nil {
			_ = c.Close()
			return nil, err
		}
		return c, nil
	}
}

// results collects the reference run's outcome (one line per observation)
// so that every netio run of the same scenario is compared with it.
type results struct {
	mu   sync.Mutex
	ref  []string
	have bool
}

// record stores the reference outcome, or compares a netio run's with it
// and reports the lines that differ.
func (r *results) record(t testing.TB, p pair, got []string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.baseline() {
		r.ref, r.have = got, true
		return
	}
	if !r.have {
		t.Errorf("%s: no reference run to compare with (the net run failed)", p.netioSide())
		return
	}
	var diffs []string
	for i := range max(len(got), len(r.ref)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(r.ref) {
			w = r.ref[i]
		}
		if g != w {
			diffs = append(diffs, fmt.Sprintf("  netio: %s\n    net: %s", g, w))
		}
		if len(diffs) == 5 {
			diffs = append(diffs, "  ...")
			break
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%s: results differ from package net's:\n%s", p.netioSide(), strings.Join(diffs, "\n"))
	}
}

// drain accepts connections and reads them until the listener closes.
func drain(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
}
