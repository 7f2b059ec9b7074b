package chat

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strconv"
	"strings"
	"sync"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/payload"
)

// Connection state recovery: a client that drops and reconnects within
// the recovery window (-recovery-window) gets back its connection id, its
// nickname and its rooms, and per room the messages it missed from the
// history log (History).
//
// When a session closes for a reason that is not the client's or the
// server's decision (see recoverable), the hub keeps a record of it: id,
// user, nickname, rooms, and the log's position at the close. The client
// holds a session token (Welcome.Session, Socket.IO's pid) that names the
// record; the token is the id signed with the recovery key, so it cannot
// be forged, and the record is taken when used, so a token works once
// per drop (two reconnects with one token: the first wins, the second
// gets a new session). The record lives on the node the session was on.

// Welcome is what a client is told when its session opens: the native
// welcome, Socket.IO's CONNECT ack.
type Welcome struct {
	ID   string // connection id
	User string // authenticated user, "" if anonymous
	Nick string // the nickname in force ("" if none)
	// Session is the token to resume this session with after a drop; ""
	// when recovery is off.
	Session string
	// Resumed says the client asked to resume a session; Recovered that
	// it was (the same id, nick and rooms).
	Resumed, Recovered bool
}

// Recovered tells a resumed client what became of one of its rooms: OK
// with the messages it missed (oldest first), or not OK (the gap is no
// longer kept, or history is off) with where the room stands now.
type Recovered struct {
	Room     []byte
	OK       bool
	Messages []Message
	Position Position
}

// ResumeRequest is a client's request to resume a session.
type ResumeRequest struct {
	// Token is the session token (Welcome.Session) of the dropped session.
	Token string
	// Offset is the offset of the last message the client received, in
	// any room; HasOffset false means it did not say, and the position
	// when the session dropped is used (messages in flight then are lost).
	Offset    uint64
	HasOffset bool
	// AllOrNothing resumes only when every room's gap is recovered
	// (Socket.IO, whose recovery is one flag); otherwise rooms that cannot
	// be are re-joined and reported as not recovered.
	AllOrNothing bool
}

// record is a dropped session kept for recovery.
type record struct {
	id, nick string
	// holder is the user of the token the session was opened with ("" if
	// anonymous): only a connection of the same may resume it. user is the
	// user in force, which the backend's connect answer may have set.
	holder, user string
	// data is what the backend's connect answer stored on the connection
	// (its events carry it); a resumed session is not asked again.
	data    json.RawMessage
	rooms   []string
	offset  uint64 // the log's last offset at the close
	epoch   string // the log's epoch at the close
	expires int64  // Unix nanoseconds
}

// Defaults of recovery bounds.
const (
	DefaultMaxRecords = 100_000
	DefaultMaxReplay  = 1 << 20
)

// records holds dropped sessions until they are resumed or expire. Records
// are added in time order with one window, so the oldest is the next to
// expire: order is a FIFO of ids, and ids whose record was taken (or
// replaced) are skipped when they reach its head.
type records struct {
	mu    sync.Mutex
	m     map[string]*record
	order []*record
	max   int
}

func (rs *records) init(max int) {
	if max <= 0 {
		max = DefaultMaxRecords
	}
	rs.m = make(map[string]*record)
	rs.max = max
}

// put keeps r, dropping expired records and, past the bound, the oldest.
func (rs *records) put(r *record, now int64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.expire(now)
	for len(rs.m) >= rs.max && len(rs.order) > 0 {
		rs.pop()
	}
	rs.m[r.id] = r
	rs.order = append(rs.order, r)
	if len(rs.order) > 2*len(rs.m)+64 {
		live := rs.order[:0]
		for _, o := range rs.order {
			if rs.m[o.id] == o {
				live = append(live, o)
			}
		}
		clear(rs.order[len(live):])
		rs.order = live
	}
}

// take removes and returns the live record of id if user may have it
// (the record's own user), nil otherwise: a stolen token presented by
// another user does not use up the record.
func (rs *records) take(id, user string, now int64) *record {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.expire(now)
	r := rs.m[id]
	if r == nil || r.holder != user {
		return nil
	}
	delete(rs.m, id)
	return r
}

// drop forgets the record of id, if any.
func (rs *records) drop(id string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.m, id)
}

// expire drops records past their window. Lock held.
func (rs *records) expire(now int64) {
	for len(rs.order) > 0 && rs.order[0].expires <= now {
		rs.pop()
	}
}

// pop drops the oldest record. Lock held.
func (rs *records) pop() {
	o := rs.order[0]
	rs.order[0] = nil
	rs.order = rs.order[1:]
	if rs.m[o.id] == o {
		delete(rs.m, o.id)
	}
}

// Recovering reports whether dropped sessions can be resumed.
func (h *Hub) Recovering() bool { return h.cfg.RecoveryWindow > 0 }

// SessionToken returns the token that resumes s after a drop ("" when
// recovery is off): s's id and an HMAC of it under the recovery key. It
// allocates only the token's text (a handshake's garbage raises an idle
// gateway's high-water mark, hence its RSS).
func (h *Hub) SessionToken(s *Session) string {
	if !h.Recovering() {
		return ""
	}
	var buf [96]byte
	return string(h.appendSessionToken(buf[:0], s))
}

// appendSessionToken appends SessionToken(s) to dst (nothing when
// recovery is off).
func (h *Hub) appendSessionToken(dst []byte, s *Session) []byte {
	if !h.Recovering() {
		return dst
	}
	dst = append(dst, s.id...)
	dst = append(dst, '.')
	return h.appendTokenMAC(dst, s.id)
}

// tokenMAC is a keyed HMAC-SHA256 state with its scratch (Hub.macs).
type tokenMAC struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

var tokenMACPrefix = []byte("chatgate session\x00")

// tokenMACLen is the length of a token's MAC text: 18 bytes of the
// HMAC in unpadded base64url.
const tokenMACLen = 24

// appendTokenMAC appends the MAC text of id to dst.
func (h *Hub) appendTokenMAC(dst []byte, id string) []byte {
	m := h.macs.Get().(*tokenMAC)
	m.h.Reset()
	m.h.Write(tokenMACPrefix)
	m.buf = append(m.buf[:0], id...)
	m.h.Write(m.buf)
	dst = base64.RawURLEncoding.AppendEncode(dst, m.h.Sum(m.sum[:0])[:18])
	if cap(m.buf) <= 512 {
		h.macs.Put(m)
	}
	return dst
}

// tokenID returns the connection id a session token names, if its MAC is
// right.
func (h *Hub) tokenID(token string) (string, bool) {
	i := strings.LastIndexByte(token, '.')
	if i <= 0 || len(token) > 512 {
		return "", false
	}
	id, sum := token[:i], token[i+1:]
	var buf [tokenMACLen]byte
	if !hmac.Equal([]byte(sum), h.appendTokenMAC(buf[:0], id)) {
		return "", false
	}
	return id, true
}

// newRecoveryKey is the key of a node that was given none: tokens then
// resume sessions of this process only.
func newRecoveryKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// recoverable reports whether a session that closed for reason (a close
// reason label, metrics.CloseReason) may be resumed: a drop, a timeout, a
// shutdown or a slow network, but not a close the client asked for
// (1000, or leaving the Socket.IO namespace), the server's disconnect, an
// expired token, or a protocol violation.
func recoverable(reason string) bool {
	switch reason {
	case "1000", "server", "expired", "rate_limited", "bad_packet",
		"1002", "1003", "1007", "1008", "1009", "http":
		return false
	}
	return true
}

// keep records s, which is closing, for recovery; offset is the log's
// position before s left its rooms.
func (h *Hub) keep(s *Session, offset uint64) {
	if !h.Recovering() || !recoverable(s.closeReason()) {
		return
	}
	r := &record{id: s.id, holder: s.ident.User(), user: s.User(), nick: s.Nick(), offset: offset,
		rooms: s.Rooms()}
	if s.calls != nil {
		r.data = s.calls.data
	}
	h.putRecord(r)
	h.cfg.Metrics.RecoveryKept()
}

// putRecord keeps r for the recovery window, under the history's epoch.
func (h *Hub) putRecord(r *record) {
	if h.hist != nil {
		r.epoch = h.hist.Epoch()
	}
	now := h.cfg.Now()
	r.expires = now.Add(h.cfg.RecoveryWindow).UnixNano()
	h.recs.put(r, now.UnixNano())
}

// Resume opens a session for a client that presents a session token, on
// its loop: when the token is genuine, its record is still kept, the
// identity is the same user and the id is free, the session gets the old
// id, nickname and rooms (joined again under the token's rules, with
// presence). It returns the session and its replay: per room what the
// client missed (see Recovered), as payloads the caller writes to the
// client right after the welcome, in the same turn of the loop — so that
// nothing, neither a live message (which the loop's mailbox delivers
// later) nor a reply, comes between them — and then releases. It returns
// a nil session when the session cannot be resumed; the caller then opens
// a new one (Open) and tells the client it was not recovered.
func (h *Hub) Resume(peer Peer, loop, kind int, ident *auth.Identity, rq ResumeRequest) (*Session, []*payload.Shared) {
	if !h.Recovering() {
		return nil, nil
	}
	id, ok := h.tokenID(rq.Token)
	if !ok {
		h.cfg.Metrics.RecoveryFailed()
		return nil, nil
	}
	now := h.cfg.Now()
	if h.sessions.get([]byte(id)) != nil {
		h.cfg.Metrics.RecoveryFailed()
		return nil, nil // still open here: a token used twice at once
	}
	if h.broker != nil {
		if _, live := h.broker.NodeOf([]byte(id)); live {
			h.cfg.Metrics.RecoveryFailed()
			return nil, nil // still open on another node
		}
	}
	rec := h.recs.take(id, ident.User(), now.UnixNano())
	if rec == nil {
		h.cfg.Metrics.RecoveryFailed()
		return nil, nil
	}
	after := rec.offset
	if rq.HasOffset {
		after = rq.Offset
	}
	s := &Session{id: rec.id, loop: int32(loop), kind: uint8(kind), peer: peer, ident: ident}
	s.nick.Store(rec.nick)
	if rec.user != rec.holder {
		u := rec.user // set by the backend's connect answer
		s.user.Store(&u)
	}
	if len(rec.data) > 0 {
		s.calls = &calls{data: rec.data}
	}
	if h.hist != nil {
		h.hist.Lock()
		defer h.hist.Unlock()
	}
	replays := make([]Recovered, 0, len(rec.rooms))
	complete := true
	budget := h.maxReplay() // for all rooms: the replay must fit -max-pending
	for _, room := range rec.rooms {
		rv := h.missed([]byte(room), rec.epoch, after, &budget)
		complete = complete && rv.OK
		replays = append(replays, rv)
	}
	if rq.AllOrNothing && !complete {
		h.cfg.Metrics.RecoveryFailed()
		return nil, nil
	}
	h.sessions.put(s)
	h.users.add(s)
	h.open.Add(1)
	if h.broker != nil {
		h.broker.Opened(s.id, s.Nick(), s.User())
	}
	codec := h.cfg.Codecs[kind]
	var out []*payload.Shared
	for i := range replays {
		rv := &replays[i]
		req := Request{Op: OpJoin, Room: rv.Room, HasRoom: true}
		var r Reply
		if h.join(s, &req, &r, false, h.hist != nil) != nil {
			continue // the token no longer allows it, or -max-rooms
		}
		out = appendReplay(out, codec, rv)
	}
	h.cfg.Metrics.RecoveryDone()
	return s, out
}

// missed reads what a resumed client missed in room after offset, from a
// log of epoch, within budget bytes (which it reduces). History lock held.
func (h *Hub) missed(room []byte, epoch string, after uint64, budget *int) Recovered {
	rv := Recovered{Room: room}
	if h.hist == nil {
		return rv
	}
	pos := h.hist.PositionLocked(room)
	if epoch != h.hist.Epoch() {
		rv.Position = pos
		return rv
	}
	msgs, pos, err := h.readMissed(room, Position{Offset: after, Epoch: pos.Epoch}, pos)
	rv.Position = pos
	if err != nil {
		return rv
	}
	size := 0
	for i := range msgs {
		size += len(msgs[i].Data) + 128
		for _, a := range msgs[i].Attachments {
			size += len(a)
		}
	}
	if size > *budget {
		return rv // more than the connection may have queued: reload instead
	}
	*budget -= size
	rv.OK, rv.Messages = true, msgs
	return rv
}

func (h *Hub) maxReplay() int {
	if h.cfg.MaxReplay > 0 {
		return h.cfg.MaxReplay
	}
	return DefaultMaxReplay
}

// appendReplay appends one room's recovery for codec to out: one payload
// when the codec has a recovered event (native), else each missed message
// as it would have arrived (Socket.IO).
func appendReplay(out []*payload.Shared, codec Codec, rv *Recovered) []*payload.Shared {
	if p := payloadFor(codec, rv); p != nil {
		return append(out, p)
	}
	for i := range rv.Messages {
		out = append(out, encodeMessage(codec, &rv.Messages[i]))
	}
	return out
}

// ParseOffset reads a client's offset: decimal digits, as the gateway
// writes them (Socket.IO's offset argument is a string).
func ParseOffset(s []byte) (uint64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s), 10, 64)
	return n, err == nil
}
