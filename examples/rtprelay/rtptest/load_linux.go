//go:build linux

package rtptest

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/examples/rtprelay/relay"
)

// Load is a many-stream load: Streams G.711 streams (172-byte packets) sent
// round robin by one sender goroutine at PPS packets/s each, or as fast as it
// can when PPS is 0, for Duration, to one relay destination read by one
// epoll sink goroutine.
type Load struct {
	Streams  int
	PPS      int
	Duration time.Duration
}

// LoadResult is what RunLoad measured.
type LoadResult struct {
	// Sent counts datagrams sent; Received those the sink read.
	Sent, Received int64
	// Elapsed is the sending time.
	Elapsed time.Duration
	// CPU is the process's CPU time (user+system, getrusage) from the start
	// of sending until the sink went quiet: sender, sink and an in-process
	// relay together.
	CPU time.Duration
	// Report is the relay's report at the end (zero without a relay).
	Report relay.Report
}

// Loss is the fraction of Sent that the sink did not read.
func (r *LoadResult) Loss() float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.Sent-r.Received) / float64(r.Sent)
}

// PPS is the rate the sink read at, over the sending time.
func (r *LoadResult) PPS() float64 { return float64(r.Received) / r.Elapsed.Seconds() }

// CPUPerPacket is CPU per datagram the sink read.
func (r *LoadResult) CPUPerPacket() time.Duration {
	if r.Received == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Received)
}

// maxLoadPackets bounds one RunLoad however fast the machine is.
const maxLoadPackets = 5_000_000

// RunLoad starts the relay with start (nil: the sender sends straight to
// the sink sockets, the baseline), runs l and returns the figures. Every
// loop in it is bounded by l.Duration plus a few seconds and by
// maxLoadPackets.
func RunLoad(tb testing.TB, start StartFunc, l Load) LoadResult {
	tb.Helper()
	n := max(l.Streams, 1)
	sinks := listenN(tb, n)
	sinkFDs := make([]int, n)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		tb.Fatal(os.NewSyscallError("epoll_create1", err))
	}
	defer unix.Close(ep)
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
		for _, c := range sinks {
			c.Close()
		}
	}()
	for i, c := range sinks {
		_ = c.SetReadBuffer(4 << 20)
		f, err := c.File() // a blocking duplicate: read with MSG_DONTWAIT
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, f)
		sinkFDs[i] = int(f.Fd())
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(sinkFDs[i])}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, sinkFDs[i], &ev); err != nil {
			tb.Fatal(os.NewSyscallError("epoll_ctl", err))
		}
	}
	targets := make([]netip.AddrPort, n)
	for i, c := range sinks {
		targets[i] = addrOf(c)
	}
	var inst Instance
	if start != nil {
		ingress := listenN(tb, n)
		cfg := relay.Config{In: addrOf(ingress[0]), Streams: n, Out: []netip.AddrPort{targets[0]}}
		for i, c := range ingress {
			targets[i] = addrOf(c)
		}
		if inst, err = start(tb, &cfg, ingress); err != nil {
			tb.Fatal(err)
		}
		defer inst.Close()
	}
	senders := make([]int, n)
	defer func() {
		for _, fd := range senders {
			if fd > 0 {
				unix.Close(fd)
			}
		}
	}()
	for i := range senders {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(os.NewSyscallError("socket", err))
		}
		senders[i] = fd
		if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: targets[i].Addr().As4(), Port: int(targets[i].Port())}); err != nil {
			tb.Fatal(os.NewSyscallError("connect", err))
		}
	}

	var recvd atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	hardStop := time.Now().Add(l.Duration + 10*time.Second)
	wg.Add(1)
	go func() { // the sink, bounded by stop and hardStop
		defer wg.Done()
		buf := make([]byte, 2048)
		events := make([]unix.EpollEvent, 256)
		var got int64
		for !stop.Load() && time.Now().Before(hardStop) {
			k, err := unix.EpollWait(ep, events, 20)
			if err != nil {
				continue
			}
			for _, ev := range events[:k] {
				for {
					m, _, err := unix.Recvfrom(int(ev.Fd), buf, unix.MSG_DONTWAIT)
					if err != nil {
						break
					}
					if m == G711PacketLen {
						got++
					}
				}
			}
			recvd.Store(got)
		}
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	// Warm up every stream's path once, unmeasured.
	pkt := make([]byte, G711PacketLen)
	pkt[0] = 0x80
	seqs := make([]uint16, n)
	sendOne := func(i int) {
		binary.BigEndian.PutUint16(pkt[2:], seqs[i])
		binary.BigEndian.PutUint32(pkt[4:], uint32(seqs[i])*G711PayloadLen)
		binary.BigEndian.PutUint32(pkt[8:], uint32(i+1))
		seqs[i]++
		_, _ = unix.Write(senders[i], pkt)
	}
	for i := range n {
		sendOne(i)
	}
	waitQuiet(&recvd, int64(n))
	base := recvd.Load()

	var res LoadResult
	cpu0 := cpuTime()
	t0 := time.Now()
	end := t0.Add(l.Duration)
	rate := float64(n * l.PPS)
	for res.Sent < maxLoadPackets {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		if rate <= 0 {
			for range 256 {
				sendOne(int(res.Sent % int64(n)))
				res.Sent++
			}
			continue
		}
		due := min(int64(now.Sub(t0).Seconds()*rate), maxLoadPackets)
		for res.Sent < due {
			sendOne(int(res.Sent % int64(n)))
			res.Sent++
		}
		time.Sleep(200 * time.Microsecond)
	}
	res.Elapsed = time.Since(t0)
	waitQuiet(&recvd, base+res.Sent)
	res.CPU = cpuTime() - cpu0
	res.Received = recvd.Load() - base
	if inst != nil {
		res.Report = inst.Report()
	}
	return res
}

// waitQuiet waits until the counter reaches want or has not moved for 100
// ms, at most 2 s.
func waitQuiet(c *atomic.Int64, want int64) {
	last, quiet := c.Load(), time.Now()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && c.Load() < want; {
		time.Sleep(5 * time.Millisecond)
		if v := c.Load(); v != last {
			last, quiet = v, time.Now()
		} else if time.Since(quiet) > 100*time.Millisecond {
			return
		}
	}
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// String formats the result as one line.
func (r *LoadResult) String() string {
	return fmt.Sprintf("sent %d, received %d (%.0f pkt/s, loss %.2f%%), CPU %v (%.2f µs/pkt)",
		r.Sent, r.Received, r.PPS(), 100*r.Loss(), r.CPU.Round(time.Millisecond), float64(r.CPUPerPacket().Nanoseconds())/1e3)
}
