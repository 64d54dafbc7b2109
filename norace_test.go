//go:build !race

package bpfmatch

// raceEnabled tells tests that the race detector slows them down.
const raceEnabled = false
