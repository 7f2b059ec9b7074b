package socketio

import (
	"bytes"
	"strconv"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// DecodeEvent maps a chat event, an EVENT or BINARY_EVENT on namespace "/"
// that ParsePacket accepted, to req, which it resets first. attachments are
// the binary messages that followed a BINARY_EVENT, in order (nil for an
// EVENT). The events, in socket.io-client terms, are
//
//	emit("nick", name, ack)                 → chat.OpNick, req.Name
//	emit("join", room, ack)                 → chat.OpJoin, req.Room
//	emit("leave", room, ack)                → chat.OpLeave, req.Room
//	emit("members", room, ack)              → chat.OpMembers, req.Room
//	emit("members", room, {limit, cursor}, ack)
//	                                        → chat.OpMembers, req.Room, req.Limit, req.Cursor
//	emit("message", {room, data}, ack)      → chat.OpSend, req.Room, req.Data
//	emit("message", {to: id, data}, ack)    → chat.OpSend, req.To, req.Data
//	emit("rooms", ack)                      → chat.OpRooms
//	emit("rooms", {limit, cursor}, ack)     → chat.OpRooms, req.Limit, req.Cursor
//	emit("ping", ack)                       → chat.OpPing
//	emit("history", room, {since, limit}, ack)
//	                                        → chat.OpHistory, req.Room, req.Since, req.Limit
//
// with the Has flags set for the fields present. Arguments after the ones
// listed are ignored, as are keys of the message object other than "room",
// "to" and "data"; with duplicate keys the last one wins. A message may
// carry both "room" and "to" (the hub gives "to" precedence). "data" may be
// any JSON value; it is passed on raw, with req.Attachments set to
// attachments when there are any.
//
// A list's options object is read as chat.Request.SetList reads "limit"
// and "cursor" (both optional); an options argument that is not an object
// is ignored, as it was before lists had options.
//
// req.ID is the packet's ack id as decimal digits without leading zeros
// (e.g. "12"), nil when the client asked for no acknowledgement; Codec's
// AppendReply writes it back in the ACK.
//
// Errors come in two kinds. Protocol errors, after which the transport
// closes the connection: ErrNotEvent, ErrOtherNamespace, ErrAttachments
// (len(attachments) is not p.Attachments) and ErrPlaceholder (the payload's
// placeholders are not 0..p.Attachments-1). Request errors, *chat.Error
// sentinels that become an error ack while the connection stays open:
// chat.ErrUnknownType for an event name not listed above, then
// chat.ErrMissingName, chat.ErrMissingRoom, chat.ErrMissingDest or
// chat.ErrMissingData for an argument absent or of the wrong JSON kind
// (for a message: a non-object argument or one without "room" and "to" is
// ErrMissingDest, a non-string "room" ErrMissingRoom, a non-string "to"
// ErrMissingDest), chat.ErrBadLimit or chat.ErrBadCursor for a list's
// options. A name, room, "to", "user" or event name that is not
// text (invalid UTF-8, or a lone surrogate escape) is refused rather than
// decoded to U+FFFD: chat.ErrNickText, chat.ErrRoomText or chat.ErrBadText
// (an event name, "to", "user"). req.ID is set before any request error is
// detected, and req.Op once the event name is known.
//
// Slices in req alias p.Data, and so the parsed message: they are valid as
// long as it is. Strings ("name", "room", "to") are unquoted; one with
// escape sequences is decoded into a new slice, and that is the only
// allocation.
// DecodeEvent trusts p to come from ParsePacket (p.Data valid JSON); on
// anything else it may fail or return odd slices but never panics. It is
// safe for concurrent use.
func DecodeEvent(p *Packet, attachments [][]byte, req *chat.Request) error {
	req.Reset()
	if p.Type != Event && p.Type != BinaryEvent {
		return ErrNotEvent
	}
	if !isRoot(p.Namespace) {
		return ErrOtherNamespace
	}
	if len(attachments) != p.Attachments {
		return ErrAttachments
	}
	if p.Type == BinaryEvent {
		if n, err := countPlaceholders(p.Data); err != nil || n != p.Attachments {
			return ErrPlaceholder
		}
	}
	if p.HasID {
		req.ID = p.rawID
		if req.ID == nil {
			// A Packet built by hand rather than by ParsePacket.
			req.ID = strconv.AppendInt(nil, p.ID, 10)
		}
	}

	d := p.Data
	i := jsontext.SkipSpace(d, 0)
	if i >= len(d) || d[i] != '[' {
		return ErrPayload
	}
	i = jsontext.SkipSpace(d, i+1)
	if i >= len(d) || d[i] != '"' {
		return ErrPayload
	}
	end := jsontext.SkipString(d, i)
	if end < 0 {
		return ErrPayload
	}
	op := lookupOp(d[i+1 : end-1])
	if op == chat.OpInvalid {
		// An application event: the backend's (-proxy-event-url), or
		// unknown_type when there is none. Built-in names win.
		req.Op = chat.OpRPC
		event, err := chat.UnquoteText(d[i:end])
		if err != nil {
			return err
		}
		req.Event = event
		req.Args = EventArgs(d, nil)
		req.Attachments = attachments
		return nil
	}
	req.Op = op

	// The first argument after the name, if any.
	arg, argEnd := nextArg(d, end)

	switch op {
	case chat.OpNick:
		if !jsontext.IsString(arg) {
			return chat.ErrMissingName
		}
		name, err := chat.UnquoteName(arg)
		if err != nil {
			return err
		}
		req.Name, req.HasName = name, true

	case chat.OpJoin, chat.OpLeave, chat.OpMembers, chat.OpHistory:
		if !jsontext.IsString(arg) {
			return chat.ErrMissingRoom
		}
		room, err := chat.UnquoteRoom(arg)
		if err != nil {
			return err
		}
		req.Room, req.HasRoom = room, true
		if op == chat.OpMembers {
			opts, _ := nextArg(d, argEnd)
			if err := setList(req, opts); err != nil {
				return err
			}
		}
		if op == chat.OpHistory {
			// emit("history", room, {since: {offset, epoch}, limit}, ack)
			opts, _ := nextArg(d, argEnd)
			if len(opts) > 0 && opts[0] == '{' {
				var limit, since []byte
				jsontext.ScanObject(opts, 0, func(k, v []byte) {
					switch {
					case nameIs(k, "limit"):
						limit = v
					case nameIs(k, "since"):
						since = v
					}
				})
				if err := req.SetHistory(limit, since); err != nil {
					return err
				}
			}
		}

	case chat.OpRooms:
		if err := setList(req, arg); err != nil {
			return err
		}

	case chat.OpRefresh:
		// socket.emit("refresh", token) or socket.emit("refresh", {token}).
		if !jsontext.IsString(arg) {
			var f struct{ token []byte }
			jsontext.ScanObject(arg, 0, func(k, v []byte) {
				if nameIs(k, "token") {
					f.token = v
				}
			})
			arg = f.token
		}
		if !jsontext.IsString(arg) {
			return chat.ErrMissingToken
		}
		req.Token = jsontext.Unquote(arg)

	case chat.OpSend:
		var f sendFields
		if !f.scan(arg) {
			return chat.ErrMissingDest
		}
		if err := req.SetSend(f.room, f.to, f.user, f.data); err != nil {
			return err
		}
		if len(attachments) > 0 {
			// Only data travels on: every attachment must be referenced
			// from it, or recipients would get a packet whose binary
			// frames do not match its placeholders.
			if n, err := countPlaceholders(f.data); err != nil || n != len(attachments) {
				return ErrBinaryOutsideData
			}
			req.Attachments = attachments
		}
	}
	return nil
}

// nextArg returns the argument of the event array d that follows the
// value ending at i, and the index just past it; nil (and i) when there is
// none.
func nextArg(d []byte, i int) ([]byte, int) {
	if j := jsontext.SkipSpace(d, i); j < len(d) && d[j] == ',' {
		k := jsontext.SkipSpace(d, j+1)
		if e := jsontext.SkipValue(d, k); e > 0 {
			return d[k:e], e
		}
	}
	return nil, i
}

// setList reads a list's options object, {limit, cursor}, into req. Any
// other argument, or none, leaves the defaults.
func setList(req *chat.Request, opts []byte) *chat.Error {
	if len(opts) == 0 || opts[0] != '{' {
		return nil
	}
	var f listFields
	if jsontext.ScanObject(opts, 0, f.set) < 0 {
		return nil
	}
	return req.SetList(f.limit, f.cursor)
}

// listFields holds the raw values of a list's options.
type listFields struct {
	limit, cursor []byte
}

func (f *listFields) set(key, v []byte) {
	switch {
	case nameIs(key, "limit"):
		f.limit = v
	case nameIs(key, "cursor"):
		f.cursor = v
	}
}

// lookupOp maps the contents of the event name string (quotes removed,
// escapes still in) to its operation, or chat.OpInvalid.
func lookupOp(s []byte) chat.Op {
	if bytes.IndexByte(s, '\\') >= 0 {
		if len(s) > maxEscapedName {
			return chat.OpInvalid
		}
		var buf [3 * maxEscapedName]byte
		s = jsontext.AppendUnquoted(buf[:0], s)
	}
	// A switch on string(s) compiles to comparisons: no allocation.
	switch string(s) {
	case "nick":
		return chat.OpNick
	case "join":
		return chat.OpJoin
	case "leave":
		return chat.OpLeave
	case "message":
		return chat.OpSend
	case "rooms":
		return chat.OpRooms
	case "members":
		return chat.OpMembers
	case "ping":
		return chat.OpPing
	case "refresh":
		return chat.OpRefresh
	case "history":
		return chat.OpHistory
	}
	return chat.OpInvalid
}

// sendFields holds the raw values of the message object's keys, as
// subslices of the payload (strings keep their quotes). nil means absent.
type sendFields struct {
	room, to, user, data []byte
}

// slot returns where the value of the raw key goes, or nil for a key the
// message object does not use.
func (f *sendFields) slot(key []byte) *[]byte {
	switch string(key) {
	case "room":
		return &f.room
	case "to":
		return &f.to
	case "user":
		return &f.user
	case "data":
		return &f.data
	}
	if bytes.IndexByte(key, '\\') < 0 {
		return nil
	}
	switch {
	case nameIs(key, "room"):
		return &f.room
	case nameIs(key, "to"):
		return &f.to
	case nameIs(key, "user"):
		return &f.user
	case nameIs(key, "data"):
		return &f.data
	}
	return nil
}

// set records v as the value of the raw (still escaped) key, if the
// message object uses it.
func (f *sendFields) set(key, v []byte) {
	if s := f.slot(key); s != nil {
		*s = v
	}
}

// scan walks the object p and records the values of the keys it knows. It
// reports whether p is an object.
func (f *sendFields) scan(p []byte) bool {
	return jsontext.ScanObject(p, 0, f.set) >= 0
}

// Codec implements chat.Codec for Socket.IO clients on namespace "/". It
// has no state: the zero value is ready, and every method may be called
// from any goroutine at once. Each method appends one complete WebSocket
// text payload, Engine.IO message type included, to dst and returns the
// extended slice; it allocates only if dst must grow.
//
// Strings are escaped as by chat/native: '"', '\\' and control characters
// are escaped, '<', '>', '&', U+2028 and U+2029 too, and invalid UTF-8
// becomes U+FFFD. Raw JSON (Message.Data) is copied verbatim.
type Codec struct {
	// Offsets appends each room message's history offset as its last
	// argument, a string, as Socket.IO's connection state recovery does:
	// socket.io-client keeps the last one and sends it back when it
	// reconnects. Set it only when the CONNECT ack carries a pid
	// (recovery on), since only then does the client expect it.
	Offsets bool
}

var _ chat.Codec = Codec{}

// BinaryAttachments implements chat.Codec: Socket.IO carries a message's
// attachments as binary messages after its BINARY_EVENT.
func (Codec) BinaryAttachments() bool { return true }

// AppendWelcome implements chat.Codec by returning dst unchanged: a
// Socket.IO client learns its session id from the CONNECT answer
// (AppendConnect), which the transport sends as part of the handshake.
func (Codec) AppendWelcome(dst []byte, w *chat.Welcome) []byte { return dst }

// AppendRecovered implements chat.Codec by returning dst unchanged:
// Socket.IO has no recovered event; a recovered socket receives the
// packets it missed one by one (and sees socket.recovered).
func (Codec) AppendRecovered(dst []byte, r *chat.Recovered) []byte { return dst }

// AppendReply appends the acknowledgement of one request, an ACK whose
// payload is a one-element array:
//
//	nick:          43<id>[{"ok":true,"name":"alice"}]
//	join, leave:   43<id>[{"room":"lobby","count":2}] (a join with "offset" and "epoch" when history is on)
//	rooms:         43<id>[{"rooms":[{"room":"lobby","count":2}]}]
//	members:       43<id>[{"room":"lobby","members":[{"id":"…","nick":"alice"}]}]
//	(either list, when it continues on another page: …],"cursor":"…"}])
//	history:       43<id>[{"room":"lobby","messages":[{…,"offset":41}],"offset":42,"epoch":"…"}]
//	message, ping: 43<id>[{"ok":true}]
//	error:         43<id>[{"error":{"code":"not_member","message":"not a member of this room"}}]
//
// "rooms" and "members" are always arrays, [] when empty. When r.ID is
// empty the client asked for no acknowledgement and dst is returned
// unchanged. r.ID must be decimal digits, as DecodeEvent returns them.
func (Codec) AppendReply(dst []byte, r *chat.Reply) []byte {
	if len(r.ID) == 0 {
		return dst
	}
	dst = append(dst, byte(EIOMessage), byte(Ack))
	dst = append(dst, r.ID...)
	if r.Err == nil && r.Op == chat.OpRPC {
		// The backend's acknowledgement arguments, as they are.
		if len(r.Args) > 0 {
			return append(dst, r.Args...)
		}
		return append(dst, "[]"...)
	}
	dst = append(dst, '[')
	if r.Err != nil {
		dst = append(dst, `{"error":{"code":`...)
		dst = jsontext.AppendString(dst, r.Err.Code)
		dst = append(dst, `,"message":`...)
		dst = jsontext.AppendString(dst, r.Err.Message)
		return append(dst, `}}]`...)
	}
	switch r.Op {
	case chat.OpNick:
		dst = append(dst, `{"ok":true,"name":`...)
		dst = jsontext.AppendString(dst, r.Name)
	case chat.OpJoin, chat.OpLeave:
		dst = append(dst, `{"room":`...)
		dst = jsontext.AppendString(dst, chat.RoomName(r.Room))
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendInt(dst, int64(r.Count), 10)
		dst = appendPosition(dst, r.Position)
	case chat.OpHistory:
		dst = append(dst, `{"room":`...)
		dst = jsontext.AppendString(dst, chat.RoomName(r.Room))
		dst = append(dst, `,"messages":[`...)
		for i := range r.Messages {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendMessageObject(dst, &r.Messages[i], true)
		}
		dst = append(dst, ']')
		dst = appendPosition(dst, r.Position)
	case chat.OpRooms:
		dst = append(dst, `{"rooms":[`...)
		for i := range r.Rooms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"room":`...)
			_, name := chat.SplitRoomString(r.Rooms[i].Room)
			dst = jsontext.AppendString(dst, name)
			dst = append(dst, `,"count":`...)
			dst = strconv.AppendInt(dst, int64(r.Rooms[i].Count), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
		dst = appendCursor(dst, r.Cursor)
	case chat.OpMembers:
		dst = append(dst, `{"room":`...)
		dst = jsontext.AppendString(dst, chat.RoomName(r.Room))
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
	default:
		dst = append(dst, `{"ok":true`...)
	}
	return append(dst, '}', ']')
}

// AppendMessage appends a chat message for its recipients, the event
// "message" with one object argument:
//
//	42["message",{"room":"lobby","from":"<id>","nick":"alice","data":<raw>,"ts":1700000000000}]
//
// A direct message (m.Room empty) has no "room" key. m.Data is copied
// verbatim, null when empty. With attachments it is a BINARY_EVENT,
//
//	452-["message",{…,"data":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}],…}]
//
// whose m.Data already holds the placeholders; the hub sends the
// attachments after it as binary messages. This is the broadcast path,
// encoded once per room: with a reused dst it does not allocate.
//
// A message the application's backend sent with an event name (m.Event)
// is that event with m.Data as its one argument: 42["<event>",<data>].
func (c Codec) AppendMessage(dst []byte, m *chat.Message) []byte {
	nsp, _ := splitRoom(m.Room)
	dst = appendEventHeader(dst, nsp, len(m.Attachments))
	if m.EventArgs {
		// A backend's emit: 42["welcome",…args].
		dst = append(dst, '[')
		dst = jsontext.AppendString(dst, m.Event)
		a := m.Data
		if i := jsontext.SkipSpace(a, 1); len(a) > 0 && i < len(a) && a[i] != ']' {
			dst = append(dst, ',')
			dst = append(dst, a[i:len(a)-1]...) // the arguments, without the closing ']'
		}
		return c.appendOffset(dst, m)
	}
	if m.Event != "" {
		dst = append(dst, '[')
		dst = jsontext.AppendString(dst, m.Event)
		dst = append(dst, ',')
		if len(m.Data) > 0 {
			dst = append(dst, m.Data...)
		} else {
			dst = append(dst, "null"...)
		}
		return c.appendOffset(dst, m)
	}
	dst = append(dst, `["message",`...)
	dst = appendMessageObject(dst, m, false)
	return c.appendOffset(dst, m)
}

// appendOffset ends an event's argument array, with the message's offset
// as a last, string argument when offsets are on.
func (c Codec) appendOffset(dst []byte, m *chat.Message) []byte {
	if c.Offsets && m.Offset != 0 && len(m.Room) > 0 {
		dst = append(dst, `,"`...)
		dst = strconv.AppendUint(dst, m.Offset, 10)
		dst = append(dst, '"')
	}
	return append(dst, ']')
}

// appendMessageObject appends the object a "message" event carries:
//
//	{"room":"lobby","from":"<id>","nick":"alice","data":<raw>,"ts":1700000000000}
//
// with "offset" when the message has one (history on), and "event" and
// "args" in place of "data" for a backend's emit. inline writes binary
// attachments into the data as {"_binary":"<base64>"} (history replies,
// which no binary frames follow) instead of leaving the placeholders.
func appendMessageObject(dst []byte, m *chat.Message, inline bool) []byte {
	dst = append(dst, '{')
	if len(m.Room) > 0 {
		_, room := splitRoom(m.Room)
		dst = append(dst, `"room":`...)
		dst = jsontext.AppendString(dst, room)
		dst = append(dst, ',')
	}
	dst = append(dst, `"from":`...)
	dst = jsontext.AppendString(dst, m.From)
	dst = append(dst, `,"nick":`...)
	dst = jsontext.AppendString(dst, m.Nick)
	dst = appendUser(dst, m.User)
	if m.EventArgs {
		dst = append(dst, `,"event":`...)
		dst = jsontext.AppendString(dst, m.Event)
		dst = append(dst, `,"args":`...)
	} else {
		if m.Event != "" {
			dst = append(dst, `,"event":`...)
			dst = jsontext.AppendString(dst, m.Event)
		}
		dst = append(dst, `,"data":`...)
	}
	if len(m.Data) == 0 {
		dst = append(dst, "null"...)
	} else if len(m.Attachments) > 0 && inline {
		// History: no binary frames follow a reply, so the
		// attachments are inlined as {"_binary":"<base64>"}.
		mark := len(dst)
		out, err := InlineAttachments(dst, m.Data, m.Attachments)
		if err != nil {
			out = append(dst[:mark], m.Data...)
		}
		dst = out
	} else {
		dst = append(dst, m.Data...)
	}
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, m.TS, 10)
	if m.Offset != 0 {
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendUint(dst, m.Offset, 10)
	}
	return append(dst, '}')
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

// AppendMembership implements chat.Codec: the server joined the client to
// a room, or removed it from one (server API join/leave):
//
//	42["joined",{"room":"lobby","count":3,"offset":41,"epoch":"…"}]
//	42["left",{"room":"lobby","count":2}]
//
// A join carries the room's position when history is on.
func (Codec) AppendMembership(dst []byte, room []byte, joined bool, count int, pos chat.Position) []byte {
	nsp, room := splitRoom(room)
	dst = appendHeader(dst, Event, 0, nsp, 0, false)
	if joined {
		dst = append(dst, `["joined",{"room":`...)
	} else {
		dst = append(dst, `["left",{"room":`...)
	}
	dst = jsontext.AppendString(dst, room)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, int64(count), 10)
	if joined {
		dst = appendPosition(dst, pos)
	}
	return append(dst, '}', ']')
}

// AppendPresence appends a presence event for a room's members:
//
//	42["presence",{"room":"lobby","event":"join","id":"<id>","nick":"alice","count":3}]
func (Codec) AppendPresence(dst []byte, p *chat.Presence) []byte {
	nsp, room := splitRoom(p.Room)
	dst = appendHeader(dst, Event, 0, nsp, 0, false)
	dst = append(dst, `["presence",{"room":`...)
	dst = jsontext.AppendString(dst, room)
	dst = append(dst, `,"event":`...)
	dst = jsontext.AppendString(dst, string(p.Event))
	dst = append(dst, `,"id":`...)
	dst = jsontext.AppendString(dst, p.ID)
	dst = append(dst, `,"nick":`...)
	dst = jsontext.AppendString(dst, p.Nick)
	dst = appendUser(dst, p.User)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, int64(p.Count), 10)
	return append(dst, '}', ']')
}

// appendCursor appends `,"cursor":<cursor>` when a list continues.
func appendCursor(dst []byte, cursor string) []byte {
	if cursor == "" {
		return dst
	}
	dst = append(dst, `,"cursor":`...)
	return jsontext.AppendString(dst, cursor)
}

// appendUser appends `,"user":<user>` for an authenticated user.
func appendUser(dst []byte, user string) []byte {
	if user == "" {
		return dst
	}
	dst = append(dst, `,"user":`...)
	return jsontext.AppendString(dst, user)
}

// splitRoom splits a room key (chat.RoomKey) into the namespace of the
// packet (nil for "/", which the wire omits) and the room name the client
// knows. A room message, presence or membership event of another
// namespace goes out on that namespace: every member of a room key is in
// its namespace, so the packet is still encoded once per room.
func splitRoom(key []byte) (nsp, room []byte) {
	if i := bytes.IndexByte(key, chat.NamespaceSep); i >= 0 {
		return key[:i], key[i+1:]
	}
	return nil, key
}

// WithNamespace appends the Engine.IO message pkt (a Socket.IO packet
// this package encoded) to dst, on namespace nsp: with the namespace
// written after the packet type (and attachment count) when pkt has none
// and nsp is not "/". It is how a session of another namespace gets what
// was encoded for one connection without knowing it: replies, direct
// messages, the server's events to a client.
func WithNamespace(dst, pkt, nsp []byte) []byte {
	if isRoot(nsp) || len(pkt) < 2 || pkt[0] != byte(EIOMessage) {
		return append(dst, pkt...)
	}
	i := 2
	if PacketType(pkt[1]).binary() {
		for i < len(pkt) && pkt[i] != '-' {
			i++
		}
		i++ // past '-'
	}
	if i > len(pkt) || i < len(pkt) && pkt[i] == '/' {
		return append(dst, pkt...) // already on a namespace
	}
	dst = append(dst, pkt[:i]...)
	dst = append(dst, nsp...)
	dst = append(dst, ',')
	return append(dst, pkt[i:]...)
}
