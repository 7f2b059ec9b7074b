package api

import "net/http"

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
)

func badRequest(msg string) *Error { return &Error{http.StatusBadRequest, CodeBadRequest, msg} }

func notFound(msg string) *Error { return &Error{http.StatusNotFound, CodeNotFound, msg} }

var (
	errUnauthorized  = &Error{http.StatusUnauthorized, CodeUnauthorized, "missing or invalid API key"}
	errUnknownMethod = &Error{http.StatusNotFound, CodeUnknownMethod, "unknown method"}
	errTooLarge      = &Error{http.StatusRequestEntityTooLarge, CodeTooLarge, "body larger than 1 MiB"}
	errNotJSON       = &Error{http.StatusBadRequest, CodeBadRequest, "body must be a JSON object"}
	errNotUTF8       = &Error{http.StatusBadRequest, CodeBadRequest, "body must be valid UTF-8"}
	errContentType   = &Error{http.StatusUnsupportedMediaType, CodeBadRequest, "Content-Type must be application/json"}
	errMethod        = &Error{http.StatusMethodNotAllowed, CodeBadRequest, "use POST"}
)
