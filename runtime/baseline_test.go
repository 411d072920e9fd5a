//go:build linux

package runtime

import (
	goruntime "runtime"
	"testing"
)

// BenchmarkBaselineChanPingPong is the floor any hand-off pays on this
// machine: a goroutine and a locked-thread goroutine ping-ponging on
// channels, no io_uring.
func BenchmarkBaselineChanPingPong(b *testing.B) {
	req, resp := make(chan struct{}, 1), make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		defer close(done)
		for range req {
			resp <- struct{}{}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		req <- struct{}{}
		<-resp
	}
	close(req)
	<-done
}
