package chat

import "sync"

// registry maps connection ids to sessions, sharded like the room table so
// that opens and closes on different loops rarely contend.
//
// The ids this node hands out (its tag and a sequence number, idGen) are
// kept by the number in a seqSet, about 14 bytes a session where a
// map[string] entry cost 48 (and a map[uint64] one 30), and every idle
// connection has one. Other ids (a session resumed from another
// node keeps its id) are keyed by their text in a map of their own,
// allocated on the first. An id is in exactly one of the two, always the
// same one (parseSeq decides, from the text alone), so the set and the
// map together behave as one map from id text to session.
type registry struct {
	node   string // this node's tag (idGen.node)
	shards [64]registryShard
}

type registryShard struct {
	mu      sync.RWMutex
	local   seqSet              // ids of this node, by sequence
	foreign map[string]*Session // other ids; nil until the first
}

func (g *registry) init(node string) {
	g.node = node
	for i := range g.shards {
		g.shards[i].local.node = node
	}
}

// key returns where id lives: its sequence (local) or its text's hash
// picks the shard.
func registryKey[S ~string | ~[]byte](g *registry, id S) (sh *registryShard, seq uint64, local bool) {
	if seq, ok := parseSeq(g.node, id); ok {
		return &g.shards[seq&63], seq, true
	}
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return &g.shards[h&63], 0, false
}

func (g *registry) put(s *Session) {
	sh, seq, local := registryKey(g, s.id)
	sh.mu.Lock()
	if local {
		sh.local.put(s, seq)
	} else {
		if sh.foreign == nil {
			sh.foreign = make(map[string]*Session)
		}
		sh.foreign[s.id] = s
	}
	sh.mu.Unlock()
}

func (g *registry) remove(s *Session) bool {
	sh, seq, local := registryKey(g, s.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if local {
		return sh.local.remove(s, seq)
	}
	if sh.foreign[s.id] != s {
		return false
	}
	delete(sh.foreign, s.id)
	return true
}

func (g *registry) get(id []byte) *Session { return lookup(g, id) }

func (g *registry) has(s *Session) bool { return lookup(g, s.id) == s }

// lookup is get for an id in bytes or in a string, without converting.
func lookup[S ~string | ~[]byte](g *registry, id S) *Session {
	sh, seq, local := registryKey(g, id)
	sh.mu.RLock()
	var s *Session
	if local {
		s = sh.local.get(seq, string(id))
	} else {
		s = sh.foreign[string(id)]
	}
	sh.mu.RUnlock()
	return s
}

// all appends every session to dst.
func (g *registry) all(dst []*Session) []*Session {
	for i := range g.shards {
		sh := &g.shards[i]
		sh.mu.RLock()
		dst = sh.local.all(dst)
		for _, s := range sh.foreign {
			dst = append(dst, s)
		}
		sh.mu.RUnlock()
	}
	return dst
}
