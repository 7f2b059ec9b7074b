package apiclient

import (
	"errors"
	"strconv"
)

// Error is an error answer of the API: the HTTP status it came with, the
// API's stable code and its message for humans. Client methods return it
// (possibly wrapped in the future, so test with errors.As) for every 4xx
// or 5xx answer; an answer whose body is not the API's JSON (from a proxy
// in front of the gateway, say) gives an Error with an empty Code and the
// start of the body as Message.
type Error struct {
	// Status is the HTTP status code of the answer (400, 401, 404, 410,
	// 413, 415, 503, …).
	Status int `json:"-"`
	// Code is the API's error code, one of the Code constants.
	Code string `json:"code"`
	// Message explains the error; it is meant for humans and may change.
	Message string `json:"message"`
}

// Error implements the error interface.
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = "HTTP " + strconv.Itoa(e.Status)
	}
	return "chatgate api: " + code + ": " + e.Message
}

// The API's error codes.
const (
	// CodeBadRequest: the body or a parameter is invalid (status 400; also
	// 405 for a method other than POST and 415 for a Content-Type other
	// than application/json).
	CodeBadRequest = "bad_request"
	// CodeUnauthorized: the API key is missing or wrong (status 401).
	CodeUnauthorized = "unauthorized"
	// CodeNotFound: the client or user to act on has no connection
	// anywhere (status 404).
	CodeNotFound = "not_found"
	// CodeUnknownMethod: no such method (status 404).
	CodeUnknownMethod = "unknown_method"
	// CodeTooLarge: the request body is over 1 MiB (status 413).
	CodeTooLarge = "too_large"
	// CodeInternal: a fault of the gateway, or a node of the cluster that
	// did not answer in time (status 5xx).
	CodeInternal = "internal"
	// CodeBadOffset: History's since is past the last message of the
	// node's log (status 400).
	CodeBadOffset = "bad_offset"
	// CodeUnrecoverable: the messages after History's since are no
	// longer kept, or its epoch is not the room's on that node (status
	// 410). Read again without since.
	CodeUnrecoverable = "unrecoverable"
	// CodeNoHistory: the node keeps no history, -history-size 0 (status
	// 404).
	CodeNoHistory = "no_history"
	// CodeAckTimeout: SendWithAck's client did not acknowledge within the
	// timeout (status 504).
	CodeAckTimeout = "ack_timeout"
	// CodeAckDisconnect: SendWithAck's client disconnected, or left the
	// main namespace, before it acknowledged (status 410).
	CodeAckDisconnect = "ack_disconnected"
	// CodeAckUnsupported: SendWithAck's client is a native one; only
	// Socket.IO clients acknowledge (status 422).
	CodeAckUnsupported = "ack_unsupported"
	// CodeTooManyAcks: SendWithAck's client already owes 64
	// acknowledgements, or its node waits for too many (status 429).
	CodeTooManyAcks = "too_many_acks"
)

// HasCode reports whether err is, or wraps, an *Error with code.
func HasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
