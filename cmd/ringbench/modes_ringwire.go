//go:build linux

package main

// addRingwireModes is the hook for the io_uring modes; this file is the only one
// to change when they land. Expected entries:
//
//	r.echo["ringwire-handler"] = startRingwireHandlerEcho // completion handler API, zero-copy views
//	r.echo["ringwire-conn"] = startRingwireConnEcho       // drop-in net.Listener, goroutine per conn
//	r.relay["ringwire-relay"] = startRingwireRelay        // netio PacketConn / handler relay
//
// Each factory returns a Server whose Stats() may fill Syscalls and SyscallName
// ("io_uring_enter") from the event loops' statistics; ringbench reports that
// count per message beside perf's raw_syscalls count. EchoConfig.Loops is the
// number of CPUs the server was pinned to (0: all).
func addRingwireModes(r *registry) {
	_ = r
}
