package chat

import (
	"bytes"
	"errors"
	"strings"

	"github.com/chatgate/chatgate/chat/names"
)

// Socket.IO namespaces. Rooms are per namespace, as in Socket.IO: room
// "lobby" of "/admin" is not "lobby" of "/". The room table, the cluster
// and history know one flat name space of rooms, so a room of a namespace
// other than "/" is keyed internally as namespace + "\x1f" + room (its
// room key). Room names and namespaces are text without control
// characters (package chat/names), so a key never collides with a room of
// "/" or of another namespace; rooms of "/" keep their plain name, which
// is what native clients, which only ever are on "/", and everything
// before namespaces existed see. The hub qualifies a request's room with
// its session's namespace where it enters (Handle, the backend's commands,
// the server API); codecs and lists split the key back (SplitRoom).

// RootNamespace is the main namespace: native clients and Socket.IO's "/".
const RootNamespace = "/"

// MaxNamespaceLen bounds a namespace name in bytes (-sio-namespaces, a
// CONNECT, the server API's "namespace").
const MaxNamespaceLen = 256

// MaxRoomKeyLen bounds a room key: a namespace, the separator and a room.
const MaxRoomKeyLen = MaxNamespaceLen + 1 + MaxRoomLen

// NamespaceSep separates the namespace from the room in a room key.
const NamespaceSep = '\x1f'

// ErrNamespaceName refuses a namespace that does not start with "/", is
// longer than MaxNamespaceLen bytes, has a comma or is not text.
var ErrNamespaceName = errors.New("chat: a namespace must start with \"/\" and be at most 256 bytes of text without commas, control or format characters")

// CheckNamespace reports whether nsp is a valid namespace name.
func CheckNamespace[S ~string | ~[]byte](nsp S) error {
	if len(nsp) < 1 || len(nsp) > MaxNamespaceLen || nsp[0] != '/' || !names.Text(nsp) {
		return ErrNamespaceName
	}
	for i := 0; i < len(nsp); i++ {
		if nsp[i] == ',' {
			return ErrNamespaceName // the wire ends a namespace at ','
		}
	}
	return nil
}

// RoomKey returns the key of room in namespace nsp: room itself for "/"
// (or ""), else nsp + "\x1f" + room, in a new slice.
func RoomKey(nsp string, room []byte) []byte {
	if nsp == "" || nsp == RootNamespace {
		return room
	}
	k := make([]byte, 0, len(nsp)+1+len(room))
	k = append(k, nsp...)
	k = append(k, NamespaceSep)
	return append(k, room...)
}

// RoomKeyString is RoomKey for strings.
func RoomKeyString(nsp, room string) string {
	if nsp == "" || nsp == RootNamespace {
		return room
	}
	return nsp + string(rune(NamespaceSep)) + room
}

// rootNsp is what SplitRoom returns for "/", shared: no allocation on the
// hot path.
var rootNsp = []byte(RootNamespace)

// SplitRoom splits a room key into its namespace ("/" for a plain name)
// and its room name; both alias key, or for "/" a shared slice: neither
// may be modified.
func SplitRoom(key []byte) (nsp, room []byte) {
	if i := bytes.IndexByte(key, NamespaceSep); i >= 0 {
		return key[:i], key[i+1:]
	}
	return rootNsp[:1:1], key
}

// SplitRoomString is SplitRoom for strings.
func SplitRoomString(key string) (nsp, room string) {
	if i := strings.IndexByte(key, NamespaceSep); i >= 0 {
		return key[:i], key[i+1:]
	}
	return RootNamespace, key
}

// RoomName returns the room name of key, without its namespace.
func RoomName(key []byte) []byte {
	if i := bytes.IndexByte(key, NamespaceSep); i >= 0 {
		return key[i+1:]
	}
	return key
}

// InNamespace reports whether room key belongs to namespace nsp.
func InNamespace(key, nsp string) bool {
	if nsp == "" || nsp == RootNamespace {
		return strings.IndexByte(key, NamespaceSep) < 0
	}
	return len(key) > len(nsp) && key[len(nsp)] == NamespaceSep && key[:len(nsp)] == nsp
}

// checkRoomKey is the rule for a room key inside the hub: a room name
// (checkRoom) with, for a namespace other than "/", a valid namespace in
// front. Only keys the hub built reach it: every entry refuses a plain
// name with the separator (a control character) first.
func checkRoomKey[S ~string | ~[]byte](key S) *Error {
	for i := 0; i < len(key); i++ {
		if key[i] == NamespaceSep {
			if CheckNamespace(key[:i]) != nil {
				return ErrInvalidRoom
			}
			return checkRoom(key[i+1:])
		}
	}
	return checkRoom(key)
}

// Namespace returns the Socket.IO namespace of the session: "/" for
// native clients and Socket.IO's main namespace.
func (s *Session) Namespace() string {
	if s.nsp() == "" {
		return RootNamespace
	}
	return s.nsp()
}

// SetNamespace puts the session in Socket.IO namespace nsp (validated by
// the caller). Call it right after Open or OpenPending, before the
// session handles a request; "/" is the default.
func (s *Session) SetNamespace(nsp string) {
	if nsp == RootNamespace {
		nsp = ""
	}
	if nsp != "" || s.m() != nil {
		s.x().nsp = nsp
	}
}

// key returns the room key of the plain room name in the session's
// namespace.
func (s *Session) key(room []byte) []byte { return RoomKey(s.nsp(), room) }

// roomNames returns the names of the session's rooms without their
// namespace, for what the backend is told. Own loop only.
func (s *Session) roomNames() []string {
	out := make([]string, 0, s.roomCount())
	for r := range s.eachRoom {
		_, name := SplitRoomString(r)
		out = append(out, name)
	}
	return out
}
