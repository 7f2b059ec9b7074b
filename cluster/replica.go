package cluster

import (
	"sync"
)

// Member is one remote member of a room, as member lists show it.
type Member struct {
	ID   string
	Nick string
	User string // authenticated user id, "" if anonymous
}

// replicaShards is a power of two so a shard is picked with a mask.
const replicaShards = 64

// replica is the read side of the cluster-wide membership of remote nodes:
// rooms with their remote members, and which node owns each remote
// connection id. Only the dispatcher goroutine writes it; event loops read
// it through Cluster's Remote* methods and NodeOf, each a single shard
// read-lock, so readers on different rooms never contend.
type replica struct {
	rooms [replicaShards]struct {
		mu sync.RWMutex
		m  map[string]map[string]Member // room → id → member
	}
	ids [replicaShards]struct {
		mu sync.RWMutex
		m  map[string]string // connection id → node tag
	}
	users [replicaShards]struct {
		mu sync.RWMutex
		m  map[string]map[string]int // user → node tag → connections
	}
}

func (r *replica) init() {
	for i := range r.rooms {
		r.rooms[i].m = make(map[string]map[string]Member)
		r.ids[i].m = make(map[string]string)
		r.users[i].m = make(map[string]map[string]int)
	}
}

// addUser counts one more connection of user on node ("" users are
// anonymous and not indexed).
func (r *replica) addUser(user, node string) {
	if user == "" {
		return
	}
	sh := &r.users[fnv1aString(user)&(replicaShards-1)]
	sh.mu.Lock()
	nodes := sh.m[user]
	if nodes == nil {
		nodes = make(map[string]int, 1)
		sh.m[user] = nodes
	}
	nodes[node]++
	sh.mu.Unlock()
}

// removeUser counts one connection of user on node less.
func (r *replica) removeUser(user, node string) {
	if user == "" {
		return
	}
	sh := &r.users[fnv1aString(user)&(replicaShards-1)]
	sh.mu.Lock()
	if nodes := sh.m[user]; nodes != nil {
		if nodes[node]--; nodes[node] <= 0 {
			delete(nodes, node)
		}
		if len(nodes) == 0 {
			delete(sh.m, user)
		}
	}
	sh.mu.Unlock()
}

// userCount is the number of remote connections of user.
func (r *replica) userCount(user string) int {
	sh := &r.users[fnv1aString(user)&(replicaShards-1)]
	sh.mu.RLock()
	n := 0
	for _, c := range sh.m[user] {
		n += c
	}
	sh.mu.RUnlock()
	return n
}

// userNodes appends the nodes with connections of user.
func (r *replica) userNodes(user string, dst []string) []string {
	sh := &r.users[fnv1aString(user)&(replicaShards-1)]
	sh.mu.RLock()
	for node := range sh.m[user] {
		dst = append(dst, node)
	}
	sh.mu.RUnlock()
	return dst
}

func fnv1a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

func fnv1aString(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// add puts m into room and returns the remote count after the call.
func (r *replica) add(room string, m Member) int {
	sh := &r.rooms[fnv1aString(room)&(replicaShards-1)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ms := sh.m[room]
	if ms == nil {
		ms = make(map[string]Member, 4)
		sh.m[room] = ms
	}
	ms[m.ID] = m
	return len(ms)
}

// remove takes id out of room and returns the remote count after the call.
func (r *replica) remove(room, id string) int {
	sh := &r.rooms[fnv1aString(room)&(replicaShards-1)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ms := sh.m[room]
	if ms == nil {
		return 0
	}
	delete(ms, id)
	if len(ms) == 0 {
		delete(sh.m, room)
		return 0
	}
	return len(ms)
}

// setNick updates id's nickname in room, if id is there.
func (r *replica) setNick(room, id, nick string) {
	sh := &r.rooms[fnv1aString(room)&(replicaShards-1)]
	sh.mu.Lock()
	if m, ok := sh.m[room][id]; ok {
		m.Nick = nick
		sh.m[room][id] = m
	}
	sh.mu.Unlock()
}

func (r *replica) count(room []byte) int {
	sh := &r.rooms[fnv1a(room)&(replicaShards-1)]
	sh.mu.RLock()
	n := len(sh.m[string(room)])
	sh.mu.RUnlock()
	return n
}

func (r *replica) members(room []byte, dst []Member) []Member {
	sh := &r.rooms[fnv1a(room)&(replicaShards-1)]
	sh.mu.RLock()
	for _, m := range sh.m[string(room)] {
		dst = append(dst, m)
	}
	sh.mu.RUnlock()
	return dst
}

func (r *replica) list(dst map[string]int) {
	for i := range r.rooms {
		sh := &r.rooms[i]
		sh.mu.RLock()
		for room, ms := range sh.m {
			dst[room] += len(ms)
		}
		sh.mu.RUnlock()
	}
}

func (r *replica) setOwner(id, node string) {
	sh := &r.ids[fnv1aString(id)&(replicaShards-1)]
	sh.mu.Lock()
	sh.m[id] = node
	sh.mu.Unlock()
}

func (r *replica) deleteOwner(id string) {
	sh := &r.ids[fnv1aString(id)&(replicaShards-1)]
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}

func (r *replica) owner(id []byte) (string, bool) {
	sh := &r.ids[fnv1a(id)&(replicaShards-1)]
	sh.mu.RLock()
	n, ok := sh.m[string(id)]
	sh.mu.RUnlock()
	return n, ok
}

// peer is the dispatcher's record of one remote node. Only the dispatcher
// goroutine touches it.
type peer struct {
	tag   string
	epoch uint64
	// seq is the last state event applied; valid when synced.
	seq uint64
	// seen is when the last heartbeat or event arrived (monotonic clock).
	seen int64
	// synced says sessions mirror the node's state up to seq. An unsynced
	// peer has a snapshot request in flight or due; its events wait in
	// pending.
	synced, syncing bool
	pending         []event
	pendingLost     bool // pending overflowed: the next snapshot must be newer
	sessions        map[string]*remoteSession
	// mixedWarned: the node keeps room history differently from this one
	// (hbSequencing), and that has been logged.
	mixedWarned bool
}

// remoteSession is one session of a remote node.
type remoteSession struct {
	nick, user string
	rooms      []string
}

// event is a state event kept for later (strings copied from the payload).
type event struct {
	seq                  uint64
	op                   op
	id, nick, user, room string
	flags                uint8 // an opClose's (closeRecoverable)
}

// maxPending bounds the events kept per peer while its snapshot is on the
// way; past it they are dropped and a newer snapshot is requested.
const maxPending = 10000
