// Package jsontext is the JSON toolkit the wire codecs (chat/native and
// chat/socketio) share: a string encoder, and a scanner that walks raw JSON
// text without decoding it.
//
// It is hand-written rather than built on encoding/json or a JSON library
// for two reasons, both on the hot path:
//   - Zero allocation. Encoders append to the caller's buffer and allocate
//     only when it must grow; the scanner returns indexes into, and
//     subslices of, the caller's bytes. A broadcast is encoded once per
//     room, and a request is decoded once per frame, without garbage.
//   - Raw passthrough. User data ("data", ids) is handed on byte for byte,
//     never decoded and re-encoded, so a codec finds a value's bounds with
//     SkipValue and copies them.
//
// AppendString escapes exactly as encoding/json does (HTML-safe, invalid
// UTF-8 as U+FFFD), so both codecs write the same bytes for the same
// strings, and Unquote decodes exactly as encoding/json does.
//
// The scanner trusts the structure it walks: callers prove validity with
// json.Valid, which does not allocate. On invalid input the scanner may
// return nonsense, but it never reads out of bounds or panics.
//
// Everything here is stateless and safe for concurrent use from any
// goroutine or event loop.
package jsontext
