package chat

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/metrics"
	"github.com/chatgate/chatgate/payload"
	"github.com/chatgate/chatgate/rooms"
)

// Payloads holds one encoded payload per member kind (rooms.Member.Kind);
// nil entries are kinds nobody needs.
type Payloads [rooms.MaxKinds]*payload.Shared

// Transport moves payloads to sessions on their own event loops; netpoll
// implements it. It is the one way out: every push — a broadcast, a direct
// message, and what the server API, the backend proxy or history replay
// send — goes through it, and it applies the outbound limits
// (-max-pending) to each. Each transport frames the payload for its wire
// (WebSocket, Engine.IO polling); the hub never does.
//
// Every method may be called from any goroutine and must not block.
type Transport interface {
	// Fanout delivers p[m.Kind()] to every member m of snap except skip
	// (which may be nil). It takes over the caller's reference to each
	// non-nil payload.
	Fanout(snap *rooms.Snapshot, skip rooms.Member, p *Payloads)
	// Push delivers p to one session. It takes over the caller's
	// reference to p.
	Push(to *Session, p *payload.Shared)
	// Disconnect closes the session's connection with d.
	Disconnect(to *Session, d Disconnect)
	// Exec runs fn on the session's own loop, where its state may change
	// (server-side joins and leaves).
	Exec(to *Session, fn func())
}

// Peer is the transport's side of a session.
type Peer interface {
	// WriteReply encodes r with the peer's codec and queues it for the
	// client. Called only on the session's own loop, during Hub.Handle.
	WriteReply(r *Reply)
}

// Config configures a Hub. The zero value is usable with Codecs set.
type Config struct {
	// Codecs maps a member kind to its encoder. Kind 0 is required.
	Codecs []Codec
	// Presence sends join/leave events to the other members of a room.
	Presence bool
	// Node tags connection ids so ids from different gateway nodes never
	// collide. Empty means a random tag chosen at start.
	Node string
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
	// Metrics receives request, error and membership counts; nil records
	// nothing.
	Metrics *metrics.Metrics
	// MaxRooms bounds the rooms one session may be in; 0 or less means no
	// bound.
	MaxRooms int
	// MaxConnectionsPerUser bounds the open connections of one user (a
	// token's sub) across the cluster; 0 or less means no bound. The
	// transports check it at admission (UserAllowed).
	MaxConnectionsPerUser int
	// MaxData bounds the data a backend's publish answer may put in place
	// of a client's (-max-message); 0 means no bound.
	MaxData int
	// Verifier checks refreshed tokens (OpRefresh); nil refuses refreshes.
	Verifier *auth.Verifier
	// RoomsList says which rooms a client's rooms request lists
	// (-rooms-list); the zero value is RoomsPermitted.
	RoomsList RoomsList
	// InlineAttachments rewrites Socket.IO placeholders in raw JSON into
	// inline binary values, for what the backend receives
	// (socketio.InlineAttachments); nil passes placeholders through.
	InlineAttachments func(dst, data []byte, attachments [][]byte) ([]byte, error)
	// RoomNFC normalises room names to Unicode NFC where they enter
	// (-room-nfc), so that composed and decomposed spellings are one room.
	RoomNFC bool
	// History is the room-message log (package history); nil turns
	// history off: messages carry no offset, history requests fail with
	// no_history, and resumed sessions get their rooms back without their
	// messages.
	History History
	// RecoveryWindow is how long a dropped session can be resumed
	// (-recovery-window); 0 turns recovery off.
	RecoveryWindow time.Duration
	// RecoveryKey signs session tokens. Nodes of a cluster share it so
	// that any node can check any node's tokens; empty means a random key
	// for this process.
	RecoveryKey []byte
	// MaxRecords bounds the dropped sessions kept for recovery; 0 means
	// DefaultMaxRecords. The oldest go first.
	MaxRecords int
	// MaxReplay bounds the bytes of missed messages a resumed session is
	// sent, all its rooms together, so that the replay fits the
	// connection's outbound limit; rooms past it are reported as not
	// recovered. 0 means DefaultMaxReplay.
	MaxReplay int
	// MaxJSONDepth bounds the nesting of a client's data and event
	// arguments (-max-json-depth): deeper is bad_json. 0 means
	// DefaultMaxJSONDepth, less than 0 no bound.
	MaxJSONDepth int
}

// Hub applies chat operations to the room table and the session registry.
// It is safe for concurrent use by all event loops.
type Hub struct {
	broker    Broker    // nil: single node
	backend   Backend   // nil: no application backend
	hist      History   // nil: history off
	seq       Sequencer // non-nil: room messages go through the cluster's shared log
	cfg       Config
	table     *rooms.Table
	transport Transport
	sessions  registry
	users     userIndex
	ids       idGen
	open      atomic.Int64
	// recs are dropped sessions kept for recovery, signed with
	// recoveryKey.
	recs        records
	recoveryKey []byte
	// reads merges the recovery reads of one room (merge.go). Guarded by
	// the history lock.
	reads mergedReads
	// macs are keyed HMAC-SHA256 states for session tokens (tokenMAC),
	// reused: keying one costs two SHA-256 states and a copy of the key,
	// about 600 bytes of garbage per handshake, which an idle gateway
	// that just took thousands of connections would hold in RSS.
	macs sync.Pool
}

// NewHub returns a hub over table. SetTransport must be called before the
// first session opens.
func NewHub(cfg Config, table *rooms.Table) *Hub {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Hub{cfg: cfg, table: table, hist: cfg.History}
	h.recs.init(cfg.MaxRecords)
	h.recoveryKey = cfg.RecoveryKey
	if len(h.recoveryKey) == 0 {
		h.recoveryKey = newRecoveryKey()
	}
	h.macs.New = func() any { return &tokenMAC{h: hmac.New(sha256.New, h.recoveryKey)} }
	h.ids.init(cfg.Node)
	h.sessions.init(h.ids.node)
	h.users.init()
	return h
}

// SetTransport wires the hub to the transport that delivers its frames.
func (h *Hub) SetTransport(t Transport) { h.transport = t }

// Table returns the room table.
func (h *Hub) Table() *rooms.Table { return h.table }

// Sessions returns the number of open sessions.
func (h *Hub) Sessions() int { return int(h.open.Load()) }

// Codec returns the encoder for member kind k.
func (h *Hub) Codec(k int) Codec { return h.cfg.Codecs[k] }

// Session is one client connection as the chat layer sees it. It is a
// rooms.Member. Fields other than the nickname are touched only on the
// session's own loop.
type Session struct {
	id    string
	peer  Peer
	ident *auth.Identity // nil for an anonymous session
	nick  nickText       // read by other loops for member lists
	// room is the first room joined, "" for none; the rooms joined after
	// it, in join order, are sessionMore's rooms. Most sessions are in
	// one room, which then costs no slice's backing array. Own loop only.
	room  string
	calls *calls // backend calls and data; nil until the first
	// user, when set, is the user the backend's connect answer gave,
	// which replaces the token's.
	user atomic.Pointer[string]
	// more holds what few sessions use (a namespace, a refreshed token,
	// the close reason, rooms after the first); nil until one is set. An idle gateway is mostly
	// sessions, so the common one stays small (TestSessionSize). Set on
	// the session's own loop (x), and read from other goroutines too (its
	// namespace, for the API's and other loops' lists): hence atomic. Its
	// fields keep their own rules (nsp never changes once the session is
	// shared; the others are own loop only).
	more atomic.Pointer[sessionMore]
	loop int32
	kind uint8 // below rooms.MaxKinds
	// pending: the backend has not accepted the session yet (Connect).
	pending bool
}

// sessionMore is the rarely set part of a Session.
type sessionMore struct {
	// closeReason is why the transport closed it (a metrics label), for
	// the backend's disconnect report.
	closeReason string
	// nsp is the Socket.IO namespace, "" for "/" (SetNamespace).
	nsp string
	// grant is the token in force after a refresh (same user as ident),
	// nil until one; own loop only.
	grant *auth.Identity
	// extended is when the backend's refresh answer lets the session go
	// on until (Unix nanoseconds), 0 if never asked; refreshing is set
	// while that call is in flight. Own loop only.
	extended   int64
	refreshing bool
	// rooms are the rooms joined after Session.room, in join order; own
	// loop only.
	rooms []string
}

// x returns s's sessionMore, allocating it on first use. Own loop only
// (or before the session is shared).
func (s *Session) x() *sessionMore {
	m := s.more.Load()
	if m == nil {
		m = new(sessionMore)
		s.more.Store(m)
	}
	return m
}

// m returns s's sessionMore, nil if none was set. Any goroutine.
func (s *Session) m() *sessionMore { return s.more.Load() }

// nsp is the session's namespace, "" for "/".
func (s *Session) nsp() string {
	m := s.m()
	if m == nil {
		return ""
	}
	return m.nsp
}

// closeReason is why the transport closed the session, "" if not told.
func (s *Session) closeReason() string {
	m := s.m()
	if m == nil {
		return ""
	}
	return m.closeReason
}

// Loop implements rooms.Member.
func (s *Session) Loop() int { return int(s.loop) }

// Kind implements rooms.Member.
func (s *Session) Kind() int { return int(s.kind) }

// User returns the authenticated user id (the token's sub), "" if the
// session is anonymous.
func (s *Session) User() string {
	if u := s.user.Load(); u != nil {
		return *u
	}
	return s.ident.User()
}

// ID returns the connection id.
func (s *Session) ID() string { return s.id }

// Peer returns the transport side given to Hub.Open.
func (s *Session) Peer() Peer { return s.peer }

// Nick returns the current nickname ("" if none). Safe from any goroutine.
func (s *Session) Nick() string { return s.nick.Load() }

// Rooms returns the rooms the session is in, in join order, in a new
// slice. Own loop only.
func (s *Session) Rooms() []string {
	var out []string
	for r := range s.eachRoom {
		out = append(out, r)
	}
	return out
}

// eachRoom yields the rooms the session is in, in join order (for r :=
// range s.eachRoom). Own loop only; the body must not join or leave.
func (s *Session) eachRoom(yield func(string) bool) {
	if s.room == "" || !yield(s.room) {
		return
	}
	if m := s.m(); m != nil {
		for _, r := range m.rooms {
			if !yield(r) {
				return
			}
		}
	}
}

// roomCount returns how many rooms the session is in. Own loop only.
func (s *Session) roomCount() int {
	if s.room == "" {
		return 0
	}
	if m := s.m(); m != nil {
		return 1 + len(m.rooms)
	}
	return 1
}

// inRoom returns the index of room name in join order, -1 if the session
// is not in it. Own loop only.
func (s *Session) inRoom(name []byte) int {
	i := 0
	for r := range s.eachRoom {
		if r == string(name) {
			return i
		}
		i++
	}
	return -1
}

// roomAt returns the i-th room joined, for i below roomCount. Own loop
// only.
func (s *Session) roomAt(i int) string {
	if i == 0 {
		return s.room
	}
	return s.m().rooms[i-1]
}

// addRoom records a join of room name (as stored in the table), last in
// join order. Own loop only.
func (s *Session) addRoom(name string) {
	if s.room == "" {
		s.room = name
		return
	}
	m := s.x()
	m.rooms = append(m.rooms, name)
}

// removeRoom forgets the i-th room joined, keeping the others' order. Own
// loop only.
func (s *Session) removeRoom(i int) {
	m := s.m()
	if i > 0 {
		m.rooms = slices.Delete(m.rooms, i-1, i)
		return
	}
	if m == nil || len(m.rooms) == 0 {
		s.room = ""
		return
	}
	s.room = m.rooms[0]
	m.rooms = slices.Delete(m.rooms, 0, 1)
}

// clearRooms forgets every room joined. Own loop only.
func (s *Session) clearRooms() {
	s.room = ""
	if m := s.m(); m != nil {
		m.rooms = nil
	}
}

// Open registers a new session owned by event loop loop, encoded as kind,
// for the holder of ident (nil: anonymous), and returns it with a fresh
// connection id.
func (h *Hub) Open(peer Peer, loop, kind int, ident *auth.Identity) *Session {
	s := &Session{id: h.ids.next(), loop: int32(loop), kind: uint8(kind), peer: peer, ident: ident}
	h.sessions.put(s)
	h.users.add(s)
	h.open.Add(1)
	if h.broker != nil {
		h.broker.Opened(s.id, "", s.User())
	}
	return s
}

// Close leaves every room the session is in (with presence events) and
// forgets it. Calling Close twice is harmless.
func (h *Hub) Close(s *Session) {
	if !h.sessions.remove(s) {
		return
	}
	if s.pending {
		return // never accepted: in no index, no room, no replica
	}
	h.open.Add(-1)
	h.users.remove(s)
	if h.broker != nil {
		h.broker.Closed(s.id, h.Recovering() && recoverable(s.closeReason()))
	}
	var report []byte
	if h.backend != nil && h.backend.Handles(CallDisconnect) {
		report = h.disconnectBody(s)
	}
	if h.Recovering() && s.nsp() == "" {
		// Only "/" recovers (the CONNECT of another namespace gets no
		// pid). The position before leaving: what was published after it
		// never reached the client.
		var offset uint64
		if h.hist != nil {
			h.hist.Lock()
			offset = h.hist.PositionLocked(nil).Offset
			h.hist.Unlock()
		}
		h.keep(s, offset)
	}
	for name := range s.eachRoom {
		count, removed := h.table.Leave([]byte(name), s)
		if removed {
			h.cfg.Metrics.Left()
			h.presence(s, []byte(name), PresenceLeave, count+h.remoteCount([]byte(name)))
		}
	}
	s.clearRooms()
	if report != nil {
		// Sent once the session has left its rooms, so a backend that
		// lists a room on the report no longer sees it there.
		h.backend.Disconnected(report)
	}
}

// Lookup returns the session with the given id, or nil.
func (h *Hub) Lookup(id []byte) *Session { return h.sessions.get(id) }

// Handle applies one request from s and writes its reply through s's peer.
// It must be called on s's own loop; req's slices need to stay valid only
// until Handle returns.
func (h *Hub) Handle(s *Session, req *Request) {
	h.cfg.Metrics.MessagesReceived(1)
	if s.pending {
		h.reply(s, &Reply{ID: req.ID, Op: req.Op, Err: ErrNotReady})
		return
	}
	if err := h.screen(req); err != nil {
		h.cfg.Metrics.Error(err.Code)
		req.reply = Reply{ID: req.ID, Op: req.Op, Err: err}
		s.peer.WriteReply(&req.reply)
		return
	}
	if req.HasRoom {
		// A room names a room of the session's namespace. A name with
		// the separator is no room name (a control character) and could
		// otherwise name another namespace's room.
		if bytes.IndexByte(req.Room, NamespaceSep) >= 0 {
			h.cfg.Metrics.Error(ErrRoomText.Code)
			req.reply = Reply{ID: req.ID, Op: req.Op, Err: ErrRoomText}
			s.peer.WriteReply(&req.reply)
			return
		}
		req.Room = s.key(req.Room)
	}
	if kind, ok := h.viaBackend(s, req); ok {
		h.callBackend(s, kind, req)
		return
	}
	r := &req.reply
	*r = Reply{ID: req.ID, Op: req.Op}
	if err := h.apply(s, req, r); err != nil {
		r.Err = err
		h.cfg.Metrics.Error(err.Code)
	}
	s.peer.WriteReply(r)
}

// Fail writes an error reply to s for req (e.g. a request that did not
// decode, or one refused by a rate limit), echoing req.ID.
func (h *Hub) Fail(s *Session, req *Request, err *Error) {
	r := &req.reply
	*r = Reply{ID: req.ID, Op: req.Op, Err: err}
	h.cfg.Metrics.MessagesReceived(1)
	h.cfg.Metrics.Error(err.Code)
	s.peer.WriteReply(r)
}

func (h *Hub) apply(s *Session, req *Request, r *Reply) *Error {
	switch req.Op {
	case OpNick:
		if err := checkNick(req.Name); err != nil {
			return err
		}
		storeNick(&s.nick, req.Name)
		name := s.Nick()
		r.Name = name
		if h.broker != nil {
			h.broker.Nick(s.id, name)
		}
		return nil

	case OpJoin, OpLeave:
		return h.applyMembership(s, req, r, false)

	case OpSend:
		if req.HasTo {
			return h.sendTo(s, req)
		}
		if req.HasUser {
			return h.sendToUser(s, req)
		}
		if err := h.maySend(s, req.Room); err != nil {
			return err
		}
		ts := h.cfg.Now().UnixMilli()
		if h.hist != nil {
			h.fanoutRoom(&Message{Room: req.Room, From: s.id, Nick: s.Nick(), User: s.User(), Data: req.Data, Attachments: req.Attachments, TS: ts}, s)
			return nil
		}
		if h.broker != nil {
			// Other nodes deliver to their own members; this node never
			// hears its own publication back.
			h.publishRoom(Message{Room: req.Room, From: s.id, Nick: s.Nick(), User: s.User(), Data: req.Data, Attachments: req.Attachments, TS: ts})
		}
		snap := h.table.Snapshot(req.Room)
		if snap == nil || snap.Count <= 1 {
			return nil // nobody else here to deliver to
		}
		// Built only now: handed to the codecs (interfaces), it escapes to
		// the heap, and a send that reaches nobody must not allocate.
		m := Message{Room: req.Room, From: s.id, Nick: s.Nick(), User: s.User(), Data: req.Data, Attachments: req.Attachments, TS: ts}
		var p Payloads
		h.encodeMessage(snap.Kinds, &m, &p)
		h.cfg.Metrics.Broadcast(snap.Count - 1)
		h.transport.Fanout(snap, s, &p)
		return nil

	case OpRooms:
		return h.listRooms(s, req, r)

	case OpMembers:
		if err := checkRoomKey(req.Room); err != nil {
			return err
		}
		if s.inRoom(req.Room) < 0 {
			return ErrNotMember
		}
		return h.listMembers(req, r)

	case OpPing:
		return nil

	case OpRefresh:
		return h.refresh(s, req)

	case OpHistory:
		return h.history(s, req, r)
	}
	// OpRPC without a backend for application events, or no op at all.
	return ErrUnknownType
}

// publishRoom hands m to the broker. It takes m by value so that a
// single node's sends, which never call it, keep their Message on the
// stack.
func (h *Hub) publishRoom(m Message) { h.broker.PublishRoom(&m) }

// mayJoin checks a join of room by s: the name, the token's rooms claim
// (not for a server-side join, which the backend or the API decided) and
// -max-rooms. Own loop only.
func (h *Hub) mayJoin(s *Session, room []byte, server bool) *Error {
	if err := checkRoomKey(room); err != nil {
		return err
	}
	// The token's claim names rooms without their namespace.
	if !server && !s.token().MayJoin(RoomName(room)) {
		return ErrForbidden
	}
	if h.cfg.MaxRooms > 0 && s.roomCount() >= h.cfg.MaxRooms && s.inRoom(room) < 0 {
		return ErrTooManyRooms
	}
	return nil
}

// maySend checks a room message of s: the name, membership (against the
// session's own list: no lock) and the token's publish claim. Own loop
// only.
func (h *Hub) maySend(s *Session, room []byte) *Error {
	if err := checkRoomKey(room); err != nil {
		return err
	}
	if s.inRoom(room) < 0 {
		return ErrNotMember
	}
	if !s.token().MayPublish(RoomName(room)) {
		return ErrForbidden
	}
	return nil
}

// applyMembership joins s to req.Room (OpJoin) or removes it (OpLeave),
// with presence to the other members, on s's loop. A server-side change
// (server) is not held to the token's rooms claim: the application's
// backend decides.
func (h *Hub) applyMembership(s *Session, req *Request, r *Reply, server bool) *Error {
	if req.Op == OpJoin {
		return h.join(s, req, r, server, false)
	}
	return h.leave(s, req, r)
}

// join joins s to req.Room, with presence to the other members, on s's
// loop. held says the caller holds the history lock (Resume).
func (h *Hub) join(s *Session, req *Request, r *Reply, server, held bool) *Error {
	if err := h.mayJoin(s, req.Room, server); err != nil {
		return err
	}
	if h.hist != nil && !held {
		// Under the history lock: a message is either published
		// before the join (at or below the position) or reaches
		// the joiner.
		h.hist.Lock()
	}
	if h.hist != nil {
		r.Position = h.hist.PositionLocked(req.Room)
	}
	count, added, name := h.table.Join(req.Room, s)
	if h.hist != nil && !held {
		h.hist.Unlock()
	}
	if h.broker != nil {
		if added {
			h.broker.Joined(s.id, name)
		}
		count += h.broker.RemoteCount(req.Room)
	}
	if added {
		h.cfg.Metrics.Joined()
		s.addRoom(name)
		h.presence(s, req.Room, PresenceJoin, count)
	}
	r.Room, r.Count = req.Room, count
	return nil
}

// leave removes s from req.Room, with presence to the other members, on
// s's loop.
func (h *Hub) leave(s *Session, req *Request, r *Reply) *Error {
	if err := checkRoomKey(req.Room); err != nil {
		return err
	}
	i := s.inRoom(req.Room)
	if i < 0 {
		return ErrNotMember
	}
	name := s.roomAt(i)
	s.removeRoom(i)
	count, removed := h.table.Leave(req.Room, s)
	if h.broker != nil {
		if removed {
			h.broker.Left(s.id, name)
		}
		count += h.broker.RemoteCount(req.Room)
	}
	if removed {
		h.cfg.Metrics.Left()
		h.presence(s, req.Room, PresenceLeave, count)
	}
	r.Room, r.Count = req.Room, count
	return nil
}

func (h *Hub) sendTo(s *Session, req *Request) *Error {
	to := h.sessions.get(req.To)
	if to == nil {
		return h.sendRemote(s, req)
	}
	m := Message{From: s.id, Nick: s.Nick(), User: s.User(), Data: req.Data, Attachments: req.Attachments, TS: h.cfg.Now().UnixMilli()}
	h.transport.Push(to, encodeMessage(h.cfg.Codecs[to.kind], &m))
	return nil
}

// sendToUser delivers a client's direct message to every connection of
// the user named in req, on every node.
func (h *Hub) sendToUser(s *Session, req *Request) *Error {
	m := Message{From: s.id, Nick: s.Nick(), User: s.User(), Data: req.Data, Attachments: req.Attachments, TS: h.cfg.Now().UnixMilli()}
	if h.DeliverUser(req.User, &m) == 0 && (h.broker == nil || h.broker.RemoteUserCount(string(req.User)) == 0) {
		return ErrNoSuchUser
	}
	if h.broker != nil {
		h.broker.PublishUser(req.User, &m)
	}
	return nil
}

// checkRoom is the rule for a room name, wherever it comes from: 1 to
// MaxRoomLen bytes of text (package chat/names).
func checkRoom[S ~string | ~[]byte](name S) *Error {
	if len(name) < 1 || len(name) > MaxRoomLen {
		return ErrInvalidRoom
	}
	return checkRoomText(name)
}

// presence tells the other members of room that s joined or left; count
// is the room's member count after the change, cluster-wide.
func (h *Hub) presence(s *Session, room []byte, ev PresenceEvent, count int) {
	if !h.cfg.Presence || count == 0 {
		return
	}
	snap := h.table.Snapshot(room)
	if snap == nil || snap.Count == 0 || snap.Count == 1 && ev == PresenceJoin {
		return // nobody here but the joiner: nothing to encode
	}
	p := Presence{Room: room, Event: ev, ID: s.id, Nick: s.Nick(), User: s.User(), Count: count}
	h.fanoutPresence(snap, s, &p)
}

// fanoutPresence encodes p once per kind in snap and hands it to the
// transport for every member but skip.
func (h *Hub) fanoutPresence(snap *rooms.Snapshot, skip rooms.Member, p *Presence) {
	var ps Payloads
	for k := range h.cfg.Codecs {
		if snap.Kinds&(1<<uint(k)) == 0 {
			continue
		}
		pl := payload.Acquire()
		*pl.Text() = h.cfg.Codecs[k].AppendPresence(*pl.Text(), p)
		ps[k] = pl
	}
	h.transport.Fanout(snap, skip, &ps)
}

// encodeMessage encodes m once for each kind present in kinds.
func (h *Hub) encodeMessage(kinds uint32, m *Message, ps *Payloads) {
	for k := range h.cfg.Codecs {
		if kinds&(1<<uint(k)) == 0 {
			continue
		}
		ps[k] = encodeMessage(h.cfg.Codecs[k], m)
	}
}

// encodeMessage encodes m for one codec: the text, then its binary
// attachments when the codec carries them (others inline them).
func encodeMessage(c Codec, m *Message) *payload.Shared {
	p := payload.Acquire()
	*p.Text() = c.AppendMessage(*p.Text(), m)
	if c.BinaryAttachments() {
		for _, a := range m.Attachments {
			p.AddAttachment(a)
		}
	}
	return p
}

// fanoutRoom records room message m in the history, when it is on (giving
// it its offset), and delivers it to the members of m.Room on this node but skip,
// and hands it to the broker for the other nodes. The delivery happens
// under the history lock, so every member gets a room's messages in offset
// order. m escapes (a client's send without history keeps its own path,
// which allocates nothing when nobody else is in the room).
func (h *Hub) fanoutRoom(m *Message, skip *Session) {
	if h.seq != nil {
		// The shared log orders it; every node delivers it from there,
		// this one too (DeliverSequenced), skipping Except.
		if skip != nil && skip.id != m.From {
			m.Except = skip.id
		}
		h.seq.SequenceRoom(m)
		return
	}
	if h.hist != nil {
		h.hist.Lock()
		h.hist.Append(m)
	}
	h.deliverLocal(m, skip)
	if h.hist != nil {
		h.hist.Unlock()
	}
	if h.broker != nil {
		h.broker.PublishRoom(m)
	}
}

// deliverLocal encodes room message m once per kind and hands it to the
// transport for this node's members of m.Room but skip (nil: none). With
// history on, the caller holds the history lock (the order of delivery is
// the order of offsets).
func (h *Hub) deliverLocal(m *Message, skip *Session) {
	snap := h.table.Snapshot(m.Room)
	if snap == nil || snap.Count == 0 {
		return
	}
	n := snap.Count
	if skip != nil && h.table.Contains(m.Room, skip) {
		n--
	}
	if n == 0 {
		return
	}
	var p Payloads
	h.encodeMessage(snap.Kinds, m, &p)
	h.cfg.Metrics.Broadcast(n)
	if skip != nil {
		h.transport.Fanout(snap, skip, &p)
	} else {
		h.transport.Fanout(snap, nil, &p) // no typed nil in the interface
	}
}

// payloadFor encodes a room's recovery for codec c; nil when the codec
// has no recovered event.
func payloadFor(c Codec, rv *Recovered) *payload.Shared {
	p := payload.Acquire()
	before := len(*p.Text())
	*p.Text() = c.AppendRecovered(*p.Text(), rv)
	if len(*p.Text()) == before {
		p.Release()
		return nil
	}
	return p
}

// Push delivers p to s through the transport, from any goroutine: how the
// server API, the backend proxy and history replay reach one session. It
// takes over the caller's reference to p.
func (h *Hub) Push(s *Session, p *payload.Shared) { h.transport.Push(s, p) }

// Disconnect closes s's connection with d, from any goroutine.
func (h *Hub) Disconnect(s *Session, d Disconnect) { h.transport.Disconnect(s, d) }
