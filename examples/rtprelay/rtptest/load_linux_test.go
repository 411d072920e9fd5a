//go:build linux

package rtptest

import (
	"testing"
	"time"
)

func TestRunLoadDirect(t *testing.T) {
	res := RunLoad(t, nil, Load{Streams: 20, PPS: 500, Duration: 200 * time.Millisecond})
	if res.Sent < 1000 || res.Received != res.Sent || res.CPU <= 0 {
		t.Errorf("direct load: %v", &res)
	}
}
