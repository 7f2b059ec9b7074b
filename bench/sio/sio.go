// Package sio encodes and decodes the client side of Socket.IO protocol v5
// carried by Engine.IO protocol v4 over WebSocket, which is what the load
// tool needs to talk to a Socket.IO server without its JavaScript client.
//
// Over the WebSocket transport every Engine.IO packet is one text frame: a
// one-digit packet type followed by its payload. A Socket.IO packet rides
// in an Engine.IO "message" packet (type 4), so an event looks like
//
//	42["join","lobby"]        event "join" with one argument
//	421["join","lobby"]       the same, asking for ack 1
//	431[{"room":"lobby"}]     the server's ack 1
//	40                        connect to namespace "/"
//	40/chat,{"token":"x"}     connect to namespace "/chat" with auth data
//
// A Socket.IO packet is: type digit, then for binary packets the
// attachment count and '-', then the namespace and ',' unless it is "/",
// then the ack id digits if any, then the JSON payload if any.
//
// Binary packets (types 5 and 6) are parsed for their header only; the
// load tool never sends binary data.
package sio

import (
	"encoding/json"
	"errors"
	"strconv"
)

// EngineType is an Engine.IO v4 packet type, sent as one ASCII digit.
type EngineType byte

// Engine.IO v4 packet types.
const (
	EngineOpen    EngineType = '0'
	EngineClose   EngineType = '1'
	EnginePing    EngineType = '2'
	EnginePong    EngineType = '3'
	EngineMessage EngineType = '4'
	EngineUpgrade EngineType = '5'
	EngineNoop    EngineType = '6'
)

// PacketType is a Socket.IO v5 packet type, sent as one ASCII digit.
type PacketType byte

// Socket.IO v5 packet types.
const (
	Connect      PacketType = '0'
	Disconnect   PacketType = '1'
	Event        PacketType = '2'
	Ack          PacketType = '3'
	ConnectError PacketType = '4'
	BinaryEvent  PacketType = '5'
	BinaryAck    PacketType = '6'
)

// Errors returned by the parsers.
var (
	ErrEmpty       = errors.New("sio: empty packet")
	ErrEngineType  = errors.New("sio: unknown engine.io packet type")
	ErrPacketType  = errors.New("sio: unknown socket.io packet type")
	ErrAttachments = errors.New("sio: malformed attachment count")
	ErrAckID       = errors.New("sio: ack id out of range")
	ErrNotEvent    = errors.New("sio: payload is not an event array")
	ErrPayload     = errors.New("sio: payload is not a JSON object or array")
)

// Frames the client sends often, built once.
var (
	// PongFrame answers an Engine.IO ping (the server pings in v4).
	PongFrame = []byte{byte(EnginePong)}
	// ConnectFrame asks to connect to the main namespace "/".
	ConnectFrame = []byte{byte(EngineMessage), byte(Connect)}
)

// ParseEngine splits a WebSocket text frame into its Engine.IO packet type
// and payload. The payload aliases frame.
func ParseEngine(frame []byte) (EngineType, []byte, error) {
	if len(frame) == 0 {
		return 0, nil, ErrEmpty
	}
	t := EngineType(frame[0])
	if t < EngineOpen || t > EngineNoop {
		return 0, nil, ErrEngineType
	}
	return t, frame[1:], nil
}

// Open is the payload of the Engine.IO open packet, the first frame the
// server sends.
type Open struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"` // milliseconds
	PingTimeout  int      `json:"pingTimeout"`  // milliseconds
	MaxPayload   int      `json:"maxPayload"`   // bytes
}

// ParseOpen decodes the payload of an Engine.IO open packet.
func ParseOpen(payload []byte) (Open, error) {
	var o Open
	err := json.Unmarshal(payload, &o)
	return o, err
}

// Packet is a decoded Socket.IO packet. Slices alias the parsed input.
type Packet struct {
	Type PacketType
	// Attachments is the binary attachment count of types 5 and 6.
	Attachments int
	// Namespace is "/" unless the packet names another.
	Namespace string
	// ID is the ack id; HasID tells whether the packet carries one.
	ID    uint64
	HasID bool
	// Data is the raw JSON payload, or nil.
	Data []byte
}

// ParsePacket decodes a Socket.IO packet: the payload of an Engine.IO
// message packet, that is, a frame without its leading '4'.
func ParsePacket(b []byte) (Packet, error) {
	p := Packet{Namespace: "/"}
	if len(b) == 0 {
		return p, ErrEmpty
	}
	p.Type = PacketType(b[0])
	if p.Type < Connect || p.Type > BinaryAck {
		return p, ErrPacketType
	}
	b = b[1:]
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		i := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == 0 || i == len(b) || b[i] != '-' {
			return p, ErrAttachments
		}
		n, err := strconv.Atoi(string(b[:i]))
		if err != nil {
			return p, ErrAttachments
		}
		p.Attachments = n
		b = b[i+1:]
	}
	if len(b) > 0 && b[0] == '/' {
		i := 0
		for i < len(b) && b[i] != ',' {
			i++
		}
		p.Namespace = string(b[:i])
		if i < len(b) {
			i++ // the ','
		}
		b = b[i:]
	}
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i > 0 {
		id, err := strconv.ParseUint(string(b[:i]), 10, 64)
		if err != nil {
			return p, ErrAckID
		}
		p.ID, p.HasID = id, true
		b = b[i:]
	}
	if len(b) > 0 {
		// Socket.IO payloads are always an object or an array; anything
		// else would not survive re-encoding (it could read as a
		// namespace or an ack id).
		if b[0] != '[' && b[0] != '{' {
			return p, ErrPayload
		}
		p.Data = b
	}
	return p, nil
}

// AppendPacket appends p as an Engine.IO message frame ("4" and the
// Socket.IO packet) to dst and returns the extended slice. Data must be
// valid JSON or nil.
func AppendPacket(dst []byte, p Packet) []byte {
	dst = append(dst, byte(EngineMessage), byte(p.Type))
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		dst = strconv.AppendInt(dst, int64(p.Attachments), 10)
		dst = append(dst, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		dst = append(dst, p.Namespace...)
		dst = append(dst, ',')
	}
	if p.HasID {
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}

// AppendEvent appends an event frame to the main namespace, such as
// 421["join","lobby"], to dst. If hasID is false no ack is requested. Each
// arg must be valid JSON. It allocates nothing when dst has room.
func AppendEvent(dst []byte, id uint64, hasID bool, name string, args ...[]byte) []byte {
	dst = append(dst, byte(EngineMessage), byte(Event))
	if hasID {
		dst = strconv.AppendUint(dst, id, 10)
	}
	dst = append(dst, '[')
	dst = appendJSONString(dst, name)
	for _, a := range args {
		dst = append(dst, ',')
		dst = append(dst, a...)
	}
	return append(dst, ']')
}

// ParseEvent splits the data of an event packet, a JSON array whose first
// element is the event name, into the name and the raw arguments.
func ParseEvent(data []byte) (name string, args []json.RawMessage, err error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(data, &arr); err != nil || len(arr) == 0 {
		return "", nil, ErrNotEvent
	}
	if err := json.Unmarshal(arr[0], &name); err != nil {
		return "", nil, ErrNotEvent
	}
	return name, arr[1:], nil
}

// appendJSONString appends s as a JSON string. Event and room names in the
// load tool are plain ASCII, but escape what JSON requires regardless.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// AppendJSONString appends s to dst as a JSON string literal.
func AppendJSONString(dst []byte, s string) []byte { return appendJSONString(dst, s) }
