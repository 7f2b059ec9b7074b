package frame

import (
	"errors"

	"github.com/gobwas/ws"
)

// ErrNeedMore is returned by ParseHeader when b does not yet hold a whole
// header. It is not a protocol violation: the caller keeps the bytes and
// tries again when more arrive. Compare with errors.Is.
var ErrNeedMore = errors.New("frame: need more bytes")

// Error is a protocol violation. It carries the close code that the server
// sends in its Close frame before it closes the connection (RFC 6455 §7.4.1).
//
// The package returns the sentinel values below, so errors.Is works on them.
// A Handler may return its own *Error (or wrap one with %w) to choose the
// close code, e.g. &Error{Code: ws.StatusPolicyViolation, Reason: "spam"}.
type Error struct {
	// Code is the close code to send (RFC 6455 §7.4.1).
	Code ws.StatusCode
	// Reason is a short human-readable description, without the package
	// prefix. It is also suitable as the close reason.
	Reason string
}

// Error implements the error interface: "frame: " + Reason.
func (e *Error) Error() string { return "frame: " + e.Reason }

// Protocol violations found by the Reader. All but ErrInvalidUTF8 and
// ErrTooBig carry 1002 (protocol error).
var (
	// ErrReservedBits: RSV1, RSV2 or RSV3 is set although no extension was
	// negotiated (RFC 6455 §5.2).
	ErrReservedBits = &Error{Code: ws.StatusProtocolError, Reason: "reserved bits set"}

	// ErrReservedOpcode: opcode 0x3-0x7 or 0xB-0xF (RFC 6455 §5.2).
	ErrReservedOpcode = &Error{Code: ws.StatusProtocolError, Reason: "reserved opcode"}

	// ErrUnmasked: a client frame without the mask bit (RFC 6455 §5.1).
	ErrUnmasked = &Error{Code: ws.StatusProtocolError, Reason: "unmasked client frame"}

	// ErrControlTooLong: a control frame with more than 125 payload bytes
	// (RFC 6455 §5.5).
	ErrControlTooLong = &Error{Code: ws.StatusProtocolError, Reason: "control frame too long"}

	// ErrControlFragmented: a control frame without FIN (RFC 6455 §5.5).
	ErrControlFragmented = &Error{Code: ws.StatusProtocolError, Reason: "fragmented control frame"}

	// ErrContinuation: a continuation frame while no fragmented message is
	// open (RFC 6455 §5.4).
	ErrContinuation = &Error{Code: ws.StatusProtocolError, Reason: "continuation frame without a message"}

	// ErrInterleaved: a new text or binary frame while a fragmented message
	// is still open; without extensions, fragments of different messages
	// must not interleave (RFC 6455 §5.4).
	ErrInterleaved = &Error{Code: ws.StatusProtocolError, Reason: "data frame inside a fragmented message"}

	// ErrLength: a 64-bit payload length with the most significant bit set
	// (RFC 6455 §5.2).
	ErrLength = &Error{Code: ws.StatusProtocolError, Reason: "payload length overflows 63 bits"}

	// ErrCloseTooShort: a Close payload of exactly one byte; a body must
	// start with a two-byte status code (RFC 6455 §5.5.1).
	ErrCloseTooShort = &Error{Code: ws.StatusProtocolError, Reason: "close payload of one byte"}

	// ErrCloseCode: a Close frame with a status code that must not be sent
	// on the wire (RFC 6455 §7.4.1, §7.4.2); see ValidCloseCode.
	ErrCloseCode = &Error{Code: ws.StatusProtocolError, Reason: "invalid close code"}

	// ErrInvalidUTF8: a text message or a close reason that is not valid
	// UTF-8 (RFC 6455 §5.6, §8.1), reported with 1007.
	ErrInvalidUTF8 = &Error{Code: ws.StatusInvalidFramePayloadData, Reason: "invalid UTF-8"}

	// ErrTooBig: a message longer than the Reader's limit, reported with
	// 1009 (RFC 6455 §7.4.1) as soon as a header announces it.
	ErrTooBig = &Error{Code: ws.StatusMessageTooBig, Reason: "message too big"}
)

// CloseCode maps err to the close code to send. It is the only place in the
// gateway where errors become close codes:
//
//   - nil: 1000 (normal closure);
//   - an *Error anywhere in the chain (errors.As): its Code;
//   - ErrNeedMore: 1002, the stream ended inside a frame;
//   - anything else (typically a Handler failure): 1011 (internal error).
func CloseCode(err error) ws.StatusCode {
	if err == nil {
		return ws.StatusNormalClosure
	}
	// The plain sentinel is the common case; errors.As would allocate.
	if e, ok := err.(*Error); ok {
		return e.Code
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, ErrNeedMore) {
		return ws.StatusProtocolError
	}
	return ws.StatusInternalServerError
}

// ErrStopped is what a Reader returns after its Handler returned an error:
// the Handler's own error is returned once, by the Feed call that got it.
var ErrStopped = &Error{Code: ws.StatusNormalClosure, Reason: "reader stopped by its handler"}
