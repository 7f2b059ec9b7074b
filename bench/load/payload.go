package load

import (
	"bytes"
	"strconv"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/bench/sio"
)

// The payload "data" of every benchmark message is a JSON object
//
//	{"t":<send time, CLOCK_MONOTONIC ns>,"k":<step>,"p":"xxxx…"}
//
// padded with "p" so that it is exactly the requested size. Servers relay
// data byte for byte, so a receiver finds the timestamp by searching for
// the object's opening bytes rather than decoding the whole message.
var (
	dataStart = []byte(`{"t":`)
	stepKey   = []byte(`,"k":`)
)

// minDataSize is the size of the data object with empty padding and the
// largest timestamp and step the tool writes.
const minDataSize = len(`{"t":9223372036854775807,"k":99999,"p":""}`)

// appendData appends the data object for a message sent at t in step k,
// padded to size bytes when size is at least minDataSize.
func appendData(dst []byte, t int64, k int, size int) []byte {
	start := len(dst)
	dst = append(dst, dataStart...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, stepKey...)
	dst = strconv.AppendInt(dst, int64(k), 10)
	dst = append(dst, `,"p":"`...)
	for pad := size - (len(dst) - start) - 2; pad > 0; pad-- {
		dst = append(dst, 'x')
	}
	return append(dst, '"', '}')
}

// parseData finds the data object in a received message and returns its
// timestamp and step. ok is false if the message carries none.
func parseData(msg []byte) (t int64, k int, ok bool) {
	i := bytes.Index(msg, dataStart)
	if i < 0 {
		return 0, 0, false
	}
	rest := msg[i+len(dataStart):]
	t, n := parseInt(rest)
	if n == 0 || !bytes.HasPrefix(rest[n:], stepKey) {
		return 0, 0, false
	}
	rest = rest[n+len(stepKey):]
	kk, n := parseInt(rest)
	if n == 0 {
		return 0, 0, false
	}
	return t, int(kk), true
}

// parseInt parses the non-negative decimal number at the start of b and
// returns it with the count of digits consumed.
func parseInt(b []byte) (int64, int) {
	var v int64
	i := 0
	for ; i < len(b) && i < 19 && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + int64(b[i]-'0')
	}
	return v, i
}

// Protocol selects the wire protocol the load client speaks.
type Protocol string

// Protocols the load client speaks.
const (
	Native   Protocol = "native"
	SocketIO Protocol = "socketio"
)

// DefaultPath is the request path of the WebSocket endpoint per protocol.
func (p Protocol) DefaultPath() string {
	if p == SocketIO {
		return "/socket.io/?EIO=4&transport=websocket"
	}
	return "/ws"
}

// roomName is the name of room number n.
func roomName(dst []byte, n int) []byte {
	dst = append(dst, 'r')
	return strconv.AppendInt(dst, int64(n), 10)
}

// appendSend appends the request that publishes one message to room: a
// native send with an id, or a Socket.IO "message" event asking for an
// ack, so that every server under test acknowledges every publication.
func appendSend(dst []byte, p Protocol, id uint64, room int, t int64, k, size int) []byte {
	if p == SocketIO {
		dst = append(dst, '4', '2')
		dst = strconv.AppendUint(dst, id, 10)
		dst = append(dst, `["message",{"room":"`...)
		dst = roomName(dst, room)
		dst = append(dst, `","data":`...)
		dst = appendData(dst, t, k, size)
		return append(dst, '}', ']')
	}
	dst = append(dst, `{"type":"send","id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"room":"`...)
	dst = roomName(dst, room)
	dst = append(dst, `","data":`...)
	dst = appendData(dst, t, k, size)
	return append(dst, '}')
}

// Prefixes that mark a delivered chat message.
var (
	nativeMessage = []byte(`"type":"message"`)
	sioMessage    = []byte(`42["message",`)
)

// isMessage reports whether a text frame is a chat message delivery.
func isMessage(p Protocol, frame []byte) bool {
	if p == SocketIO {
		return bytes.HasPrefix(frame, sioMessage)
	}
	// Servers put "type" first in practice; search a short prefix so a
	// large message is not scanned end to end.
	head := frame
	if len(head) > 64 {
		head = head[:64]
	}
	return bytes.Contains(head, nativeMessage)
}

var (
	nativeError = []byte(`"type":"error"`)
	sioAck      = []byte(`43`)
	sioError    = []byte(`"error":`)
)

// isErrorReply reports whether a text frame is the server refusing a
// request: a native error, or a Socket.IO ack carrying an error (the
// baselines' convention, also used by chatgate).
func isErrorReply(p Protocol, frame []byte) bool {
	head := frame
	if len(head) > 64 {
		head = head[:64]
	}
	if p == SocketIO {
		return bytes.HasPrefix(frame, sioAck) && bytes.Contains(head, sioError)
	}
	return bytes.Contains(head, nativeError) && !bytes.Contains(head, nativeMessage)
}

// appendJoin appends the requests sent right after connecting: set the
// nick, then join the room asking for ack id 1 (Socket.IO) or 2 (native).
func appendJoin(dst []byte, p Protocol, nick string, room int) []byte {
	return appendJoinFramed(dst, p, nick, room, appendFrame)
}

// appendJoinFramed is appendJoin with each frame built by frame
// (appendFrame, or appendDeflatedFrame to send it compressed).
func appendJoinFramed(dst []byte, p Protocol, nick string, room int, appendFrame func([]byte, ws.OpCode, []byte) []byte) []byte {
	var r [24]byte
	rn := roomName(r[:0], room)
	if p == SocketIO {
		dst = appendFrame(dst, opText, sio.AppendEvent(nil, 0, false, "nick", sio.AppendJSONString(nil, nick)))
		return appendFrame(dst, opText, sio.AppendEvent(nil, 1, true, "join", sio.AppendJSONString(nil, string(rn))))
	}
	b := append([]byte(`{"type":"nick","id":1,"name":`), sio.AppendJSONString(nil, nick)...)
	dst = appendFrame(dst, opText, append(b, '}'))
	b = append([]byte(`{"type":"join","id":2,"room":"`), rn...)
	return appendFrame(dst, opText, append(b, '"', '}'))
}
