package engineio

import (
	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/chat/socketio"
)

// KindSocketIOMsgpack is the rooms.Member kind of Socket.IO sessions whose
// client uses the msgpack parser: the index of socketio.MsgpackCodec in
// chat.Config.Codecs. A room message is encoded once for them all, as a
// binary message.
const KindSocketIOMsgpack = 2

// The parser of a session, chosen by the client's first Socket.IO packet
// and fixed from then on: a text Engine.IO message is the default
// (JSON) parser's, a binary one, with no attachment due, the msgpack
// parser's (socket.io-msgpack-parser). The reference server is
// configured with one parser; chatgate serves both, per connection.
const (
	parserUnknown uint8 = iota
	parserJSON
	parserMsgpack
)

// msgpackScratch holds a loop's buffers for the msgpack parser: the text
// packet a client's msgpack packet translates to, its binary values, and
// the msgpack translation of a packet the session sends.
type msgpackScratch struct {
	text []byte
	atts [][]byte
	out  []byte
}

// kind is the session's member kind, and so the codec of its chat
// sessions: v3 (eio3.go), msgpack, or the default parser's.
func (ss *session) kind() int {
	switch {
	case ss.eio3:
		return KindSocketIOv3
	case ss.parser == parserMsgpack:
		return KindSocketIOMsgpack
	}
	return KindSocketIO
}

// textKind is the kind whose codec writes the session's packets as text:
// kind's, except for msgpack sessions, whose text send translates (a
// packet rewritten on a namespace or given an ack id is text first).
func (ss *session) textKind() int {
	if ss.eio3 {
		return KindSocketIOv3
	}
	return KindSocketIO
}

// payloadOp is the opcode of the payloads the hub encodes for the
// session's kind.
func (ss *session) payloadOp() ws.OpCode {
	if ss.parser == parserMsgpack {
		return ws.OpBinary
	}
	return ws.OpText
}

// msgpackMessage picks the session's parser from its first Socket.IO
// packet and handles the packets of a msgpack client: each binary message
// is one whole packet, translated to the packet the default parser would
// have carried (socketio.ParseMsgpack) and handled as that one. It
// reports whether it handled the message; the other messages are the
// default parser's, and Engine.IO's own.
//
// A malformed msgpack packet, or a text Socket.IO packet from a msgpack
// client, ends the session as any malformed packet does (1008).
func (ss *session) msgpackMessage(op ws.OpCode, payload []byte) (bool, error) {
	if ss.echo || ss.srv.cfg.Conformance || ss.eio3 {
		return false, nil // the official suites, and v2 clients, speak the default parser
	}
	textPacket := op == ws.OpText && len(payload) > 0 && payload[0] == byte(socketio.EIOMessage)
	switch {
	case textPacket && ss.parser == parserMsgpack:
		return true, errBadPacket
	case textPacket:
		ss.parser = parserJSON
		return false, nil
	case op != ws.OpBinary || ss.r0().binWant != 0 || ss.parser == parserJSON:
		return false, nil
	}
	st := &ss.srv.loops[ss.home.Index()]
	var p socketio.Packet
	var atts [][]byte
	var err error
	st.mp.text, atts, err = socketio.ParseMsgpack(payload, &p, st.mp.text, st.mp.atts[:0])
	st.mp.atts = atts[:0]
	if err != nil {
		ss.srv.log.Debug("socket.io malformed msgpack packet", "conn", ss.chatID(), "client", ss.addr().String(), "err", err)
		return true, errBadPacket
	}
	ss.parser = parserMsgpack
	var own [][]byte
	if len(atts) > 0 {
		// The attachments outlive the message as a BINARY_EVENT's do.
		own = make([][]byte, len(atts))
		for i, a := range atts {
			own[i] = append([]byte(nil), a...)
		}
	}
	return true, ss.packet(&p, own)
}

// toMsgpack translates the text Socket.IO packet b that the session is
// about to send to a msgpack client into the msgpack parser's packet. It
// reports false for anything else (Engine.IO's own packets: pings,
// noops, the close packet), which stays text.
func (ss *session) toMsgpack(b []byte) ([]byte, bool) {
	if ss.parser != parserMsgpack || len(b) < 2 || b[0] != byte(socketio.EIOMessage) {
		return b, false
	}
	st := &ss.srv.loops[ss.home.Index()]
	out, err := socketio.AppendMsgpackPacket(st.mp.out[:0], b, nil)
	if err != nil {
		return b, false
	}
	st.mp.out = out
	return out, true
}
