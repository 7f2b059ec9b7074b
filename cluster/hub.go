package cluster

import (
	"time"

	"github.com/chatgate/chatgate/chat"
)

// The chat hub's side of cluster mode. The hub sees the cluster only
// through chat.Broker, and the cluster sees the hub only through Handler;
// the two adapters below convert between their message types without
// copying bytes.

// HubBroker returns c as the hub's chat.Broker. It is a chat.Sequencer
// too: with c.Sequencing, the hub hands room messages to the stream.
func HubBroker(c *Cluster) chat.Broker { return hubBroker{c} }

type hubBroker struct{ c *Cluster }

var _ chat.Sequencer = hubBroker{}

func (b hubBroker) Sequencing() bool { return b.c.Sequencing() }

// Flush implements chat.Flusher.
func (b hubBroker) Flush(timeout time.Duration) error { return b.c.Flush(timeout) }

func (b hubBroker) SequenceRoom(m *chat.Message) {
	b.c.SequenceRoom(&Message{Room: m.Room, From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments, Event: m.Event, EventArgs: m.EventArgs, Except: m.Except})
}

func (b hubBroker) PublishRoom(m *chat.Message) {
	b.c.PublishRoom(&Message{Room: m.Room, From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments, Event: m.Event, EventArgs: m.EventArgs})
}

func (b hubBroker) PublishDirect(node string, to []byte, m *chat.Message) {
	b.c.PublishDirect(node, &Message{To: to, From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments, Event: m.Event, EventArgs: m.EventArgs})
}

func (b hubBroker) PublishUser(user []byte, m *chat.Message) {
	b.c.PublishUser(&Message{To: user, From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments, Event: m.Event, EventArgs: m.EventArgs})
}

func (b hubBroker) RemoteUserCount(user string) int { return b.c.RemoteUserCount(user) }

func (b hubBroker) PublishAll(m *chat.Message) {
	b.c.PublishAll(&Message{From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments, Event: m.Event, EventArgs: m.EventArgs})
}

func (b hubBroker) Opened(id, nick, user string) { b.c.LocalOpened(id, nick, user) }
func (b hubBroker) Nick(id, nick string)         { b.c.LocalNick(id, nick) }
func (b hubBroker) Joined(id, room string)       { b.c.LocalJoined(id, room) }
func (b hubBroker) Left(id, room string)         { b.c.LocalLeft(id, room) }

// Closed tells the other nodes whether the session may be resumed.
func (b hubBroker) Closed(id string, recoverable bool) { b.c.LocalClosed(id, recoverable) }
func (b hubBroker) RemoteCount(room []byte) int        { return b.c.RemoteCount(room) }
func (b hubBroker) RemoteRooms(dst map[string]int) {
	b.c.RemoteRooms(dst)
}
func (b hubBroker) NodeOf(id []byte) (string, bool) { return b.c.NodeOf(id) }

func (b hubBroker) RemoteMembers(room []byte, dst []chat.MemberInfo) []chat.MemberInfo {
	for _, m := range b.c.RemoteMembers(room, nil) {
		dst = append(dst, chat.MemberInfo{ID: m.ID, Nick: m.Nick, User: m.User})
	}
	return dst
}

// HubHandler returns the Handler that delivers what peers send to hub's
// local members. It is a HistoryHandler: with Config.History, New installs
// the shared history in hub (Hub.SetHistory), and remote drops become
// hub's recovery records.
func HubHandler(hub *chat.Hub) Handler { return hubHandler{hub} }

type hubHandler struct{ h *chat.Hub }

var _ HistoryHandler = hubHandler{}

func (hh hubHandler) UseHistory(log chat.History) { hh.h.SetHistory(log) }

func (hh hubHandler) Sequenced(m *Message, local bool) {
	hh.h.DeliverSequenced(&chat.Message{Room: m.Room, From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments, Event: m.Event, EventArgs: m.EventArgs,
		Except: m.Except, Offset: m.Offset}, local)
}

// KeepRemote records the drop at the history's current position: a
// client that says which offset it read to resumes from there instead.
func (hh hubHandler) KeepRemote(id, user, nick string, rooms []string) {
	hh.h.KeepRemote(id, user, nick, rooms, hh.h.HistoryPosition())
}

func (hh hubHandler) ForgetRemote(id string) { hh.h.ForgetRecord(id) }

func (hh hubHandler) RoomMessage(m *Message) {
	hh.h.DeliverRoom(&chat.Message{Room: m.Room, From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments, Event: m.Event, EventArgs: m.EventArgs})
}

func (hh hubHandler) Direct(m *Message) {
	hh.h.DeliverDirect(m.To, &chat.Message{From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments, Event: m.Event, EventArgs: m.EventArgs})
}

func (hh hubHandler) User(m *Message) {
	hh.h.DeliverUser(m.To, &chat.Message{From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments, Event: m.Event, EventArgs: m.EventArgs})
}

func (hh hubHandler) All(m *Message) {
	hh.h.DeliverAll(&chat.Message{From: m.From, Nick: m.Nick, User: m.User,
		Data: m.Data, TS: m.TS, Attachments: m.Attachments, Event: m.Event, EventArgs: m.EventArgs})
}

func (hh hubHandler) Presence(p *Presence) {
	ev := chat.PresenceLeave
	if p.Join {
		ev = chat.PresenceJoin
	}
	hh.h.DeliverPresence(&chat.Presence{Room: p.Room, Event: ev, ID: p.ID, Nick: p.Nick, User: p.User, Count: p.Count})
}
