package chat

import (
	"encoding/base64"
	"errors"
	"sort"
	"strings"

	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// Room and member lists come in pages, so that no reply grows with the
// number of rooms or members: a request names at most MaxListLimit
// entries (DefaultListLimit when it names none), and a reply that stops
// short of the end carries a cursor for the next page. Lists are sorted
// (rooms by name, members by connection id) and a cursor is the last key
// of its page, so paging is stable: an entry present from the first page
// to the last is listed exactly once, whatever joins and leaves happen in
// between.

// Limits of a list request.
const (
	DefaultListLimit = 100  // entries of a page when the request names no limit
	MaxListLimit     = 1000 // entries of a page at most; a larger limit is lowered to it
	// maxCursorLen bounds the encoded cursor a client may send: the
	// base64 of a key far longer than any room name or connection id.
	maxCursorLen = 1024
)

// Errors of list requests (code missing_field, like every field of the
// wrong kind).
var (
	ErrBadLimit  = &Error{CodeMissingField, `"limit" must be a positive integer`}
	ErrBadCursor = &Error{CodeMissingField, `"cursor" must be the cursor of a previous reply`}
)

// RoomsList says which rooms a client's rooms request lists (-rooms-list).
// It is a flag.Value.
type RoomsList uint8

// Room list policies.
const (
	// RoomsPermitted lists the rooms the caller's token lets it join (its
	// rooms claim, auth.Identity.MayJoin) and the rooms it is in; an
	// anonymous caller, when authentication is optional, sees every room.
	// The default.
	RoomsPermitted RoomsList = iota
	// RoomsAll lists every room of the cluster.
	RoomsAll
	// RoomsNone lists no room: every rooms request gets an empty list.
	RoomsNone
)

// String returns the flag value of m.
func (m RoomsList) String() string {
	switch m {
	case RoomsAll:
		return "all"
	case RoomsNone:
		return "none"
	}
	return "permitted"
}

// Set parses a flag value: all, permitted or none.
func (m *RoomsList) Set(s string) error {
	switch s {
	case "permitted":
		*m = RoomsPermitted
	case "all":
		*m = RoomsAll
	case "none":
		*m = RoomsNone
	default:
		return errors.New(`want all, permitted or none`)
	}
	return nil
}

// SetList fills req's page from the raw JSON values of "limit" and
// "cursor" of a rooms or members request, nil when absent, the same way
// for every codec. limit must be an integer of 1 or more (larger than
// MaxListLimit is lowered to it) and cursor a string; null is the same as
// absent. An empty cursor is the first page.
func (req *Request) SetList(limit, cursor []byte) *Error {
	if limit != nil && string(limit) != "null" {
		n, ok := parseLimit(limit)
		if !ok {
			return ErrBadLimit
		}
		req.Limit = n
	}
	if cursor != nil && string(cursor) != "null" {
		if !jsontext.IsString(cursor) {
			return ErrBadCursor
		}
		req.Cursor = jsontext.Unquote(cursor)
	}
	return nil
}

// parseLimit reads a JSON integer of 1 or more, lowered to MaxListLimit.
// A fraction, an exponent or a sign is refused, even 1e2 or 10.0.
func parseLimit(raw []byte) (int, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n <= MaxListLimit {
			n = n*10 + int(c-'0')
		}
	}
	if n == 0 {
		return 0, false
	}
	return ListLimit(n), true
}

// ListLimit is the page size for a requested limit: DefaultListLimit for
// 0 or less, at most MaxListLimit.
func ListLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultListLimit
	case n > MaxListLimit:
		return MaxListLimit
	}
	return n
}

// EncodeCursor returns the cursor of a page that ends with key (a room
// name or a connection id): opaque to clients, URL- and JSON-safe.
func EncodeCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key))
}

// DecodeCursor returns the key of a cursor EncodeCursor made; "" for an
// empty cursor (the first page). It fails for anything else.
func DecodeCursor(c []byte) (string, *Error) {
	if len(c) == 0 {
		return "", nil
	}
	if len(c) > maxCursorLen {
		return "", ErrBadCursor
	}
	key, err := base64.RawURLEncoding.DecodeString(string(c))
	if err != nil || len(key) == 0 {
		return "", ErrBadCursor
	}
	return string(key), nil
}

// PageRooms returns the rooms of list (sorted by name) that come after
// the room named after ("" for the first page), start with prefix and
// that keep, when not nil, accepts: at most limit of them, with the cursor
// of the next page, "" when no more follow.
func PageRooms(list []RoomInfo, after, prefix string, limit int, keep func(room string) bool) ([]RoomInfo, string) {
	i := 0
	if from := max(after, prefix); from != "" {
		i = sort.Search(len(list), func(i int) bool { return list[i].Room >= from })
	}
	out := make([]RoomInfo, 0, min(limit, len(list)-i))
	for ; i < len(list); i++ {
		r := list[i]
		if r.Room <= after {
			continue
		}
		if !strings.HasPrefix(r.Room, prefix) {
			break // sorted: no later room has the prefix either
		}
		if keep != nil && !keep(r.Room) {
			continue
		}
		if len(out) == limit {
			return out, EncodeCursor(out[len(out)-1].Room)
		}
		out = append(out, r)
	}
	return out, ""
}

// PageMembers returns the members of list (sorted by id) after the one
// with id after ("" for the first page): at most limit of them, with the
// cursor of the next page, "" when no more follow.
func PageMembers(list []MemberInfo, after string, limit int) ([]MemberInfo, string) {
	i := 0
	if after != "" {
		i = sort.Search(len(list), func(i int) bool { return list[i].ID > after })
	}
	if len(list)-i > limit {
		page := list[i : i+limit]
		return page, EncodeCursor(page[len(page)-1].ID)
	}
	return list[i:], ""
}

// listRooms answers a client's rooms request: a page of the cluster's
// rooms, those -rooms-list shows the caller.
func (h *Hub) listRooms(s *Session, req *Request, r *Reply) *Error {
	after, err := DecodeCursor(req.Cursor)
	if err != nil {
		return err
	}
	var keep func(string) bool
	switch h.cfg.RoomsList {
	case RoomsNone:
		r.Rooms = []RoomInfo{}
		return nil
	case RoomsPermitted:
		if s.ident != nil && s.ident.Rooms != nil {
			keep = func(room string) bool {
				_, name := SplitRoomString(room)
				return s.token().MayJoin([]byte(name)) || s.inRoom([]byte(room)) >= 0
			}
		}
	}
	// Only the rooms of the session's namespace: a namespace's rooms are
	// the keys with its prefix, and those of "/" the keys without one.
	prefix := ""
	if s.nsp() != "" {
		prefix = s.nsp() + string(rune(NamespaceSep))
	} else {
		inner := keep
		keep = func(room string) bool {
			return InNamespace(room, RootNamespace) && (inner == nil || inner(room))
		}
	}
	r.Rooms, r.Cursor = PageRooms(h.roomList(), after, prefix, ListLimit(req.Limit), keep)
	return nil
}

// listMembers answers a client's members request: a page of the room's
// members on every node.
func (h *Hub) listMembers(req *Request, r *Reply) *Error {
	after, err := DecodeCursor(req.Cursor)
	if err != nil {
		return err
	}
	members := h.table.Members(req.Room)
	list := make([]MemberInfo, 0, len(members))
	for _, m := range members {
		ms := m.(*Session)
		list = append(list, MemberInfo{ID: ms.id, Nick: ms.Nick(), User: ms.User()})
	}
	list = h.remoteMembers(req.Room, list)
	sortMembers(list)
	r.Room = req.Room
	r.Members, r.Cursor = PageMembers(list, after, ListLimit(req.Limit))
	return nil
}
