// Package native is the codec of chatgate's native protocol: one JSON object
// per WebSocket text frame, told apart by its "type" field.
//
// Reading a request and answering it:
//
//	var req chat.Request
//	if err := native.Decode(payload, &req); err != nil {
//		var ce *chat.Error
//		errors.As(err, &ce)
//		hub.Fail(session, req.ID, ce) // req.ID is set if the id could be read
//		return
//	}
//	hub.Handle(session, &req)
//
// and, on the way out, any chat.Codec method of Codec:
//
//	buf = native.Codec{}.AppendMessage(buf[:0], &msg)
//
// # Wire format
//
// Requests ("id" is optional on all of them and is echoed in the reply):
//
//	{"type":"nick","name":"alice"}
//	{"type":"join","room":"lobby"}     {"type":"leave","room":"lobby"}
//	{"type":"members","room":"lobby"}  {"type":"rooms"}  {"type":"ping"}
//	{"type":"send","room":"lobby","data":<any JSON>}
//	{"type":"send","to":"<connection id>","data":<any JSON>}
//
// Server payloads: "welcome", "ack", "error", "message" and "presence"; see
// the methods of Codec for each one's fields.
//
// # Decoding strategy
//
// Decode first scans the top-level object with a small hand-written scanner
// that records, for the few keys the protocol knows, the raw bytes of their
// values as subslices of the payload. It then proves the whole payload is
// JSON with encoding/json's Valid, which does not allocate (its scanner is
// pooled). No JSON library is used to decode: every one that decodes into
// structs or maps copies strings and allocates, and "data" must be handed on
// byte for byte, without being re-encoded. The scanner therefore never has
// to handle invalid input correctly, only without panicking: json.Valid is
// the authority on validity.
//
// Choices a client can observe:
//   - Keys are matched exactly, case-sensitively (encoding/json matches
//     struct fields case-insensitively; this protocol does not). Keys written
//     with escapes ("ty\u0070e") are recognised.
//   - With duplicate keys, the last one wins, as with encoding/json.
//   - Unknown keys, and known keys the operation does not use, are ignored
//     whatever their JSON kind: {"type":"ping","room":5} is a valid ping.
//   - "id" must be a number or a string; null, true, false, objects and
//     arrays give chat.ErrBadJSON (bad_json, per docs/protocol.md) and no
//     id is echoed.
//   - "data" may be any JSON value, null included; only its absence is an
//     error.
//   - A send may carry both "room" and "to"; both are returned and the hub
//     decides (it gives "to" precedence).
//
// # Allocation and lifetime guarantees
//
// Decode does not allocate when the strings it unquotes ("name", "room",
// "to") contain no escape sequence and are valid UTF-8: they are returned as
// subslices of the payload, as are Request.ID and Request.Data. Those slices
// alias the payload and are valid for as long as it is (for the read path,
// until the hub's handler returns). A string with escapes, or with invalid
// UTF-8, is decoded into a new slice, exactly as encoding/json would decode
// it (invalid bytes and lone surrogates become U+FFFD).
//
// Decode does not check that raw values ("id", "data") are valid UTF-8: the
// frame layer fails any text frame that is not (RFC 6455 §5.6, §8.1), so a
// payload that reached Decode already is.
//
// The Codec methods append to the caller's buffer and allocate only when it
// must grow. Strings they encode are escaped so that the output is valid JSON
// whatever the input: '"', '\\' and control characters are escaped, invalid
// UTF-8 becomes U+FFFD, and '<', '>', '&', U+2028 and U+2029 are escaped as
// encoding/json does, so payloads can be embedded in HTML and JavaScript.
// Raw JSON handed in (Reply.ID, Message.Data) is copied verbatim and carries
// no such guarantee beyond being valid JSON.
//
// Decode and Codec are stateless and safe for concurrent use from any
// goroutine or event loop.
package native
