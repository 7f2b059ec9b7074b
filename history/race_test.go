//go:build race

package history

// raceEnabled is set under -race, where the race detector's own
// bookkeeping makes allocation counts meaningless.
const raceEnabled = true
