//go:build linux

package rtptest

import (
	"testing"
	"time"
)

// TestRunLoadDirect: without a relay every datagram the load sends reaches
// the sink. How many it sends in 200 ms (2000 asked for) depends on the
// machine: a slow one (an emulator) sends fewer, which is not what this
// checks.
func TestRunLoadDirect(t *testing.T) {
	res := RunLoad(t, nil, Load{Streams: 20, PPS: 500, Duration: 200 * time.Millisecond})
	t.Logf("direct load: %v", &res)
	if res.Sent < 20 || res.Received != res.Sent || res.CPU <= 0 {
		t.Errorf("direct load: %v", &res)
	}
}
