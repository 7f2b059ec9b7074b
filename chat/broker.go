package chat

import (
	"sort"
	"time"
)

// Broker is the hub's view of the other gateway nodes (cluster mode). The
// hub delivers a room message to its local members and hands it once to the
// broker, which carries it to the other nodes; counts, member lists and room
// lists add the broker's replica of remote members. Package cluster
// provides the NATS implementation (cluster.HubBroker); a nil Broker means
// a single node.
//
// Every method may be called from any event loop and must not block: the
// broker queues what it sends and answers reads from its replica.
type Broker interface {
	// PublishRoom carries m to the nodes with members in m.Room. m's
	// slices are valid only during the call.
	PublishRoom(m *Message)
	// PublishDirect carries m to connection to on node.
	PublishDirect(node string, to []byte, m *Message)
	// PublishUser carries m to the connections of user on the other
	// nodes.
	PublishUser(user []byte, m *Message)
	// RemoteUserCount is the number of connections of user on other nodes.
	RemoteUserCount(user string) int
	// PublishAll carries m to every connection on the other nodes.
	PublishAll(m *Message)
	// Membership of local sessions, for the other nodes' replicas.
	Opened(id, nick, user string)
	Nick(id, nick string)
	Joined(id, room string)
	Left(id, room string)
	// Closed: the session left all its rooms; recoverable says its
	// client may resume it (on another node too).
	Closed(id string, recoverable bool)
	// RemoteCount is the number of members of room on other nodes.
	RemoteCount(room []byte) int
	// RemoteMembers appends the members of room on other nodes.
	RemoteMembers(room []byte, dst []MemberInfo) []MemberInfo
	// RemoteRooms adds the member counts of rooms on other nodes to dst.
	RemoteRooms(dst map[string]int)
	// NodeOf names the node that owns connection id, if any does.
	NodeOf(id []byte) (node string, ok bool)
}

// SetBroker attaches the hub to a cluster. Call it before the first session
// opens. A broker that is also a Sequencer and says it is sequencing takes
// over room messages (see Sequencer).
func (h *Hub) SetBroker(b Broker) {
	h.broker = b
	if sq, ok := b.(Sequencer); ok && sq.Sequencing() {
		h.seq = sq
	}
}

// SetHistory sets the room-message log (Config.History) once it can be
// made, e.g. after the cluster has said which epoch the shared history
// has. Call it before the first session opens.
func (h *Hub) SetHistory(hist History) { h.hist = hist }

// Sequencer is a Broker that orders room messages cluster-wide through a
// shared log (NATS JetStream): the hub hands it every room message instead
// of delivering it, and the broker calls DeliverSequenced on every node,
// this one included, in the log's order with the log's offset. Every node
// then has the same offsets, so a client resumes on any node.
type Sequencer interface {
	// Sequencing reports whether the shared log is in use (it was
	// reachable when the node started); false: the hub delivers room
	// messages itself and keeps a history of its own.
	Sequencing() bool
	// SequenceRoom hands room message m to the shared log. m's slices
	// are valid only during the call. It must not block.
	SequenceRoom(m *Message)
}

// DeliverSequenced delivers a room message from the shared log to this
// node's members of m.Room, recording it in the node's copy of the
// history with the log's offset (m.Offset; 0 when the log was down and
// the message travelled without one, and is then not recorded). local
// says the message was sent from this node, whose sender (m.From) is
// skipped, as is the connection m.Except names wherever it is. The
// broker's dispatcher calls it, in the log's order.
func (h *Hub) DeliverSequenced(m *Message, local bool) {
	var skip *Session
	switch {
	case m.Except != "":
		skip = h.sessions.get([]byte(m.Except))
	case local && m.From != "":
		skip = h.sessions.get([]byte(m.From))
	}
	if h.hist != nil {
		h.hist.Lock()
		defer h.hist.Unlock()
		if m.Offset != 0 {
			h.hist.Append(m)
		}
	}
	h.deliverLocal(m, skip)
}

// KeepRemote keeps for recovery a session that dropped on another node
// (its close was recoverable, or its node died), so that its client may
// resume here: id, user, nick and rooms as the cluster's replica knew
// them, and the log offset when the drop was noticed.
func (h *Hub) KeepRemote(id, user, nick string, rooms []string, offset uint64) {
	if !h.Recovering() {
		return
	}
	// The replica knows the user in force only: a session whose user the
	// backend set resumes here for a token of that same user.
	h.putRecord(&record{id: id, holder: user, user: user, nick: nick, rooms: rooms, offset: offset})
}

// ForgetRecord drops the recovery record of id, if any: the session was
// resumed on another node.
func (h *Hub) ForgetRecord(id string) {
	h.recs.drop(id)
}

// HistoryPosition returns the history log's last offset (0 when history
// is off), for a broker that records a remote drop.
func (h *Hub) HistoryPosition() uint64 {
	if h.hist == nil {
		return 0
	}
	h.hist.Lock()
	defer h.hist.Unlock()
	return h.hist.PositionLocked(nil).Offset
}

func (h *Hub) remoteCount(room []byte) int {
	if h.broker == nil {
		return 0
	}
	return h.broker.RemoteCount(room)
}

// sendRemote routes a direct message to the node that owns its target.
func (h *Hub) sendRemote(s *Session, req *Request) *Error {
	if h.broker == nil {
		return ErrNoSuchConn
	}
	node, ok := h.broker.NodeOf(req.To)
	if !ok {
		return ErrNoSuchConn
	}
	m := Message{From: s.id, Nick: s.Nick(), User: s.User(), Data: req.Data,
		TS: h.cfg.Now().UnixMilli(), Attachments: req.Attachments}
	h.broker.PublishDirect(node, req.To, &m)
	return nil
}

// roomList lists local and remote rooms with cluster-wide counts.
func (h *Hub) roomList() []RoomInfo {
	list := h.table.List()
	if h.broker == nil {
		out := make([]RoomInfo, len(list))
		for i, info := range list {
			out[i] = RoomInfo{Room: info.Name, Count: info.Count}
		}
		return out
	}
	counts := make(map[string]int, len(list))
	h.broker.RemoteRooms(counts)
	for _, info := range list {
		counts[info.Name] += info.Count
	}
	out := make([]RoomInfo, 0, len(counts))
	for name, n := range counts {
		out = append(out, RoomInfo{Room: name, Count: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out
}

// remoteMembers appends the room's members on other nodes.
func (h *Hub) remoteMembers(room []byte, dst []MemberInfo) []MemberInfo {
	if h.broker == nil {
		return dst
	}
	return h.broker.RemoteMembers(room, dst)
}

// DeliverRoom delivers a room message published by another node to this
// node's members of m.Room (the sender is remote, so nobody is skipped).
// The broker's dispatcher calls it; m's slices need to stay valid only
// during the call.
func (h *Hub) DeliverRoom(m *Message) {
	if h.hist != nil {
		// This node's own offset: a node's log records what its members
		// were sent (a cluster-wide history would sequence once).
		h.deliverRoomLogged(m)
		return
	}
	h.deliverLocal(m, nil)
}

// DeliverDirect delivers a direct message from another node to local
// connection to, if it still exists.
func (h *Hub) DeliverDirect(to []byte, m *Message) {
	s := h.sessions.get(to)
	if s == nil {
		return
	}
	h.transport.Push(s, encodeMessage(h.cfg.Codecs[s.kind], m))
}

// DeliverUser delivers m to every connection of user on this node and
// returns how many it reached (messages from other nodes, and this node's
// own share of a message to a user).
func (h *Hub) DeliverUser(user []byte, m *Message) int {
	var buf [8]*Session
	list := h.users.get(string(user), buf[:0])
	for _, s := range list {
		h.transport.Push(s, encodeMessage(h.cfg.Codecs[s.kind], m))
	}
	return len(list)
}

// DeliverPresence tells this node's members of p.Room that a member on
// another node joined or left.
func (h *Hub) DeliverPresence(p *Presence) {
	if !h.cfg.Presence {
		return
	}
	snap := h.table.Snapshot(p.Room)
	if snap == nil || snap.Count == 0 {
		return
	}
	h.fanoutPresence(snap, nil, p)
}

// deliverRoomLogged records a remote room message in this node's history
// and delivers it; m is copied so the broker's buffer is not retained.
func (h *Hub) deliverRoomLogged(m *Message) {
	c := *m
	c.Offset = 0
	h.hist.Lock()
	h.hist.Append(&c)
	h.deliverLocal(&c, nil)
	h.hist.Unlock()
}

// Flusher is implemented by a broker that queues what it publishes: Flush
// waits, at most timeout, until everything queued so far has left the
// node. A draining gateway flushes between closing its sessions and
// telling their clients (Hub.FlushBroker).
type Flusher interface {
	Flush(timeout time.Duration) error
}

// FlushBroker waits, at most timeout, until the broker has sent everything
// queued so far (see Flusher); without a broker, or one that does not
// queue, it returns at once.
func (h *Hub) FlushBroker(timeout time.Duration) {
	if f, ok := h.broker.(Flusher); ok {
		_ = f.Flush(timeout)
	}
}
