//go:build linux

package netio

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// echoServe accepts on ln and echoes each connection in a goroutine.
func echoServe(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// BenchmarkConnEcho is a 64-byte echo round trip over the net.Conn face
// (netio on both ends) beside package net on both ends, in the same run.
// Package net listens on plain TCP, as netio does: its default listener is
// MPTCP since Go 1.24, which costs more per message.
func BenchmarkConnEcho(b *testing.B) {
	needRing(b)
	for _, impl := range []struct {
		name   string
		listen func(string, string) (net.Listener, error)
		dial   func(string, string) (net.Conn, error)
	}{
		{name: "impl=netio", listen: Listen, dial: Dial},
		{name: "impl=gonet", listen: plainTCPListen, dial: net.Dial},
	} {
		b.Run(impl.name, func(b *testing.B) {
			ln, err := impl.listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() { echoServe(ln); close(done) }()
			c, err := impl.dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, 64)
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			c.Close()
			ln.Close()
			<-done
		})
	}
}

// BenchmarkHandlerEcho is the same round trip against a handler-API echo
// server (Write copy, or SendLease of the received buffer), with a package
// net client; gonet is a goroutine-per-connection package net server.
func BenchmarkHandlerEcho(b *testing.B) {
	needRing(b)
	for _, mode := range []string{"handler-write", "handler-forward", "gonet"} {
		b.Run("impl="+mode, func(b *testing.B) {
			var addr string
			if mode == "gonet" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				go echoServe(ln)
				defer ln.Close()
				addr = ln.Addr().String()
			} else {
				s := serve(b, nil, "tcp", "127.0.0.1:0", newEcho(mode == "handler-forward"))
				addr = s.Addr().String()
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, 64)
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAccept measures connection placement: dial, one echoed byte,
// close, for one SO_REUSEPORT listener per loop and for one acceptor handing
// sockets to the loops with MSG_RING.
func BenchmarkAccept(b *testing.B) {
	needRing(b)
	for _, m := range []struct {
		name string
		mode AcceptMode
	}{{"mode=reuseport", AcceptReusePort}, {"mode=handoff", AcceptHandoff}} {
		b.Run(m.name, func(b *testing.B) {
			s := serve(b, &Config{Accept: m.mode}, "tcp4", "127.0.0.1:0", newEcho(false))
			addr := s.Addr().String()
			one := []byte{1}
			buf := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				c, err := net.Dial("tcp4", addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(one); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkAcceptParallel is BenchmarkAccept with 8 dialing goroutines, so
// that accepts overlap and both loops take connections.
func BenchmarkAcceptParallel(b *testing.B) {
	needRing(b)
	for _, m := range []struct {
		name string
		mode AcceptMode
	}{{"mode=reuseport", AcceptReusePort}, {"mode=handoff", AcceptHandoff}} {
		b.Run(m.name, func(b *testing.B) {
			s := serve(b, &Config{Accept: m.mode}, "tcp4", "127.0.0.1:0", newEcho(false))
			addr := s.Addr().String()
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				one := []byte{1}
				buf := make([]byte, 1)
				for pb.Next() {
					c, err := net.Dial("tcp4", addr)
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := c.Write(one); err != nil {
						b.Error(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Error(err)
					}
					c.Close()
				}
			})
		})
	}
}

// BenchmarkPacketEcho is a 172-byte datagram round trip: a package net
// client against a handler-API echo (SendLeaseTo of the received buffer), a
// netio PacketConn echo goroutine, and a package net echo goroutine.
// Datagrams lost on the way are sent again and counted (lost/op).
func BenchmarkPacketEcho(b *testing.B) {
	needRing(b)
	for _, mode := range []string{"handler", "netio", "gonet"} {
		b.Run("impl="+mode, func(b *testing.B) {
			var addr string
			switch mode {
			case "handler":
				var lc ListenConfig
				u, err := lc.ListenUDP(context.Background(), "udp", "127.0.0.1:0", udpEcho{})
				if err != nil {
					b.Fatal(err)
				}
				defer onLoop(b, u.Loop(), func() { u.Close(nil) })
				addr = u.LocalAddr().String()
			default:
				listen := ListenPacket
				if mode == "gonet" {
					listen = net.ListenPacket
				}
				pc, err := listen("udp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer pc.Close()
				go func() {
					buf := make([]byte, 2048)
					for {
						n, from, err := pc.ReadFrom(buf)
						if err != nil {
							return
						}
						_, _ = pc.WriteTo(buf[:n], from)
					}
				}()
				addr = pc.LocalAddr().String()
			}
			c, err := net.Dial("udp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, 172)
			buf := make([]byte, 2048)
			lost := 0
			b.ReportAllocs()
			for b.Loop() {
				// UDP may drop a datagram: each round trip has a deadline,
				// and a lost one is sent again (a few times at most), so
				// the benchmark can neither hang nor go on silently.
				for try := 0; ; try++ {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
					_ = c.SetReadDeadline(time.Now().Add(time.Second))
					_, err := c.Read(buf)
					if err == nil {
						break
					}
					if !isTimeout(err) || try == 3 {
						b.Fatalf("round trip: %v (after %d lost)", err, try)
					}
					lost++
				}
			}
			b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
		})
	}
}

// plainTCPListen is net.Listen without MPTCP.
func plainTCPListen(network, address string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), network, address)
}
