//go:build linux && !race

package runtime

const raceScale = 1
