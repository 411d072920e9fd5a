// Package interop runs real network stacks over ringwire's net face and over
// package net side by side, and compares them: net/http (HTTP/1.1, HTTPS,
// HTTP/2), gRPC, quic-go, golang.org/x/net/ipv4 TOS marking, an io.Copy
// proxy, SIGTERM-and-restart of a server process, and real clients (curl,
// h2load) where they are installed. It is a nested module so that the
// library's go.mod keeps only what its packages need.
//
// Every scenario runs on three stacks: "net" (package net, the reference),
// "netio" (netio's package functions on the default runtime) and "netio-rt"
// (netio.ListenConfig and netio.Dialer on a runtime the test creates). Both
// must pass, with the same bytes and, where it matters, the same error
// shapes. A failure names the stack and what broke, e.g.
// "netio: x/net/ipv4 SetTOS: invalid connection".
//
// Run the suite with `make interop` from the repository root, the
// benchmarks (each interleaving netio and package net in one run) with
// `make bench-interop`. RINGWIRE_STRICT=1 turns every skip for a missing
// kernel feature or client binary into a failure.
package interop
