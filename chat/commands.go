package chat

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/chatgate/chatgate/metrics"
)

// Commands a backend's answer to an application event may carry
// (docs/backend.md). They run in order on the calling session's loop,
// before the acknowledgement goes out; all are checked before the first
// runs, so a list with one bad command does nothing and the client gets
// backend_error.

type command struct {
	Join       *string            `json:"join,omitempty"`
	Leave      *string            `json:"leave,omitempty"`
	Emit       *emitCommand       `json:"emit,omitempty"`
	Set        *setCommand        `json:"set,omitempty"`
	Disconnect *disconnectCommand `json:"disconnect,omitempty"`
}

type emitCommand struct {
	Event      string          `json:"event"`
	Args       json.RawMessage `json:"args"`
	To         emitTarget      `json:"to"`
	ExceptSelf bool            `json:"except_self"`
}

type emitTarget struct {
	Room string `json:"room"`
	// Namespace is the room's namespace; "" means the calling session's.
	Namespace string `json:"namespace"`
	Client    string `json:"client"`
	User      string `json:"user"`
	All       bool   `json:"all"`
}

type setCommand struct {
	Nick *string         `json:"nick"`
	Data json.RawMessage `json:"data"`
}

type disconnectCommand struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// maxCommands bounds the commands of one answer.
const maxCommands = 256

// parseCommands decodes and checks every command.
func parseCommands(raw []json.RawMessage) ([]command, *Error) {
	if len(raw) > maxCommands {
		return nil, backendError("more than 256 commands")
	}
	out := make([]command, len(raw))
	for i, r := range raw {
		d := json.NewDecoder(bytes.NewReader(r))
		d.DisallowUnknownFields()
		c := &out[i]
		if err := d.Decode(c); err != nil {
			return nil, commandError(i, err.Error())
		}
		n := 0
		for _, set := range []bool{c.Join != nil, c.Leave != nil, c.Emit != nil, c.Set != nil, c.Disconnect != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return nil, commandError(i, "each command names exactly one of join, leave, emit, set, disconnect")
		}
		if err := c.check(); err != "" {
			return nil, commandError(i, err)
		}
	}
	return out, nil
}

// check reports what is wrong with c, or "".
func (c *command) check() string {
	switch {
	case c.Join != nil && checkRoom(*c.Join) != nil, c.Leave != nil && checkRoom(*c.Leave) != nil:
		return "room must be 1 to 128 bytes of text without control or format characters"
	case c.Emit != nil:
		e := c.Emit
		if e.Event == "" || len(e.Event) > 128 || !utf8.ValidString(e.Event) {
			return "emit: event must be 1 to 128 bytes of UTF-8"
		}
		if a := bytes.TrimSpace(e.Args); len(a) > 0 && a[0] != '[' {
			return "emit: args must be an array"
		}
		n := 0
		for _, set := range []bool{e.To.Room != "", e.To.Client != "", e.To.User != "", e.To.All} {
			if set {
				n++
			}
		}
		if n != 1 {
			return "emit: to names exactly one of room, client, user, all"
		}
		if e.To.Room != "" && checkRoom(e.To.Room) != nil {
			return "emit: room must be 1 to 128 bytes of text without control or format characters"
		}
		if e.To.Namespace != "" && (e.To.Room == "" || CheckNamespace(e.To.Namespace) != nil) {
			return "emit: namespace goes with a room and must start with \"/\", at most 256 bytes of text"
		}
	case c.Set != nil:
		if c.Set.Nick != nil {
			if checkNick(*c.Set.Nick) != nil {
				return "set: nick must be 1 to 32 characters of text without control or format characters"
			}
		}
		if d := bytes.TrimSpace(c.Set.Data); len(d) > 0 && d[0] != '{' && string(d) != "null" {
			return "set: data must be an object"
		}
	case c.Disconnect != nil:
		if c.Disconnect.Code == 0 {
			c.Disconnect.Code = int(DisconnectServer.Code)
		}
		if c.Disconnect.Code < 4000 || c.Disconnect.Code > 4999 {
			return "disconnect: code must be 4000 to 4999"
		}
		if len(c.Disconnect.Reason) > 123 || !utf8.ValidString(c.Disconnect.Reason) {
			return "disconnect: reason must be at most 123 bytes"
		}
	}
	return ""
}

// normalize puts the rooms c names in NFC (-room-nfc) and reports what is
// wrong with them then, or "".
func (c *command) normalize(h *Hub) string {
	for _, room := range []*string{c.Join, c.Leave} {
		if room != nil {
			*room = h.roomNFC(*room)
			if checkRoom(*room) != nil {
				return "room must be 1 to 128 bytes in NFC"
			}
		}
	}
	if c.Emit != nil && c.Emit.To.Room != "" {
		c.Emit.To.Room = h.roomNFC(c.Emit.To.Room)
		if checkRoom(c.Emit.To.Room) != nil {
			return "emit: room must be 1 to 128 bytes in NFC"
		}
	}
	return ""
}

// runCommands carries out checked commands for s, on s's loop.
func (h *Hub) runCommands(s *Session, cmds []command) *Error {
	if h.cfg.RoomNFC {
		// All rooms in NFC, and checked again (NFC may lengthen a name),
		// before the first command runs.
		for i := range cmds {
			if err := cmds[i].normalize(h); err != "" {
				return commandError(i, err)
			}
		}
	}
	for i := range cmds {
		c := &cmds[i]
		switch {
		case c.Join != nil, c.Leave != nil:
			req := Request{Op: OpJoin, HasRoom: true}
			if c.Join != nil {
				req.Room = s.key([]byte(*c.Join))
			} else {
				req.Op, req.Room = OpLeave, s.key([]byte(*c.Leave))
				if s.inRoom(req.Room) < 0 {
					continue // leaving a room it is not in changes nothing
				}
			}
			var r Reply
			if err := h.applyMembership(s, &req, &r, true); err != nil {
				return commandError(i, err.Code)
			}
		case c.Emit != nil:
			h.emit(s, c.Emit)
		case c.Set != nil:
			if c.Set.Nick != nil {
				nick := *c.Set.Nick
				s.nick.Store(nick)
				if h.broker != nil {
					h.broker.Nick(s.id, nick)
				}
			}
			if c.Set.Data != nil {
				s.calls.data = append(json.RawMessage(nil), c.Set.Data...)
			}
		case c.Disconnect != nil:
			h.transport.Disconnect(s, Disconnect{Code: uint16(c.Disconnect.Code), Reason: c.Disconnect.Reason, Metric: metrics.CloseServer})
		}
	}
	return nil
}

// emit sends a backend's event to its target, on every node.
func (h *Hub) emit(s *Session, e *emitCommand) {
	args := e.Args
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("[]")
	}
	m := Message{Event: e.Event, Data: args, EventArgs: true, TS: h.cfg.Now().UnixMilli()}
	var skip *Session
	if e.ExceptSelf {
		skip = s
	}
	switch {
	case e.To.Room != "":
		nsp := s.nsp()
		if e.To.Namespace != "" {
			nsp = e.To.Namespace
		}
		room := RoomKey(nsp, []byte(e.To.Room))
		m.Room = room
		if h.hist != nil {
			h.fanoutRoom(&m, skip)
			return
		}
		if h.broker != nil {
			h.broker.PublishRoom(&m)
		}
		snap := h.table.Snapshot(room)
		if snap == nil || snap.Count == 0 || snap.Count == 1 && skip != nil && h.table.Contains(room, skip) {
			return
		}
		var p Payloads
		h.encodeMessage(snap.Kinds, &m, &p)
		h.cfg.Metrics.Broadcast(snap.Count)
		if skip != nil {
			h.transport.Fanout(snap, skip, &p)
		} else {
			h.transport.Fanout(snap, nil, &p)
		}
	case e.To.Client != "":
		if skip != nil && e.To.Client == s.id {
			return
		}
		if to := h.sessions.get([]byte(e.To.Client)); to != nil {
			h.transport.Push(to, encodeMessage(h.cfg.Codecs[to.kind], &m))
		} else if h.broker != nil {
			if node, ok := h.broker.NodeOf([]byte(e.To.Client)); ok {
				h.broker.PublishDirect(node, []byte(e.To.Client), &m)
			}
		}
	case e.To.User != "":
		for _, to := range h.users.get(e.To.User, nil) {
			if to != skip {
				h.transport.Push(to, encodeMessage(h.cfg.Codecs[to.kind], &m))
			}
		}
		if h.broker != nil {
			h.broker.PublishUser([]byte(e.To.User), &m)
		}
	case e.To.All:
		h.deliverAll(&m, skip)
		if h.broker != nil {
			h.broker.PublishAll(&m)
		}
	}
}

// deliverAll pushes m to every session on this node but skip.
func (h *Hub) deliverAll(m *Message, skip *Session) {
	var ps Payloads
	for _, to := range h.sessions.all(nil) {
		if to == skip || to.nsp() != "" {
			continue // "all" is every client of "/", as Socket.IO's io.emit
		}
		p := ps[to.kind]
		if p == nil {
			p = encodeMessage(h.cfg.Codecs[to.kind], m)
			ps[to.kind] = p
		}
		p.Retain(1)
		h.transport.Push(to, p)
	}
	for _, p := range ps {
		if p != nil {
			p.Release()
		}
	}
}

// DeliverAll delivers a message from another node to every session here.
func (h *Hub) DeliverAll(m *Message) { h.deliverAll(m, nil) }
