package chat

import (
	"sort"

	"github.com/chatgate/chatgate/cluster"
)

// Cluster mode: the hub's view of other gateway nodes, through package
// cluster (NATS). A room message is delivered here to local members and
// published once for the other nodes, which deliver it to theirs; counts,
// member lists and room lists add the cluster's replica of remote members.
// The cluster's dispatcher goroutine calls back into the hub (see
// ClusterHandler); the transport's Fanout and Unicast are safe from it.

// SetCluster attaches the hub to a cluster. Call it before the first
// session opens; the cluster's handler must be ClusterHandler().
func (h *Hub) SetCluster(c *cluster.Cluster) { h.cl = c }

// ClusterHandler returns the hub's side of the cluster: what to do with
// messages and presence from other nodes.
func (h *Hub) ClusterHandler() cluster.Handler { return clusterHandler{h} }

func (h *Hub) remoteCount(room []byte) int {
	if h.cl == nil {
		return 0
	}
	return h.cl.RemoteCount(room)
}

// publishRoom takes m by value so that single-node sends, which never
// call it, still keep their Message on the stack.
func (h *Hub) publishRoom(m Message) {
	h.cl.PublishRoom(&cluster.Message{Room: m.Room, From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments})
}

// sendRemote routes a direct message to the node that owns its target.
func (h *Hub) sendRemote(s *Session, req *Request) *Error {
	if h.cl == nil {
		return ErrNoSuchConn
	}
	node, ok := h.cl.NodeOf(req.To)
	if !ok {
		return ErrNoSuchConn
	}
	h.cl.PublishDirect(node, &cluster.Message{To: req.To, From: s.id, Nick: s.Nick(), User: s.User(),
		Data: req.Data, TS: h.cfg.Now().UnixMilli(), Attachments: req.Attachments})
	return nil
}

// roomList lists local and remote rooms with cluster-wide counts.
func (h *Hub) roomList() []RoomInfo {
	list := h.table.List()
	if h.cl == nil {
		out := make([]RoomInfo, len(list))
		for i, info := range list {
			out[i] = RoomInfo{Room: info.Name, Count: info.Count}
		}
		return out
	}
	counts := make(map[string]int, len(list))
	h.cl.RemoteRooms(counts)
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
	if h.cl == nil {
		return dst
	}
	for _, m := range h.cl.RemoteMembers(room, nil) {
		dst = append(dst, MemberInfo{ID: m.ID, Nick: m.Nick, User: m.User})
	}
	return dst
}

// clusterHandler delivers what other nodes publish to this node's members.
// Its methods run on the cluster's dispatcher goroutine, one at a time.
type clusterHandler struct{ h *Hub }

func (ch clusterHandler) RoomMessage(cm *cluster.Message) {
	h := ch.h
	snap := h.table.Snapshot(cm.Room)
	if snap == nil || snap.Count == 0 {
		return
	}
	m := Message{Room: cm.Room, From: cm.From, Nick: cm.Nick, User: cm.User, Data: cm.Data, TS: cm.TS, Attachments: cm.Attachments}
	var frames Frames
	h.encodeMessage(snap.Kinds, &m, &frames)
	h.cfg.Metrics.Broadcast(snap.Count)
	h.transport.Fanout(snap, nil, &frames)
}

func (ch clusterHandler) Direct(cm *cluster.Message) {
	h := ch.h
	to := h.sessions.get(cm.To)
	if to == nil {
		return
	}
	m := Message{From: cm.From, Nick: cm.Nick, User: cm.User, Data: cm.Data, TS: cm.TS, Attachments: cm.Attachments}
	h.transport.Unicast(to, encodeMessage(h.cfg.Codecs[to.kind], &m))
}

func (ch clusterHandler) Presence(cp *cluster.Presence) {
	h := ch.h
	if !h.cfg.Presence {
		return
	}
	snap := h.table.Snapshot(cp.Room)
	if snap == nil || snap.Count == 0 {
		return
	}
	ev := PresenceLeave
	if cp.Join {
		ev = PresenceJoin
	}
	p := Presence{Room: cp.Room, Event: ev, ID: cp.ID, Nick: cp.Nick, User: cp.User, Count: cp.Count}
	h.fanoutPresence(snap, nil, &p)
}
