package netpoll

import (
	"testing"
	"unsafe"
)

// TestConnSize: an idle gateway is mostly conn structs, so state needed
// only briefly (a partial head, a frame cut across reads, rate-limit
// debt, frames queued in a pass) lives elsewhere (see conn).
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 80 {
		t.Errorf("conn is %d bytes, want at most 80", n)
	}
}
