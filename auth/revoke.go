package auth

import (
	"sync"
	"time"
)

// revocations are users and token ids refused until a time: the server
// API's revoke. Verify refuses a token whose "sub" or "jti" is revoked, so
// handshakes, Socket.IO CONNECTs and refreshes of a revoked user fail with
// ErrRevoked until the revocation runs out.
type revocations struct {
	mu    sync.RWMutex
	users map[string]time.Time
	ids   map[string]time.Time
}

// maxRevocations bounds the list; past it, the revocations closest to
// running out go first.
const maxRevocations = 100000

// Revoke refuses tokens of user (when not "") and the token with "jti"
// id (when not "") until until. Safe from any goroutine.
func (v *Verifier) Revoke(user, id string, until time.Time) {
	r := &v.revs
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.users == nil {
		r.users, r.ids = make(map[string]time.Time), make(map[string]time.Time)
	}
	now := v.now()
	if len(r.users)+len(r.ids) >= maxRevocations {
		r.pruneLocked(now)
	}
	if user != "" {
		r.users[user] = until
	}
	if id != "" {
		r.ids[id] = until
	}
}

// pruneLocked drops revocations that ran out; if none did, the one that
// runs out first. r.mu must be held.
func (r *revocations) pruneLocked(now time.Time) {
	for _, m := range []map[string]time.Time{r.users, r.ids} {
		for k, t := range m {
			if !now.Before(t) {
				delete(m, k)
			}
		}
	}
	if len(r.users)+len(r.ids) < maxRevocations {
		return
	}
	var first time.Time
	var firstKey string
	var firstMap map[string]time.Time
	for _, m := range []map[string]time.Time{r.users, r.ids} {
		for k, t := range m {
			if firstMap == nil || t.Before(first) {
				first, firstKey, firstMap = t, k, m
			}
		}
	}
	delete(firstMap, firstKey)
}

// revoked reports whether id's user or token is revoked at now.
func (r *revocations) revoked(id *Identity, now time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.users) == 0 && len(r.ids) == 0 {
		return false
	}
	if t, ok := r.users[id.Subject]; ok && now.Before(t) {
		return true
	}
	if id.TokenID != "" {
		if t, ok := r.ids[id.TokenID]; ok && now.Before(t) {
			return true
		}
	}
	return false
}
