package socketio

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// PacketType is a Socket.IO v5 packet type. On the wire it is the packet's
// first byte, an ASCII digit, and the constants hold that byte
// (socket.io-protocol v5, "Exchange protocol").
type PacketType byte

// Socket.IO v5 packet types.
const (
	Connect      PacketType = '0' // CONNECT: join a namespace; the server answers with the sid
	Disconnect   PacketType = '1' // DISCONNECT: leave a namespace
	Event        PacketType = '2' // EVENT: ["name", args...]
	Ack          PacketType = '3' // ACK: [results...] for the event with the same id
	ConnectError PacketType = '4' // CONNECT_ERROR: {"message": ...}
	BinaryEvent  PacketType = '5' // BINARY_EVENT: EVENT whose attachments follow as binary messages
	BinaryAck    PacketType = '6' // BINARY_ACK: ACK whose attachments follow as binary messages
)

// String returns the packet type's name in the specification.
func (t PacketType) String() string {
	switch t {
	case Connect:
		return "CONNECT"
	case Disconnect:
		return "DISCONNECT"
	case Event:
		return "EVENT"
	case Ack:
		return "ACK"
	case ConnectError:
		return "CONNECT_ERROR"
	case BinaryEvent:
		return "BINARY_EVENT"
	case BinaryAck:
		return "BINARY_ACK"
	}
	return "INVALID"
}

// binary reports whether packets of type t carry an attachment count.
func (t PacketType) binary() bool { return t == BinaryEvent || t == BinaryAck }

// Packet is one decoded Socket.IO packet. ParsePacket fills it without
// allocating: its slices alias the parsed bytes and are valid as long as
// they are.
type Packet struct {
	Type PacketType
	// Attachments is the number of binary messages that follow a
	// BINARY_EVENT or BINARY_ACK; 0 for the other types.
	Attachments int
	// Namespace is the namespace, "/" when the packet names none. The "/"
	// is shared by all packets and must not be modified.
	Namespace []byte
	// ID is the ack id; HasID tells whether the packet carries one.
	ID    int64
	HasID bool
	// Data is the raw JSON payload, nil when the packet has none.
	Data []byte

	// rawID is the ack id's digits without leading zeros, for DecodeEvent.
	rawID []byte
}

// rootNamespace is the main namespace. Its capacity is its length, so an
// append by a careless caller reallocates instead of writing past it.
var rootNamespace = []byte("/")[:1:1]

// isRoot reports whether nsp is the main namespace, which the wire omits;
// an empty nsp counts as "/".
func isRoot(nsp []byte) bool { return len(nsp) == 0 || len(nsp) == 1 && nsp[0] == '/' }

// minPlaceholderLen is the length of the shortest placeholder object,
// {"_placeholder":true,"num":0}. A payload of n bytes has room for at most
// n/minPlaceholderLen placeholders, which bounds the attachment count a
// packet can honestly announce.
const minPlaceholderLen = len(`{"_placeholder":true,"num":0}`)

// ParsePacket parses one Socket.IO packet, the data of an Engine.IO
// message packet (what follows the '4' of a WebSocket text message), into
// p, which it resets first. The format is (socket.io-protocol v5, "Packet
// encoding")
//
//	<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
//
// and ParsePacket checks it strictly, since the protocol says a malformed
// packet closes the connection:
//   - the type is '0'..'6' (ErrPacketType);
//   - BINARY_EVENT and BINARY_ACK, and only they, start with a decimal
//     attachment count and '-', and the count is no more than the payload
//     has room for placeholders (ErrAttachments; on other types the digits
//     read as an ack id and the '-' fails the payload);
//   - a namespace starts with '/' and ends at the first ',', or at the end
//     of a packet that has nothing after it (ErrNamespace);
//   - the ack id fits an int64; ACK and BINARY_ACK must have one, CONNECT,
//     DISCONNECT and CONNECT_ERROR must not (ErrAckID);
//   - the payload is valid JSON (ErrJSON) of the kind the type requires
//     (ErrPayload): CONNECT an object or nothing; DISCONNECT nothing;
//     CONNECT_ERROR an object; EVENT and BINARY_EVENT a non-empty array
//     whose first element, the event name, is a string; ACK and BINARY_ACK
//     an array. The payload must start right after the header, without
//     whitespace.
//
// Binary placeholders are not checked here; see CountPlaceholders. On error
// p's fields are unspecified. ParsePacket is safe for concurrent use and
// does not allocate (encoding/json's Valid pools its scanner).
func ParsePacket(b []byte, p *Packet) error {
	*p = Packet{Namespace: rootNamespace}
	if len(b) == 0 {
		return ErrEmpty
	}
	p.Type = PacketType(b[0])
	if p.Type < Connect || p.Type > BinaryAck {
		return ErrPacketType
	}
	i := 1
	if p.Type.binary() {
		n, j, ok := parseUint(b, i, math.MaxInt32)
		if !ok || j >= len(b) || b[j] != '-' {
			return ErrAttachments
		}
		p.Attachments, i = int(n), j+1
	}
	if i < len(b) && b[i] == '/' {
		j := i + 1
		for j < len(b) && b[j] != ',' {
			j++
		}
		if j == len(b) {
			// A namespace that ends the packet needs no ',': "40/custom"
			// and "41/custom" are what the official test suite sends.
			p.Namespace = b[i:j]
			return p.check()
		}
		p.Namespace, i = b[i:j], j+1
	}
	if i < len(b) && '0' <= b[i] && b[i] <= '9' {
		n, j, ok := parseUint(b, i, math.MaxInt64)
		if !ok {
			return ErrAckID
		}
		// Leading zeros are legal on the wire ("012" is 12) but not in
		// JSON: keep the canonical digits so that the id DecodeEvent
		// hands out is a valid JSON number.
		k := i
		for k < j-1 && b[k] == '0' {
			k++
		}
		p.ID, p.HasID, p.rawID, i = int64(n), true, b[k:j], j
	}
	if i < len(b) {
		p.Data = b[i:]
	}
	return p.check()
}

// check applies the per-type rules of ParsePacket to the header fields and
// the payload.
func (p *Packet) check() error {
	switch p.Type {
	case Ack, BinaryAck:
		if !p.HasID {
			return ErrAckID
		}
	case Connect, Disconnect, ConnectError:
		if p.HasID {
			return ErrAckID
		}
	}
	var want byte // the payload's first byte; 0 means no payload
	switch p.Type {
	case Connect:
		if p.Data == nil {
			return nil
		}
		want = '{'
	case Disconnect:
		if p.Data != nil {
			return ErrPayload
		}
		return nil
	case ConnectError:
		want = '{'
	default:
		want = '['
	}
	if len(p.Data) == 0 || p.Data[0] != want {
		return ErrPayload
	}
	if !json.Valid(p.Data) {
		return ErrJSON
	}
	if p.Type.binary() && p.Attachments > len(p.Data)/minPlaceholderLen {
		return ErrAttachments
	}
	if p.Type == Event || p.Type == BinaryEvent {
		// The array is valid JSON: its first element, if any, is right
		// after the bracket and optional whitespace.
		if j := jsontext.SkipSpace(p.Data, 1); p.Data[j] != '"' {
			return ErrPayload
		}
	}
	return nil
}

// EventName returns the raw event name of an EVENT or BINARY_EVENT packet
// that ParsePacket accepted: the first array element with its quotes and
// escapes, a subslice of p.Data. It returns nil for other packets.
func (p *Packet) EventName() []byte {
	if p.Type != Event && p.Type != BinaryEvent || len(p.Data) == 0 || p.Data[0] != '[' {
		return nil
	}
	i := jsontext.SkipSpace(p.Data, 1)
	if i >= len(p.Data) || p.Data[i] != '"' {
		return nil
	}
	end := jsontext.SkipString(p.Data, i)
	if end < 0 {
		return nil
	}
	return p.Data[i:end]
}

// The encoders below append one whole WebSocket text payload to dst: the
// Engine.IO message type '4' followed by the Socket.IO packet. They return
// the extended slice, allocate only if dst must grow, and are safe for
// concurrent use. A nsp that is empty or "/" is the main namespace and is
// left out; any other is written as is, followed by ','. It must start
// with '/' and hold no ',' (as every Namespace from ParsePacket does).

// appendHeader appends '4' and the packet header: type, attachment count
// for binary types, namespace, and ack id when hasID.
func appendHeader(dst []byte, t PacketType, attachments int, nsp []byte, id int64, hasID bool) []byte {
	dst = append(dst, byte(EIOMessage), byte(t))
	if t.binary() {
		dst = strconv.AppendInt(dst, int64(attachments), 10)
		dst = append(dst, '-')
	}
	if !isRoot(nsp) {
		dst = append(dst, nsp...)
		dst = append(dst, ',')
	}
	if hasID {
		dst = strconv.AppendInt(dst, id, 10)
	}
	return dst
}

// AppendPacket appends p, prefixed with the Engine.IO message type, to
// dst: the inverse of ParsePacket. Attachments is written only for the
// binary types and ID only when HasID; Data is copied verbatim.
func AppendPacket(dst []byte, p *Packet) []byte {
	dst = appendHeader(dst, p.Type, p.Attachments, p.Namespace, p.ID, p.HasID)
	return append(dst, p.Data...)
}

// AppendConnect appends the server's answer to a CONNECT, accepting the
// client into nsp with the Socket.IO session id sid:
//
//	40{"sid":"abc"}
//	40/custom,{"sid":"abc"}
func AppendConnect(dst, nsp []byte, sid string) []byte {
	return AppendConnectPID(dst, nsp, sid, "")
}

// AppendConnectPID appends the CONNECT ack of a server with connection
// state recovery on: the sid and the private id (pid) the client sends
// back to recover the session, "40{"sid":"…","pid":"…"}". An empty pid
// is left out.
func AppendConnectPID(dst, nsp []byte, sid, pid string) []byte {
	dst = appendHeader(dst, Connect, 0, nsp, 0, false)
	dst = append(dst, `{"sid":`...)
	dst = jsontext.AppendString(dst, sid)
	if pid != "" {
		dst = append(dst, `,"pid":`...)
		dst = jsontext.AppendString(dst, pid)
	}
	return append(dst, '}')
}

// AppendConnectError appends the server's refusal of a CONNECT to nsp:
//
//	44{"message":"Invalid namespace"}
//	44/foo,{"message":"Invalid namespace"}
func AppendConnectError(dst, nsp []byte, message string) []byte {
	dst = appendHeader(dst, ConnectError, 0, nsp, 0, false)
	dst = append(dst, `{"message":`...)
	dst = jsontext.AppendString(dst, message)
	return append(dst, '}')
}

// AppendDisconnect appends a DISCONNECT from nsp: "41" or "41/custom,".
func AppendDisconnect(dst, nsp []byte) []byte {
	return appendHeader(dst, Disconnect, 0, nsp, 0, false)
}

// AppendEvent appends an event named name whose arguments are the raw JSON
// values args, copied verbatim:
//
//	42["message-back",1,"2"]
//
// With attachments > 0 it is a BINARY_EVENT announcing that many binary
// messages, which the caller sends next; the args must hold that many
// placeholders:
//
//	451-["event",{"_placeholder":true,"num":0}]
func AppendEvent(dst, nsp []byte, attachments int, name string, args ...[]byte) []byte {
	dst = appendEventHeader(dst, nsp, attachments)
	dst = append(dst, '[')
	dst = jsontext.AppendString(dst, name)
	for _, a := range args {
		dst = append(dst, ',')
		dst = append(dst, a...)
	}
	return append(dst, ']')
}

// AppendEventRaw appends an event whose payload, the JSON array of the
// name and the arguments, is given whole in rawArray and copied verbatim.
// attachments works as in AppendEvent. To forward a client's event under
// another name, see ReplaceEventName.
func AppendEventRaw(dst, nsp []byte, attachments int, rawArray []byte) []byte {
	dst = appendEventHeader(dst, nsp, attachments)
	return append(dst, rawArray...)
}

func appendEventHeader(dst, nsp []byte, attachments int) []byte {
	if attachments > 0 {
		return appendHeader(dst, BinaryEvent, attachments, nsp, 0, false)
	}
	return appendHeader(dst, Event, 0, nsp, 0, false)
}

// ReplaceEventName appends to dst a copy of the event array data with its
// first element, the event name, replaced by newName, and returns the
// extended slice. The other elements are copied byte for byte:
//
//	ReplaceEventName([]byte(`["message",1,{"a":"b"}]`), "message-back", nil)
//	// ["message-back",1,{"a":"b"}]
//
// data should be the payload of an EVENT or BINARY_EVENT from ParsePacket.
// An array whose first element is not a string gets newName inserted in
// front of its elements, and anything that is not an array is replaced by
// [newName]. Note the argument order: dst comes last.
func ReplaceEventName(data []byte, newName string, dst []byte) []byte {
	dst = append(dst, '[')
	dst = jsontext.AppendString(dst, newName)
	i := jsontext.SkipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return append(dst, ']')
	}
	j := jsontext.SkipSpace(data, i+1)
	if j < len(data) && data[j] == '"' {
		if end := jsontext.SkipString(data, j); end > 0 {
			return append(dst, data[end:]...)
		}
	}
	if j < len(data) && data[j] != ']' {
		dst = append(dst, ',')
	}
	return append(dst, data[j:]...)
}

// AppendAck appends the acknowledgement of the event with ack id id; its
// payload is the JSON array rawArray, copied verbatim ("[]" when empty):
//
//	431["a",1]
//
// With attachments > 0 it is a BINARY_ACK announcing that many binary
// messages, which the caller sends next:
//
//	461-7["a",{"_placeholder":true,"num":0}]
//
// id must not be negative; ParsePacket never returns a negative one.
func AppendAck(dst, nsp []byte, id int64, attachments int, rawArray []byte) []byte {
	if attachments > 0 {
		dst = appendHeader(dst, BinaryAck, attachments, nsp, id, true)
	} else {
		dst = appendHeader(dst, Ack, 0, nsp, id, true)
	}
	if len(rawArray) == 0 {
		return append(dst, '[', ']')
	}
	return append(dst, rawArray...)
}

// EventArgs appends to dst the JSON array of an event's arguments: data,
// the raw array of an EVENT or BINARY_EVENT, without its first element
// (the event name), e.g. ["message",1,"2"] → [1,"2"]. The arguments' bytes
// are copied untouched. data must be the Data of a packet ParsePacket
// accepted as an event.
func EventArgs(data, dst []byte) []byte {
	i := jsontext.SkipSpace(data, 1)
	if i >= len(data) || data[i] != '"' {
		return append(dst, "[]"...)
	}
	end := jsontext.SkipString(data, i)
	if end < 0 {
		return append(dst, "[]"...)
	}
	j := jsontext.SkipSpace(data, end)
	if j < len(data) && data[j] == ',' {
		j++
	}
	dst = append(dst, '[')
	return append(dst, data[j:]...)
}

// RecoveryFields reads what socket.io-client adds to a CONNECT payload to
// recover its session, {"pid":"…","offset":"…"}: ok is false when there
// is no string pid; offset is "" when absent or not a string.
func RecoveryFields(data []byte) (pid, offset string, ok bool) {
	var p, o []byte
	jsontext.ScanObject(data, jsontext.SkipSpace(data, 0), func(k, v []byte) {
		switch {
		case nameIs(k, "pid"):
			p = v
		case nameIs(k, "offset"):
			o = v
		}
	})
	if !jsontext.IsString(p) {
		return "", "", false
	}
	if jsontext.IsString(o) {
		offset = string(jsontext.Unquote(o))
	}
	return string(jsontext.Unquote(p)), offset, true
}

// AppendWithAckID appends to dst a copy of event, an EVENT or BINARY_EVENT
// as the encoders above write it (Engine.IO '4' first), with the ack id id
// inserted where the header ends, after the attachment count and the
// namespace:
//
//	42["greet","hi"]        → 427["greet","hi"]
//	451-/admin,["f",{…}]    → 451-/admin,7["f",{…}]
//
// This is how the server asks the client for an acknowledgement
// (socket.emitWithAck): the event is encoded once by the codec, as any
// other push, and only gains the id. ok is false, with dst unchanged, when
// event is not such a packet or already carries an id. id must not be
// negative.
func AppendWithAckID(dst, event []byte, id int64) (out []byte, ok bool) {
	if len(event) < 3 || event[0] != byte(EIOMessage) {
		return dst, false
	}
	i := 2
	switch PacketType(event[1]) {
	case Event:
	case BinaryEvent:
		for i < len(event) && event[i] >= '0' && event[i] <= '9' {
			i++
		}
		if i == 2 || i >= len(event) || event[i] != '-' {
			return dst, false
		}
		i++
	default:
		return dst, false
	}
	if i < len(event) && event[i] == '/' {
		for i < len(event) && event[i] != ',' {
			i++
		}
		if i == len(event) {
			return dst, false
		}
		i++
	}
	if i >= len(event) || event[i] != '[' {
		return dst, false // an id already, or no payload array
	}
	dst = append(dst, event[:i]...)
	dst = strconv.AppendInt(dst, id, 10)
	return append(dst, event[i:]...), true
}
