package payload

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestAltBuiltOnce: however many holders ask for the alternative framing,
// from however many goroutines, it is built once and they all get the
// same bytes.
func TestAltBuiltOnce(t *testing.T) {
	var builds atomic.Int32
	build := func(dst []byte, s *Shared) []byte {
		builds.Add(1)
		return append(append(dst, 'z'), s.Payload()...)
	}
	p := New([]byte("hello"))
	const holders = 16
	p.Retain(holders)
	var wg sync.WaitGroup
	got := make([]string, holders)
	for i := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.Release()
			got[i] = string(p.Alt(build))
		}()
	}
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Fatalf("built %d times, want once", n)
	}
	for i, g := range got {
		if g != "zhello" {
			t.Fatalf("holder %d got %q", i, g)
		}
	}
	// None: an empty build is nil, and also built once.
	if b := p.Alt(func(dst []byte, _ *Shared) []byte { builds.Add(1); return dst }); b == nil {
		t.Fatal("a built Alt was built again")
	}
	p.Release()

	// A reacquired Shared starts without one.
	q := New([]byte("x"))
	defer q.Release()
	if b := q.Alt(func(dst []byte, _ *Shared) []byte { return dst }); b != nil {
		t.Fatalf("empty build gave %q", b)
	}
}
