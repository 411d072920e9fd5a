//go:build linux

package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// udpConnRelay is the stand-in stdlib relay: one *net.UDPConn, one goroutine,
// ReadFromUDPAddrPort then WriteToUDPAddrPort to a fixed destination. It is the
// "udpconn" relay mode until examples/rtprelay/gorelay is wired in as "gorelay".
type udpConnRelay struct {
	conn    *net.UDPConn
	dest    netip.AddrPort
	wg      sync.WaitGroup
	packets atomic.Int64
	bytes   atomic.Int64

	once     sync.Once
	closeErr error // the first Close's result
}

func startUDPConnRelay(cfg RelayConfig) (Server, error) {
	dest, err := netip.ParseAddrPort(cfg.Dest)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(context.Background(), "udp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	r := &udpConnRelay{conn: pc.(*net.UDPConn), dest: dest}
	_ = r.conn.SetReadBuffer(4 << 20)
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

func (r *udpConnRelay) loop() {
	defer r.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, _, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if _, err := r.conn.WriteToUDPAddrPort(buf[:n], r.dest); err == nil {
			r.packets.Add(1)
			r.bytes.Add(int64(n))
		}
	}
}

func (r *udpConnRelay) Addr() net.Addr { return r.conn.LocalAddr() }

func (r *udpConnRelay) Stats() ServerStats {
	return ServerStats{Packets: r.packets.Load(), Bytes: r.bytes.Load()}
}

func (r *udpConnRelay) Close() error {
	r.once.Do(func() {
		r.closeErr = r.conn.Close()
		r.wg.Wait()
	})
	return r.closeErr
}
