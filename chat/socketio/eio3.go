package socketio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// Engine.IO protocol v3 (socket.io-client 2.x, socket.io's allowEIO3).
//
// Its packets are v4's, byte for byte, over WebSocket text frames. It
// differs in three places, which this file encodes and decodes:
//
//   - Long-polling payloads frame each packet with its length,
//     "<length>:<packet>", where the length counts UTF-16 code units (the
//     JavaScript string length), not bytes: "6:4hello2:40". A binary
//     packet in a text payload is 'b', the packet type and the base64 of
//     the data: "10:b4AQIDBA==".
//   - A client that supports binary may POST a binary payload
//     (Content-Type application/octet-stream): per packet a byte 0 (text)
//     or 1 (binary), the length as decimal digits, one byte 0..9 each, a
//     byte 255, then the packet; a text packet is UTF-8 and its length
//     counts bytes, a binary one is the packet type byte and the data.
//   - A WebSocket binary frame is a whole packet: the type byte 0x04
//     (message, as a number, not the digit) and the data.
//
// Its heartbeat runs the other way round (the client pings, the server
// pongs), which is the session's business, not the codec's.

// Engine.IO v3 errors.
var (
	// ErrV3Payload: a v3 long-polling payload whose framing does not
	// parse (a length that is not a number or points past the end).
	ErrV3Payload = errors.New("socketio: invalid engine.io v3 payload")
	// ErrV3Binary: a v3 binary packet (WebSocket frame or binary payload
	// entry) that is not a message, the only binary packet there is.
	ErrV3Binary = errors.New("socketio: engine.io v3 binary packet is not a message")
	// ErrJSONP is the answer to a JSONP long-polling request (the "j"
	// query parameter of Engine.IO v3), which the gateway does not serve.
	ErrJSONP = &HandshakeError{CodeBadRequest, "JSONP polling is not supported"}
)

// maxV3Length bounds the digits of one v3 payload length: a packet longer
// than 10^9 bytes is never within maxPayload.
const maxV3Length = 9

// ParseQueryAllow is ParseQuery that also accepts Engine.IO v3 requests
// (EIO=3) when allowEIO3 is set, with Query.EIO 3. A v3 request with the
// JSONP parameter "j" fails with ErrJSONP; "b64" needs no answer, since
// the gateway answers every v3 poll with a text payload.
func ParseQueryAllow(rawQuery []byte, allowEIO3 bool) (Query, error) {
	return parseQuery(rawQuery, allowEIO3)
}

// utf16Len returns the length of b, UTF-8, as a JavaScript string: its
// UTF-16 code units. An invalid byte counts one, as the U+FFFD it decodes
// to.
func utf16Len(b []byte) int {
	n := 0
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
		b = b[size:]
	}
	return n
}

// utf16Prefix returns how many bytes of b, UTF-8, hold its first n UTF-16
// code units, and false if b holds fewer or the n-th unit splits a
// surrogate pair.
func utf16Prefix(b []byte, n int) (int, bool) {
	i := 0
	for n > 0 {
		if i >= len(b) {
			return 0, false
		}
		r, size := utf8.DecodeRune(b[i:])
		units := 1
		if r >= 0x10000 {
			units = 2
		}
		if units > n {
			return 0, false
		}
		n -= units
		i += size
	}
	return i, true
}

// AppendPayloadPacketV3 appends one packet to the v3 text long-polling
// payload in dst and returns the extended slice; it is
// AppendPayloadPacket's v3 counterpart. A text packet (a whole Engine.IO
// packet) is written as "<length>:<packet>", its length in UTF-16 code
// units; a binary packet (a message's data) as "<length>:b4<base64>".
func AppendPayloadPacketV3(dst []byte, packet []byte, binary bool) []byte {
	if !binary {
		dst = strconv.AppendInt(dst, int64(utf16Len(packet)), 10)
		dst = append(dst, ':')
		return append(dst, packet...)
	}
	dst = strconv.AppendInt(dst, int64(2+base64.StdEncoding.EncodedLen(len(packet))), 10)
	dst = append(dst, ":b4"...)
	return base64.StdEncoding.AppendEncode(dst, packet)
}

// SplitPayloadV3 calls fn with each packet of a v3 text long-polling
// payload, in order, stopping at the first error fn returns, which it
// returns. Each packet is a subslice of body, for DecodePollingPacketV3.
// A body that is empty, or whose framing does not parse, fails with
// ErrEmpty or ErrV3Payload once the packets before the fault have been
// delivered. It does not allocate.
func SplitPayloadV3(body []byte, fn func(packet []byte) error) error {
	if len(body) == 0 {
		return ErrEmpty
	}
	for len(body) > 0 {
		colon := bytes.IndexByte(body, ':')
		if colon <= 0 || colon > maxV3Length {
			return ErrV3Payload
		}
		n, err := strconv.Atoi(string(body[:colon]))
		if err != nil || n <= 0 {
			return ErrV3Payload
		}
		body = body[colon+1:]
		size, ok := utf16Prefix(body, n)
		if !ok {
			return ErrV3Payload
		}
		if err := fn(body[:size]); err != nil {
			return err
		}
		body = body[size:]
	}
	return nil
}

// DecodePollingPacketV3 decodes one packet that SplitPayloadV3 delivered.
// A packet starting with 'b' is binary: 'b', the packet type ('4', a
// message, is the only one a binary packet can be: else ErrV3Binary) and
// the base64 of the data, decoded into a new slice (ErrBase64). Any other
// packet is text: data is p itself, an Engine.IO packet for ParseEIO.
func DecodePollingPacketV3(p []byte) (binary bool, data []byte, err error) {
	if len(p) == 0 {
		return false, nil, ErrEmpty
	}
	if p[0] != 'b' {
		return false, p, nil
	}
	if len(p) < 2 || p[1] != byte(EIOMessage) {
		return true, nil, ErrV3Binary
	}
	data, err = base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(p)-2)), p[2:])
	if err != nil {
		return true, nil, ErrBase64
	}
	return true, data, nil
}

// SplitBinaryPayloadV3 calls fn with each packet of a v3 binary
// long-polling payload (a POST with Content-Type
// application/octet-stream), in order, stopping at the first error fn
// returns, which it returns. A text packet is an Engine.IO packet for
// ParseEIO; a binary one is the data of a message (its type byte checked
// and removed: else ErrV3Binary). Both alias body. A framing fault fails
// with ErrEmpty or ErrV3Payload, once the packets before it have been
// delivered.
func SplitBinaryPayloadV3(body []byte, fn func(binary bool, data []byte) error) error {
	if len(body) == 0 {
		return ErrEmpty
	}
	for len(body) > 0 {
		if body[0] > 1 {
			return ErrV3Payload
		}
		binary := body[0] == 1
		n, i := 0, 1
		for ; i < len(body) && body[i] != 255; i++ {
			if body[i] > 9 || i > maxV3Length {
				return ErrV3Payload
			}
			n = n*10 + int(body[i])
		}
		if i == 1 || i >= len(body) || n <= 0 || len(body)-i-1 < n {
			return ErrV3Payload
		}
		pkt := body[i+1 : i+1+n]
		body = body[i+1+n:]
		if binary {
			if pkt[0] != 4 {
				return ErrV3Binary
			}
			pkt = pkt[1:]
		}
		if err := fn(binary, pkt); err != nil {
			return err
		}
	}
	return nil
}

// ParseBinaryV3 returns the data of a v3 WebSocket binary message: the
// message without its leading type byte 0x04 (ErrV3Binary if it has
// another or none). It aliases b.
func ParseBinaryV3(b []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != 4 {
		return nil, ErrV3Binary
	}
	return b[1:], nil
}

// AppendBinaryV3 appends the v3 WebSocket binary message carrying data
// (0x04 and data) to dst and returns the extended slice.
func AppendBinaryV3(dst, data []byte) []byte {
	return append(append(dst, 4), data...)
}

// AppendConnectV3 appends the Socket.IO v4 protocol's CONNECT answer for
// nsp, with its Engine.IO '4': "40" for "/", "40/admin," for another. It
// carries no payload: a socket.io-client 2.x takes a CONNECT with one for
// a malformed packet.
func AppendConnectV3(dst, nsp []byte) []byte {
	dst = append(dst, byte(EIOMessage), byte(Connect))
	if len(nsp) > 0 && string(nsp) != "/" {
		dst = append(append(dst, nsp...), ',')
	}
	return dst
}

// AppendConnectErrorV3 appends the Socket.IO v4 protocol's ERROR packet
// for nsp with a string message, such as 44/admin,"Invalid namespace", as
// socket.io's allowEIO3 path sends it; socket.io-client 2.x emits it as
// the socket's "error" event.
func AppendConnectErrorV3(dst, nsp []byte, message string) []byte {
	dst = append(dst, byte(EIOMessage), byte(ConnectError))
	if len(nsp) > 0 && string(nsp) != "/" {
		dst = append(append(dst, nsp...), ',')
	}
	return jsontext.AppendString(dst, message)
}

// V3ToV4Payload rewrites the body of a v3 long-polling POST as the v4
// payload SplitPayload and DecodePollingPacket read (packets separated by
// RecordSeparator, binary ones as 'b' and base64), appended to dst. binary
// says the body is a binary payload (Content-Type
// application/octet-stream). A text packet holding a RecordSeparator,
// which v4 framing cannot carry, fails with ErrV3Payload.
func V3ToV4Payload(dst, body []byte, binary bool) ([]byte, error) {
	add := func(bin bool, data []byte) error {
		if !bin && bytes.IndexByte(data, RecordSeparator) >= 0 {
			return ErrV3Payload
		}
		dst = AppendPayloadPacket(dst, data, bin)
		return nil
	}
	var err error
	if binary {
		err = SplitBinaryPayloadV3(body, add)
	} else {
		err = SplitPayloadV3(body, func(p []byte) error {
			bin, data, err := DecodePollingPacketV3(p)
			if err != nil {
				return err
			}
			return add(bin, data)
		})
	}
	return dst, err
}
