package cluster

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"unsafe"
)

// wireVersion is the first byte of every unsigned payload. A node drops
// payloads of another version (counted in Stats.BadPayloads), so
// mixed-version clusters degrade to separate islands instead of misreading
// each other; see docs/cluster.md for the upgrade rule. Signed payloads
// (Config.Key) are version wireSigned: the same fields and an HMAC.
const wireVersion = 1

// kind is the second byte of every payload.
type kind uint8

const (
	kindRoom    kind = 1 // a room message
	kindDirect  kind = 2 // a message to one connection
	kindState   kind = 3 // one membership change of the origin's sessions
	kindHB      kind = 4 // heartbeat: epoch and last state sequence number
	kindSnap    kind = 5 // one part of a full membership snapshot
	kindSyncReq kind = 6 // a request for a snapshot of the receiver's sessions
	kindUser    kind = 7 // a message to every connection of one user
	kindAll     kind = 8 // a message to every connection of the receiver
	// Node API requests and replies (Serve, Call) use the wire format
	// only when signed: without a key their bodies travel bare.
	kindAPIReq kind = 9  // a node API request: str body
	kindAPIRes kind = 10 // a node API reply: str body
)

// Flags of a message, after its event name.
const msgEventArgs = 1 // Data is the argument array of event Event

// op is the membership change a state event carries.
type op uint8

const (
	opOpen  op = 1 // session opened (id, nick, user)
	opClose op = 2 // session closed: it left all its rooms
	opNick  op = 3 // nickname changed (id, nick)
	opJoin  op = 4 // joined room (id, room)
	opLeave op = 5 // left room (id, room)
)

// Flags of a heartbeat. hbBye says the origin is shutting down: peers drop
// it at once instead of waiting for the TTL. hbSequencing says the origin
// sends its room messages through the JetStream stream (Config.History),
// so that peers can warn about a cluster whose nodes disagree.
const (
	hbBye        = 1
	hbSequencing = 2
)

// closeRecoverable, in the flags byte that may trail an opClose state
// event, says the session dropped in a way its client may resume from
// (chat's recoverable closes), on any node. An opClose without the byte
// (a node that predates it) is not recoverable.
const closeRecoverable = 1

// Decoding errors.
var (
	errShort   = errors.New("cluster: truncated payload")
	errVersion = errors.New("cluster: unknown wire version")
	errKind    = errors.New("cluster: unknown payload kind")
	errCount   = errors.New("cluster: count exceeds payload")
)

// wireMsg is one decoded payload. Its byte slices alias the decoded input:
// they are valid as long as the input is not modified.
type wireMsg struct {
	kind   kind
	origin []byte

	// kindRoom, kindDirect, kindUser
	room   []byte // kindDirect: the target connection id; kindUser: the user
	from   []byte
	nick   []byte
	user   []byte
	ts     int64
	data   []byte
	atts   [][]byte // reuses its backing array across decodes
	event  []byte   // optional, after the attachments (server API messages)
	mflag  byte     // message flags (msgEventArgs), after the event
	except []byte   // a connection the message is not for, after the flags
	epoch  uint64   // kindState, kindHB, kindSnap
	seq    uint64   // kindState, kindHB, kindSnap

	// kindState
	op op
	id []byte

	// kindHB; kindState: the flags byte that may trail an opClose
	// (closeRecoverable), hasFlags when present.
	flags    uint8
	hasFlags bool

	// kindSnap: sessions is the still-encoded session list, read with
	// nextSession.
	part, parts uint64
	nsess       uint64
	sessions    []byte
}

// appendHeader starts a payload.
func appendHeader(b []byte, k kind, origin string) []byte {
	b = append(b, wireVersion, byte(k))
	return appendStr(b, origin)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendMessage encodes a room (k == kindRoom, dest = room), direct
// (k == kindDirect, dest = target id) or user (k == kindUser, dest = user)
// message. The event name, when set, trails the attachments, so nodes
// that predate it read the rest unchanged.
func appendMessage(b []byte, k kind, origin string, dest []byte, m *Message) []byte {
	b = appendHeader(b, k, origin)
	b = appendBytes(b, dest)
	b = appendStr(b, m.From)
	b = appendStr(b, m.Nick)
	b = appendStr(b, m.User)
	b = binary.AppendVarint(b, m.TS)
	b = appendBytes(b, m.Data)
	b = binary.AppendUvarint(b, uint64(len(m.Attachments)))
	for _, a := range m.Attachments {
		b = appendBytes(b, a)
	}
	if m.Event != "" {
		b = appendStr(b, m.Event)
		var flags byte
		if m.EventArgs {
			flags |= msgEventArgs
		}
		b = append(b, flags)
		if m.Except != "" {
			// Later still: nodes that predate it ignore it.
			b = appendStr(b, m.Except)
		}
	}
	return b
}

func appendState(b []byte, origin string, epoch, seq uint64, o op, id, nick, user, room string) []byte {
	b = appendHeader(b, kindState, origin)
	b = binary.LittleEndian.AppendUint64(b, epoch)
	b = binary.AppendUvarint(b, seq)
	b = append(b, byte(o))
	b = appendStr(b, id)
	b = appendStr(b, nick)
	b = appendStr(b, user)
	return appendStr(b, room)
}

// appendClose encodes an opClose state event with its flags byte
// (closeRecoverable).
func appendClose(b []byte, origin string, epoch, seq uint64, id, nick, user string, flags byte) []byte {
	b = appendState(b, origin, epoch, seq, opClose, id, nick, user, "")
	return append(b, flags)
}

func appendHB(b []byte, origin string, epoch, seq uint64, flags uint8) []byte {
	b = appendHeader(b, kindHB, origin)
	b = binary.LittleEndian.AppendUint64(b, epoch)
	b = binary.AppendUvarint(b, seq)
	return append(b, flags)
}

// appendSnapHeader starts snapshot part number part (from 0) of parts,
// holding nsess sessions that appendSession encodes after it.
func appendSnapHeader(b []byte, origin string, epoch, seq, part, parts uint64, nsess uint32) []byte {
	b = appendHeader(b, kindSnap, origin)
	b = binary.LittleEndian.AppendUint64(b, epoch)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, part)
	b = binary.AppendUvarint(b, parts)
	return binary.LittleEndian.AppendUint32(b, nsess)
}

// appendSyncReq encodes a snapshot request; the reply subject of the NATS
// message says where the parts go.
func appendSyncReq(b []byte, origin string) []byte {
	return appendHeader(b, kindSyncReq, origin)
}

func appendSession(b []byte, id, nick, user string, rooms []string) []byte {
	b = appendStr(b, id)
	b = appendStr(b, nick)
	b = appendStr(b, user)
	b = binary.AppendUvarint(b, uint64(len(rooms)))
	for _, r := range rooms {
		b = appendStr(b, r)
	}
	return b
}

// reader walks a payload; the first error sticks and later reads return
// zero values, so decoders check once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errShort
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 4 {
		r.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// appendAPI encodes a node API request (kindAPIReq) or reply
// (kindAPIRes); only signed payloads use it.
func appendAPI(b []byte, k kind, origin string, body []byte) []byte {
	b = appendHeader(b, k, origin)
	return appendBytes(b, body)
}

// decode parses the version-1 payload b into w without copying: w's
// slices alias b. It never panics, whatever b holds, and allocates only
// when w.atts must grow.
func decode(b []byte, w *wireMsg) error {
	if len(b) >= 2 && b[0] != wireVersion {
		atts := w.atts[:0]
		*w = wireMsg{atts: atts}
		return errVersion
	}
	return decodeBody(b, w)
}

// decodeBody is decode without the version check: b is a payload signer.open
// returned (its version byte is ignored, its HMAC already cut off).
func decodeBody(b []byte, w *wireMsg) error {
	atts := w.atts[:0]
	*w = wireMsg{atts: atts}
	if len(b) < 2 {
		return errShort
	}
	w.kind = kind(b[1])
	r := reader{b: b[2:]}
	w.origin = r.bytes()
	switch w.kind {
	case kindRoom, kindDirect, kindUser, kindAll:
		w.room = r.bytes()
		w.from = r.bytes()
		w.nick = r.bytes()
		w.user = r.bytes()
		w.ts = r.varint()
		w.data = r.bytes()
		n := r.uvarint()
		// Each attachment takes at least its length byte: a count beyond
		// the rest of the payload is a lie, refused before allocating.
		if n > uint64(len(r.b)) {
			return errCount
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			w.atts = append(w.atts, r.bytes())
		}
		if len(r.b) > 0 && r.err == nil {
			w.event = r.bytes()
			if len(r.b) > 0 && r.err == nil {
				w.mflag = r.byte1()
			}
			if len(r.b) > 0 && r.err == nil {
				w.except = r.bytes()
			}
		}
	case kindState:
		w.epoch = r.u64()
		w.seq = r.uvarint()
		w.op = op(r.byte1())
		w.id = r.bytes()
		w.nick = r.bytes()
		w.user = r.bytes()
		w.room = r.bytes()
		if len(r.b) > 0 && r.err == nil {
			// Added after version 1 shipped: nodes that predate it
			// ignore the trailing byte.
			w.flags, w.hasFlags = r.byte1(), true
		}
	case kindHB:
		w.epoch = r.u64()
		w.seq = r.uvarint()
		w.flags = r.byte1()
	case kindSnap:
		w.epoch = r.u64()
		w.seq = r.uvarint()
		w.part = r.uvarint()
		w.parts = r.uvarint()
		w.nsess = uint64(r.u32())
		w.sessions = r.b
		if r.err == nil && (w.parts == 0 || w.part >= w.parts) {
			return errCount
		}
		if w.nsess > uint64(len(r.b)) {
			return errCount
		}
	case kindSyncReq:
	case kindAPIReq, kindAPIRes:
		w.data = r.bytes()
	default:
		return errKind
	}
	return r.err
}

// stateFlags returns a state event's trailing flags byte (0 without one).
func (w *wireMsg) stateFlags() uint8 {
	if w.kind == kindState && w.hasFlags {
		return w.flags
	}
	return 0
}

// snapSession is one session of a snapshot.
type snapSession struct {
	id, nick, user string
	rooms          []string
}

// sessions decodes a snapshot part's session list, copying every string:
// the results are kept in the replica.
func (w *wireMsg) decodeSessions() ([]snapSession, error) {
	r := reader{b: w.sessions}
	out := make([]snapSession, 0, w.nsess)
	for i := uint64(0); i < w.nsess; i++ {
		s := snapSession{id: string(r.bytes()), nick: string(r.bytes()), user: string(r.bytes())}
		n := r.uvarint()
		if r.err != nil {
			return nil, r.err
		}
		if n > uint64(len(r.b)) {
			return nil, errCount
		}
		s.rooms = make([]string, 0, n)
		for j := uint64(0); j < n; j++ {
			s.rooms = append(s.rooms, string(r.bytes()))
		}
		if r.err != nil {
			return nil, r.err
		}
		out = append(out, s)
	}
	return out, nil
}

// str returns b as a string without copying. The string aliases b, so b
// must not change while the string is in use: decoded payloads are never
// modified, and the strings are handed to the Handler only for the length
// of its call.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// roomToken is the subject token of a room: base64url without padding, so
// that any room name (spaces, dots, '*', '>') makes a valid single token.
func roomToken(room []byte) string {
	return base64.RawURLEncoding.EncodeToString(room)
}
