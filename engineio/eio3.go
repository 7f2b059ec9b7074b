package engineio

import (
	"bytes"
	"encoding/json"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/netpoll"
	"github.com/chatgate/chatgate/payload"
)

// Engine.IO v3 sessions (Config.AllowEIO3): socket.io-client 2.x, which
// speaks Engine.IO protocol v3 and Socket.IO protocol v4. A session knows
// its version from its handshake (session.eio3) and keeps it; everything
// above the framing is shared with v4. The differences, as socket.io's
// allowEIO3 serves them:
//
//   - Heartbeat: the client pings ("2") and the server answers ("3"); the
//     server sends no pings and closes a session whose client has not
//     pinged for pingInterval+pingTimeout.
//   - Long-polling payloads are length-prefixed (chat/socketio/eio3.go):
//     the outbox is built in that framing and every poll is answered with
//     a text payload (binary as "b4<base64>"), which every v3 client
//     reads, whatever its "b64"; a POST, text or binary
//     (application/octet-stream), is rewritten into v4 framing before the
//     session reads it (v3Body).
//   - WebSocket binary frames carry the type byte 0x04 before the data.
//   - Socket.IO v4: the server connects "/" right after the handshake,
//     without the client's CONNECT (connectV3); CONNECT answers carry no
//     payload ("40", "40/nsp,") and a refused namespace gets an ERROR
//     with a string. The token comes in the handshake's query (?token=),
//     checked as a v4 handshake's is.
//
// A v3 client speaking v5 (a CONNECT to "/", which the server made, or a
// CONNECT with a payload) is closed as for a malformed packet, as a
// socket.io 2 server closes on a parse error; v4 framing on a v3 session
// (record separators in a POST, a binary frame without 0x04) fails the
// framing and does the same.

// KindSocketIOv3 is the rooms.Member kind of Engine.IO v3 sessions: their
// codec leaves out the history offset that room events carry as a last
// argument for v4 clients (connection state recovery), which a
// socket.io-client 2.x cannot use and would hand to its listeners.
const KindSocketIOv3 = 3

// setEIO3 makes ss a v3 session, right after newSession: its client's
// first ping is due within pingInterval+pingTimeout.
func (ss *session) setEIO3() {
	ss.eio3 = true
	ss.awaiting = true // always: the server waits for the client's pings
	ss.due = ss.home.Now() + int64(ss.srv.cfg.PingInterval+ss.srv.cfg.PingTimeout)
}

// pingedV3 restarts the heartbeat of a v3 session whose client pinged.
func (ss *session) pingedV3() {
	ss.due = ss.home.Now() + int64(ss.srv.cfg.PingInterval+ss.srv.cfg.PingTimeout)
}

// connectV3 connects namespace "/" of a new v3 session, as socket.io does
// for a v3 client right after the handshake: the client waits for this
// "40" and never sends its own. On the home loop.
func (ss *session) connectV3() {
	if ss.echo {
		return
	}
	p := socketio.Packet{Type: socketio.Connect, Namespace: []byte("/"), Data: ss.r0().v3Auth}
	ss.autoConnect = true
	err := ss.packet(&p, nil)
	ss.autoConnect = false
	if err != nil {
		ss.close(badPacket(err))
	}
}

// v3AuthParam returns a copy of the "auth" query parameter of a v3
// handshake when it is a JSON object, else nil. A v3 client has no CONNECT
// payload: this parameter stands for it (the backend's auth, a token in
// its "token"), as it does for native clients (/ws?auth=…); socket.io-
// client 2.x sends it with io(url, {query: {auth: JSON.stringify(…)}}).
func v3AuthParam(req *netpoll.Request) []byte {
	a := auth.QueryParam(req.Query, "auth")
	if len(a) == 0 || a[0] != '{' || !json.Valid(a) {
		return nil
	}
	return append([]byte(nil), a...)
}

// connectV5 reports whether CONNECT p must be refused on a v3 session as
// a v5 packet: one with a payload (v3 passes its query in the namespace),
// or one to "/", which the server connects itself.
func (ss *session) connectV5(p *socketio.Packet) bool {
	return ss.eio3 && !ss.autoConnect && (p.Data != nil || string(p.Namespace) == "/")
}

// appendConnectAck appends the CONNECT answer for nsp: v5's with the sid
// (and pid), or v4's with no payload on a v3 session.
func (ss *session) appendConnectAck(dst, nsp []byte, sid, pid string) []byte {
	if ss.eio3 {
		return socketio.AppendConnectV3(dst, nsp)
	}
	return socketio.AppendConnectPID(dst, nsp, sid, pid)
}

// appendConnectError appends the refusal of a CONNECT to nsp: v5's
// CONNECT_ERROR {"message":…}, or v4's ERROR with the message as a string.
func (ss *session) appendConnectError(dst, nsp []byte, message string) []byte {
	if ss.eio3 {
		return socketio.AppendConnectErrorV3(dst, nsp, message)
	}
	return socketio.AppendConnectError(dst, nsp, message)
}

// appendOut appends one packet to a long-polling payload in the session's
// framing.
func (ss *session) appendOut(dst, b []byte, binary bool) []byte {
	if ss.eio3 {
		return socketio.AppendPayloadPacketV3(dst, b, binary)
	}
	return socketio.AppendPayloadPacket(dst, b, binary)
}

// single returns the body of a poll answered with one packet of type t
// and no data (a close, a noop).
func (ss *session) single(t socketio.EIOType) []byte {
	if ss.eio3 {
		return []byte{'1', ':', byte(t)}
	}
	return []byte{byte(t)}
}

// eachOut calls fn with each packet of a long-polling payload the session
// built (its outbox), decoded: a text packet, or a binary one's data.
func (ss *session) eachOut(out []byte, fn func(op ws.OpCode, data []byte)) {
	decode := func(pkt []byte) error {
		var binary bool
		var data []byte
		var err error
		if ss.eio3 {
			binary, data, err = socketio.DecodePollingPacketV3(pkt)
		} else {
			binary, data, err = socketio.DecodePollingPacket(pkt)
		}
		if err != nil {
			return nil
		}
		op := ws.OpText
		if binary {
			op = ws.OpBinary
		}
		fn(op, data)
		return nil
	}
	if ss.eio3 {
		_ = socketio.SplitPayloadV3(out, decode)
		return
	}
	for len(out) > 0 {
		pkt := out
		if i := bytes.IndexByte(out, socketio.RecordSeparator); i >= 0 {
			pkt, out = out[:i], out[i+1:]
		} else {
			out = nil
		}
		_ = decode(pkt)
	}
}

// wsMessage turns a WebSocket message of the session's client into the
// Engine.IO message the session reads: a v3 binary frame loses its type
// byte.
func (ss *session) wsMessage(op ws.OpCode, b []byte) ([]byte, error) {
	if op != ws.OpBinary || !ss.eio3 {
		return b, nil
	}
	return socketio.ParseBinaryV3(b)
}

// deliverV3 delivers, on a v3 session's WebSocket, a payload with binary
// attachments, whose frames the hub built for v4 (no type byte): one
// packet at a time through send, which adds the byte. Payloads without
// attachments go out framed as they came.
func (ss *session) deliverV3(p *payload.Shared) {
	ss.send(ws.OpText, p.Payload())
	for i := 0; i < p.Attachments(); i++ {
		ss.send(ws.OpBinary, p.Attachment(i))
	}
}

// v3Body returns the body of a v3 long-polling POST in v4 framing, for
// onPost; binary is its Content-Type being application/octet-stream. A
// body that does not parse comes back empty, which onPost answers with
// 400 and closes the session, as any malformed payload.
func v3Body(body []byte, contentType []byte) []byte {
	binary := bytes.HasPrefix(bytes.ToLower(contentType), []byte("application/octet-stream"))
	out, err := socketio.V3ToV4Payload(make([]byte, 0, len(body)+len(body)/3+8), body, binary)
	if err != nil {
		return nil
	}
	return out
}

// badPacket returns the disconnect for an error of the packet layer: the
// chat.Disconnect it is, or a malformed packet.
func badPacket(err error) chat.Disconnect {
	if d, ok := err.(chat.Disconnect); ok {
		return d
	}
	return chat.DisconnectBadPacket
}
