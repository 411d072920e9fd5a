// Package rtptest generates and checks RTP traffic for the RTP relay example
// and holds the end-to-end tests every relay transport must pass.
//
// A Sender sends a Stream of G.711-shaped packets (12-byte RTP header and 160
// payload bytes derived from the SSRC and sequence number, at a 20 ms cadence
// or faster), optionally mixed with other
// datagrams (Malformed, RTCPCompound). A Receiver checks that every sequence
// number of its Stream arrives exactly once, in order, with its payload
// intact. RunSuite runs the relay tests against any relay given a StartFunc;
// Bench measures one stream through it, and RunLoad (Linux) many streams at
// a paced or unlimited rate, with the process's CPU time per packet.
//
// # Ownership
//
// A Sender writes from a socket its caller owns; a Receiver owns its socket
// from NewReceiver on and closes it in Close.
//
// # Concurrency
//
// Each Receiver reads in one goroutine of its own, which Close joins; its
// Result and Wait methods may be called from any goroutine. Send may run
// concurrently with a Receiver on the same socket.
package rtptest
