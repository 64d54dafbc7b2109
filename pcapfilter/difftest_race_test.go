//go:build race

package pcapfilter_test

// dtRaceEnabled tells tests that the race detector slows them down.
const dtRaceEnabled = true
