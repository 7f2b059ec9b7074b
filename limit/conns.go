package limit

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// Total counts the gateway's open connections against a maximum. Safe for
// concurrent use; the zero value counts from zero.
type Total struct {
	n atomic.Int64
}

// Acquire counts one more connection if that keeps the count at or below
// max, and reports whether it did. max <= 0 means unlimited (the
// connection is still counted). Every successful Acquire must be paired
// with one Release.
func (t *Total) Acquire(max int) bool {
	n := t.n.Add(1)
	if max > 0 && n > int64(max) {
		// Undo. Another Acquire racing at the boundary may be refused
		// spuriously meanwhile, which errs on the safe side.
		t.n.Add(-1)
		return false
	}
	return true
}

// Release forgets one connection counted by Acquire.
func (t *Total) Release() { t.n.Add(-1) }

// Load returns the number of connections counted.
func (t *Total) Load() int { return int(t.n.Load()) }

// ipShards spreads PerIP over independent locks; a power of two.
const ipShards = 64

// PerIP counts open connections per client address. IPv4 addresses (also
// when IPv4-mapped in IPv6) count individually; IPv6 addresses count per
// /64, the smallest network a subscriber is normally given, so one client
// cannot escape the limit by rotating addresses.
//
// Loopback addresses are never counted: they are local tools (load
// generators, health checks) or a reverse proxy on the same host that was
// not declared trusted, and counting the latter would cap the whole
// gateway at one address's allowance. Callers skip connections whose
// resolved address is a trusted proxy (a proxy's own requests without
// forwarding headers) for the same reason.
//
// Safe for concurrent use; the zero value is ready. Memory is one map
// entry per address with open connections, so it is bounded by the number
// of open connections.
type PerIP struct {
	shards [ipShards]ipShard
}

type ipShard struct {
	mu sync.Mutex
	m  map[uint64]int32
	// Pad to a cache line: shards are locked by different loops at once.
	_ [64 - 16]byte
}

// ipKey maps an address to its counting key: the IPv6 /64 prefix, or the
// IPv4 address under a prefix in ff00::/8 (multicast, never the source of
// a TCP connection) so the two families cannot collide.
// Loopback and invalid addresses have no key: they are not counted.
func ipKey(ip netip.Addr) (uint64, bool) {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return 0, false
	case ip.Is4():
		b := ip.As4()
		return 0xff00_ffff_0000_0000 | uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3]), true
	case ip.Is6():
		b := ip.As16()
		var k uint64
		for _, c := range b[:8] {
			k = k<<8 | uint64(c)
		}
		return k, true
	}
	return 0, false
}

func (p *PerIP) shard(k uint64) *ipShard {
	// Fibonacci hashing: the top bits of the product mix every key bit.
	return &p.shards[(k*0x9e3779b97f4a7c15)>>(64-6)]
}

// Acquire counts one more connection from ip if that keeps ip's count at
// or below max, and reports whether it did. max <= 0 means unlimited (the
// connection is still counted). Loopback and invalid (zero) addresses are
// not counted and always allowed; their Release does nothing. Every
// successful Acquire must be paired with one Release of the same address.
// It does not allocate once the address's shard has room.
func (p *PerIP) Acquire(ip netip.Addr, max int) bool {
	k, ok := ipKey(ip)
	if !ok {
		return true
	}
	sh := p.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := sh.m[k]
	if max > 0 && int(n) >= max {
		return false
	}
	if sh.m == nil {
		sh.m = make(map[uint64]int32)
	}
	sh.m[k] = n + 1
	return true
}

// Release forgets one connection from ip counted by Acquire. The entry is
// removed when its count drops to zero, so idle addresses cost nothing.
func (p *PerIP) Release(ip netip.Addr) {
	k, ok := ipKey(ip)
	if !ok {
		return
	}
	sh := p.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	switch n := sh.m[k]; {
	case n > 1:
		sh.m[k] = n - 1
	case n == 1:
		delete(sh.m, k)
	}
}

// Count returns the connections counted for ip's address or /64.
func (p *PerIP) Count(ip netip.Addr) int {
	k, ok := ipKey(ip)
	if !ok {
		return 0
	}
	sh := p.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return int(sh.m[k])
}

// Len returns the number of addresses (IPv4) and /64s (IPv6) with open
// connections.
func (p *PerIP) Len() int {
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
