package chat

import (
	"encoding/json"
	"strconv"
)

// The application's backend (package proxy, -proxy-*-url): the hub asks it
// about a client's application events, room messages and joins, and carries
// out its answers. A call never runs on an event loop: Backend.Call returns
// at once and its answer comes back through Transport.Exec on the
// session's own loop, where the session's state may change.
//
// Calls of one session run in order, one in flight: the others wait in a
// queue of at most MaxQueuedCalls, past which a request gets rate_limited.

// CallKind names a backend call.
type CallKind uint8

// Backend calls.
const (
	CallEvent      CallKind = iota // an application event (Socket.IO event, native rpc)
	CallPublish                    // a room message, before fan-out
	CallJoin                       // a join, before it happens
	CallConnect                    // a client connects (before welcome / the CONNECT ack)
	CallDisconnect                 // a session closed (fire and forget)
	CallRefresh                    // a session's token expired: may it go on?
)

// String names the kind as metrics label it.
func (k CallKind) String() string {
	switch k {
	case CallEvent:
		return "event"
	case CallPublish:
		return "publish"
	case CallJoin:
		return "join"
	case CallConnect:
		return "connect"
	case CallDisconnect:
		return "disconnect"
	case CallRefresh:
		return "refresh"
	}
	return "unknown"
}

// MaxQueuedCalls bounds the backend calls one session may have waiting
// behind the one in flight.
const MaxQueuedCalls = 16

// Backend is the application's backend, as the hub sees it.
type Backend interface {
	// Handles reports whether calls of kind go to the backend.
	Handles(kind CallKind) bool
	// Call sends body (a JSON object) to the backend and calls done once
	// with the answer, from another goroutine (or at once, when the call
	// cannot even be queued). It never blocks.
	Call(kind CallKind, body []byte, done func(BackendAnswer))
	// Disconnected reports a closed session (a JSON object), fire and
	// forget; the backend batches them.
	Disconnected(body []byte)
}

// BackendAnswer is the backend's answer to one call: a result, an error
// for the client, or a disconnect.
type BackendAnswer struct {
	// Result is the raw JSON of the answer's "result" object.
	Result []byte
	// Err is the backend's error (its own code and message, passed to the
	// client unchanged) or the gateway's backend_* failure.
	Err *Error
	// Disconnect, when set, closes the client's connection.
	Disconnect *Disconnect
}

// Errors of calls that could not be answered by the backend.
var (
	ErrBackendUnavailable = &Error{CodeBackendUnavailable, "the application backend is unavailable"}
	ErrBackendTimeout     = &Error{CodeBackendTimeout, "the application backend did not answer in time"}
	ErrBackendError       = &Error{CodeBackendError, "the application backend failed"}
)

// SetBackend attaches the application's backend. Call it before the first
// session opens.
func (h *Hub) SetBackend(b Backend) { h.backend = b }

// backendCall is one request waiting for, or at, the backend: what of the
// request the answer needs, copied out of the frame it came in.
type backendCall struct {
	kind  CallKind
	op    Op
	id    []byte
	room  []byte
	data  []byte
	event []byte
	args  []byte
	atts  [][]byte
	// A history request of a non-member, asked as a join (op OpHistory).
	since    Position
	hasSince bool
	limit    int
}

// calls is a session's backend state: the call in flight, the queue, and
// the data the backend stored on the connection. Allocated on the
// session's first call, so sessions of apps without a backend carry none.
type calls struct {
	busy  bool
	queue []*backendCall
	data  json.RawMessage // the backend's "data" for this connection
}

// viaBackend reports whether req goes to the backend before it is
// applied, and of which kind.
func (h *Hub) viaBackend(s *Session, req *Request) (CallKind, bool) {
	if h.backend == nil {
		return 0, false
	}
	switch {
	case req.Op == OpRPC:
		return CallEvent, h.backend.Handles(CallEvent)
	case req.Op == OpSend && !req.HasTo && !req.HasUser:
		return CallPublish, h.backend.Handles(CallPublish)
	case req.Op == OpJoin:
		return CallJoin, h.backend.Handles(CallJoin)
	case req.Op == OpHistory && s.inRoom(req.Room) < 0:
		// A non-member may read a room's history if the backend would
		// let it join.
		return CallJoin, h.backend.Handles(CallJoin)
	}
	return 0, false
}

// precheck refuses at once what the backend would never be asked about.
func (h *Hub) precheck(s *Session, kind CallKind, req *Request) *Error {
	switch kind {
	case CallPublish:
		return h.maySend(s, req.Room)
	case CallJoin:
		if req.Op == OpHistory {
			if err := checkRoomKey(req.Room); err != nil {
				return err
			}
			if !s.token().MayJoin(RoomName(req.Room)) {
				return ErrForbidden
			}
			return nil
		}
		return h.mayJoin(s, req.Room, false)
	case CallEvent:
		if len(req.Event) == 0 {
			return ErrMissingEvent
		}
	}
	return nil
}

// callBackend queues req for the backend. Its reply comes later.
func (h *Hub) callBackend(s *Session, kind CallKind, req *Request) {
	if err := h.precheck(s, kind, req); err != nil {
		h.cfg.Metrics.Error(err.Code)
		h.reply(s, &Reply{ID: req.ID, Op: req.Op, Err: err})
		return
	}
	if s.calls == nil {
		s.calls = new(calls)
	}
	if s.calls.busy && len(s.calls.queue) >= MaxQueuedCalls {
		h.cfg.Metrics.Error(ErrRateLimited.Code)
		h.reply(s, &Reply{ID: req.ID, Op: req.Op, Err: ErrRateLimited})
		return
	}
	c := &backendCall{kind: kind, op: req.Op, id: clone(req.ID), room: clone(req.Room),
		data: clone(req.Data), event: clone(req.Event), args: clone(req.Args),
		since: req.Since, hasSince: req.HasSince, limit: req.Limit}
	for _, a := range req.Attachments {
		c.atts = append(c.atts, clone(a))
	}
	if s.calls.busy {
		s.calls.queue = append(s.calls.queue, c)
		return
	}
	h.startCall(s, c)
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// startCall sends c to the backend; its answer runs finishCall on s's loop.
func (h *Hub) startCall(s *Session, c *backendCall) {
	s.calls.busy = true
	body := h.callBody(s, c)
	h.backend.Call(c.kind, body, func(a BackendAnswer) {
		h.transport.Exec(s, func() { h.finishCall(s, c, a) })
	})
}

// callBody is the JSON the backend receives for c.
func (h *Hub) callBody(s *Session, c *backendCall) []byte {
	type body struct {
		Client    string          `json:"client"`
		User      string          `json:"user"`
		Nick      string          `json:"nick,omitempty"`
		Data      json.RawMessage `json:"data,omitempty"`
		Rooms     []string        `json:"rooms,omitempty"`
		Namespace string          `json:"namespace,omitempty"`
		Room      string          `json:"room,omitempty"`
		Event     string          `json:"event,omitempty"`
		Args      json.RawMessage `json:"args,omitempty"`
		// Purpose is "history" for a non-member's history request,
		// asked as a join: allowing it lets the client read, not join.
		Purpose string `json:"purpose,omitempty"`
	}
	b := body{Client: s.id, User: s.User()}
	if s.nsp() != "" {
		b.Namespace = s.nsp() // the backend tells namespaces' rooms apart
	}
	switch c.kind {
	case CallEvent:
		b.Nick, b.Data, b.Rooms, b.Namespace = s.Nick(), s.calls.data, s.roomNames(), s.Namespace()
		b.Event, b.Args = string(c.event), json.RawMessage(c.args)
		if len(c.atts) > 0 {
			b.Args = h.inlineAttachments(c.args, c.atts)
		}
	case CallPublish:
		b.Room, b.Data = string(RoomName(c.room)), json.RawMessage(c.data)
		if len(c.atts) > 0 {
			b.Data = h.inlineAttachments(c.data, c.atts)
		}
	case CallJoin:
		b.Room = string(RoomName(c.room))
		if c.op == OpHistory {
			b.Purpose = "history"
		}
	}
	out, err := json.Marshal(b)
	if err != nil {
		// Raw JSON that came from a client was validated when it was
		// decoded; this cannot happen, but never send broken JSON.
		out, _ = json.Marshal(body{Client: s.id, User: s.User(), Event: string(c.event)})
	}
	return out
}

// inlineAttachments replaces Socket.IO placeholders in raw by
// {"_binary":"<base64>"}, as native clients see binary data.
func (h *Hub) inlineAttachments(raw []byte, atts [][]byte) json.RawMessage {
	if h.cfg.InlineAttachments == nil {
		return raw
	}
	out, err := h.cfg.InlineAttachments(nil, raw, atts)
	if err != nil {
		return raw
	}
	return out
}

// finishCall applies the backend's answer on s's loop, replies, and starts
// the session's next call.
func (h *Hub) finishCall(s *Session, c *backendCall, a BackendAnswer) {
	if !h.sessions.has(s) {
		return // closed while the backend thought
	}
	s.calls.busy = false
	if a.Disconnect != nil {
		s.calls.queue = nil
		h.transport.Disconnect(s, *a.Disconnect)
		return
	}
	r := Reply{ID: c.id, Op: c.op, Err: a.Err}
	if r.Err == nil {
		r.Err = h.applyAnswer(s, c, a.Result, &r)
	}
	if r.Err != nil {
		h.cfg.Metrics.Error(r.Err.Code)
	}
	h.reply(s, &r)
	if len(s.calls.queue) > 0 && !s.calls.busy {
		next := s.calls.queue[0]
		s.calls.queue[0] = nil
		s.calls.queue = s.calls.queue[1:]
		h.startCall(s, next)
	}
}

// reply writes r to s's client, on s's loop.
func (h *Hub) reply(s *Session, r *Reply) { s.peer.WriteReply(r) }

// applyAnswer carries out a successful answer to c.
func (h *Hub) applyAnswer(s *Session, c *backendCall, result []byte, r *Reply) *Error {
	req := Request{Op: c.op, ID: c.id, Room: c.room, HasRoom: c.room != nil, Data: c.data, Attachments: c.atts}
	switch c.kind {
	case CallEvent:
		var res struct {
			Ack      json.RawMessage   `json:"ack"`
			Commands []json.RawMessage `json:"commands"`
		}
		if err := decodeResult(result, &res); err != nil {
			return err
		}
		if len(res.Ack) > 0 && res.Ack[0] != '[' && string(res.Ack) != "null" {
			return backendError(`"ack" must be an array`)
		}
		cmds, err := parseCommands(res.Commands)
		if err != nil {
			return err
		}
		if err := h.runCommands(s, cmds); err != nil {
			return err
		}
		if string(res.Ack) != "null" {
			r.Args = res.Ack
		}
		return nil
	case CallPublish:
		var res struct {
			Data json.RawMessage `json:"data"`
		}
		if err := decodeResult(result, &res); err != nil {
			return err
		}
		if h.cfg.MaxData > 0 && len(res.Data) > h.cfg.MaxData {
			// Other nodes refuse data over -max-message: a rewrite may
			// not grow past what a client may send.
			return backendError("rewritten data larger than the largest message")
		}
		if len(res.Data) > 0 {
			// The backend rewrote the message (moderation): its data
			// replaces the client's, attachments and all.
			req.Data, req.Attachments = res.Data, nil
		}
		return h.apply(s, &req, r)
	case CallJoin:
		if err := decodeResult(result, &struct{}{}); err != nil {
			return err
		}
		if c.op == OpHistory {
			req.Since, req.HasSince, req.Limit = c.since, c.hasSince, c.limit
			return h.historyOf(&req, r)
		}
		return h.applyMembership(s, &req, r, false)
	}
	return ErrBackendError
}

// decodeResult reads the answer's result object into v; fields it does not
// know are ignored, so backends may grow their answers.
func decodeResult(result []byte, v any) *Error {
	if len(result) == 0 {
		return nil
	}
	if err := json.Unmarshal(result, v); err != nil {
		return backendError("bad result: " + err.Error())
	}
	return nil
}

// backendError is a backend_error with a reason for the client.
func backendError(why string) *Error {
	if len(why) > 200 {
		why = why[:200]
	}
	return &Error{CodeBackendError, "the application backend answered wrongly: " + why}
}

// commandError is a backend error naming the position of a bad command.
func commandError(i int, why string) *Error {
	return backendError("command " + strconv.Itoa(i) + ": " + why)
}

// SetCloseReason records why s's connection closed (a close reason label
// such as "1001", "timeout" or "server"), for the backend's disconnect
// report. The transport calls it on s's loop before Hub.Close.
func (s *Session) SetCloseReason(reason string) {
	if reason != "" || s.m() != nil {
		s.x().closeReason = reason
	}
}

// disconnectBody is the backend's report of a closed session.
func (h *Hub) disconnectBody(s *Session) []byte {
	var data json.RawMessage
	if s.calls != nil {
		data = s.calls.data
	}
	b, _ := json.Marshal(struct {
		Client    string          `json:"client"`
		User      string          `json:"user"`
		Nick      string          `json:"nick,omitempty"`
		Data      json.RawMessage `json:"data,omitempty"`
		Rooms     []string        `json:"rooms"`
		Reason    string          `json:"reason"`
		Namespace string          `json:"namespace,omitempty"`
	}{s.id, s.User(), s.Nick(), data, s.roomNames(), s.closeReason(), s.nsp()})
	return b
}
