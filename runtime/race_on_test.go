//go:build linux && race

package runtime

// The race detector slows the loop and its load 5-10x; timer tails stretch
// with it.
const raceScale = 5
