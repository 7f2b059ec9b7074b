package native

import (
	"strconv"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/internal/jsontext"
	"github.com/chatgate/chatgate/chat/socketio"
)

// Codec implements chat.Codec for the native protocol. It has no state: the
// zero value is ready, and every method may be called from any goroutine at
// once. Each method appends one complete payload to dst and returns the
// extended slice; it allocates only if dst must grow.
type Codec struct{}

var _ chat.Codec = Codec{}

// AppendWelcome appends the greeting sent once a connection is open:
//
//	{"type":"welcome","id":"<connection id>"}
//
// with `"user":"<sub>"` added for a connection that authenticated,
// `"session":"<token>"` when recovery is on (the token to resume with),
// and for a client that asked to resume, `"recovered":true|false`
// (true: the same id, nick and rooms) and the nick in force.
func (Codec) AppendWelcome(dst []byte, w *chat.Welcome) []byte {
	dst = append(dst, `{"type":"welcome","id":`...)
	dst = jsontext.AppendString(dst, w.ID)
	dst = appendUser(dst, w.User)
	if w.Session != "" {
		dst = append(dst, `,"session":`...)
		dst = jsontext.AppendString(dst, w.Session)
	}
	if w.Resumed {
		dst = append(dst, `,"recovered":`...)
		dst = strconv.AppendBool(dst, w.Recovered)
		if w.Nick != "" {
			dst = append(dst, `,"nick":`...)
			dst = jsontext.AppendString(dst, w.Nick)
		}
	}
	return append(dst, '}')
}

// AppendRecovered implements chat.Codec: after a resumed welcome, one per
// room of the session,
//
//	{"type":"recovered","room":"lobby","recovered":true,"messages":[<message>…],"offset":42,"epoch":"…"}
//
// with the messages missed, oldest first, each as the "message" event it
// would have been; or "recovered":false and no messages when the gap is no
// longer kept. "offset" and "epoch" are where the room stands now.
func (c Codec) AppendRecovered(dst []byte, r *chat.Recovered) []byte {
	dst = append(dst, `{"type":"recovered","room":`...)
	dst = jsontext.AppendString(dst, r.Room)
	dst = append(dst, `,"recovered":`...)
	dst = strconv.AppendBool(dst, r.OK)
	dst = c.appendMessages(dst, r.Messages, r.Position)
	return append(dst, '}')
}

// appendMessages appends `,"messages":[…],"offset":N,"epoch":"…"`: msgs as
// the "message" events they were, oldest first, and where the room stands.
func (c Codec) appendMessages(dst []byte, msgs []chat.Message, pos chat.Position) []byte {
	dst = append(dst, `,"messages":[`...)
	for i := range msgs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = c.AppendMessage(dst, &msgs[i])
	}
	dst = append(dst, ']')
	return appendPosition(dst, pos)
}

// appendPosition appends `,"offset":N,"epoch":"…"` when there is an epoch
// to report.
func appendPosition(dst []byte, p chat.Position) []byte {
	if p.Epoch == "" {
		return dst
	}
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendUint(dst, p.Offset, 10)
	dst = append(dst, `,"epoch":`...)
	return jsontext.AppendString(dst, p.Epoch)
}

// AppendReply appends the answer to one request. With r.Err set it is
//
//	{"type":"error","id":…,"code":"not_member","message":"not a member of this room"}
//
// and otherwise an ack whose fields depend on r.Op:
//
//	nick:    {"type":"ack","id":…,"name":"alice"}
//	join:    {"type":"ack","id":…,"room":"lobby","count":3,"offset":41,"epoch":"…"}
//	leave:   {"type":"ack","id":…,"room":"lobby","count":2}
//	rooms:   {"type":"ack","id":…,"rooms":[{"room":"lobby","count":3}]}
//	members: {"type":"ack","id":…,"room":"lobby","members":[{"id":"…","nick":"alice"}]}
//	history: {"type":"ack","id":…,"room":"lobby","messages":[<message>…],"offset":42,"epoch":"…"}
//	send, ping and anything else: {"type":"ack","id":…}
//
// "id" is omitted when r.ID is empty; otherwise r.ID is copied verbatim, so
// it must be raw JSON as Decode returns it (a number or a string). "rooms"
// and "members" are always arrays, [] when empty; "nick" is always present,
// "" for a member without a nickname. A rooms or members ack whose list
// continues on another page ends with `,"cursor":"<r.Cursor>"`. A join
// carries the room's position (offset and epoch) when history is on.
func (c Codec) AppendReply(dst []byte, r *chat.Reply) []byte {
	if r.Err != nil {
		dst = append(dst, `{"type":"error"`...)
		dst = appendID(dst, r.ID)
		dst = append(dst, `,"code":`...)
		dst = jsontext.AppendString(dst, r.Err.Code)
		dst = append(dst, `,"message":`...)
		dst = jsontext.AppendString(dst, r.Err.Message)
		return append(dst, '}')
	}
	dst = append(dst, `{"type":"ack"`...)
	dst = appendID(dst, r.ID)
	switch r.Op {
	case chat.OpRPC:
		dst = append(dst, `,"args":`...)
		if len(r.Args) > 0 {
			dst = append(dst, r.Args...)
		} else {
			dst = append(dst, "[]"...)
		}
	case chat.OpNick:
		dst = append(dst, `,"name":`...)
		dst = jsontext.AppendString(dst, r.Name)
	case chat.OpJoin, chat.OpLeave:
		dst = append(dst, `,"room":`...)
		dst = jsontext.AppendString(dst, r.Room)
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendInt(dst, int64(r.Count), 10)
		dst = appendPosition(dst, r.Position)
	case chat.OpHistory:
		dst = append(dst, `,"room":`...)
		dst = jsontext.AppendString(dst, r.Room)
		dst = c.appendMessages(dst, r.Messages, r.Position)
	case chat.OpRooms:
		dst = append(dst, `,"rooms":[`...)
		for i := range r.Rooms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"room":`...)
			dst = jsontext.AppendString(dst, r.Rooms[i].Room)
			dst = append(dst, `,"count":`...)
			dst = strconv.AppendInt(dst, int64(r.Rooms[i].Count), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
		dst = appendCursor(dst, r.Cursor)
	case chat.OpMembers:
		dst = append(dst, `,"room":`...)
		dst = jsontext.AppendString(dst, r.Room)
		dst = append(dst, `,"members":[`...)
		for i := range r.Members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = jsontext.AppendString(dst, r.Members[i].ID)
			dst = append(dst, `,"nick":`...)
			dst = jsontext.AppendString(dst, r.Members[i].Nick)
			dst = appendUser(dst, r.Members[i].User)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
		dst = appendCursor(dst, r.Cursor)
	}
	return append(dst, '}')
}

// appendCursor appends `,"cursor":<cursor>` when a list continues.
func appendCursor(dst []byte, cursor string) []byte {
	if cursor == "" {
		return dst
	}
	dst = append(dst, `,"cursor":`...)
	return jsontext.AppendString(dst, cursor)
}

// AppendMessage appends a chat message for its recipients:
//
//	{"type":"message","room":"lobby","from":"<id>","nick":"alice","data":<raw>,"ts":1700000000000}
//
// A direct message (m.Room empty) has no "room" key. m.Data is copied
// verbatim; it must be one JSON value, as Decode returns it, and an empty
// m.Data is written as null so that the payload stays valid JSON. This is
// the broadcast path: it is encoded once per room and wire encoding, and
// with a reused dst it does not allocate.
func (Codec) AppendMessage(dst []byte, m *chat.Message) []byte {
	if m.EventArgs {
		// A backend's emit: {"type":"event","event":"welcome","args":[…]}.
		dst = append(dst, `{"type":"event","event":`...)
		dst = jsontext.AppendString(dst, m.Event)
		dst = append(dst, `,"args":`...)
		if len(m.Data) > 0 {
			dst = append(dst, m.Data...)
		} else {
			dst = append(dst, "[]"...)
		}
		if m.Offset != 0 {
			dst = append(dst, `,"offset":`...)
			dst = strconv.AppendUint(dst, m.Offset, 10)
		}
		return append(dst, '}')
	}
	dst = append(dst, `{"type":"message"`...)
	if len(m.Room) > 0 {
		dst = append(dst, `,"room":`...)
		dst = jsontext.AppendString(dst, m.Room)
	}
	dst = append(dst, `,"from":`...)
	dst = jsontext.AppendString(dst, m.From)
	dst = append(dst, `,"nick":`...)
	dst = jsontext.AppendString(dst, m.Nick)
	dst = appendUser(dst, m.User)
	dst = append(dst, `,"data":`...)
	if len(m.Attachments) > 0 {
		// A Socket.IO sender's binary payloads: the native protocol is
		// text only, so each placeholder becomes {"_binary":"<base64>"}.
		mark := len(dst)
		out, err := socketio.InlineAttachments(dst, m.Data, m.Attachments)
		if err != nil {
			out = append(dst[:mark], m.Data...)
		}
		dst = out
	} else if len(m.Data) > 0 {
		dst = append(dst, m.Data...)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, m.TS, 10)
	if m.Offset != 0 {
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendUint(dst, m.Offset, 10)
	}
	if m.Event != "" {
		dst = append(dst, `,"event":`...)
		dst = jsontext.AppendString(dst, m.Event)
	}
	return append(dst, '}')
}

// AppendMembership implements chat.Codec: the server joined the client to
// a room, or removed it from one (server API join/leave):
//
//	{"type":"joined","room":"lobby","count":3,"offset":41,"epoch":"…"}
//	{"type":"left","room":"lobby","count":2}
//
// A join carries the room's position when history is on.
func (Codec) AppendMembership(dst []byte, room []byte, joined bool, count int, pos chat.Position) []byte {
	if joined {
		dst = append(dst, `{"type":"joined","room":`...)
	} else {
		dst = append(dst, `{"type":"left","room":`...)
	}
	dst = jsontext.AppendString(dst, room)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, int64(count), 10)
	if joined {
		dst = appendPosition(dst, pos)
	}
	return append(dst, '}')
}

// AppendPresence appends a presence event for a room's members:
//
//	{"type":"presence","room":"lobby","event":"join","id":"<id>","nick":"alice","count":3}
func (Codec) AppendPresence(dst []byte, p *chat.Presence) []byte {
	dst = append(dst, `{"type":"presence","room":`...)
	dst = jsontext.AppendString(dst, p.Room)
	dst = append(dst, `,"event":`...)
	dst = jsontext.AppendString(dst, string(p.Event))
	dst = append(dst, `,"id":`...)
	dst = jsontext.AppendString(dst, p.ID)
	dst = append(dst, `,"nick":`...)
	dst = jsontext.AppendString(dst, p.Nick)
	dst = appendUser(dst, p.User)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, int64(p.Count), 10)
	return append(dst, '}')
}

// appendUser appends `,"user":<user>` for an authenticated user.
func appendUser(dst []byte, user string) []byte {
	if user == "" {
		return dst
	}
	dst = append(dst, `,"user":`...)
	return jsontext.AppendString(dst, user)
}

// appendID appends `,"id":<id>` when the request carried an id.
func appendID(dst, id []byte) []byte {
	if len(id) == 0 {
		return dst
	}
	dst = append(dst, `,"id":`...)
	return append(dst, id...)
}
