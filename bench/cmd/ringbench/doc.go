// Command ringbench measures echo servers and RTP relays side by side on loopback.
//
// It runs every server as a subprocess of itself (`ringbench serve`), so the
// server's CPU time (utime+stime from /proc/PID/stat, all threads), its RSS
// (VmRSS from /proc/PID/status) and its syscalls (perf stat -e
// raw_syscalls:sys_enter, wrapping the server command and enabled only during the
// measurement window through perf's --control pipe) belong to that process
// alone. The load generator runs in the parent: a few epoll workers over
// non-blocking sockets, so a thousand connections cost a thousand file
// descriptors, not a thousand goroutines. It measures its own CPU with getrusage
// and reports when it, rather than the server, was the bottleneck.
//
// With -out, stdout gets a compact table (per row and mode: msgs/s, p99,
// server CPU and syscalls per message, RSS, ratios to the baselines, and a
// one-line verdict per row) and the paths of the files written; the full
// table (every column) goes to the -out file. Without -out, stdout gets the
// full table.
//
// Usage:
//
//	ringbench -preset demo -pin -out demo.md -png demo.png   # about a minute; servers on CPU 0, load on CPU 1 (2 CPUs)
//	ringbench -preset full -out bench.md                     # every combination
//	ringbench -modes gonet,gnet -conns 64 -depth 16 -size 64 -duration 2s -rounds 3
//	ringbench relay -streams 100 -pps 50           # only the UDP relay rows
//	ringbench serve -mode gnet -addr 127.0.0.1:0   # one echo server, for debugging
//
// Modes are registered in one map per kind (see modes.go): echo modes "gonet"
// (net.Listener, goroutine per connection, MPTCP off) and "gnet" (gnet/v2
// event loops); relay modes "gorelay" (examples/rtprelay/gorelay: a socket and
// a goroutine per stream) and "udpconn" (one net.UDPConn, one goroutine). The
// io_uring modes ("ringwire-handler", "ringwire-conn", and the ringwire relay)
// are added in modes_ringwire.go, the one file to change.
//
// Server protocol: `ringbench serve -kind echo|relay -mode M -addr 127.0.0.1:0
// [-to DEST -streams N] [-cpus LIST]` prints one JSON line {"addr","addrs","pid"},
// answers each "stats" line on stdin with {"stats":{...}} (self-reported
// counters, e.g. io_uring_enter calls), and on stdin EOF or SIGTERM prints
// {"stats":{...},"final":true}, closes the server and exits.
//
// # Ownership
//
// The parent owns every server subprocess it starts and ends it by closing the
// subprocess's stdin (the server then prints its final stats and exits); a
// subprocess that does not exit within a few seconds is killed by its pid.
//
// # Concurrency
//
// Rows run one after another; in a row, the load generator's workers each own a
// disjoint set of sockets and one epoll instance, and share only atomic counters
// with the row's controller. Every load loop is bounded by a deadline and a
// message count, and stops by itself.
package main
