//go:build linux

package runtime

import (
	goruntime "runtime"
	"testing"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

// TestNewRaisesGOMAXPROCSForSpareP pins the fix for woken goroutines waiting for
// sysmon: with as many loops as Ps, New adds one P; KeepGOMAXPROCS opts out.
func TestNewRaisesGOMAXPROCSForSpareP(t *testing.T) {
	testenv.NeedIOUring(t, ring.Available())
	prev := goruntime.GOMAXPROCS(1)
	t.Cleanup(func() { goruntime.GOMAXPROCS(prev) })

	for _, tc := range []struct {
		name string
		keep bool
		want int
	}{
		{name: "default", keep: false, want: 2},
		{name: "keep", keep: true, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			goruntime.GOMAXPROCS(1)
			rt, err := New(&Config{Loops: 1, KeepGOMAXPROCS: tc.keep})
			if err != nil {
				t.Fatal(err)
			}
			got := goruntime.GOMAXPROCS(0)
			if err := rt.Close(); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("GOMAXPROCS after New = %d, want %d", got, tc.want)
			}
		})
	}
	goruntime.GOMAXPROCS(4)
	rt, err := New(&Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if got := goruntime.GOMAXPROCS(0); got != 4 {
		t.Fatalf("GOMAXPROCS with spare Ps changed to %d, want 4 (untouched)", got)
	}
}
