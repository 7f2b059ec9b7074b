package chat

import "github.com/chatgate/chatgate/chat/internal/jsontext"

// Room history: every room message gets an offset from the node's history
// log (package history), which keeps the last messages of each room so
// that a client can ask what it missed (OpHistory) and a client that
// reconnects can get it back (recovery.go).
//
// Offsets come from one sequence per log, not one per room: they increase
// in every room, and one number says how far a client has read in all its
// rooms at once (Socket.IO's connection state recovery carries a single
// offset). Each room has its own epoch, derived from the log's: a position
// from another room, or from a log that lost its continuity (a restart of
// an in-memory log), does not match.

// Position is where a room's history stands, or where a client has read
// to: the offset of the last message (0: none) and the room's epoch.
type Position struct {
	Offset uint64
	Epoch  string
}

// History is a log of room messages. Package history implements it in
// memory.
//
// Lock and Unlock bracket an append together with the fan-out of the
// message, and a join together with the read of its position: offsets of
// a room reach every member in increasing order, and a joiner either gets
// a message live or finds it after its join offset, never neither. No
// other lock may be held when taking it except a loop's own state; room
// table locks are taken inside it.
//
// The methods named Locked, and Append, are called with the lock held.
type History interface {
	Lock()
	Unlock()
	// Append records room message m (m.Room set): m.Offset 0 gets the
	// log's next offset; a non-zero m.Offset (a message another node
	// sequenced) is kept as it is, and must be above every offset kept so
	// far. The log copies what it keeps: m's slices need to stay valid
	// only during the call.
	Append(m *Message)
	// PositionLocked returns the log's last offset and the epoch of room.
	PositionLocked(room []byte) Position
	// SinceLocked appends to dst the messages of room after position
	// since, oldest first, at most limit (limit ≤ 0: all that are kept),
	// and returns them with the room's current position. The messages
	// alias the log's copies and must not be modified; they stay valid
	// after Unlock. With since.Epoch empty it returns the newest messages
	// instead, still oldest first.
	//
	// It fails with ErrFutureOffset when since.Offset is past the log's
	// last offset, and with ErrUnrecoverable when since.Epoch is not the
	// room's or some message after since.Offset is no longer kept (the
	// room's current position is still returned).
	SinceLocked(room []byte, since Position, limit int, dst []Message) ([]Message, Position, *Error)
	// Epoch is the log's own epoch (rooms' epochs derive from it). Any
	// time, lock held or not.
	Epoch() string
}

// Errors of history requests.
var (
	ErrFutureOffset  = &Error{CodeBadOffset, "offset is past the room's last message"}
	ErrUnrecoverable = &Error{CodeUnrecoverable, "messages after that position are no longer kept"}
	ErrNoHistory     = &Error{CodeNoHistory, "history is off (-history-size 0)"}
	ErrBadOffset     = &Error{CodeBadOffset, `"offset" must be a non-negative integer`}
	ErrMissingSince  = &Error{CodeMissingField, `"since" needs "offset" and "epoch"`}
)

// History request limits: a page holds at most MaxHistoryLimit messages,
// DefaultHistoryLimit when the request names none.
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 1000
)

// history answers OpHistory: the messages of a room the session is in,
// after req.Since (or the newest), with the room's position.
func (h *Hub) history(s *Session, req *Request, r *Reply) *Error {
	if err := checkRoomKey(req.Room); err != nil {
		return err
	}
	if s.inRoom(req.Room) < 0 {
		return ErrNotMember
	}
	return h.historyOf(req, r)
}

// historyOf reads req's page of history into r; the caller has checked
// that the client may read the room.
func (h *Hub) historyOf(req *Request, r *Reply) *Error {
	if h.hist == nil {
		return ErrNoHistory
	}
	limit := req.Limit
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	since := req.Since
	if !req.HasSince {
		since = Position{}
	} else if since.Epoch == "" {
		return ErrMissingSince
	}
	h.hist.Lock()
	msgs, pos, err := h.hist.SinceLocked(req.Room, since, limit, r.Messages[:0])
	h.hist.Unlock()
	r.Room = req.Room
	r.Messages, r.Position = msgs, pos
	return err
}

// History returns a page of room's history for the server API: the
// messages after since (the newest when since.Epoch is ""), at most
// limit, with the room's position.
func (h *Hub) History(room []byte, since Position, limit int) ([]Message, Position, *Error) {
	if err := checkRoomKey(room); err != nil {
		return nil, Position{}, err
	}
	if limit > MaxHistoryLimit {
		return nil, Position{}, ErrBadLimit
	}
	req := Request{Op: OpHistory, Room: room, Limit: limit, Since: since, HasSince: since.Epoch != ""}
	var r Reply
	err := h.historyOf(&req, &r)
	return r.Messages, r.Position, err
}

// SetHistory fills a history request from the raw JSON values of "limit"
// and "since" ({"offset":N,"epoch":"…"}), nil when absent, the same way
// for every codec: limit as for lists (1 or more, lowered to
// MaxHistoryLimit), and an offset that is a non-negative integer or a
// string of digits (Socket.IO's offsets are strings).
func (req *Request) SetHistory(limit, since []byte) *Error {
	if err := req.SetList(limit, nil); err != nil {
		return err
	}
	if since == nil || string(since) == "null" {
		return nil
	}
	var off, ep []byte
	if jsontext.ScanObject(since, 0, func(k, v []byte) {
		switch string(k) {
		case "offset":
			off = v
		case "epoch":
			ep = v
		}
	}) < 0 || off == nil || !jsontext.IsString(ep) {
		return ErrMissingSince
	}
	if jsontext.IsString(off) {
		off = jsontext.Unquote(off)
	}
	n, ok := ParseOffset(off)
	if !ok {
		return ErrBadOffset
	}
	req.Since = Position{Offset: n, Epoch: string(jsontext.Unquote(ep))}
	req.HasSince = true
	return nil
}
