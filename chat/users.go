package chat

import "sync"

// userIndex maps user ids (a token's sub) to their open sessions on this
// node, sharded like the session registry. Anonymous sessions are not
// indexed. The broker's replica holds the other nodes' half of the index.
type userIndex struct {
	shards [64]struct {
		mu sync.RWMutex
		m  map[string][]*Session
	}
}

func (u *userIndex) init() {
	for i := range u.shards {
		u.shards[i].m = make(map[string][]*Session)
	}
}

func (u *userIndex) shard(user string) int {
	h := uint32(2166136261)
	for i := 0; i < len(user); i++ {
		h ^= uint32(user[i])
		h *= 16777619
	}
	return int(h & 63)
}

func (u *userIndex) add(s *Session) {
	user := s.User()
	if user == "" {
		return
	}
	sh := &u.shards[u.shard(user)]
	sh.mu.Lock()
	sh.m[user] = append(sh.m[user], s)
	sh.mu.Unlock()
}

func (u *userIndex) remove(s *Session) {
	user := s.User()
	if user == "" {
		return
	}
	sh := &u.shards[u.shard(user)]
	sh.mu.Lock()
	list := sh.m[user]
	for i, x := range list {
		if x == s {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(sh.m, user)
	} else {
		sh.m[user] = list
	}
	sh.mu.Unlock()
}

// get appends the sessions of user to dst.
func (u *userIndex) get(user string, dst []*Session) []*Session {
	sh := &u.shards[u.shard(user)]
	sh.mu.RLock()
	dst = append(dst, sh.m[user]...)
	sh.mu.RUnlock()
	return dst
}

// count is the number of sessions of user on this node.
func (u *userIndex) count(user string) int {
	sh := &u.shards[u.shard(user)]
	sh.mu.RLock()
	n := len(sh.m[user])
	sh.mu.RUnlock()
	return n
}

// UserAllowed reports whether user may open one more connection under
// Config.MaxConnectionsPerUser, counting its connections on every node.
// Anonymous users are not limited. Checked at admission: two handshakes of
// one user at the same moment may both pass.
func (h *Hub) UserAllowed(user string) bool {
	if h.cfg.MaxConnectionsPerUser <= 0 || user == "" {
		return true
	}
	n := h.users.count(user)
	if h.broker != nil {
		n += h.broker.RemoteUserCount(user)
	}
	return n < h.cfg.MaxConnectionsPerUser
}
