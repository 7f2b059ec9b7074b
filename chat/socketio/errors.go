package socketio

import (
	"errors"

	"github.com/chatgate/chatgate/chat"
)

// Protocol errors. A packet that fails with one of these is malformed: the
// Socket.IO protocol says the receiver closes the connection (socket.io-
// protocol v5, "Sending and receiving data"), and that decision is the
// transport's, in one place. Compare with errors.Is.
var (
	// ErrEmpty: an empty Engine.IO or Socket.IO packet, or an empty record
	// in a long-polling payload.
	ErrEmpty = errors.New("socketio: empty packet")
	// ErrEIOType: the first byte is not an Engine.IO packet type '0'..'6'.
	ErrEIOType = errors.New("socketio: unknown engine.io packet type")
	// ErrPacketType: the first byte is not a Socket.IO packet type '0'..'6'.
	ErrPacketType = errors.New("socketio: unknown socket.io packet type")
	// ErrAttachments: a BINARY_EVENT or BINARY_ACK without a well-formed
	// "<count>-" prefix, or with more attachments than its payload can
	// hold placeholders for.
	ErrAttachments = errors.New("socketio: malformed attachment count")
	// ErrNamespace: a namespace not terminated by ','.
	ErrNamespace = errors.New("socketio: namespace not terminated by ','")
	// ErrAckID: an ack id that overflows int64, an ack id on a packet type
	// that cannot carry one (CONNECT, DISCONNECT, CONNECT_ERROR), or an
	// ACK without one.
	ErrAckID = errors.New("socketio: invalid ack id")
	// ErrJSON: the payload is not valid JSON.
	ErrJSON = errors.New("socketio: payload is not valid JSON")
	// ErrPayload: the payload is valid JSON of a kind the packet type does
	// not allow, or absent where it is required.
	ErrPayload = errors.New("socketio: payload kind not allowed for packet type")
	// ErrPlaceholder: binary placeholders that are malformed, not numbered
	// 0..n-1 each exactly once, or not as many as the packet's attachments.
	ErrPlaceholder = errors.New("socketio: invalid binary placeholders")
	// ErrBase64: a long-polling "b" record whose base64 does not decode.
	ErrBase64 = errors.New("socketio: invalid base64 in binary packet")
	// ErrNotEvent: DecodeEvent was given a packet that is not an EVENT or
	// BINARY_EVENT.
	ErrNotEvent = errors.New("socketio: packet is not an event")
	// ErrOtherNamespace: DecodeEvent was given an event for a namespace
	// other than "/", the only one chat is served on.
	ErrOtherNamespace = errors.New(`socketio: event on a namespace other than "/"`)
)

// Engine.IO handshake error codes, as the reference server sends them in
// the JSON body of a failed handshake (see AppendHTTPError).
const (
	CodeUnknownTransport    = 0 // "Transport unknown"
	CodeUnknownSID          = 1 // "Session ID unknown"
	CodeBadHandshakeMethod  = 2 // "Bad handshake method"
	CodeBadRequest          = 3 // "Bad request"
	CodeForbidden           = 4 // "Forbidden"
	CodeUnsupportedProtocol = 5 // "Unsupported protocol version"
)

// HandshakeError is an Engine.IO handshake failure, answered with an HTTP
// error whose JSON body carries Code and Message:
//
//	buf = socketio.AppendHTTPError(buf, e.Code, e.Message)
//	// write status e.Status(), Content-Type: application/json, body buf
//
// The package's values are shared sentinels: do not modify them.
type HandshakeError struct {
	Code    int
	Message string
}

func (e *HandshakeError) Error() string { return "socketio: handshake: " + e.Message }

// Status returns the HTTP status to answer with: 403 for CodeForbidden,
// 400 for every other code, as the reference server does.
func (e *HandshakeError) Status() int {
	if e.Code == CodeForbidden {
		return 403
	}
	return 400
}

// Handshake errors, one per code. ParseQuery returns ErrUnknownTransport,
// ErrUnsupportedProtocol and ErrBadRequest; the others are for the
// transport's own checks (session lookup, method, origin).
var (
	ErrUnknownTransport    = &HandshakeError{CodeUnknownTransport, "Transport unknown"}
	ErrUnknownSID          = &HandshakeError{CodeUnknownSID, "Session ID unknown"}
	ErrBadHandshakeMethod  = &HandshakeError{CodeBadHandshakeMethod, "Bad handshake method"}
	ErrBadRequest          = &HandshakeError{CodeBadRequest, "Bad request"}
	ErrForbidden           = &HandshakeError{CodeForbidden, "Forbidden"}
	ErrUnsupportedProtocol = &HandshakeError{CodeUnsupportedProtocol, "Unsupported protocol version"}
)

// ErrBinaryOutsideData is the error ack for a "message" whose binary
// attachments are not all inside its data, the only part that is
// delivered.
var ErrBinaryOutsideData = &chat.Error{Code: chat.CodeUnsupported, Message: "binary attachments must be inside data"}
