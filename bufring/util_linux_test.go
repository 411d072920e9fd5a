//go:build linux

package bufring

import (
	"unsafe"

	"github.com/ringwire/ringwire/ring"
)

func unsafePtr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func ringCQE(res int32, bid uint16, extra ring.CQEFlags) ring.CQE {
	return ring.CQE{Res: res, Flags: ring.CQEFBuffer | ring.CQEFMore | extra | ring.CQEFlags(bid)<<ring.CQEBufferShift}
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafePtr(b)) }
