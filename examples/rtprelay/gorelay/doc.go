// Package gorelay is the RTP relay example's reference transport, written
// with Go's net package: net.UDPConn sockets, one goroutine per socket. It
// is the baseline the ringwire relay is benchmarked against and the fallback
// where io_uring is unavailable. The relay logic (validation, latching,
// statistics) is package relay's; gorelay only moves datagrams.
//
// # Ownership
//
// A Relay owns its sockets, including pre-bound Config.Ingress ones, and
// closes them in Close. Each receive goroutine owns one buffer of
// Config.MaxDatagram+1 bytes.
//
// # Concurrency
//
// New starts the goroutines; Close stops and joins them. Report, Plan and
// IngressAddrs may be called from any goroutine.
package gorelay
