package chat

import "github.com/chatgate/chatgate/chat/internal/jsontext"

// Op is a chat operation requested by a client, independent of the wire
// codec that carried it.
type Op uint8

// Operations a client can request. Their wire names in the native protocol
// are given in docs/protocol.md.
const (
	OpInvalid Op = iota
	OpNick       // set the connection's nickname
	OpJoin       // join a room
	OpLeave      // leave a room
	OpSend       // send to a room or to one connection
	OpRooms      // list rooms with member counts
	OpMembers    // list the members of a room
	OpPing       // application-level heartbeat (browsers cannot send WebSocket pings)
	OpRPC        // an application event, handled by the backend (-proxy-event-url)
	OpRefresh    // a fresh token for the connection, before the old one expires
	OpHistory    // a room's messages after a position (History)
)

// String returns the native protocol's name of the operation.
func (o Op) String() string {
	switch o {
	case OpNick:
		return "nick"
	case OpJoin:
		return "join"
	case OpLeave:
		return "leave"
	case OpSend:
		return "send"
	case OpRooms:
		return "rooms"
	case OpMembers:
		return "members"
	case OpPing:
		return "ping"
	case OpRPC:
		return "rpc"
	case OpRefresh:
		return "refresh"
	case OpHistory:
		return "history"
	}
	return "invalid"
}

// Request is one decoded client request. Its byte slices alias the frame it
// was decoded from: they are valid only until the handler returns, which is
// what lets the read path decode without allocating.
type Request struct {
	Op Op
	// ID is the raw JSON of the request's "id" (a number or a string, quotes
	// included), or nil when the request carried none. Replies echo it byte
	// for byte.
	ID []byte
	// Name is the requested nickname (OpNick), unquoted.
	Name []byte
	// Room is the room name (OpJoin, OpLeave, OpMembers, OpSend to a room), unquoted.
	Room []byte
	// To is the target connection id (OpSend to one connection), unquoted.
	To []byte
	// User is the target user (OpSend to every connection of a user),
	// unquoted.
	User []byte
	// Data is the raw JSON value of "data" (OpSend), passed on without
	// re-encoding; nil when absent.
	Data []byte
	// Attachments are the binary payloads of a Socket.IO BINARY_EVENT that
	// Data refers to by placeholder; nil for the native protocol.
	Attachments [][]byte
	// Event is the application event's name (OpRPC), unquoted; Args its
	// arguments, a raw JSON array.
	Event, Args []byte
	// Token is a refreshed JWT (OpRefresh), unquoted.
	Token []byte
	// Limit is the page size a list asked for (OpRooms, OpMembers), 1 to
	// MaxListLimit, or 0 for DefaultListLimit; Cursor the unquoted cursor
	// of a previous reply, empty for the first page (see SetList).
	Limit  int
	Cursor []byte
	// Since is the position a history request starts after; HasSince
	// false asks for the newest messages.
	Since    Position
	HasSince bool
	// HasRoom, HasTo, HasUser and HasName tell whether the fields were
	// present at all, so that an empty string can be told apart from a
	// missing field.
	HasRoom, HasTo, HasUser, HasName bool

	// reply is the scratch reply of Hub.Handle and Hub.Fail: a Request is
	// reused per event loop, so replies cost no allocation.
	reply Reply
}

// Reset clears r for reuse.
func (r *Request) Reset() { *r = Request{} }

// RoomInfo is one entry of a room list.
type RoomInfo struct {
	Room  string
	Count int
}

// MemberInfo is one entry of a member list.
type MemberInfo struct {
	ID   string
	Nick string
	User string // authenticated user id (the token's sub), "" if anonymous
}

// Reply answers one request: an acknowledgement carrying the fields its
// operation defines, or an error.
type Reply struct {
	// ID echoes Request.ID (raw JSON), nil when the request had none.
	ID []byte
	Op Op
	// Err, when set, makes this an error reply and the other fields are ignored.
	Err *Error

	Name    string       // OpNick: the nickname now in effect
	Room    []byte       // OpJoin, OpLeave, OpMembers
	Count   int          // OpJoin, OpLeave: members after the change
	Rooms   []RoomInfo   // OpRooms
	Members []MemberInfo // OpMembers
	// Cursor, for OpRooms and OpMembers, is where the next page starts
	// (EncodeCursor); "" when the list is complete.
	Cursor string
	// Args are the arguments of an application event's acknowledgement
	// (OpRPC), a raw JSON array; nil means none ([]).
	Args []byte
	// Messages are a history request's messages, oldest first (OpHistory).
	Messages []Message
	// Position is where the room's history stands: after a join (OpJoin,
	// when history is on) and with a history request's messages
	// (OpHistory). Its Epoch is "" when there is none to report.
	Position Position
}

// Message is a chat message as delivered to a recipient: to a room's other
// members, or to one connection when Room is empty.
type Message struct {
	Room []byte // empty for a direct message
	From string // sender's connection id
	Nick string // sender's nickname at the time of sending ("" if none)
	User string // sender's authenticated user id, "" if anonymous
	Data []byte // the sender's raw JSON, byte for byte
	TS   int64  // server time of acceptance, Unix milliseconds
	// Attachments are binary payloads that Data refers to by Socket.IO
	// placeholders ({"_placeholder":true,"num":i}). Codecs that carry
	// binary frames send them after the message; others inline them.
	Attachments [][]byte
	// Event, when set, names the event of a message the application's
	// backend sent (server API): Socket.IO clients get that event with
	// Data as its one argument instead of "message".
	Event string
	// Except is a connection the message is not for (a backend's emit
	// with except_self) when it travels through a Sequencer: the node
	// that has that connection skips it. "" for none; a client's message
	// skips its sender (From) instead.
	Except string
	// Offset is the message's place in the room's history (History): 0
	// for a direct message, or when history is off.
	Offset uint64
	// EventArgs makes the message an application event (a backend's emit):
	// Event with the arguments in Data, a raw JSON array. Native clients
	// get {"type":"event","event":…,"args":[…]}, Socket.IO clients the
	// event itself.
	EventArgs bool
}

// PresenceEvent names what happened to a room member.
type PresenceEvent string

// Presence events.
const (
	PresenceJoin  PresenceEvent = "join"
	PresenceLeave PresenceEvent = "leave"
)

// Presence tells a room's members that someone joined or left.
type Presence struct {
	Room  []byte
	Event PresenceEvent
	ID    string
	Nick  string
	User  string // authenticated user id, "" if anonymous
	Count int    // members after the change
}

// Codec turns replies and events into wire payloads. It is the only part
// that differs between the native JSON protocol and Socket.IO; the chat
// semantics in this package never look at bytes on the wire.
//
// Every Append method appends one complete payload (one WebSocket text
// message) to dst and returns the extended slice; returning dst unchanged
// means there is nothing to send (e.g. a Socket.IO reply to a request that
// asked for no acknowledgement). A codec whose wire carries binary frames
// reports it with BinaryAttachments: the message's attachments then follow
// its payload as binary frames. Implementations must be safe for concurrent
// use: encoders run on every event loop at once.
type Codec interface {
	BinaryAttachments() bool
	// AppendWelcome greets a client whose session opened (native
	// {"type":"welcome"}); a codec whose handshake carries the greeting
	// (Socket.IO's CONNECT ack) returns dst unchanged.
	AppendWelcome(dst []byte, w *Welcome) []byte
	AppendReply(dst []byte, r *Reply) []byte
	AppendMessage(dst []byte, m *Message) []byte
	AppendPresence(dst []byte, p *Presence) []byte
	// AppendMembership tells a client that the server joined it to room
	// (joined) or removed it from room: native {"type":"joined"|"left",
	// "room":…}, Socket.IO the "joined"/"left" event.
	// A join carries the room's history position (pos.Epoch "" when
	// history is off), as a join ack does.
	AppendMembership(dst []byte, room []byte, joined bool, count int, pos Position) []byte
	// AppendRecovered tells a resumed client what it missed in one room
	// (native {"type":"recovered"}). A codec without such an event
	// (Socket.IO) returns dst unchanged, and the missed messages are sent
	// one by one as they would have arrived.
	AppendRecovered(dst []byte, r *Recovered) []byte
}

// BinaryCodec is implemented by a Codec whose payloads are binary
// messages rather than text (Socket.IO's msgpack parser): transports send
// them in binary WebSocket frames and as binary long-polling packets.
type BinaryCodec interface {
	Codec
	BinaryPayloads() bool
}

// BinaryPayloads reports whether c's payloads are binary messages.
func BinaryPayloads(c Codec) bool {
	b, ok := c.(BinaryCodec)
	return ok && b.BinaryPayloads()
}

// SetSend fills req's destination and data from the raw JSON values of a
// send request — "room", "to", "user" and "data", nil when absent — the
// same way for every codec: a room, a target connection or a user (one at
// least) must be a JSON string, and data must be present; a room, "to" or
// "user" that is not text is refused (ErrRoomText, ErrBadText). It returns
// the error reply for a request that does not qualify.
func (req *Request) SetSend(room, to, user, data []byte) *Error {
	if room != nil {
		if !jsontext.IsString(room) {
			return ErrMissingRoom
		}
		r, err := UnquoteRoom(room)
		if err != nil {
			return err
		}
		req.Room, req.HasRoom = r, true
	}
	if to != nil {
		if !jsontext.IsString(to) {
			return ErrMissingDest
		}
		t, err := UnquoteText(to)
		if err != nil {
			return err
		}
		req.To, req.HasTo = t, true
	}
	if user != nil {
		if !jsontext.IsString(user) {
			return ErrMissingDest
		}
		u, err := UnquoteText(user)
		if err != nil {
			return err
		}
		req.User, req.HasUser = u, true
	}
	if !req.HasRoom && !req.HasTo && !req.HasUser {
		return ErrMissingDest
	}
	if data == nil {
		return ErrMissingData
	}
	req.Data = data
	return nil
}
