package netio

import (
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// AcceptMode is how a TCP listener spreads connections over the loops.
type AcceptMode uint8

// Accept modes.
const (
	// AcceptReusePort opens one SO_REUSEPORT listening socket per loop, each
	// with its own multishot accept; the kernel spreads connections by hash and
	// each stays on the loop that accepted it. The default.
	AcceptReusePort AcceptMode = iota + 1
	// AcceptHandoff runs one multishot accept on one loop and hands each
	// connection's fd to the next loop in turn with IORING_OP_MSG_RING.
	AcceptHandoff
)

// Config configures netio sockets. A nil *Config means all defaults; the
// struct is copied and defaulted, never modified.
type Config struct {
	// ForceFallback makes the package functions, ListenConfig and Dialer
	// return Go's net objects even where io_uring works (for tests and for
	// comparison). The handler API has no fallback and returns an error.
	ForceFallback bool
	// SendZCThreshold is the size from which a handler-API send uses
	// SEND_ZC (net.Conn Writes never do: see the package doc). Default
	// 32 KiB; negative disables SEND_ZC.
	SendZCThreshold int
	// WriteHighWater bounds the bytes queued for sending on one handler-API
	// connection; Write and Send beyond it return ErrWriteQueueFull. Default 4 MiB.
	WriteHighWater int
	// Accept chooses how connections reach the loops. Default AcceptReusePort.
	Accept AcceptMode
	// Backlog is the listen backlog. Default: net.core.somaxconn.
	Backlog int
	// Logger receives the fallback notice and rare events (accept backing off
	// after EMFILE), never anything per message. Default zap.NewNop().
	Logger *zap.Logger
}

// Defaults.
const (
	DefaultSendZCThreshold = 32 << 10
	DefaultWriteHighWater  = 4 << 20
)

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.SendZCThreshold == 0 {
		out.SendZCThreshold = DefaultSendZCThreshold
	}
	if out.WriteHighWater == 0 {
		out.WriteHighWater = DefaultWriteHighWater
	}
	if out.WriteHighWater < 0 || out.Backlog < 0 {
		return out, errors.New("netio: negative Config field")
	}
	switch out.Accept {
	case 0:
		out.Accept = AcceptReusePort
	case AcceptReusePort, AcceptHandoff:
	default:
		return out, fmt.Errorf("netio: unknown AcceptMode %d", out.Accept)
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	return out, nil
}

// Stats are netio's counters, summed over a runtime's loops (StatsOf).
type Stats struct {
	// ZCSends counts sends issued as SEND_ZC; PlainSends the others.
	ZCSends    uint64
	PlainSends uint64
	// GatheredSends counts handler-API sends that went out several to one
	// SENDMSG (queued replies gathered into one system call's worth of
	// kernel work); each such SENDMSG also counts once in PlainSends.
	GatheredSends uint64
	// ZCAbandoned counts connections that stopped using SEND_ZC because
	// the kernel reported it copied anyway (REPORT_USAGE) or refused it
	// (EOPNOTSUPP).
	ZCAbandoned uint64
	// Rearms counts multishot receives re-armed after a final CQE.
	Rearms uint64
	// Starved counts receives that ended with ENOBUFS and waited for buffers.
	Starved uint64
	// Accepted counts accepted connections; AcceptErrors failed accepts.
	Accepted     uint64
	AcceptErrors uint64
	// Truncated counts datagrams larger than a receive buffer (MSG_TRUNC).
	Truncated uint64
	// Spliced counts the bytes net-face connections moved without copying
	// them through user memory: splice(2) between sockets, sendfile(2) from
	// files (ReadFrom, WriteTo, io.Copy).
	Spliced uint64
	// MirrorReads counts net-face TCP Reads served by a socket set's
	// readiness mirror: parked without package net's EAGAIN read and read
	// for in a batch (see the package doc).
	MirrorReads uint64
}
