package native

import (
	"bytes"
	"encoding/json"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// Decode parses one frame payload into req, which it resets first.
//
// On success req.Op is set along with the fields that operation uses: Name
// and HasName (nick); Room and HasRoom (join, leave, members); Room/HasRoom
// and/or To/HasTo, and Data (send); Limit and Cursor (rooms, members: see
// chat.Request.SetList). req.ID is set whenever the request
// carried an id. The slices alias payload (see the package documentation for
// when they are copied instead).
//
// On failure Decode returns one of the *chat.Error sentinels: chat.ErrBadJSON
// (not valid JSON, not an object, or an "id" that is neither a number nor a
// string, as docs/protocol.md specifies), chat.ErrMissingType ("type"
// absent or not a string), chat.ErrUnknownType, chat.ErrMissingName,
// chat.ErrMissingRoom, chat.ErrMissingDest or chat.ErrMissingData (a required
// field absent or of the wrong JSON kind), chat.ErrBadLimit or
// chat.ErrBadCursor. They are checked in that order.
// A name, room, to, user or event that is not text — invalid UTF-8, or a
// surrogate escape not paired as RFC 8259 §7 writes characters outside
// the BMP — is refused rather than decoded to U+FFFD: chat.ErrNickText,
// chat.ErrRoomText (codes invalid_name, invalid_room) or chat.ErrBadText
// (bad_json) for the others.
// req.ID is still set if an id could be read, so that the error reply can
// echo it. For invalid JSON that is a best effort: the id the scan of the
// top-level object found before it gave up, kept only if that token is
// itself a valid JSON number or string, so the reply stays valid JSON. req.Op
// is set when the type was recognised. Other fields are unspecified.
//
// Decode is safe for concurrent use; it does not retain payload or req.
func Decode(payload []byte, req *chat.Request) error {
	req.Reset()
	var f fields
	scanned := f.scan(payload)
	// The scanner trusts the structure it walks, so json.Valid runs even
	// when the scan succeeded: it alone proves the payload is JSON.
	if !scanned || !json.Valid(payload) {
		if isIDToken(f.id) && json.Valid(f.id) {
			req.ID = f.id
		}
		return chat.ErrBadJSON
	}
	if f.id != nil {
		if !isIDToken(f.id) {
			// There is no id a client could match the reply with.
			return chat.ErrBadJSON
		}
		req.ID = f.id
	}
	if !jsontext.IsString(f.typ) {
		return chat.ErrMissingType
	}
	op := lookupOp(f.typ)
	if op == chat.OpInvalid {
		return chat.ErrUnknownType
	}
	req.Op = op

	switch op {
	case chat.OpNick:
		if !jsontext.IsString(f.name) {
			return chat.ErrMissingName
		}
		name, err := chat.UnquoteName(f.name)
		if err != nil {
			return err
		}
		req.Name, req.HasName = name, true

	case chat.OpJoin, chat.OpLeave, chat.OpMembers, chat.OpHistory:
		if !jsontext.IsString(f.room) {
			return chat.ErrMissingRoom
		}
		room, err := chat.UnquoteRoom(f.room)
		if err != nil {
			return err
		}
		req.Room, req.HasRoom = room, true
		if op == chat.OpMembers {
			if err := req.SetList(f.limit, f.cursor); err != nil {
				return err
			}
		}
		if op == chat.OpHistory {
			if err := req.SetHistory(f.limit, f.since); err != nil {
				return err
			}
		}

	case chat.OpRooms:
		if err := req.SetList(f.limit, f.cursor); err != nil {
			return err
		}

	case chat.OpSend:
		if err := req.SetSend(f.room, f.to, f.user, f.data); err != nil {
			return err
		}

	case chat.OpRefresh:
		if !jsontext.IsString(f.token) {
			return chat.ErrMissingToken
		}
		req.Token = jsontext.Unquote(f.token)

	case chat.OpRPC:
		if !jsontext.IsString(f.event) {
			return chat.ErrMissingEvent
		}
		event, err := chat.UnquoteText(f.event)
		if err != nil {
			return err
		}
		req.Event = event
		switch {
		case f.args == nil:
			req.Args = []byte("[]")
		case len(f.args) > 0 && f.args[0] == '[':
			req.Args = f.args
		default:
			return chat.ErrMissingArgs
		}
	}
	return nil
}

// fields holds the raw values of the keys Decode knows, as subslices of the
// payload (strings keep their quotes). nil means absent.
type fields struct {
	typ, id, name, room, to, user, data, event, args, token []byte
	limit, cursor, since                                    []byte
}

// slot returns where the value of the (unquoted) key goes, or nil for a key
// the protocol does not know.
func (f *fields) slot(key []byte) *[]byte {
	// switch on string(key) compiles to comparisons and does not allocate.
	switch string(key) {
	case "type":
		return &f.typ
	case "id":
		return &f.id
	case "name":
		return &f.name
	case "room":
		return &f.room
	case "to":
		return &f.to
	case "user":
		return &f.user
	case "data":
		return &f.data
	case "event":
		return &f.event
	case "args":
		return &f.args
	case "token":
		return &f.token
	case "limit":
		return &f.limit
	case "cursor":
		return &f.cursor
	case "since":
		return &f.since
	}
	return nil
}

// maxEscapedKey bounds the raw length of an escaped key or type worth
// unescaping: the longest name the protocol knows ("members") written
// entirely as \uXXXX escapes. Anything longer cannot match.
const maxEscapedKey = 6 * len("members")

// set records v as the value of the raw (still escaped) key.
func (f *fields) set(key, v []byte) {
	if s := f.slot(key); s != nil {
		*s = v
		return
	}
	if len(key) > maxEscapedKey || bytes.IndexByte(key, '\\') < 0 {
		return
	}
	// Unquoting at most triples the length (an invalid byte becomes the
	// three bytes of U+FFFD), so this buffer never grows and stays on the
	// stack.
	var buf [3 * maxEscapedKey]byte
	if s := f.slot(jsontext.AppendUnquoted(buf[:0], key)); s != nil {
		*s = v
	}
}

// scan walks the top-level object of p and records the known keys' values.
// It reports whether p looked like one object. It does not validate: on
// invalid input it may succeed or fail, but it never reads out of bounds.
func (f *fields) scan(p []byte) bool {
	end := jsontext.ScanObject(p, jsontext.SkipSpace(p, 0), f.set)
	return end >= 0 && jsontext.SkipSpace(p, end) == len(p)
}

// isIDToken reports whether raw starts like a JSON number or string.
func isIDToken(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	c := raw[0]
	return c == '"' || c == '-' || ('0' <= c && c <= '9')
}

// lookupOp maps the raw JSON string of "type" to its operation, or OpInvalid.
func lookupOp(raw []byte) chat.Op {
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		if len(s) > maxEscapedKey {
			return chat.OpInvalid
		}
		var buf [3 * maxEscapedKey]byte
		s = jsontext.AppendUnquoted(buf[:0], s)
	}
	switch string(s) {
	case "nick":
		return chat.OpNick
	case "join":
		return chat.OpJoin
	case "leave":
		return chat.OpLeave
	case "send":
		return chat.OpSend
	case "rooms":
		return chat.OpRooms
	case "members":
		return chat.OpMembers
	case "ping":
		return chat.OpPing
	case "rpc":
		return chat.OpRPC
	case "refresh":
		return chat.OpRefresh
	case "history":
		return chat.OpHistory
	}
	return chat.OpInvalid
}
