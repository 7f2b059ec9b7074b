package chat

import (
	"github.com/chatgate/chatgate/chat/internal/jsontext"
	"github.com/chatgate/chatgate/chat/names"
)

// Identity text (package chat/names) and the shape of raw JSON: checked
// wherever names and data enter the hub.

// DefaultMaxJSONDepth is the nesting of arrays and objects a client's
// data may have when Config.MaxJSONDepth is 0 (-max-json-depth).
const DefaultMaxJSONDepth = 64

// Errors for text that breaks the rules. They carry the codes of the
// fields they are about; only their messages differ from the length
// errors'.
var (
	ErrNickText = &Error{CodeInvalidName, "nickname must be valid text without control or format characters"}
	ErrRoomText = &Error{CodeInvalidRoom, "room name must be valid text without control or format characters"}
	// ErrBadText refuses a connection id, user id or event name that is
	// not text: invalid UTF-8, or a lone surrogate escape.
	ErrBadText = &Error{CodeBadJSON, "a string is not valid Unicode text (invalid UTF-8 or a lone surrogate escape)"}
	// ErrTooDeep refuses data nested deeper than -max-json-depth.
	ErrTooDeep = &Error{CodeBadJSON, "data nests arrays and objects too deeply"}
)

// checkNick is the rule for a nickname, wherever it comes from.
func checkNick[S ~string | ~[]byte](name S) *Error {
	switch {
	case names.Nick(name):
		return nil
	case len(name) > 0 && !names.Text(name):
		return ErrNickText
	}
	return ErrInvalidName
}

// checkRoomText refuses a room name that breaks the text rule; the length
// is checkRoom's.
func checkRoomText[S ~string | ~[]byte](name S) *Error {
	if !names.Text(name) {
		return ErrRoomText
	}
	return nil
}

// UnquoteName, UnquoteRoom and UnquoteText unquote a raw JSON string the
// wire codecs found (jsontext.IsString holds) for the request field it
// fills, and refuse one that is not text rather than collapse it to
// U+FFFD: a nickname with ErrNickText, a room with ErrRoomText, anything
// else (a connection or user id, an event name) with ErrBadText.
func UnquoteName(raw []byte) ([]byte, *Error) { return unquote(raw, ErrNickText) }

// UnquoteRoom: see UnquoteName.
func UnquoteRoom(raw []byte) ([]byte, *Error) { return unquote(raw, ErrRoomText) }

// UnquoteText: see UnquoteName.
func UnquoteText(raw []byte) ([]byte, *Error) { return unquote(raw, ErrBadText) }

func unquote(raw []byte, bad *Error) ([]byte, *Error) {
	s, ok := jsontext.UnquoteText(raw)
	if !ok {
		return nil, bad
	}
	return s, nil
}

// screen applies what the hub's configuration asks of every client
// request before anything else looks at it: data and arguments no deeper
// than MaxJSONDepth, and the room name in NFC with RoomNFC.
func (h *Hub) screen(req *Request) *Error {
	if max := h.cfg.MaxJSONDepth; max >= 0 {
		if max == 0 {
			max = DefaultMaxJSONDepth
		}
		// Args is the array of an event's arguments: one level more.
		if jsontext.DeeperThan(req.Data, max) || jsontext.DeeperThan(req.Args, max+1) {
			return ErrTooDeep
		}
	}
	if h.cfg.RoomNFC && req.HasRoom {
		req.Room = names.NFC(req.Room)
	}
	return nil
}

// roomNFC returns room in NFC when the hub normalises room names, else
// room itself.
func (h *Hub) roomNFC(room string) string {
	if h.cfg.RoomNFC {
		return names.NFCString(room)
	}
	return room
}
