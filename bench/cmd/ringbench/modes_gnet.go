//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

// gnetEcho is the event-loop baseline: gnet v2, multicore, one epoll loop per CPU.
type gnetEcho struct {
	gnet.BuiltinEventEngine

	eng   gnet.Engine
	addr  net.Addr
	boot  chan struct{}
	done  chan error
	conns atomic.Int64
	bytes atomic.Int64

	once     sync.Once
	closeErr error // the first Close's result
}

func startGnetEcho(cfg EchoConfig) (Server, error) {
	s := &gnetEcho{boot: make(chan struct{}), done: make(chan error, 1)}
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithLogLevel(logging.ErrorLevel),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
	}
	if cfg.Loops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(cfg.Loops))
	}
	go func() { s.done <- gnet.Run(s, "tcp://"+cfg.Addr, opts...) }()
	select {
	case <-s.boot:
	case err := <-s.done:
		if err == nil {
			err = errors.New("gnet: engine stopped before boot")
		}
		return nil, err
	case <-time.After(10 * time.Second):
		return nil, errors.New("gnet: engine did not boot within 10s")
	}
	if s.addr == nil {
		_ = s.Close()
		return nil, errors.New("gnet: could not read the listener address")
	}
	return s, nil
}

// OnBoot records the engine and the listener's bound address (the port came from :0).
func (s *gnetEcho) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	if a, err := listenerAddr(eng); err == nil {
		s.addr = a
	} else {
		fmt.Printf("# gnet: %v\n", err)
	}
	close(s.boot)
	return gnet.None
}

// OnOpen counts connections.
func (s *gnetEcho) OnOpen(gnet.Conn) ([]byte, gnet.Action) {
	s.conns.Add(1)
	return nil, gnet.None
}

// OnTraffic echoes everything readable.
func (s *gnetEcho) OnTraffic(c gnet.Conn) gnet.Action {
	buf, err := c.Next(-1)
	if err != nil {
		return gnet.Close
	}
	n, err := c.Write(buf)
	s.bytes.Add(int64(n))
	if err != nil {
		return gnet.Close
	}
	return gnet.None
}

func (s *gnetEcho) Addr() net.Addr { return s.addr }

func (s *gnetEcho) Stats() ServerStats {
	return ServerStats{Conns: s.conns.Load(), Bytes: s.bytes.Load()}
}

func (s *gnetEcho) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.eng.Stop(ctx)
		select {
		case rerr := <-s.done:
			if err == nil {
				err = rerr
			}
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
		}
		s.closeErr = err
	})
	return s.closeErr
}
