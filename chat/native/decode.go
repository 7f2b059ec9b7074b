package native

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/chatgate/chatgate/chat"
)

// Decode parses one frame payload into req, which it resets first.
//
// On success req.Op is set along with the fields that operation uses: Name
// and HasName (nick); Room and HasRoom (join, leave, members); Room/HasRoom
// and/or To/HasTo, and Data (send). req.ID is set whenever the request
// carried an id. The slices alias payload (see the package documentation for
// when they are copied instead).
//
// On failure Decode returns one of the *chat.Error sentinels: chat.ErrBadJSON
// (not valid JSON, not an object, or an "id" that is neither a number nor a
// string, as docs/protocol.md specifies), chat.ErrMissingType ("type"
// absent or not a string), chat.ErrUnknownType, chat.ErrMissingName,
// chat.ErrMissingRoom, chat.ErrMissingDest or chat.ErrMissingData (a required
// field absent or of the wrong JSON kind). They are checked in that order.
// req.ID is still set if an id could be read, so that the error reply can
// echo it. For invalid JSON that is a best effort: the id the scan of the
// top-level object found before it gave up, kept only if that token is
// itself a valid JSON number or string, so the reply stays valid JSON. req.Op
// is set when the type was recognised. Other fields are unspecified.
//
// Decode is safe for concurrent use; it does not retain payload or req.
func Decode(payload []byte, req *chat.Request) error {
	req.Reset()
	var f fields
	scanned := f.scan(payload)
	// The scanner trusts the structure it walks, so json.Valid runs even
	// when the scan succeeded: it alone proves the payload is JSON.
	if !scanned || !json.Valid(payload) {
		if isIDToken(f.id) && json.Valid(f.id) {
			req.ID = f.id
		}
		return chat.ErrBadJSON
	}
	if f.id != nil {
		if !isIDToken(f.id) {
			// There is no id a client could match the reply with.
			return chat.ErrBadJSON
		}
		req.ID = f.id
	}
	if !isString(f.typ) {
		return chat.ErrMissingType
	}
	op := lookupOp(f.typ)
	if op == chat.OpInvalid {
		return chat.ErrUnknownType
	}
	req.Op = op

	switch op {
	case chat.OpNick:
		if !isString(f.name) {
			return chat.ErrMissingName
		}
		req.Name, req.HasName = unquote(f.name), true

	case chat.OpJoin, chat.OpLeave, chat.OpMembers:
		if !isString(f.room) {
			return chat.ErrMissingRoom
		}
		req.Room, req.HasRoom = unquote(f.room), true

	case chat.OpSend:
		if f.room != nil {
			if !isString(f.room) {
				return chat.ErrMissingRoom
			}
			req.Room, req.HasRoom = unquote(f.room), true
		}
		if f.to != nil {
			if !isString(f.to) {
				return chat.ErrMissingDest
			}
			req.To, req.HasTo = unquote(f.to), true
		}
		if !req.HasRoom && !req.HasTo {
			return chat.ErrMissingDest
		}
		if f.data == nil {
			return chat.ErrMissingData
		}
		req.Data = f.data
	}
	return nil
}

// fields holds the raw values of the keys Decode knows, as subslices of the
// payload (strings keep their quotes). nil means absent.
type fields struct {
	typ, id, name, room, to, data []byte
}

// slot returns where the value of the (unquoted) key goes, or nil for a key
// the protocol does not know.
func (f *fields) slot(key []byte) *[]byte {
	// switch on string(key) compiles to comparisons and does not allocate.
	switch string(key) {
	case "type":
		return &f.typ
	case "id":
		return &f.id
	case "name":
		return &f.name
	case "room":
		return &f.room
	case "to":
		return &f.to
	case "data":
		return &f.data
	}
	return nil
}

// maxEscapedKey bounds the raw length of an escaped key or type worth
// unescaping: the longest name the protocol knows ("members") written
// entirely as \uXXXX escapes. Anything longer cannot match.
const maxEscapedKey = 6 * len("members")

// set records v as the value of the raw (still escaped) key.
func (f *fields) set(key, v []byte) {
	if s := f.slot(key); s != nil {
		*s = v
		return
	}
	if len(key) > maxEscapedKey || bytes.IndexByte(key, '\\') < 0 {
		return
	}
	// Unquoting at most triples the length (an invalid byte becomes the
	// three bytes of U+FFFD), so this buffer never grows and stays on the
	// stack.
	var buf [3 * maxEscapedKey]byte
	if s := f.slot(appendUnquoted(buf[:0], key)); s != nil {
		*s = v
	}
}

// scan walks the top-level object of p and records the known keys' values.
// It reports whether p looked like one object. It does not validate: on
// invalid input it may succeed or fail, but it never reads out of bounds.
func (f *fields) scan(p []byte) bool {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return false
	}
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return skipSpace(p, i+1) == len(p)
	}
	for {
		if i >= len(p) || p[i] != '"' {
			return false
		}
		end := skipString(p, i)
		if end < 0 {
			return false
		}
		key := p[i+1 : end-1]
		i = skipSpace(p, end)
		if i >= len(p) || p[i] != ':' {
			return false
		}
		i = skipSpace(p, i+1)
		end = skipValue(p, i)
		if end < 0 {
			return false
		}
		f.set(key, p[i:end])
		i = skipSpace(p, end)
		if i >= len(p) {
			return false
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
		case '}':
			return skipSpace(p, i+1) == len(p)
		default:
			return false
		}
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace (RFC 8259 §2).
func skipSpace(p []byte, i int) int {
	for i < len(p) {
		switch p[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that starts with the
// quote at p[i], or -1 if it is not closed.
func skipString(p []byte, i int) int {
	j := i + 1
	for {
		// IndexByte is vectorised: long strings inside "data" are crossed
		// in a few instructions per 16 or 32 bytes.
		k := bytes.IndexByte(p[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		// The quote is escaped iff an odd number of backslashes precedes it.
		// Each run of backslashes ends at one quote, so this stays linear.
		n := 0
		for b := q - 1; b > i && p[b] == '\\'; b-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index just past the value that starts at p[i], or
// -1 if there is none.
func skipValue(p []byte, i int) int {
	if i >= len(p) {
		return -1
	}
	switch p[i] {
	case '"':
		return skipString(p, i)
	case '{', '[':
		return skipNested(p, i)
	}
	// A number or a literal (true, false, null). json.Valid checks which.
	j := i
	for j < len(p) && scalarByte[p[j]] {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// skipNested returns the index just past the object or array that starts at
// p[i], or -1 if it is not closed. It counts brackets without recursing, so
// deep nesting costs no stack; json.Valid has already checked (or will
// check) that the brackets match and that the depth is bounded.
func skipNested(p []byte, i int) int {
	depth := 0
	for j := i; j < len(p); {
		switch p[j] {
		case '"':
			j = skipString(p, j)
			if j < 0 {
				return -1
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
		j++
	}
	return -1
}

// scalarByte reports the bytes that can make up a JSON number or literal.
var scalarByte = func() (t [256]bool) {
	for _, c := range []byte("0123456789+-.eEtrufalsn") {
		t[c] = true
	}
	return t
}()

// isString reports whether raw is a JSON string (a value slice from scan).
func isString(raw []byte) bool { return len(raw) >= 2 && raw[0] == '"' }

// isIDToken reports whether raw starts like a JSON number or string.
func isIDToken(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	c := raw[0]
	return c == '"' || c == '-' || ('0' <= c && c <= '9')
}

// lookupOp maps the raw JSON string of "type" to its operation, or OpInvalid.
func lookupOp(raw []byte) chat.Op {
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		if len(s) > maxEscapedKey {
			return chat.OpInvalid
		}
		var buf [3 * maxEscapedKey]byte
		s = appendUnquoted(buf[:0], s)
	}
	switch string(s) {
	case "nick":
		return chat.OpNick
	case "join":
		return chat.OpJoin
	case "leave":
		return chat.OpLeave
	case "send":
		return chat.OpSend
	case "rooms":
		return chat.OpRooms
	case "members":
		return chat.OpMembers
	case "ping":
		return chat.OpPing
	}
	return chat.OpInvalid
}

// unquote returns the contents of the raw JSON string: a subslice of raw
// when it can be returned as is, else a new slice holding what
// encoding/json would decode.
func unquote(raw []byte) []byte {
	s := raw[1 : len(raw)-1]
	// utf8.Valid checks eight ASCII bytes at a time, so the common case
	// costs two fast passes over a short string and no allocation.
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return s
	}
	return appendUnquoted(make([]byte, 0, len(s)), s)
}

// appendUnquoted appends the decoded contents s of a JSON string (without
// its quotes) to dst, with encoding/json's rules: invalid UTF-8 bytes and
// unpaired surrogate escapes become U+FFFD. A malformed escape, possible
// only on input json.Valid rejects, is copied through rather than panicking.
func appendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		if c != '\\' || i+1 >= len(s) {
			dst = append(dst, c)
			i++
			continue
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				dst = append(dst, c)
				i++
				continue
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A surrogate counts only as the first half of a pair
				// written as two escapes (RFC 8259 §7); anything else is
				// replaced and the following escape, if any, decoded alone.
				r2, ok := rune(0), false
				if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, ok = hex4(s, i+2)
				}
				r = utf16.DecodeRune(r, r2)
				if ok && r != utf8.RuneError {
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			dst = append(dst, c)
			i++
			continue
		}
		i += 2
	}
	return dst
}

// hex4 decodes the four hex digits at s[i:i+4].
func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
