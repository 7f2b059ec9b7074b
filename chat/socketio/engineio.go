package socketio

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strconv"
	"time"

	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// EIOType is an Engine.IO v4 packet type. On the wire it is the packet's
// first byte, an ASCII digit, and the constants hold that byte
// (engine.io-protocol v4, "Packet encoding").
type EIOType byte

// Engine.IO v4 packet types.
const (
	EIOOpen    EIOType = '0' // server → client, handshake data (AppendOpen)
	EIOClose   EIOType = '1' // either side, closes the session
	EIOPing    EIOType = '2' // server → client heartbeat; "2probe" from the client during an upgrade
	EIOPong    EIOType = '3' // client → server answer; "3probe" from the server during an upgrade
	EIOMessage EIOType = '4' // either side, carries one Socket.IO packet
	EIOUpgrade EIOType = '5' // client → server, completes a polling → websocket upgrade
	EIONoop    EIOType = '6' // server → client, ends a pending poll during an upgrade
)

// String returns the packet type's name in the specification.
func (t EIOType) String() string {
	switch t {
	case EIOOpen:
		return "open"
	case EIOClose:
		return "close"
	case EIOPing:
		return "ping"
	case EIOPong:
		return "pong"
	case EIOMessage:
		return "message"
	case EIOUpgrade:
		return "upgrade"
	case EIONoop:
		return "noop"
	}
	return "invalid"
}

// ParseEIO splits the payload of a WebSocket text message into its
// Engine.IO packet type and data (engine.io-protocol v4, "Packet encoding",
// WebSocket). data aliases b and is empty, not nil, when the packet has
// none: "2" is a ping, "2probe" a ping with data "probe", and "4…" a message
// whose data goes to ParsePacket. It fails with ErrEmpty or ErrEIOType.
//
// A WebSocket binary message is not an Engine.IO packet: in v4 its payload
// is the data of a message packet as is, with no type byte, and must not be
// passed here. ParseEIO is safe for concurrent use and does not allocate.
func ParseEIO(b []byte) (t EIOType, data []byte, err error) {
	if len(b) == 0 {
		return 0, nil, ErrEmpty
	}
	t = EIOType(b[0])
	if t < EIOOpen || t > EIONoop {
		return 0, nil, ErrEIOType
	}
	return t, b[1:], nil
}

// AppendEIO appends the packet of type t with the given data, such as
// "3probe" or "6", to dst and returns the extended slice.
func AppendEIO(dst []byte, t EIOType, data []byte) []byte {
	dst = append(dst, byte(t))
	return append(dst, data...)
}

// Open is the handshake data of the Engine.IO open packet (engine.io-
// protocol v4, "Handshake").
type Open struct {
	// SID is the Engine.IO session id, echoed by the client in the "sid"
	// query parameter of every later request.
	SID string
	// Upgrades lists the transports the client may upgrade to: "websocket"
	// on a polling connection, none on a WebSocket connection.
	Upgrades []string
	// PingInterval is how often the server pings; PingTimeout is how long
	// it waits for the pong. Both go on the wire in whole milliseconds.
	PingInterval, PingTimeout time.Duration
	// MaxPayload is the largest polling payload, in bytes, the server
	// accepts; clients batch their packets below it.
	MaxPayload int
}

// AppendOpen appends the open packet for o to dst and returns the extended
// slice:
//
//	0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}
//
// The keys are exactly these, in this order; "upgrades" is always an array,
// [] when o.Upgrades is empty. Strings are escaped as JSON.
func AppendOpen(dst []byte, o Open) []byte {
	dst = append(dst, byte(EIOOpen))
	dst = append(dst, `{"sid":`...)
	dst = jsontext.AppendString(dst, o.SID)
	dst = append(dst, `,"upgrades":[`...)
	for i, u := range o.Upgrades {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsontext.AppendString(dst, u)
	}
	dst = append(dst, `],"pingInterval":`...)
	dst = strconv.AppendInt(dst, o.PingInterval.Milliseconds(), 10)
	dst = append(dst, `,"pingTimeout":`...)
	dst = strconv.AppendInt(dst, o.PingTimeout.Milliseconds(), 10)
	dst = append(dst, `,"maxPayload":`...)
	dst = strconv.AppendInt(dst, int64(o.MaxPayload), 10)
	return append(dst, '}')
}

// RecordSeparator separates the packets of an HTTP long-polling payload
// (engine.io-protocol v4, "Packet encoding", HTTP long-polling). It cannot
// occur inside a packet: JSON escapes it inside strings, and binary packets
// are base64.
const RecordSeparator = 0x1e

// SplitPayload calls fn with each packet of an HTTP long-polling request
// body, in order, stopping at the first error fn returns, which it returns.
// Each packet is a subslice of body, valid as long as body is, and is
// either an Engine.IO text packet ("4…", for ParseEIO) or a base64 binary
// packet ("b…"); DecodePollingPacket tells them apart. An empty body or an
// empty packet (two adjacent separators, or one at either end) fails with
// ErrEmpty once the packets before it have been delivered.
//
// SplitPayload does not allocate.
func SplitPayload(body []byte, fn func(packet []byte) error) error {
	for {
		i := bytes.IndexByte(body, RecordSeparator)
		p := body
		if i >= 0 {
			p = body[:i]
		}
		if len(p) == 0 {
			return ErrEmpty
		}
		if err := fn(p); err != nil {
			return err
		}
		if i < 0 {
			return nil
		}
		body = body[i+1:]
	}
}

// AppendPayloadPacket appends one packet to the HTTP long-polling payload
// being built in dst and returns the extended slice. dst must hold only the
// payload so far (start with an empty slice): a RecordSeparator is written
// first whenever dst is not empty.
//
// A text packet is a whole Engine.IO packet, such as the output of
// AppendConnect, and is copied as is. A binary packet is the data of a
// binary message (a Socket.IO attachment) and is written as 'b' and its
// standard base64 encoding, which is how v4 carries binary over polling.
// It allocates only if dst must grow.
func AppendPayloadPacket(dst []byte, packet []byte, binary bool) []byte {
	if len(dst) > 0 {
		dst = append(dst, RecordSeparator)
	}
	if !binary {
		return append(dst, packet...)
	}
	dst = append(dst, 'b')
	return base64.StdEncoding.AppendEncode(dst, packet)
}

// DecodePollingPacket decodes one packet that SplitPayload delivered. A
// packet starting with 'b' is binary: data is its base64 decoded into a new
// slice (ErrBase64 if it does not decode). Any other packet is text: data is
// p itself, an Engine.IO packet for ParseEIO. An empty p fails with
// ErrEmpty.
func DecodePollingPacket(p []byte) (binary bool, data []byte, err error) {
	if len(p) == 0 {
		return false, nil, ErrEmpty
	}
	if p[0] != 'b' {
		return false, p, nil
	}
	data, err = base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(p)-1)), p[1:])
	if err != nil {
		return true, nil, ErrBase64
	}
	return true, data, nil
}

// Query is the Engine.IO part of a request's query string
// (engine.io-protocol v4, "Query parameters").
type Query struct {
	EIO       int    // protocol version; always 4 once validated
	Transport string // "websocket" or "polling"
	SID       string // session id; empty on the handshake request itself
}

// ParseQuery parses and validates the raw query string of an Engine.IO
// request (without the '?'). It fails with ErrBadRequest when the query
// does not parse, ErrUnsupportedProtocol when EIO is not "4", and
// ErrUnknownTransport when transport is neither "websocket" nor "polling",
// checked in that order; all three are *HandshakeError. When a parameter is
// repeated, the first value counts. It reads the query as url.ParseQuery
// does.
//
// It allocates only for a sid (Query.SID) and for a query with escapes
// ('%', '+') or a ';' (which net/url reads): a handshake's query does not
// allocate (TestParseQueryHandshakeDoesNotAllocate).
func ParseQuery(rawQuery []byte) (Query, error) { return parseQuery(rawQuery, false) }

// parseQuery is ParseQuery, and ParseQueryAllow with allowEIO3.
func parseQuery(rawQuery []byte, allowEIO3 bool) (Query, error) {
	v, ok := scanQuery(rawQuery)
	if !ok {
		return Query{}, ErrBadRequest
	}
	q := Query{EIO: 4}
	switch {
	case allowEIO3 && string(v.eio) == "3":
		q.EIO = 3
	case string(v.eio) != "4":
		return Query{}, ErrUnsupportedProtocol
	}
	switch string(v.transport) {
	case "websocket":
		q.Transport = "websocket"
	case "polling":
		q.Transport = "polling"
	default:
		return Query{}, ErrUnknownTransport
	}
	if q.EIO == 3 && v.jsonp {
		return Query{}, ErrJSONP
	}
	if len(v.sid) > 0 {
		q.SID = string(v.sid)
	}
	return q, nil
}

// queryParams are the first values of the query parameters an Engine.IO
// request is read by (empty when absent), and whether "j" (v3's JSONP) is
// there.
type queryParams struct {
	eio, transport, sid []byte
	jsonp               bool
}

// scanQuery reads the parameters of rawQuery as url.ParseQuery does, and
// reports false where url.ParseQuery fails. A query without escapes ('%',
// '+') and ';' is read in place (such pairs unescape to themselves, and
// only ';' and bad escapes make url.ParseQuery fail); any other goes
// through url.ParseQuery.
func scanQuery(rawQuery []byte) (v queryParams, ok bool) {
	if bytes.ContainsAny(rawQuery, "%+;") {
		m, err := url.ParseQuery(string(rawQuery))
		if err != nil {
			return queryParams{}, false
		}
		v = queryParams{eio: []byte(m.Get("EIO")), transport: []byte(m.Get("transport")),
			sid: []byte(m.Get("sid")), jsonp: m.Has("j")}
		return v, true
	}
	var seenEIO, seenTransport, seenSID bool
	for len(rawQuery) > 0 {
		var pair []byte
		pair, rawQuery, _ = bytes.Cut(rawQuery, []byte("&"))
		key, value, _ := bytes.Cut(pair, []byte("="))
		switch string(key) {
		case "EIO":
			if !seenEIO {
				v.eio, seenEIO = value, true
			}
		case "transport":
			if !seenTransport {
				v.transport, seenTransport = value, true
			}
		case "sid":
			if !seenSID {
				v.sid, seenSID = value, true
			}
		case "j":
			v.jsonp = true
		}
	}
	return v, true
}

// AppendHTTPError appends the JSON body of a failed Engine.IO request,
// such as
//
//	{"code":0,"message":"Transport unknown"}
//
// to dst and returns the extended slice. The message is escaped as JSON.
// See HandshakeError for the codes and the status to send.
func AppendHTTPError(dst []byte, code int, message string) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"message":`...)
	dst = jsontext.AppendString(dst, message)
	return append(dst, '}')
}
