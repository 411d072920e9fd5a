//go:build linux

package netio

import (
	"context"
	"net"
	"testing"

	"golang.org/x/net/nettest"

	"github.com/ringwire/ringwire/internal/testenv"
)

func makePipe(network, addr string, cfg *Config) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		lc := ListenConfig{Config: cfg}
		ln, err := lc.Listen(context.Background(), network, addr)
		if err != nil {
			return nil, nil, nil, err
		}
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			c, err := ln.Accept()
			ch <- res{c, err}
		}()
		d := Dialer{Config: cfg}
		c1, err = d.Dial(network, ln.Addr().String())
		if err != nil {
			ln.Close()
			return nil, nil, nil, err
		}
		r := <-ch
		ln.Close()
		if r.err != nil {
			c1.Close()
			return nil, nil, nil, r.err
		}
		stop = func() {
			c1.Close()
			r.c.Close()
		}
		return c1, r.c, stop, nil
	}
}

func TestNettestConnTCP4(t *testing.T) {
	needRing(t)
	nettest.TestConn(t, makePipe("tcp", "127.0.0.1:0", nil))
}

func TestNettestConnTCP6(t *testing.T) {
	needRing(t)
	testenv.NeedFeature(t, "IPv6 on loopback", nettest.SupportsIPv6())
	nettest.TestConn(t, makePipe("tcp6", "[::1]:0", nil))
}

func TestNettestConnFallback(t *testing.T) {
	nettest.TestConn(t, makePipe("tcp", "127.0.0.1:0", &Config{ForceFallback: true}))
}
