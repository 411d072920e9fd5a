// Package echoserver is the TCP echo server of the echo example, on
// ringwire's two APIs: the completion handler API of netio (APIHandler: every
// received buffer is sent back as it is, with its lease, so no byte is
// copied in user space) and the drop-in net.Listener (APIConn: a goroutine
// per connection copying with Read and Write). The benchmark program
// (bench/cmd/ringbench) runs it as its "ringwire-handler" and
// "ringwire-conn" modes.
//
// It uses only ringwire's public packages (netio, runtime) and is small
// enough to read as a tutorial: server_linux.go holds both variants.
//
// # Ownership
//
// A Server owns its runtime (its event loops and their rings), its listener
// and every connection it accepted. In APIHandler mode a received buffer's
// lease goes to the send that echoes it and returns to the loop's buffer ring
// when that send completes. Close closes the connections, the listener and
// the runtime.
//
// # Concurrency
//
// Start, Addr, Stats and Close may be called from any goroutine; Stats while
// traffic flows (its counters are atomics, read one by one, not as a
// snapshot). Handler callbacks run on the connection's loop thread; each
// loop's set of connections is touched only there. Close waits for every
// goroutine the Server started.
package echoserver
