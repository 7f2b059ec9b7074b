//go:build !race

package engineio

// raceEnabled is set under -race, where escape analysis and sync.Pool
// differ and allocation counts mean nothing.
const raceEnabled = false
