//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// rtpPacketSize is a G.711 20 ms RTP packet: 12-byte header + 160 bytes of payload.
const rtpPacketSize = 172

// relayScenario is one UDP row: Streams RTP streams at PPS packets/s each;
// PPS 0 sends as fast as one sender thread can.
type relayScenario struct {
	Streams int
	PPS     int
}

// Name is the row label, e.g. "udp 100x50pps" or "udp 100 max".
func (r relayScenario) Name() string {
	if r.PPS <= 0 {
		return fmt.Sprintf("udp %d max", r.Streams)
	}
	return fmt.Sprintf("udp %dx%dpps", r.Streams, r.PPS)
}

// maxRelayPackets bounds one relay row however fast the machine is.
const maxRelayPackets = 20_000_000

// runRelayCell measures one relay mode: senders -> relay subprocess -> sink.
func runRelayCell(cfg *benchConfig, rs relayScenario, mode string, round int) cellResult {
	res := cellResult{Row: rs.Name(), Mode: mode, Round: round, SrvSyscalls: -1, SrvUring: -1, SelfSys: -1, RelayFwd: -1}
	// The sink: one socket per stream at consecutive ports, as relays with
	// per-stream egress (examples/rtprelay) send stream i to Dest.Port()+i.
	sinks, sinkAddr, err := bindConsecutiveUDP(rs.Streams, 20)
	if err != nil {
		res.Err = err
		return res
	}
	defer func() {
		for _, fd := range sinks {
			unix.Close(fd)
		}
	}()
	sinkEp, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		res.Err = os.NewSyscallError("epoll_create1", err)
		return res
	}
	defer unix.Close(sinkEp)
	for _, fd := range sinks {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(sinkEp, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			res.Err = os.NewSyscallError("epoll_ctl", err)
			return res
		}
	}

	srv, err := startServer(serverSpec{
		Args: []string{
			"-kind", "relay", "-mode", mode, "-addr", "127.0.0.1:0", "-to", sinkAddr.String(),
			"-streams", fmt.Sprint(rs.Streams),
		},
		CPUs: cfg.ServerCPUs,
		Perf: cfg.Perf,
	})
	if err != nil {
		res.Err = err
		return res
	}
	// On an early return; the normal path checks Stop's error below.
	defer func() { _, _ = srv.Stop() }()
	ingress := srv.Addrs
	if len(ingress) == 0 {
		ingress = []string{srv.Addr}
	}
	var targets []netip.AddrPort
	for _, a := range ingress {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			res.Err = err
			return res
		}
		targets = append(targets, ap)
	}
	senders := make([]int, 0, rs.Streams)
	defer func() {
		for _, fd := range senders {
			unix.Close(fd)
		}
	}()
	for i := 0; i < rs.Streams; i++ {
		fd, _, err := udpSocket(&targets[i%len(targets)])
		if err != nil {
			res.Err = err
			return res
		}
		senders = append(senders, fd)
	}

	var recvd atomic.Int64
	var stopSink atomic.Bool
	var wg sync.WaitGroup
	hardStop := time.Now().Add(cfg.Duration + 10*time.Second)
	wg.Add(1)
	go func() { // the sink: bounded by stopSink and hardStop
		defer wg.Done()
		buf := make([]byte, 2048)
		events := make([]unix.EpollEvent, 128)
		var n int64
		for !stopSink.Load() && time.Now().Before(hardStop) {
			k, err := unix.EpollWait(sinkEp, events, 20)
			if err != nil {
				continue
			}
			for _, ev := range events[:k] {
				for {
					m, err := unix.Read(int(ev.Fd), buf)
					if err != nil {
						break
					}
					if m == rtpPacketSize {
						n++
					}
				}
			}
			recvd.Store(n)
		}
	}()
	defer func() {
		stopSink.Store(true)
		wg.Wait()
	}()

	m := beginMeasure(srv)
	cpu0 := rusageSelf()
	start := time.Now()
	sent, sendErr := sendRTP(senders, rs, start, start.Add(cfg.Duration))
	sendTime := time.Since(start)
	// drain: stop when the sink has been quiet for 50 ms, at most 1 s
	last, quiet := recvd.Load(), time.Now()
	for d := time.Now().Add(time.Second); time.Now().Before(d); {
		time.Sleep(10 * time.Millisecond)
		if n := recvd.Load(); n != last {
			last, quiet = n, time.Now()
		} else if time.Since(quiet) > 50*time.Millisecond {
			break
		}
	}
	res.LoadCPU = rusageSelf() - cpu0
	res.Window = time.Since(start)
	res.Msgs = recvd.Load() // before the relay's count, so that its count >= this
	m.end(cfg, srv, &res)
	stopSink.Store(true)
	wg.Wait()

	res.Sent = sent
	res.Lost = max(0, sent-res.Msgs)
	res.Elapsed = sendTime
	fillCores(cfg, &res)
	if _, err := srv.Stop(); err != nil && res.Err == nil {
		res.Err = err
	}
	if n, ok := srv.SyscallCount(); ok {
		res.SrvSyscalls = n
	}
	if n, ok := srv.UringEnterCount(); ok {
		res.SrvUring = n
	}
	if res.Err == nil && sendErr != nil {
		res.Err = sendErr
	}
	if res.Err == nil && res.Msgs == 0 {
		res.Err = errors.New("relay forwarded nothing")
	}
	return res
}

// sendRTP sends RTP packets round-robin over the streams, paced at
// Streams*PPS packets/s (or unpaced), until end or maxRelayPackets.
func sendRTP(fds []int, rs relayScenario, start, end time.Time) (int64, error) {
	type stream struct {
		seq uint16
		ts  uint32
	}
	st := make([]stream, len(fds))
	pkt := make([]byte, rtpPacketSize)
	pkt[0] = 0x80 // V=2
	pkt[1] = 0    // PT 0, PCMU
	rate := float64(rs.Streams * rs.PPS)
	var sent, errs int64
	var firstErr error
	send := func() {
		i := int(sent % int64(len(fds)))
		s := &st[i]
		binary.BigEndian.PutUint16(pkt[2:], s.seq)
		binary.BigEndian.PutUint32(pkt[4:], s.ts)
		binary.BigEndian.PutUint32(pkt[8:], uint32(i+1))
		s.seq++
		s.ts += 160
		if _, err := unix.Write(fds[i], pkt); err != nil {
			errs++
			if firstErr == nil && !errors.Is(err, unix.ECONNREFUSED) && !errors.Is(err, unix.EAGAIN) {
				firstErr = os.NewSyscallError("write", err)
			}
		}
		sent++
	}
	for sent < maxRelayPackets {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		if rate <= 0 {
			for k := 0; k < 256 && sent < maxRelayPackets; k++ {
				send()
			}
			continue
		}
		due := int64(now.Sub(start).Seconds() * rate)
		for sent < due && sent < maxRelayPackets {
			send()
		}
		time.Sleep(500 * time.Microsecond)
	}
	if firstErr == nil && errs > sent/10 {
		firstErr = fmt.Errorf("ringbench: %d of %d sends failed", errs, sent)
	}
	return sent, firstErr
}

// udpSocket opens a blocking UDP socket bound to 127.0.0.1:0, connected to
// peer when peer is not nil, and returns it with its bound address.
func udpSocket(peer *netip.AddrPort) (int, netip.AddrPort, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, netip.AddrPort{}, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, os.NewSyscallError("bind", err)
	}
	if peer != nil {
		if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: peer.Addr().As4(), Port: int(peer.Port())}); err != nil {
			unix.Close(fd)
			return -1, netip.AddrPort{}, os.NewSyscallError("connect", err)
		}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, os.NewSyscallError("getsockname", err)
	}
	a := sa.(*unix.SockaddrInet4)
	return fd, netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
}

// bindConsecutiveUDP binds n non-blocking UDP sockets on 127.0.0.1 at
// consecutive ports (the first one ephemeral), retrying up to tries times.
func bindConsecutiveUDP(n, tries int) ([]int, netip.AddrPort, error) {
	var lastErr error
	for range max(tries, 1) {
		first, addr, err := udpSocket(nil)
		if err != nil {
			return nil, netip.AddrPort{}, err
		}
		fds := []int{first}
		for i := 1; i < n && err == nil; i++ {
			port := int(addr.Port()) + i
			if port > 65535 {
				err = errors.New("port range past 65535")
				break
			}
			var fd int
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				break
			}
			fds = append(fds, fd)
			err = unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port})
		}
		if err == nil {
			for _, fd := range fds {
				if err = unix.SetNonblock(fd, true); err != nil {
					break
				}
			}
		}
		if err == nil {
			return fds, addr, nil
		}
		lastErr = err
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	return nil, netip.AddrPort{}, fmt.Errorf("ringbench: no %d consecutive free UDP ports: %w", n, lastErr)
}
