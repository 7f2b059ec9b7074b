package socketio

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// The msgpack parser (the npm package socket.io-msgpack-parser, which
// encodes with notepack.io): each Socket.IO packet is one msgpack map
//
//	{"type": 0..4, "nsp": "/", "data": …, "id": 12}
//
// sent as one binary Engine.IO message (over long-polling a "b" record),
// with no attachments: Buffers stay inside the map as msgpack bin values.
// "data" and "id" may be absent, and socket.io-client adds keys of its own
// ("options"), which are ignored. There are no BINARY_EVENT or BINARY_ACK
// types: an EVENT or ACK carries its binary values inline.
//
// chatgate's chat path works on the JSON of the default parser, so a
// msgpack packet is translated both ways at the edge:
//
//   - ParseMsgpack turns a client's packet into the text packet the
//     default parser would have sent, with the same Packet and
//     attachments: each bin value (a Node.js Buffer), and each ext 0
//     value of ext 8/16/32 (an ArrayBuffer or typed array, as notepack.io
//     writes them), becomes a {"_placeholder":true,"num":i} with its bytes
//     as attachment i, so the packet reaches JSON and native members as
//     a BINARY_EVENT from the default parser does;
//   - MsgpackCodec and AppendMsgpackPacket turn the text packets the
//     default parser's Codec writes into msgpack, the placeholders back
//     into bin values.
//
// Values without a JSON form follow JSON.stringify, which is what a JSON
// client's socket.io-client would have done with them: notepack.io's
// undefined (fixext 1, type 0) is dropped from maps and null in arrays; its
// Date (fixext 8, type 0: milliseconds as a big-endian int64) becomes the
// ISO 8601 string; a NaN or infinite float becomes null; strings with
// invalid UTF-8 get U+FFFD. Map keys must be strings, and other
// extension types are refused: no JavaScript client writes them.

// MaxMsgpackDepth bounds the nesting of maps and arrays in a client's
// msgpack packet, the packet map included. It only keeps the translation's
// recursion bounded: the hub applies -max-json-depth to the data
// afterwards, as for the default parser, and answers a deeper event with
// an error ack.
const MaxMsgpackDepth = 256

// Errors of a malformed msgpack packet. Like the text parser's, they mean
// the connection is closed (ParseMsgpack may also return those, for a
// packet whose translation the text rules refuse).
var (
	// ErrMsgpack: not one complete, well-formed msgpack value (truncated,
	// trailing bytes, a reserved code, a non-string map key, an unknown
	// extension type), or nested deeper than MaxMsgpackDepth.
	ErrMsgpack = errors.New("socketio: malformed msgpack packet")
	// ErrMsgpackField: a packet map with a "type", "nsp" or "id" of the
	// wrong kind, without "type" or "nsp", or with a binary value in a
	// packet that is not an EVENT or ACK.
	ErrMsgpackField = errors.New("socketio: invalid msgpack packet field")
)

// msgpackDecoder is the state of one ParseMsgpack, pooled: the library's
// decoder reads the codes and headers from r, and bodies (strings, bin)
// are sliced from in directly, without copying.
type msgpackDecoder struct {
	in   []byte
	r    bytes.Reader
	dec  *msgpack.Decoder
	out  []byte   // the JSON being written
	atts [][]byte // binary values found, aliasing in
}

var msgpackDecoders = sync.Pool{New: func() any {
	d := &msgpackDecoder{dec: msgpack.NewDecoder(nil)}
	return d
}}

// ParseMsgpack parses one packet of the msgpack parser, the payload of a
// binary Engine.IO message, into p, as ParsePacket would have parsed the
// same packet from the default parser. The packet's text is written into
// text, a buffer reused from its start and returned for the next call,
// and p's slices alias it; the binary values are appended to atts, as the
// attachments of the BINARY_EVENT or BINARY_ACK p then is. The attachments
// alias b.
//
// Decoding is bounded by the input: each element costs at least one byte
// of b, nesting is at most MaxMsgpackDepth, a packet holds at most 64
// binary values (more is ErrAttachments), and the text is at most a small
// multiple of len(b): six times (a string of control characters, each
// escaped as \u00XX), plus a placeholder per binary value. Errors are ErrMsgpack, ErrMsgpackField or one
// of ParsePacket's. ParseMsgpack is safe for concurrent use.
func ParseMsgpack(b []byte, p *Packet, text []byte, atts [][]byte) ([]byte, [][]byte, error) {
	*p = Packet{Namespace: rootNamespace}
	d := msgpackDecoders.Get().(*msgpackDecoder)
	defer func() {
		d.in, d.out, d.atts = nil, nil, nil
		d.r.Reset(nil)
		msgpackDecoders.Put(d)
	}()
	d.in, d.out, d.atts = b, text[:0], atts
	d.r.Reset(b)
	d.dec.Reset(&d.r)

	c, err := d.dec.PeekCode()
	if err != nil || !isMap(c) {
		return text, atts, ErrMsgpack
	}
	n, err := d.dec.DecodeMapLen()
	if err != nil || n < 0 || n > d.r.Len()/2 {
		return text, atts, ErrMsgpack
	}
	var (
		typ            = -1
		nsp            []byte
		id             int64 = -1
		dataStart            = -1
		dataEnd        int
		seenID, seenNs bool
	)
	for i := 0; i < n; i++ {
		key, err := d.key()
		if err != nil {
			return d.out, d.atts, err
		}
		switch string(key) {
		case "type":
			v, ok := d.int()
			if !ok || v < 0 || v > 4 || typ >= 0 {
				return d.out, d.atts, ErrMsgpackField
			}
			typ = int(v)
		case "nsp":
			c, err := d.dec.PeekCode()
			if err != nil || !msgpcode.IsString(c) || seenNs {
				return d.out, d.atts, ErrMsgpackField
			}
			l, err := d.dec.DecodeBytesLen()
			if err != nil {
				return d.out, d.atts, ErrMsgpack
			}
			if nsp, err = d.take(l); err != nil {
				return d.out, d.atts, err
			}
			seenNs = true
		case "id":
			if seenID {
				return d.out, d.atts, ErrMsgpackField
			}
			seenID = true
			if d.undefinedOrNil() {
				continue
			}
			v, ok := d.int()
			if !ok || v < 0 {
				return d.out, d.atts, ErrAckID
			}
			id = v
		case "data":
			if dataStart >= 0 {
				return d.out, d.atts, ErrMsgpackField
			}
			dataStart = len(d.out)
			undefined, err := d.value(1)
			if err != nil {
				return d.out, d.atts, err
			}
			if undefined {
				dataStart = -1 // {data: undefined} has no data
			}
			dataEnd = len(d.out)
		default:
			// socket.io-client's "options" and anything else: checked,
			// not kept.
			mark, natts := len(d.out), len(d.atts)
			if _, err := d.value(1); err != nil {
				return d.out, d.atts, err
			}
			d.out, d.atts = d.out[:mark], d.atts[:natts]
		}
	}
	if d.r.Len() != 0 {
		return d.out, d.atts, ErrMsgpack // trailing bytes, as notepack.io
	}
	if typ < 0 || !seenNs {
		return d.out, d.atts, ErrMsgpackField
	}
	if len(nsp) == 0 || nsp[0] != '/' || bytes.IndexByte(nsp, ',') >= 0 {
		return d.out, d.atts, ErrNamespace
	}
	t := PacketType('0' + typ)
	if len(d.atts) > 0 {
		switch t {
		case Event:
			t = BinaryEvent
		case Ack:
			t = BinaryAck
		default:
			return d.out, d.atts, ErrMsgpackField
		}
		if len(d.atts) > maxMsgpackAttachments {
			return d.out, d.atts, ErrAttachments
		}
	}
	// The text packet, after the data in the same buffer:
	// <type>[<n>-][<nsp>,][<id>]<data>.
	start := len(d.out)
	d.out = append(d.out, byte(t))
	if t.binary() {
		d.out = strconv.AppendInt(d.out, int64(len(d.atts)), 10)
		d.out = append(d.out, '-')
	}
	if !isRoot(nsp) {
		d.out = append(d.out, nsp...)
		d.out = append(d.out, ',')
	}
	if id >= 0 {
		d.out = strconv.AppendInt(d.out, id, 10)
	}
	if dataStart >= 0 {
		d.out = append(d.out, d.out[dataStart:dataEnd]...)
	}
	txt := d.out[start:]
	if err := ParsePacket(txt, p); err != nil {
		return d.out, d.atts, err
	}
	return d.out, d.atts, nil
}

// maxMsgpackAttachments bounds the binary values of one msgpack packet,
// as the attachments of a text one.
const maxMsgpackAttachments = 64

func isMap(c byte) bool { return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 }
func isArray(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

// take returns the next n bytes of the input, without copying.
func (d *msgpackDecoder) take(n int) ([]byte, error) {
	if n < 0 || n > d.r.Len() {
		return nil, ErrMsgpack
	}
	i := len(d.in) - d.r.Len()
	_, _ = d.r.Seek(int64(n), io.SeekCurrent)
	return d.in[i : i+n], nil
}

// key reads a map key, which must be a string.
func (d *msgpackDecoder) key() ([]byte, error) {
	c, err := d.dec.PeekCode()
	if err != nil || !msgpcode.IsString(c) {
		return nil, ErrMsgpack
	}
	n, err := d.dec.DecodeBytesLen()
	if err != nil {
		return nil, ErrMsgpack
	}
	return d.take(n)
}

// int reads an integer value; ok is false for anything else (a float with
// an integral value, which JavaScript does not tell apart, included).
func (d *msgpackDecoder) int() (int64, bool) {
	c, err := d.dec.PeekCode()
	if err != nil {
		return 0, false
	}
	switch {
	case msgpcode.IsFixedNum(c), c == msgpcode.Int8, c == msgpcode.Int16, c == msgpcode.Int32,
		c == msgpcode.Int64, c == msgpcode.Uint8, c == msgpcode.Uint16, c == msgpcode.Uint32:
		v, err := d.dec.DecodeInt64()
		return v, err == nil
	case c == msgpcode.Uint64:
		v, err := d.dec.DecodeUint64()
		return int64(v), err == nil && v <= math.MaxInt64
	case c == msgpcode.Float, c == msgpcode.Double:
		f, err := d.dec.DecodeFloat64()
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

// undefinedOrNil consumes a nil or notepack.io's undefined, reporting
// whether the next value was one.
func (d *msgpackDecoder) undefinedOrNil() bool {
	c, err := d.dec.PeekCode()
	if err != nil {
		return false
	}
	if c == msgpcode.Nil {
		_ = d.dec.DecodeNil()
		return true
	}
	if c == msgpcode.FixExt1 {
		i := len(d.in) - d.r.Len()
		if i+2 < len(d.in) && d.in[i+1] == 0 {
			_, _ = d.take(3)
			return true
		}
	}
	return false
}

// value translates the next value to JSON, appended to d.out. A value
// JSON.stringify drops (undefined) writes nothing and reports undefined.
func (d *msgpackDecoder) value(depth int) (undefined bool, err error) {
	c, err := d.dec.PeekCode()
	if err != nil {
		return false, ErrMsgpack
	}
	switch {
	case c == msgpcode.Nil:
		_ = d.dec.DecodeNil()
		d.out = append(d.out, "null"...)
	case c == msgpcode.False, c == msgpcode.True:
		v, _ := d.dec.DecodeBool()
		d.out = strconv.AppendBool(d.out, v)
	case c == msgpcode.Uint64:
		v, err := d.dec.DecodeUint64()
		if err != nil {
			return false, ErrMsgpack
		}
		d.out = strconv.AppendUint(d.out, v, 10)
	case msgpcode.IsFixedNum(c), c == msgpcode.Int8, c == msgpcode.Int16, c == msgpcode.Int32,
		c == msgpcode.Int64, c == msgpcode.Uint8, c == msgpcode.Uint16, c == msgpcode.Uint32:
		v, err := d.dec.DecodeInt64()
		if err != nil {
			return false, ErrMsgpack
		}
		d.out = strconv.AppendInt(d.out, v, 10)
	case c == msgpcode.Float, c == msgpcode.Double:
		f, err := d.dec.DecodeFloat64()
		if err != nil {
			return false, ErrMsgpack
		}
		d.out = appendJSONFloat(d.out, f)
	case msgpcode.IsString(c):
		n, err := d.dec.DecodeBytesLen()
		if err != nil {
			return false, ErrMsgpack
		}
		s, err := d.take(n)
		if err != nil {
			return false, err
		}
		d.out = jsontext.AppendString(d.out, s)
	case msgpcode.IsBin(c):
		n, err := d.dec.DecodeBytesLen()
		if err != nil {
			return false, ErrMsgpack
		}
		bin, err := d.take(n)
		if err != nil {
			return false, err
		}
		d.placeholder(bin)
	case msgpcode.IsExt(c):
		return d.ext(c)
	case isArray(c), isMap(c):
		if depth >= MaxMsgpackDepth {
			return false, ErrMsgpack
		}
		if isArray(c) {
			return false, d.array(depth)
		}
		return false, d.object(depth)
	default:
		return false, ErrMsgpack // 0xc1, never used
	}
	return false, nil
}

// placeholder writes a binary value's placeholder and keeps its bytes.
func (d *msgpackDecoder) placeholder(bin []byte) {
	d.out = append(d.out, `{"_placeholder":true,"num":`...)
	d.out = strconv.AppendInt(d.out, int64(len(d.atts)), 10)
	d.out = append(d.out, '}')
	if len(d.atts) <= maxMsgpackAttachments {
		d.atts = append(d.atts, bin) // one over the limit is enough to refuse it
	}
}

func (d *msgpackDecoder) array(depth int) error {
	n, err := d.dec.DecodeArrayLen()
	if err != nil || n < 0 || n > d.r.Len() {
		return ErrMsgpack
	}
	d.out = append(d.out, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			d.out = append(d.out, ',')
		}
		undefined, err := d.value(depth + 1)
		if err != nil {
			return err
		}
		if undefined {
			d.out = append(d.out, "null"...)
		}
	}
	d.out = append(d.out, ']')
	return nil
}

func (d *msgpackDecoder) object(depth int) error {
	n, err := d.dec.DecodeMapLen()
	if err != nil || n < 0 || n > d.r.Len()/2 {
		return ErrMsgpack
	}
	d.out = append(d.out, '{')
	members := 0
	for i := 0; i < n; i++ {
		mark := len(d.out)
		if members > 0 {
			d.out = append(d.out, ',')
		}
		k, err := d.key()
		if err != nil {
			return err
		}
		d.out = jsontext.AppendString(d.out, k)
		d.out = append(d.out, ':')
		undefined, err := d.value(depth + 1)
		if err != nil {
			return err
		}
		if undefined {
			d.out = d.out[:mark] // JSON.stringify drops it
			continue
		}
		members++
	}
	d.out = append(d.out, '}')
	return nil
}

// ext translates notepack.io's extensions, all of type 0: undefined
// (fixext 1), a Date (fixext 8) and an ArrayBuffer (ext 8, 16, 32).
func (d *msgpackDecoder) ext(c byte) (bool, error) {
	typ, n, err := d.dec.DecodeExtHeader()
	if err != nil || typ != 0 {
		return false, ErrMsgpack
	}
	body, err := d.take(n)
	if err != nil {
		return false, err
	}
	switch c {
	case msgpcode.FixExt1:
		return true, nil
	case msgpcode.FixExt8:
		ms := int64(uint64(body[0])<<56 | uint64(body[1])<<48 | uint64(body[2])<<40 | uint64(body[3])<<32 |
			uint64(body[4])<<24 | uint64(body[5])<<16 | uint64(body[6])<<8 | uint64(body[7]))
		d.out = appendJSONDate(d.out, ms)
	case msgpcode.Ext8, msgpcode.Ext16, msgpcode.Ext32:
		d.placeholder(body)
	default:
		return false, ErrMsgpack
	}
	return false, nil
}

// appendJSONFloat appends f as JSON.stringify would: null for NaN and
// infinities.
func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// appendJSONDate appends the Date of ms milliseconds as JSON.stringify
// would: its toISOString in quotes, null when it is not a valid Date (out
// of ±8.64e15 ms) or its year does not have four digits.
func appendJSONDate(dst []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	if ms > 8.64e15 || ms < -8.64e15 || t.Year() < 0 || t.Year() > 9999 {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	return append(dst, '"')
}

// MsgpackCodec is the chat.Codec of Socket.IO clients that use the msgpack
// parser. It encodes every event and acknowledgement as JSON does, then
// translates that packet to msgpack (AppendMsgpackPacket), so both parsers
// always carry the same events; a room message is still encoded once for
// all msgpack members. Its payloads are binary messages (BinaryPayloads),
// with the message's binary values inside rather than after.
type MsgpackCodec struct {
	// JSON is the codec whose packets are translated, with its options
	// (Offsets).
	JSON Codec
}

var _ chat.Codec = MsgpackCodec{}

// BinaryAttachments implements chat.Codec: the attachments are inside the
// packet, as bin values.
func (MsgpackCodec) BinaryAttachments() bool { return false }

// BinaryPayloads reports that every payload of the codec is one binary
// message (a WebSocket binary frame, a long-polling "b" record).
func (MsgpackCodec) BinaryPayloads() bool { return true }

// AppendWelcome implements chat.Codec: nothing, as Codec.
func (MsgpackCodec) AppendWelcome(dst []byte, w *chat.Welcome) []byte { return dst }

// AppendRecovered implements chat.Codec: nothing, as Codec.
func (MsgpackCodec) AppendRecovered(dst []byte, r *chat.Recovered) []byte { return dst }

// AppendReply implements chat.Codec: Codec's ACK, in msgpack.
func (c MsgpackCodec) AppendReply(dst []byte, r *chat.Reply) []byte {
	s := acquireScratch()
	s.text = c.JSON.AppendReply(s.text[:0], r)
	dst = s.translate(dst, nil)
	releaseScratch(s)
	return dst
}

// AppendMessage implements chat.Codec: Codec's event, in msgpack, with
// m.Attachments in place of their placeholders. The broadcast path: with
// a reused dst it does not allocate.
func (c MsgpackCodec) AppendMessage(dst []byte, m *chat.Message) []byte {
	s := acquireScratch()
	s.text = c.JSON.AppendMessage(s.text[:0], m)
	dst = s.translate(dst, m.Attachments)
	releaseScratch(s)
	return dst
}

// AppendPresence implements chat.Codec.
func (c MsgpackCodec) AppendPresence(dst []byte, p *chat.Presence) []byte {
	s := acquireScratch()
	s.text = c.JSON.AppendPresence(s.text[:0], p)
	dst = s.translate(dst, nil)
	releaseScratch(s)
	return dst
}

// AppendMembership implements chat.Codec.
func (c MsgpackCodec) AppendMembership(dst []byte, room []byte, joined bool, count int, pos chat.Position) []byte {
	s := acquireScratch()
	s.text = c.JSON.AppendMembership(s.text[:0], room, joined, count, pos)
	dst = s.translate(dst, nil)
	releaseScratch(s)
	return dst
}

// msgpackScratch is the pooled state of one translation to msgpack: the
// JSON text, the library's encoder and the writer it appends to, so a
// translation allocates nothing once the pool is warm.
type msgpackScratch struct {
	text []byte
	str  []byte // an unquoted string with escapes
	w    appendWriter
	enc  *msgpack.Encoder
	atts [][]byte
}

var msgpackScratches sync.Pool

func acquireScratch() *msgpackScratch {
	s, _ := msgpackScratches.Get().(*msgpackScratch)
	if s == nil {
		s = &msgpackScratch{}
		s.enc = msgpack.NewEncoder(&s.w)
	}
	return s
}

// releaseScratch returns s to the pool, unless its buffers grew past what
// a pool should keep alive.
func releaseScratch(s *msgpackScratch) {
	s.w.b, s.atts = nil, nil
	if cap(s.text) > 64<<10 || cap(s.str) > 64<<10 {
		return
	}
	msgpackScratches.Put(s)
}

// appendWriter is the library encoder's output: an append to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *appendWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

// translate appends s.text, a text packet of Codec ('4' and the packet),
// to dst in msgpack; nothing when the text is empty or not a packet.
func (s *msgpackScratch) translate(dst []byte, atts [][]byte) []byte {
	if len(s.text) < 2 || s.text[0] != byte(EIOMessage) {
		return dst
	}
	out, err := appendMsgpack(s, dst, s.text[1:], atts)
	if err != nil {
		return dst
	}
	return out
}

// AppendMsgpackPacket appends the text packet text (an Engine.IO message:
// '4' and a Socket.IO packet, as the Append functions of this package
// write them) to dst as a packet of the msgpack parser, with atts, the
// attachments of a BINARY_EVENT or BINARY_ACK, in place of their
// placeholders. It fails, leaving dst as it was, when text is not a valid
// packet.
func AppendMsgpackPacket(dst, text []byte, atts [][]byte) ([]byte, error) {
	if len(text) < 2 || text[0] != byte(EIOMessage) {
		return dst, ErrEmpty
	}
	s := acquireScratch()
	defer releaseScratch(s)
	return appendMsgpack(s, dst, text[1:], atts)
}

// appendMsgpack translates the Socket.IO text packet pkt to msgpack:
// {"type", "data", "nsp", "id"}, the keys the reference server's packets
// have, "data" and "id" only when present. BINARY_EVENT and BINARY_ACK
// become EVENT and ACK.
func appendMsgpack(s *msgpackScratch, dst, pkt []byte, atts [][]byte) ([]byte, error) {
	var p Packet
	if err := ParsePacket(pkt, &p); err != nil {
		return dst, err
	}
	t := p.Type
	switch t {
	case BinaryEvent:
		t = Event
	case BinaryAck:
		t = Ack
	}
	n := 2
	if p.Data != nil {
		n++
	}
	if p.HasID {
		n++
	}
	s.w.b, s.atts = dst, atts
	e := s.enc
	_ = e.EncodeMapLen(n)
	_ = e.EncodeString("type")
	_ = e.EncodeUint(uint64(t - '0'))
	if p.Data != nil {
		_ = e.EncodeString("data")
		if _, err := s.json(p.Data, jsontext.SkipSpace(p.Data, 0), 0); err != nil {
			return dst, err
		}
	}
	_ = e.EncodeString("nsp")
	_ = e.EncodeString(unsafeString(p.Namespace))
	if p.HasID {
		_ = e.EncodeString("id")
		_ = e.EncodeInt(p.ID)
	}
	return s.w.b, nil
}

// unsafeString views b as a string without copying, for the library's
// EncodeString, which writes it out before returning and keeps nothing.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// errJSONShape: text that json.Valid accepted but the translation cannot
// follow, which would be a bug in this package.
var errJSONShape = errors.New("socketio: unexpected JSON in packet")

// errTooDeep: JSON nested deeper than a msgpack packet may be.
var errTooDeep = errors.New("socketio: JSON too deep for a msgpack packet")

// json encodes the JSON value at d[i] (valid JSON, as ParsePacket checked)
// and returns the index past it. Maps and arrays get 32-bit length headers
// patched at their end, so one pass suffices however deep the value nests;
// a placeholder becomes the bin value of its attachment. Values nested
// deeper than MaxMsgpackDepth (possible only with -max-json-depth above
// it, or off) are refused (errTooDeep): the packet is not sent to msgpack
// clients, which could not send it either.
func (s *msgpackScratch) json(d []byte, i, depth int) (int, error) {
	e := s.enc
	if i >= len(d) {
		return 0, errJSONShape
	}
	switch c := d[i]; {
	case c == '{':
		if end, num, kind := probePlaceholder(d, i); kind == isPlaceholder && num < len(s.atts) {
			_ = e.EncodeBytes(s.atts[num])
			return end, nil
		}
		return s.container(d, i, true, depth)
	case c == '[':
		return s.container(d, i, false, depth)
	case c == '"':
		end := jsontext.SkipString(d, i)
		if end < 0 {
			return 0, errJSONShape
		}
		raw := d[i+1 : end-1]
		if bytes.IndexByte(raw, '\\') >= 0 {
			s.str = jsontext.AppendUnquoted(s.str[:0], raw)
			raw = s.str
		}
		_ = e.EncodeString(unsafeString(raw))
		return end, nil
	case c == 't':
		_ = e.EncodeBool(true)
		return i + 4, nil
	case c == 'f':
		_ = e.EncodeBool(false)
		return i + 5, nil
	case c == 'n':
		_ = e.EncodeNil()
		return i + 4, nil
	}
	end := jsontext.SkipValue(d, i)
	if end < 0 {
		return 0, errJSONShape
	}
	num := d[i:end]
	if v, ok := parseJSONInt(num); ok {
		_ = e.EncodeInt(v)
		return end, nil
	}
	f, err := strconv.ParseFloat(unsafeString(num), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errJSONShape
	}
	_ = e.EncodeFloat64(f)
	return end, nil
}

// container encodes the object (obj) or array at d[i].
func (s *msgpackScratch) container(d []byte, i int, obj bool, depth int) (int, error) {
	if depth >= MaxMsgpackDepth {
		return 0, errTooDeep
	}
	at := len(s.w.b)
	if obj {
		_ = s.enc.EncodeMapLen(math.MaxUint16 + 1) // a 32-bit header, patched below
	} else {
		_ = s.enc.EncodeArrayLen(math.MaxUint16 + 1)
	}
	n := 0
	j := jsontext.SkipSpace(d, i+1)
	closing := byte(']')
	if obj {
		closing = '}'
	}
	for j < len(d) && d[j] != closing {
		if n > 0 {
			if d[j] != ',' {
				return 0, errJSONShape
			}
			j = jsontext.SkipSpace(d, j+1)
		}
		var err error
		if obj {
			if j, err = s.json(d, j, depth+1); err != nil { // the key, a string
				return 0, err
			}
			j = jsontext.SkipSpace(d, j)
			if j >= len(d) || d[j] != ':' {
				return 0, errJSONShape
			}
			j = jsontext.SkipSpace(d, j+1)
		}
		if j, err = s.json(d, j, depth+1); err != nil {
			return 0, err
		}
		j = jsontext.SkipSpace(d, j)
		n++
	}
	if j >= len(d) {
		return 0, errJSONShape
	}
	h := s.w.b[at+1 : at+5]
	h[0], h[1], h[2], h[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return j + 1, nil
}

// parseJSONInt parses a JSON number without fraction or exponent that fits
// an int64.
func parseJSONInt(num []byte) (int64, bool) {
	b := num
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	if len(b) > 18 {
		// 18 digits always fit; longer ones may. strconv refuses a
		// fraction, an exponent and an overflow.
		v, err := strconv.ParseInt(unsafeString(num), 10, 64)
		return v, err == nil
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}
