package netio_test

import (
	"context"
	"fmt"
	"io"

	"github.com/ringwire/ringwire/netio"
)

// ExampleListen serves a TCP echo with the net face: the same code as with
// package net, with netio in place of net.
func ExampleListen() {
	ln, err := netio.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	c, err := netio.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte("hello"))
	buf := make([]byte, 5)
	_, _ = io.ReadFull(c, buf)
	fmt.Println(string(buf))
	// Output: hello
}

// echo is a handler-API echo: it sends each received view back (Write copies
// it into loop-owned memory, so the view may go back to the kernel at once).
type echo struct{}

func (echo) OnOpen(*netio.Conn)                  {}
func (echo) OnData(c *netio.Conn, d *netio.Data) { _ = c.Write(d.Bytes()) }
func (echo) OnClose(*netio.Conn, error)          {}

// ExampleListenConfig_Serve runs a handler-API echo server.
func ExampleListenConfig_Serve() {
	var lc netio.ListenConfig
	s, err := lc.Serve(context.Background(), "tcp", "127.0.0.1:0", echo{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	fmt.Println("serving on", s.Addr())
}
