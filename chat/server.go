package chat

import (
	"strings"

	"github.com/chatgate/chatgate/payload"
)

// Server-side operations: what the application's backend asks of the hub
// through the server API (package api), from its own goroutines. Each
// acts on this node only; the API spreads a call over the cluster. Pushes
// go through the transport like every other, and a change to a session's
// rooms runs on the session's own loop (Transport.Exec), so the
// one-owner rule for sessions holds.

// Describer is implemented by peers that can say how their client is
// connected, for connection lists. Safe from any goroutine.
type Describer interface {
	// Describe returns the wire protocol ("native", "socketio"), the
	// transport ("websocket", "polling") and the client's address.
	Describe() (protocol, transport, remote string)
}

// Publish delivers a message from the server (from "") to every member of
// room on this node and hands it to the broker for the others. event, when
// set, names the Socket.IO event (see Message.Event).
func (h *Hub) Publish(room, data []byte, event string) {
	h.fanoutRoom(&Message{Room: room, Data: data, Event: event, TS: h.cfg.Now().UnixMilli()}, nil)
}

// SendLocal delivers a message from the server to connection id if it is
// on this node, and reports whether it was.
func (h *Hub) SendLocal(id, data []byte, event string) bool {
	s := h.sessions.get(id)
	if s == nil {
		return false
	}
	m := Message{Data: data, Event: event, TS: h.cfg.Now().UnixMilli()}
	h.transport.Push(s, encodeMessage(h.cfg.Codecs[s.kind], &m))
	return true
}

// SendUserLocal delivers a message from the server to every connection of
// user on this node and returns how many it reached.
func (h *Hub) SendUserLocal(user, data []byte, event string) int {
	m := Message{Data: data, Event: event, TS: h.cfg.Now().UnixMilli()}
	return h.DeliverUser(user, &m)
}

// Targets appends the sessions on this node of connection client, or of
// user when client is "" (one of the two), to dst.
func (h *Hub) Targets(client, user string, dst []*Session) []*Session {
	if client != "" {
		if s := h.sessions.get([]byte(client)); s != nil {
			dst = append(dst, s)
		}
		return dst
	}
	return h.users.get(user, dst)
}

// ServerJoin joins s to room as if the client had asked, with presence to
// the other members, and tells the client ({"type":"joined"}). It runs on
// s's loop; done, if not nil, is called there with the outcome (nil on
// success; joining a room twice is a success that changes nothing).
func (h *Hub) ServerJoin(s *Session, room string, done func(*Error)) {
	h.transport.Exec(s, func() {
		err := h.serverMembership(s, room, true)
		if done != nil {
			done(err)
		}
	})
}

// ServerLeave removes s from room, like ServerJoin.
func (h *Hub) ServerLeave(s *Session, room string, done func(*Error)) {
	h.transport.Exec(s, func() {
		err := h.serverMembership(s, room, false)
		if done != nil {
			done(err)
		}
	})
}

// serverMembership applies a server-side join or leave on s's loop.
func (h *Hub) serverMembership(s *Session, room string, join bool) *Error {
	if !h.sessions.has(s) {
		return ErrNoSuchConn // closed meanwhile
	}
	var req Request
	req.Room, req.HasRoom = []byte(room), true
	req.Op = OpLeave
	if join {
		req.Op = OpJoin
	}
	var r Reply
	wasIn := s.inRoom(req.Room) >= 0
	if join && wasIn || !join && !wasIn {
		if !join {
			return ErrNotMember
		}
		return nil
	}
	if err := h.applyMembership(s, &req, &r, true); err != nil {
		return err
	}
	p := payload.Acquire()
	*p.Text() = h.cfg.Codecs[s.kind].AppendMembership(*p.Text(), req.Room, join, r.Count, r.Position)
	h.transport.Push(s, p)
	return nil
}

// RoomsLocal returns the rooms on this node whose names start with prefix,
// with this node's member counts.
func (h *Hub) RoomsLocal(prefix string) []RoomInfo {
	var out []RoomInfo
	for _, info := range h.table.List() {
		if strings.HasPrefix(info.Name, prefix) {
			out = append(out, RoomInfo{Room: info.Name, Count: info.Count})
		}
	}
	return out
}

// MembersLocal returns room's members on this node.
func (h *Hub) MembersLocal(room string) []MemberInfo {
	members := h.table.Members([]byte(room))
	out := make([]MemberInfo, 0, len(members))
	for _, m := range members {
		s := m.(*Session)
		out = append(out, MemberInfo{ID: s.id, Nick: s.Nick(), User: s.User()})
	}
	sortMembers(out)
	return out
}

// ConnInfo describes one connection on this node, for connection lists.
type ConnInfo struct {
	Client, User, Nick string
	// Rooms are room keys (RoomKey); Namespace the connection's.
	Rooms     []string
	Namespace string
	// Protocol is "native" or "socketio"; Transport "websocket" or
	// "polling"; Remote the client's address.
	Protocol, Transport, Remote string
}

// ConnectionsLocal describes the connections on this node, or only
// user's when user is not empty, sorted by id. Room memberships are read
// from the room table, so the call never touches a loop's state.
func (h *Hub) ConnectionsLocal(user string) []ConnInfo {
	var list []*Session
	if user != "" {
		list = h.users.get(user, nil)
	} else {
		list = h.sessions.all(nil)
	}
	index := make(map[*Session]int, len(list))
	out := make([]ConnInfo, len(list))
	for i, s := range list {
		index[s] = i
		out[i] = ConnInfo{Client: s.id, User: s.User(), Nick: s.Nick(), Rooms: []string{}, Namespace: s.Namespace()}
		if d, ok := s.peer.(Describer); ok {
			out[i].Protocol, out[i].Transport, out[i].Remote = d.Describe()
		}
	}
	for _, info := range h.table.List() {
		for _, m := range h.table.Members([]byte(info.Name)) {
			if i, ok := index[m.(*Session)]; ok {
				out[i].Rooms = append(out[i].Rooms, info.Name)
			}
		}
	}
	sortConns(out)
	return out
}

// RoomsAll returns the rooms of the whole cluster whose names start with
// prefix, with cluster-wide counts, sorted by name.
func (h *Hub) RoomsAll(prefix string) []RoomInfo {
	list := h.roomList()
	out := list[:0]
	for _, r := range list {
		if strings.HasPrefix(r.Room, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// MembersAll returns room's members on every node, sorted by id.
func (h *Hub) MembersAll(room string) []MemberInfo {
	out := h.MembersLocal(room)
	out = h.remoteMembers([]byte(room), out)
	sortMembers(out)
	return out
}

// Node is this node's tag, the prefix of its connection ids.
func (h *Hub) Node() string { return h.ids.node }
