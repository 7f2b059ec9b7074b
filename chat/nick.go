package chat

import (
	"sync/atomic"
	"unsafe"
)

// nickText is a session's nickname, which other loops read (member lists,
// presence) while the session's own loop may set it. It is one allocation:
// a length byte followed by the text, published with an atomic pointer;
// an atomic.Pointer[string] costs two (the string header and the text),
// and every idle connection with a nick holds one. The bytes never change
// once stored, so the strings Load returns share them safely.
type nickText struct {
	p atomic.Pointer[byte] // nil: no nickname
}

// maxNickBytes bounds what a length byte can say. Nicknames are checked
// where they enter (MaxNickLen runes, at most 128 bytes); a longer text
// is cut there rather than stored with a wrong length.
const maxNickBytes = 255

// Store sets the nickname ("" for none). Any goroutine, but one writer at
// a time (the session's own loop, or before the session is shared).
func (n *nickText) Store(name string) { storeNick(n, name) }

// storeNick is Store for a name in a string or in bytes (a request's,
// copied without a string of its own in between).
func storeNick[S ~string | ~[]byte](n *nickText, name S) {
	if len(name) == 0 {
		n.p.Store(nil)
		return
	}
	if len(name) > maxNickBytes {
		name = name[:maxNickBytes]
	}
	b := make([]byte, 1+len(name))
	b[0] = byte(len(name))
	copy(b[1:], name)
	n.p.Store(&b[0])
}

// Load returns the nickname, "" if none. Any goroutine.
func (n *nickText) Load() string {
	p := n.p.Load()
	if p == nil {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(p), 1)), int(*p))
}
