package frame

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// maxCloseReason is the longest close reason: a control payload is at most
// 125 bytes and the status code takes two (RFC 6455 §5.5, §5.5.1).
const maxCloseReason = maxControlPayload - 2

// ValidCloseCode reports whether code may appear in a Close frame on the
// wire (RFC 6455 §7.4.1, §7.4.2 and the IANA registry of §11.7): 1000-1003,
// 1007-1014 and 3000-4999. 1004 is reserved; 1005, 1006 and 1015 are only
// for local use; the rest of 0-2999 is unassigned.
func ValidCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ParseClose parses and validates the payload of a Close frame (RFC 6455
// §5.5.1). An empty payload is valid and yields code 1005 (no status
// received, §7.1.5) and no reason. A one-byte payload yields
// ErrCloseTooShort, a code rejected by ValidCloseCode yields ErrCloseCode,
// and a reason that is not UTF-8 yields ErrInvalidUTF8 (§8.1).
//
// reason aliases payload.
func ParseClose(payload []byte) (code ws.StatusCode, reason []byte, err error) {
	switch len(payload) {
	case 0:
		return ws.StatusNoStatusRcvd, nil, nil
	case 1:
		return 0, nil, ErrCloseTooShort
	}
	code = ws.StatusCode(binary.BigEndian.Uint16(payload))
	if !ValidCloseCode(code) {
		return code, nil, ErrCloseCode
	}
	reason = payload[2:]
	if !utf8.Valid(reason) {
		return code, nil, ErrInvalidUTF8
	}
	return code, reason, nil
}

// AppendClose appends a Close frame (RFC 6455 §5.5.1) carrying code and
// reason to dst and returns the extended slice. The reason is cut to the
// 123 bytes that fit in a control frame, at a UTF-8 character boundary so
// that the peer does not see invalid UTF-8. If code is not valid on the wire
// (see ValidCloseCode; e.g. 0, 1005 or 1006) the frame has an empty payload
// and the reason is dropped, as §5.5.1 allows no reason without a code.
func AppendClose(dst []byte, code ws.StatusCode, reason string) []byte {
	if !ValidCloseCode(code) {
		return AppendHeader(dst, ws.OpClose, 0)
	}
	if len(reason) > maxCloseReason {
		cut := maxCloseReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = AppendHeader(dst, ws.OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// Frames that the server sends often, compiled once. Their capacity equals
// their length, so appending to one copies it instead of writing into the
// shared array; they must not be modified.
var (
	// PingFrame is a Ping with an empty payload (RFC 6455 §5.5.2).
	PingFrame = compile(AppendHeader(nil, ws.OpPing, 0))

	// PongFrame is an unsolicited Pong with an empty payload, usable as a
	// heartbeat (RFC 6455 §5.5.3). A reply to a Ping must echo its
	// payload: build that with AppendFrame.
	PongFrame = compile(AppendHeader(nil, ws.OpPong, 0))

	// CloseFrame is a Close with status 1000 (normal closure) and no reason.
	CloseFrame = compile(AppendClose(nil, ws.StatusNormalClosure, ""))
)

// compiledClose holds a Close frame without reason for each code the
// gateway sends; see CompiledClose.
var compiledClose = func() map[ws.StatusCode][]byte {
	m := make(map[ws.StatusCode][]byte)
	for _, c := range []ws.StatusCode{
		ws.StatusNormalClosure,
		ws.StatusGoingAway,
		ws.StatusProtocolError,
		ws.StatusUnsupportedData,
		ws.StatusInvalidFramePayloadData,
		ws.StatusPolicyViolation,
		ws.StatusMessageTooBig,
		ws.StatusMandatoryExt,
		ws.StatusInternalServerError,
	} {
		m[c] = compile(AppendClose(nil, c, ""))
	}
	return m
}()

// CompiledClose returns a Close frame carrying code and no reason. Codes
// defined by RFC 6455 §7.4.1 come from a table compiled once and must not be
// modified; other codes are encoded into a new slice. Typical use when
// parsing fails: CompiledClose(CloseCode(err)).
func CompiledClose(code ws.StatusCode) []byte {
	if b, ok := compiledClose[code]; ok {
		return b
	}
	return compile(AppendClose(nil, code, ""))
}

func compile(b []byte) []byte { return b[:len(b):len(b)] }
