package chat

// Error is an application-level error: the client gets it as an error reply
// and its connection stays open. Code is stable and documented in
// docs/protocol.md; Message is for humans.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return "chat: " + e.Code + ": " + e.Message }

// Error codes sent to clients.
const (
	CodeBadJSON            = "bad_json"            // the frame is not one JSON object
	CodeUnknownType        = "unknown_type"        // "type" names no operation
	CodeMissingField       = "missing_field"       // a required field is absent or has the wrong JSON type
	CodeInvalidName        = "invalid_name"        // nickname empty or longer than MaxNickLen characters
	CodeInvalidRoom        = "invalid_room"        // room name empty or longer than MaxRoomLen bytes
	CodeNotMember          = "not_member"          // sending to or listing a room the connection is not in
	CodeNoSuchConnection   = "no_such_connection"  // direct message to an unknown connection id
	CodeNoSuchUser         = "no_such_user"        // message to a user with no connection
	CodeBackendUnavailable = "backend_unavailable" // the application backend could not be reached
	CodeBackendTimeout     = "backend_timeout"     // the application backend did not answer in time
	CodeBackendError       = "backend_error"       // the application backend failed or answered wrongly
	CodeNotReady           = "not_ready"           // a request before the backend accepted the connection
	CodeUnauthorized       = "unauthorized"        // a refresh token that does not verify, or names another user
	CodeUnsupported        = "unsupported"         // e.g. a binary frame on the native endpoint
	CodeRateLimited        = "rate_limited"        // too many messages or bytes per second
	CodeForbidden          = "forbidden"           // the token's rooms claim does not allow the room
	CodeTooManyRooms       = "too_many_rooms"      // the connection is in -max-rooms rooms already
	CodeBadOffset          = "bad_offset"          // a history position past the room's last message, or not a number
	CodeUnrecoverable      = "unrecoverable"       // history after that position is no longer kept, or the epoch does not match
	CodeNoHistory          = "no_history"          // history is turned off
)

// Limits of names, per docs/protocol.md.
const (
	MaxNickLen = 32  // characters (runes)
	MaxRoomLen = 128 // bytes of UTF-8
)

// Errors the decoders and the hub reuse, so that no error reply allocates.
var (
	ErrBadJSON      = &Error{CodeBadJSON, "frame is not a JSON object"}
	ErrUnknownType  = &Error{CodeUnknownType, "unknown type"}
	ErrMissingType  = &Error{CodeMissingField, `missing "type"`}
	ErrMissingName  = &Error{CodeMissingField, `missing "name"`}
	ErrMissingRoom  = &Error{CodeMissingField, `missing "room"`}
	ErrMissingData  = &Error{CodeMissingField, `missing "data"`}
	ErrMissingDest  = &Error{CodeMissingField, `missing "room", "to" or "user"`}
	ErrMissingEvent = &Error{CodeMissingField, `missing "event"`}
	ErrMissingToken = &Error{CodeMissingField, `missing "token"`}
	ErrMissingArgs  = &Error{CodeMissingField, `"args" must be an array`}
	ErrInvalidName  = &Error{CodeInvalidName, "nickname must be 1 to 32 characters"}
	ErrInvalidRoom  = &Error{CodeInvalidRoom, "room name must be 1 to 128 bytes"}
	ErrNotMember    = &Error{CodeNotMember, "not a member of this room"}
	ErrNoSuchConn   = &Error{CodeNoSuchConnection, "no such connection"}
	ErrNoSuchUser   = &Error{CodeNoSuchUser, "no connection of that user"}
	ErrUnsupported  = &Error{CodeUnsupported, "binary frames are not supported on this endpoint"}
	ErrRateLimited  = &Error{CodeRateLimited, "too many messages, slow down"}
	ErrForbidden    = &Error{CodeForbidden, "room not allowed by token"}
	ErrTooManyRooms = &Error{CodeTooManyRooms, "too many rooms joined"}
)
