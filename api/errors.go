package api

import (
	"net/http"

	"github.com/chatgate/chatgate/chat"
)

// Error is a failed call's answer: a stable code, a message for humans,
// and the HTTP status it is sent with.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return "api: " + e.Code + ": " + e.Message }

// Error codes (docs/api.md).
const (
	CodeBadRequest    = "bad_request"    // the body or a parameter is invalid
	CodeUnauthorized  = "unauthorized"   // missing or wrong API key
	CodeNotFound      = "not_found"      // join/leave: no connection of that client or user exists
	CodeUnknownMethod = "unknown_method" // no such method
	CodeTooLarge      = "too_large"      // body over 1 MiB
	CodeInternal      = "internal"       // a fault of the gateway itself (5xx)

	// history's codes are the hub's (chat), as clients get them.
	CodeBadOffset     = chat.CodeBadOffset     // history: "since" is past the log's last message
	CodeUnrecoverable = chat.CodeUnrecoverable // history: messages after "since" are no longer kept, or its epoch is not the room's
	CodeNoHistory     = chat.CodeNoHistory     // history: history is off on this node (-history-size 0)

	// send with "ack": the hub's codes (chat/ack.go).
	CodeAckTimeout     = chat.CodeAckTimeout     // the client did not acknowledge within "timeout"
	CodeAckDisconnect  = chat.CodeAckDisconnect  // the client disconnected (or left "/") before it acknowledged
	CodeAckUnsupported = chat.CodeAckUnsupported // the client is a native one: only Socket.IO clients acknowledge
	CodeTooManyAcks    = chat.CodeTooManyAcks    // the client already owes chat.MaxServerAcks acknowledgements
)

func badRequest(msg string) *Error { return &Error{http.StatusBadRequest, CodeBadRequest, msg} }

func notFound(msg string) *Error { return &Error{http.StatusNotFound, CodeNotFound, msg} }

// fromChat maps the hub's error to the API's: the history codes keep
// their chat code, each with its status; any other is a bad_request whose
// message starts with the chat code ("too_many_rooms: …").
func fromChat(e *chat.Error) *Error {
	switch e.Code {
	case chat.CodeBadOffset:
		return &Error{http.StatusBadRequest, CodeBadOffset, e.Message}
	case chat.CodeUnrecoverable:
		// Gone: what the position points after is no longer kept (or was
		// never this room's); retrying the same position cannot succeed.
		return &Error{http.StatusGone, CodeUnrecoverable, e.Message}
	case chat.CodeAckTimeout, chat.CodeAckDisconnect, chat.CodeAckUnsupported, chat.CodeTooManyAcks:
		return &Error{ackStatus(e.Code), e.Code, e.Message}
	case chat.CodeNoHistory:
		// Not found: this node keeps no history to read; it is a matter
		// of the gateway's configuration, not of the request's form.
		return &Error{http.StatusNotFound, CodeNoHistory, e.Message}
	}
	return badRequest(e.Code + ": " + e.Message)
}

// ackStatus is the HTTP status of a send with "ack" that failed with
// code; 400 for any other code.
func ackStatus(code string) int {
	switch code {
	case CodeAckTimeout:
		return http.StatusGatewayTimeout // the client, upstream of the call, did not answer
	case CodeAckDisconnect:
		return http.StatusGone
	case CodeTooManyAcks:
		return http.StatusTooManyRequests
	case CodeAckUnsupported:
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadRequest
}

var (
	errUnauthorized  = &Error{http.StatusUnauthorized, CodeUnauthorized, "missing or invalid API key"}
	errUnknownMethod = &Error{http.StatusNotFound, CodeUnknownMethod, "unknown method"}
	errTooLarge      = &Error{http.StatusRequestEntityTooLarge, CodeTooLarge, "body larger than 1 MiB"}
	errNotJSON       = &Error{http.StatusBadRequest, CodeBadRequest, "body must be a JSON object"}
	errNotUTF8       = &Error{http.StatusBadRequest, CodeBadRequest, "body must be valid UTF-8"}
	errContentType   = &Error{http.StatusUnsupportedMediaType, CodeBadRequest, "Content-Type must be application/json"}
	errMethod        = &Error{http.StatusMethodNotAllowed, CodeBadRequest, "use POST"}
)
