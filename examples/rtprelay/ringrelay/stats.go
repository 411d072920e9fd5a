package ringrelay

// Stats are the transport's counters, summed over the relay's loops.
type Stats struct {
	// Loops is the number of event loops.
	Loops int
	// Enters counts io_uring_enter calls.
	Enters uint64
	// ENOBUFS counts receive completions that found the provided buffer
	// ring empty; Starved the receives that then waited for buffers and
	// Rearms the multishot receives re-armed (after ENOBUFS or any other
	// final completion).
	ENOBUFS, Starved, Rearms uint64
	// Sends counts sends issued.
	Sends uint64
	// SendQueueFull counts sends refused because a socket's queue was above
	// netio's high-water mark (also counted as SendFailed drops).
	SendQueueFull uint64
	// KernelDrops counts datagrams the kernel dropped on the relay's
	// sockets, mostly receive buffer overflows (the drops column of
	// /proc/net/udp and /proc/net/udp6).
	KernelDrops uint64
	// Unplanned counts sockets netio closed on its own (an error), which
	// then stop relaying; 0 in a healthy relay.
	Unplanned uint64
}
