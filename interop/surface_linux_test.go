//go:build linux

package interop

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMethodSets compares, by reflection, the objects netio returns with
// package net's: every method of *net.TCPListener, *net.TCPConn and
// *net.UDPConn must be there with the same signature (libraries find
// SyscallConn, ReadMsgUDP, SetKeepAliveConfig... by type assertion), and
// nothing else may be exported (a net.Conn must not carry handler
// callbacks).
func TestMethodSets(t *testing.T) {
	ss := stacks(t)
	for _, st := range ss {
		t.Run(st.name, func(t *testing.T) {
			ln := listenTCP(t, st)
			accepted := acceptFrom(t, st, ln)
			dialed, err := dialer(st)(context.Background(), "tcp", ln.Addr().String())
			if err != nil {
				t.Fatalf("%s: Dial tcp: %v", st.name, err)
			}
			defer dialed.Close()
			pc := listenUDP(t, st)
			udp, err := dialer(st)(context.Background(), "udp", pc.LocalAddr().String())
			if err != nil {
				t.Fatalf("%s: Dial udp: %v", st.name, err)
			}
			defer udp.Close()
			for _, c := range []struct {
				what string
				v    any
				want reflect.Type
			}{
				{"Listen(tcp)", ln, reflect.TypeFor[*net.TCPListener]()},
				{"Accept", accepted, reflect.TypeFor[*net.TCPConn]()},
				{"Dial(tcp)", dialed, reflect.TypeFor[*net.TCPConn]()},
				{"ListenPacket(udp)", pc, reflect.TypeFor[*net.UDPConn]()},
				{"Dial(udp)", udp, reflect.TypeFor[*net.UDPConn]()},
			} {
				if msg := methodSetDiff(reflect.TypeOf(c.v), c.want); msg != "" {
					t.Errorf("%s: %s returns %T, whose method set differs from %v: %s", st.name, c.what, c.v, c.want, msg)
				}
			}
		})
	}
}

// methodSetDiff lists the methods of want that got lacks or has with
// another signature, and got's exported methods that want does not have.
func methodSetDiff(got, want reflect.Type) string {
	var missing, differ, extra []string
	for i := range want.NumMethod() {
		m := want.Method(i)
		gm, ok := got.MethodByName(m.Name)
		switch {
		case !ok:
			missing = append(missing, m.Name)
		case !sameSignature(gm.Type, m.Type):
			differ = append(differ, fmt.Sprintf("%s is %v, want %v", m.Name, gm.Type, m.Type))
		}
	}
	for i := range got.NumMethod() {
		if _, ok := want.MethodByName(got.Method(i).Name); !ok {
			extra = append(extra, got.Method(i).Name)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+strings.Join(missing, ", "))
	}
	if len(differ) > 0 {
		parts = append(parts, "different "+strings.Join(differ, "; "))
	}
	if len(extra) > 0 {
		parts = append(parts, "exported beyond package net's "+strings.Join(extra, ", "))
	}
	return strings.Join(parts, "; ")
}

// sameSignature compares two method types without their receivers.
func sameSignature(a, b reflect.Type) bool {
	if a.NumIn() != b.NumIn() || a.NumOut() != b.NumOut() || a.IsVariadic() != b.IsVariadic() {
		return false
	}
	for i := 1; i < a.NumIn(); i++ {
		if a.In(i) != b.In(i) {
			return false
		}
	}
	for i := range a.NumOut() {
		if a.Out(i) != b.Out(i) {
			return false
		}
	}
	return true
}

// TestKeepAliveDefaults checks that TCP connections made by Dial and by
// Accept have keep-alive on as package net's do (15 s idle, net.Dialer and
// net.ListenConfig defaults), seen from the kernel's side in
// /proc/net/tcp: an established socket whose keep-alive timer is armed
// shows timer 2, due in about 15 s.
func TestKeepAliveDefaults(t *testing.T) {
	ss := stacks(t)
	var ref [2]string
	for _, st := range ss {
		t.Run(st.name, func(t *testing.T) {
			ln := listenTCP(t, st)
			accepted := acceptFrom(t, st, ln)
			nl := listenTCP(t, netStack)
			go drain(nl)
			dialed, err := dialer(st)(context.Background(), "tcp", nl.Addr().String())
			if err != nil {
				t.Fatalf("%s: Dial: %v", st.name, err)
			}
			defer dialed.Close()
			for i, c := range []struct {
				what string
				conn net.Conn
			}{{"Accept", accepted}, {"Dial", dialed}} {
				got, err := keepAliveState(c.conn)
				if err != nil {
					t.Fatalf("%s: %s: %v", st.name, c.what, err)
				}
				if !st.netio {
					ref[i] = got
					if !strings.HasPrefix(got, "armed") {
						t.Fatalf("net: %s: keep-alive %s; package net's default changed?", c.what, got)
					}
					continue
				}
				if got != ref[i] {
					t.Errorf("%s: %s: keep-alive timer %s, package net's is %s (net turns keep-alive on for dialed and accepted connections: 15 s idle, 15 s interval, 9 probes)", st.name, c.what, got, ref[i])
				}
			}
		})
	}
}

// keepAliveState finds c's socket in /proc/net/tcp and says whether its
// keep-alive timer is armed and whether it fires within package net's
// 15 s. It polls for up to a second: the options may be set just after
// the connection is returned.
func keepAliveState(c net.Conn) (string, error) {
	l, ok1 := c.LocalAddr().(*net.TCPAddr)
	r, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return "", fmt.Errorf("addresses %v, %v are not *net.TCPAddr", c.LocalAddr(), c.RemoteAddr())
	}
	key := fmt.Sprintf(":%04X %s:%04X", l.Port, "0100007F", r.Port)
	deadline := time.Now().Add(time.Second)
	for {
		state, err := procTCPTimer(key)
		if err != nil || strings.HasPrefix(state, "armed") || time.Now().After(deadline) {
			return state, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procTCPTimer reads the timer column of the /proc/net/tcp row whose
// local port and remote address match key.
func procTCPTimer(key string) (string, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || !strings.HasSuffix(fs[1]+" "+fs[2], key) {
			continue
		}
		tr, when, _ := strings.Cut(fs[5], ":")
		if tr != "02" {
			return "not armed (timer " + tr + ")", nil
		}
		ticks, err := strconv.ParseUint(when, 16, 64)
		if err != nil {
			return "", fmt.Errorf("/proc/net/tcp timer %q", fs[5])
		}
		d := time.Duration(ticks) * 10 * time.Millisecond // USER_HZ
		if d > 5*time.Second && d <= 15*time.Second+500*time.Millisecond {
			return "armed, fires within 15s", nil // package net's idle time, read a little later
		}
		return fmt.Sprintf("armed, fires in %v", d.Round(100*time.Millisecond)), nil
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no /proc/net/tcp row for %s", key)
}
