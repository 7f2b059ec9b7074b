package chat

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/chatgate/chatgate/auth"
)

// The connect call (-proxy-connect-url): before a client is welcomed (the
// native welcome, the Socket.IO CONNECT ack), the backend may accept it —
// setting its user, nick, rooms and data — refuse it, or disconnect it.
//
// The transport opens the session pending (OpenPending), sends Connect,
// and finishes on the session's loop when the answer comes: Accept makes
// the session a full member of the hub (user index, cluster), Close drops
// it. A pending session is in the registry, so the answer can find its
// loop, but in no room, no user index and no cluster replica, and its
// requests are refused with not_ready.

// ConnectInfo is what the backend is told of a connecting client.
type ConnectInfo struct {
	Transport  string            `json:"transport"` // websocket, polling
	Protocol   string            `json:"protocol"`  // native, socketio
	Namespace  string            `json:"namespace,omitempty"`
	RemoteAddr string            `json:"remote_addr"`
	Origin     string            `json:"origin,omitempty"`
	Auth       json.RawMessage   `json:"auth,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// ConnectResult is the backend's acceptance.
type ConnectResult struct {
	User  string          `json:"user"`
	Nick  string          `json:"nick"`
	Rooms []string        `json:"rooms"`
	Data  json.RawMessage `json:"data"`
}

// maxUserLen bounds a user id the backend sets.
const maxUserLen = 256

// ErrNotReady refuses requests of a session the backend has not accepted
// yet.
var ErrNotReady = &Error{CodeNotReady, "the connection is not accepted yet"}

// Connecting reports whether connects go to the backend.
func (h *Hub) Connecting() bool {
	return h.backend != nil && h.backend.Handles(CallConnect)
}

// OpenPending registers a session that waits for the backend's connect
// answer. Its loop, kind and identity are as for Open.
func (h *Hub) OpenPending(peer Peer, loop, kind int, ident *auth.Identity) *Session {
	s := &Session{id: h.ids.next(), loop: int32(loop), kind: uint8(kind), peer: peer, ident: ident, pending: true}
	h.sessions.put(s)
	return s
}

// Connect asks the backend about pending session s and calls done on s's
// loop with the outcome: nil when s was accepted (Accept has run), the
// client's error when refused (the transport answers 401 or CONNECT_ERROR
// and closes the session), or a disconnect. done is not called when s
// closed meanwhile.
func (h *Hub) Connect(s *Session, info ConnectInfo, done func(*Error, *Disconnect)) {
	body, _ := json.Marshal(struct {
		Client string `json:"client"`
		User   string `json:"user"`
		ConnectInfo
	}{s.id, s.User(), info})
	h.backend.Call(CallConnect, body, func(a BackendAnswer) {
		h.transport.Exec(s, func() {
			if !h.sessions.has(s) {
				return
			}
			if a.Disconnect != nil {
				done(nil, a.Disconnect)
				return
			}
			if a.Err != nil {
				done(a.Err, nil)
				return
			}
			var res ConnectResult
			if err := decodeResult(a.Result, &res); err != nil {
				done(err, nil)
				return
			}
			for i, room := range res.Rooms {
				res.Rooms[i] = h.roomNFC(room) // -room-nfc, before the check
			}
			if err := res.check(); err != nil {
				done(err, nil)
				return
			}
			h.Accept(s, &res)
			done(nil, nil)
		})
	})
}

func (r *ConnectResult) check() *Error {
	if len(r.User) > maxUserLen || !utf8.ValidString(r.User) {
		return backendError("user must be at most 256 bytes of UTF-8")
	}
	if r.Nick != "" && checkNick(r.Nick) != nil {
		return backendError("nick must be 1 to 32 characters of text without control or format characters")
	}
	for _, room := range r.Rooms {
		if checkRoom(room) != nil {
			return backendError("room must be 1 to 128 bytes of text without control or format characters")
		}
	}
	if d := r.Data; len(d) > 0 && d[0] != '{' && string(d) != "null" {
		return backendError("data must be an object")
	}
	return nil
}

// Accept makes pending session s a full session, with what the backend
// set (res may be nil). On s's loop.
func (h *Hub) Accept(s *Session, res *ConnectResult) {
	if res != nil && res.User != "" {
		u := res.User
		s.user.Store(&u)
	}
	if res != nil && res.Nick != "" {
		s.nick.Store(res.Nick)
	}
	s.pending = false
	h.users.add(s)
	h.open.Add(1)
	if h.broker != nil {
		h.broker.Opened(s.id, s.Nick(), s.User())
	}
	if res == nil {
		return
	}
	if len(res.Data) > 0 && string(res.Data) != "null" {
		if s.calls == nil {
			s.calls = new(calls)
		}
		s.calls.data = res.Data
	}
	for _, room := range res.Rooms {
		req := Request{Op: OpJoin, Room: s.key([]byte(room)), HasRoom: true}
		var r Reply
		_ = h.applyMembership(s, &req, &r, true) // checked above; MaxRooms may still refuse
	}
}
