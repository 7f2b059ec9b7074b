package engineio

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/metrics"
)

// The Socket.IO v5 packet layer of a session. A chat session exists while
// the client is connected to namespace "/"; its id is the Socket.IO
// socket.id, the same id native clients see.

// maxAttachments bounds the binary attachments of one packet.
const maxAttachments = 64

// conformanceAuthGap is how long after a CONNECT answer conformance mode
// writes the "auth" event of the official suites' server. The reference
// server writes the two apart: engine.io flushes a packet only once the
// previous write's callback has run. The suites' client (ws 8.5.0) handles
// every frame of one read before the test listens again, so both in one
// write, or in two writes a few microseconds apart that one read still
// takes together, lose the event. One millisecond was enough in every
// hand run; this leaves room for a loaded machine.
const conformanceAuthGap = 5 * time.Millisecond

// Namespaces served in conformance mode, as bits of session.nsps.
const (
	nspRoot   = 1 << 0
	nspCustom = 1 << 1
)

var (
	// errBadPacket: a malformed Engine.IO or Socket.IO packet (close 1008).
	errBadPacket = errors.New("engineio: invalid Socket.IO packet")
	// errClose: the client sent an Engine.IO close packet.
	errClose = chat.DisconnectNormal
)

// message handles one Engine.IO message: a text packet or a binary
// attachment, on the home loop. An error ends the session: a
// chat.Disconnect with that disconnect, any other as a malformed packet.
func (ss *session) message(op ws.OpCode, payload []byte) error {
	srv := ss.srv
	// Admission before work: every Engine.IO packet counts against the
	// rate limits before it is parsed (pings and CONNECT/DISCONNECT
	// cycles cost the gateway too). A limited event is answered with
	// rate_limited through its ack; anything else limited is dropped.
	if ss.lim == nil {
		ss.lim = new(limit.Conn)
	}
	switch ss.lim.Message(ss.home.Now(), len(payload), &srv.cfg.Limits) {
	case limit.Abuse:
		return chat.DisconnectRateLimit
	case limit.Limited:
		ss.limited = true
		defer func() { ss.limited = false }()
	}
	if done, err := ss.msgpackMessage(op, payload); done {
		return err
	}
	if op == ws.OpBinary {
		if ss.echo {
			ss.send(ws.OpBinary, payload)
			return nil
		}
		if ss.r0().binWant == 0 {
			return errBadPacket // an attachment nobody announced
		}
		ss.r().binAtts = append(ss.r().binAtts, append([]byte(nil), payload...))
		if len(ss.r().binAtts) < ss.r().binWant {
			return nil
		}
		var p socketio.Packet
		if err := socketio.ParsePacket(ss.r().binText, &p); err != nil {
			return err
		}
		atts := ss.r().binAtts
		ss.r().binText, ss.r().binAtts, ss.r().binWant = nil, nil, 0
		return ss.packet(&p, atts)
	}
	t, data, err := socketio.ParseEIO(payload)
	if err != nil {
		return err
	}
	if ss.limited && t != socketio.EIOMessage {
		return nil // a limited ping, noop or close: dropped
	}
	if ss.r0().binWant != 0 && t == socketio.EIOMessage {
		// A packet while attachments are due. Engine.IO packets (a pong)
		// may come in between; Socket.IO packets may not.
		return errBadPacket
	}
	switch t {
	case socketio.EIOPong:
		if ss.eio3 {
			break // a v3 server does not ping: nothing to answer
		}
		if !ss.awaiting {
			return nil // a pong without a ping out: the schedule stays
		}
		ss.awaiting = false
		ss.due = ss.pingDue + int64(srv.cfg.PingInterval)
	case socketio.EIOPing:
		// Clients do not ping in v4, except to probe an upgrade; answer
		// anyway, as the reference server does.
		if ss.eio3 {
			ss.pingedV3() // the v3 heartbeat
		}
		st := &srv.loops[ss.home.Index()]
		st.buf = socketio.AppendEIO(st.buf[:0], socketio.EIOPong, data)
		ss.send(ws.OpText, st.buf)
	case socketio.EIOClose:
		return errClose
	case socketio.EIONoop, socketio.EIOUpgrade:
	case socketio.EIOMessage:
		if ss.echo {
			ss.send(ws.OpText, payload)
			return nil
		}
		var p socketio.Packet
		if err := socketio.ParsePacket(data, &p); err != nil {
			return err
		}
		if p.Attachments > 0 {
			if p.Attachments > maxAttachments {
				return errBadPacket
			}
			ss.r().binText = append([]byte(nil), data...)
			ss.r().binWant = p.Attachments
			return nil
		}
		return ss.packet(&p, nil)
	default:
		return errBadPacket
	}
	return nil
}

// packet handles one complete Socket.IO packet.
func (ss *session) packet(p *socketio.Packet, atts [][]byte) error {
	srv := ss.srv
	st := &srv.loops[ss.home.Index()]
	conformance := srv.cfg.Conformance
	if !conformance && !isRootNamespace(p.Namespace) {
		return ss.nspPacket(p, atts)
	}
	bit := namespaceBit(p.Namespace, conformance)
	switch p.Type {
	case socketio.Connect:
		if ss.limited {
			return nil // CONNECT floods are dropped, not answered
		}
		if ss.connectV5(p) {
			return errBadPacket // Socket.IO v5 from a v3 client (eio3.go)
		}
		if bit == 0 {
			// Refused: the connect timeout keeps running, so a client
			// that only knocks on unknown namespaces is still dropped.
			st.buf = ss.appendConnectError(st.buf[:0], p.Namespace, "Invalid namespace")
			ss.send(ws.OpText, st.buf)
			return nil
		}
		if ss.nsps&bit != 0 {
			return errBadPacket // already connected to it
		}
		authData := p.Data
		if authData == nil {
			authData = []byte("{}")
		}
		// The token may come with CONNECT: socket.io-client's auth:
		// {token}.
		if !conformance && !ss.verifyConnect(p) {
			return nil
		}
		if !conformance && !srv.hub.UserAllowed(ss.ident.User()) {
			st.buf = ss.appendConnectError(st.buf[:0], p.Namespace, "too many connections for this user")
			ss.send(ws.OpText, st.buf)
			return nil
		}
		if !conformance && bit == nspRoot && ss.resume(p) {
			return nil
		}
		if !conformance && bit == nspRoot && srv.hub.Connecting() {
			return ss.connectViaBackend(p)
		}
		ss.connectBy = 0
		ss.nsps |= bit
		var sid, pid string
		if conformance {
			sid = newSID()
		} else {
			sess := ss.openChat()
			sid, pid = sess.ID(), srv.hub.SessionToken(sess)
			if srv.debugOn() {
				srv.log.Debug("socket.io connect", "conn", sid, "client", ss.addr().String())
			}
		}
		st.buf = ss.appendConnectAck(st.buf[:0], p.Namespace, sid, pid)
		ss.send(ws.OpText, st.buf)
		if conformance {
			// Written apart from the answer (conformanceAuthGap), on the
			// home loop; send drops it if the session ended meanwhile.
			auth := socketio.AppendEvent(nil, p.Namespace, 0, "auth", authData)
			time.AfterFunc(conformanceAuthGap, func() {
				ss.home.Run(nil, func() { ss.send(ws.OpText, auth) })
			})
		}
	case socketio.Disconnect:
		if bit == 0 || ss.nsps&bit == 0 {
			return nil
		}
		ss.nsps &^= bit
		if bit == nspRoot {
			if ss.chat != nil {
				ss.chat.SetCloseReason("1000") // the client left, as a normal close
			}
			ss.closeChat()
		}
		// The Engine.IO session stays open, in both modes, as the
		// reference server's does (socket.io-protocol test suite, "should
		// disconnect from the main namespace": the next frame is a
		// ping): the client may connect again, and socket.io-client
		// closes it itself when it is done.
	case socketio.Event, socketio.BinaryEvent:
		if bit == 0 || ss.nsps&bit == 0 {
			return nil // not connected to that namespace: dropped
		}
		if conformance {
			ss.conformanceEvent(p, atts)
			return nil
		}
		if ss.chat == nil {
			return nil
		}
		return ss.event(ss.chat, p, atts)
	case socketio.Ack, socketio.BinaryAck:
		// The answer to an event the server asked to be acknowledged
		// (server API send with "ack").
		if bit != nspRoot {
			srv.cfg.Metrics.ServerAck(metrics.AckIgnored) // conformance's "/custom"
			return nil
		}
		ss.ack(p, nil, atts)
	default:
		return errBadPacket // CONNECT_ERROR is server-to-client only
	}
	return nil
}

// resume recovers the session a CONNECT to "/" names with its pid, as
// socket.io's connection state recovery does: {"pid":"…","offset":"…"} in
// the CONNECT payload (socket.io-client adds them to its auth). On
// success the client gets its old sid and the same pid (which is how
// socket.io-client knows it recovered), its rooms, and the missed
// packets behind the ack; it reports whether it did. Recovery is all or
// nothing: a room whose gap is no longer kept means a new session.
func (ss *session) resume(p *socketio.Packet) bool {
	srv := ss.srv
	if !srv.hub.Recovering() || len(p.Data) == 0 || ss.eio3 {
		return false
	}
	pid, offset, ok := socketio.RecoveryFields(p.Data)
	if !ok || ss.chat != nil {
		return false
	}
	rq := chat.ResumeRequest{Token: pid, AllOrNothing: true}
	if offset != "" {
		rq.Offset, rq.HasOffset = chat.ParseOffset([]byte(offset))
	}
	sess, replay := srv.hub.Resume(ss, ss.home.Index(), ss.kind(), ss.ident, rq)
	if sess == nil {
		return false
	}
	ss.chat = sess
	ss.connectBy = 0
	ss.nsps |= nspRoot
	st := &srv.loops[ss.home.Index()]
	st.buf = socketio.AppendConnectPID(st.buf[:0], []byte("/"), sess.ID(), srv.hub.SessionToken(sess))
	ss.send(ws.OpText, st.buf)
	// The missed packets right behind the ack, in this turn of the loop:
	// before any reply and any live message (Hub.Resume).
	for _, p := range replay {
		ss.send(ss.payloadOp(), p.Payload())
		for i := 0; i < p.Attachments(); i++ {
			ss.send(ws.OpBinary, p.Attachment(i))
		}
		p.Release()
	}
	if srv.debugOn() {
		srv.log.Debug("socket.io session recovered", "conn", sess.ID(), "client", ss.addr().String())
	}
	return true
}

// connectViaBackend asks the application's backend about a CONNECT to "/"
// (-proxy-connect-url). The chat session waits pending; the answer, on the
// home loop, sends the CONNECT ack, a CONNECT_ERROR with the backend's
// message (and its code in data), or closes the session.
func (ss *session) connectViaBackend(p *socketio.Packet) error {
	srv := ss.srv
	if ss.chat != nil {
		return errBadPacket // a second CONNECT while the first is asked
	}
	info := ss.connectInfo("/", p)
	sess := srv.hub.OpenPending(ss, ss.home.Index(), ss.kind(), ss.ident)
	ss.chat = sess
	srv.hub.Connect(sess, info, func(err *chat.Error, d *chat.Disconnect) {
		if ss.done || ss.chat != sess {
			return
		}
		st := &srv.loops[ss.home.Index()]
		if d != nil {
			// Not connected yet: the client learns why from a
			// CONNECT_ERROR (so it does not reconnect on its own), then
			// the session closes with the backend's code.
			err = &chat.Error{Code: strconv.Itoa(int(d.Code)), Message: d.Reason}
		}
		switch {
		case err != nil:
			srv.hub.Close(sess)
			ss.chat = nil
			ss.refusedByBackend(nil, err)
			if d != nil {
				srv.Flush(ss.home)
				ss.close(*d)
				return
			}
		default:
			ss.connectBy = 0
			ss.nsps |= nspRoot
			st.buf = ss.appendConnectAck(st.buf[:0], []byte("/"), sess.ID(), srv.hub.SessionToken(sess))
			ss.send(ws.OpText, st.buf)
		}
		srv.Flush(ss.home)
	})
	return nil
}

// event hands the EVENT or BINARY_EVENT p (on "/" or with its namespace
// cleared: the namespace only chose the socket) to chat session sess: an
// error reply for an event that is not a valid request or is rate
// limited, the hub's handling otherwise. A malformed packet is returned.
func (ss *session) event(sess *chat.Session, p *socketio.Packet, atts [][]byte) error {
	srv := ss.srv
	req := &srv.loops[ss.home.Index()].req
	if err := socketio.DecodeEvent(p, atts, req); err != nil {
		var ce *chat.Error
		if !errors.As(err, &ce) {
			return err
		}
		srv.hub.Fail(sess, req, ce)
		return nil
	}
	if ss.limited {
		srv.hub.Fail(sess, req, chat.ErrRateLimited)
		return nil
	}
	srv.hub.Handle(sess, req)
	return nil
}

// connectInfo is what the backend's connect call (-proxy-connect-url) is
// told of a CONNECT p to namespace nsp.
func (ss *session) connectInfo(nsp string, p *socketio.Packet) chat.ConnectInfo {
	transport := "polling"
	if ss.ws.Valid() {
		transport = "websocket"
	}
	info := chat.ConnectInfo{Transport: transport, Protocol: "socketio", Namespace: nsp,
		RemoteAddr: ss.addr().String(), Origin: ss.r0().origin, Headers: ss.r0().headers}
	if len(p.Data) > 0 {
		info.Auth = append(json.RawMessage(nil), p.Data...)
	}
	return info
}

// refusedByBackend sends the CONNECT_ERROR of a CONNECT to nsp (nil: "/")
// the backend refused: its message, and its code in data, as
// {"message":…,"data":{"code":…}}. It is counted as an unauthorized
// handshake.
func (ss *session) refusedByBackend(nsp []byte, err *chat.Error) {
	ss.srv.cfg.Metrics.HandshakeFailed(metrics.HandshakeUnauthorized)
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
		Data    struct {
			Code string `json:"code"`
		} `json:"data"`
	}{Message: err.Message, Data: struct {
		Code string `json:"code"`
	}{err.Code}})
	ss.sendConnectError(nsp, b)
}

// sendConnectError sends a CONNECT_ERROR on nsp (nil or "/": the main
// namespace, written without it) with data, a JSON object.
func (ss *session) sendConnectError(nsp, data []byte) {
	st := &ss.srv.loops[ss.home.Index()]
	st.buf = socketio.AppendEIO(st.buf[:0], socketio.EIOMessage, nil)
	st.buf = append(st.buf, byte(socketio.ConnectError))
	if !isRootNamespace(nsp) {
		st.buf = append(append(st.buf, nsp...), ',')
	}
	st.buf = append(st.buf, data...)
	ss.send(ws.OpText, st.buf)
}

// isRootNamespace reports whether nsp is "/" (or empty, as the wire
// omits it).
func isRootNamespace(nsp []byte) bool { return len(nsp) == 0 || string(nsp) == "/" }

// namespaceBit maps a namespace to its bit, 0 when it is not served.
func namespaceBit(nsp []byte, conformance bool) uint8 {
	switch string(nsp) {
	case "/":
		return nspRoot
	case "/custom":
		if conformance {
			return nspCustom
		}
	}
	return 0
}

// conformanceEvent implements the events of the official test suite:
// "message" is emitted back as "message-back" and "message-with-ack" is
// acknowledged, both with the same arguments and attachments.
func (ss *session) conformanceEvent(p *socketio.Packet, atts [][]byte) {
	if string(p.Namespace) != "/" {
		return
	}
	st := &ss.srv.loops[ss.home.Index()]
	switch string(p.EventName()) {
	case `"message"`:
		arr := socketio.ReplaceEventName(p.Data, "message-back", nil)
		st.buf = socketio.AppendEventRaw(st.buf[:0], p.Namespace, len(atts), arr)
	case `"message-with-ack"`:
		if !p.HasID {
			return
		}
		st.buf = socketio.AppendAck(st.buf[:0], p.Namespace, p.ID, len(atts), socketio.EventArgs(p.Data, nil))
	default:
		return
	}
	ss.send(ws.OpText, st.buf)
	for _, a := range atts {
		ss.send(ws.OpBinary, a)
	}
}

// connectRefusal is the CONNECT_ERROR data of a Socket.IO client whose
// token is missing or invalid.
func connectRefusal(err error) []byte {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
		Data    struct {
			Reason string `json:"reason"`
		} `json:"data"`
	}{Message: "unauthorized", Data: struct {
		Reason string `json:"reason"`
	}{Reason: auth.Reason(err)}})
	return b
}
