package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// cacheShards spreads the cache over independent locks so that event loops
// verifying at the same time rarely contend.
const cacheShards = 16

// cache maps SHA-256(token) to the Identity the token verified to. Only
// accepted tokens are stored; each hit re-checks exp and nbf, so a cached
// token stops working exactly when it would have failed verification.
// SHA-256 is collision resistant, so equal keys mean equal tokens.
//
// Eviction is random (the first key of a Go map iteration, whose start is
// randomised) once a shard is full: O(1), no per-entry bookkeeping, and
// good enough for its purpose, absorbing reconnect storms of a working set
// of recent tokens.
type cache struct {
	per    int // entries per shard
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*Identity
}

func newCache(size int) *cache {
	c := &cache{per: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]*Identity)
	}
	return c
}

func (c *cache) shard(key *[sha256.Size]byte) *cacheShard {
	return &c.shards[key[0]%cacheShards]
}

// get returns the cached identity for key if it is still valid at now.
func (c *cache) get(key *[sha256.Size]byte, now time.Time, leeway time.Duration) *Identity {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	id := sh.m[*key]
	if id == nil {
		return nil
	}
	if !id.valid(now, leeway) {
		delete(sh.m, *key)
		return nil
	}
	return id
}

// put remembers id for key, evicting an entry when the shard is full.
func (c *cache) put(key *[sha256.Size]byte, id *Identity) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[*key]; !ok && len(sh.m) >= c.per {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[*key] = id
}

// len returns the number of cached entries (tests).
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
