package engineio

import (
	"strconv"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/metrics"
	"github.com/chatgate/chatgate/payload"
)

// Namespaces other than "/" in chat mode. As in Socket.IO, one Engine.IO
// connection multiplexes namespaces (socket.io-client's Manager shares
// its connection between io("/") and io("/admin")): each namespace the
// client connects is its own socket, an nspSocket with its own chat
// session (own id, rooms and nickname), whose packets carry the
// namespace. "/" stays the session's own chat session (session.chat).

// MaxNamespaces bounds the namespaces other than "/" one Engine.IO
// session may be connected to (or connecting) at once; a CONNECT past it
// gets a CONNECT_ERROR. Socket.IO clients use a handful.
const MaxNamespaces = 32

// Refusals of a CONNECT to a namespace, as CONNECT_ERROR messages.
const (
	refusedNamespace = "Invalid namespace"
	refusedName      = "Invalid namespace name: it must start with \"/\" and be at most 256 bytes of text without commas"
	refusedTooMany   = "Too many namespaces on one connection"
)

// nspSocket is a session's socket on one namespace other than "/": the
// chat session's peer (chat.Peer, netpoll.Peer, chat.Describer), which
// writes everything the hub sends it on its namespace. Home loop only.
type nspSocket struct {
	ss        *session
	name      []byte // the namespace, "/admin"
	chat      *chat.Session
	connected bool // accepted; false while the backend decides
}

// socket returns the session's socket on namespace nsp, or nil.
func (ss *session) socket(nsp []byte) *nspSocket {
	for _, so := range ss.r0().sockets {
		if string(so.name) == string(nsp) {
			return so
		}
	}
	return nil
}

// dropSocket forgets so and closes its chat session with reason (a close
// reason label for the backend's disconnect report).
func (ss *session) dropSocket(so *nspSocket, reason string) {
	for i, o := range ss.r0().sockets {
		if o == so {
			ss.r().sockets = append(ss.r().sockets[:i], ss.r().sockets[i+1:]...)
			break
		}
	}
	so.connected = false
	ss.failAcks(so)
	so.chat.SetCloseReason(reason)
	ss.srv.hub.Close(so.chat)
}

// closeSockets closes the chat sessions of every namespace but "/" when
// the Engine.IO session ends.
func (ss *session) closeSockets(d chat.Disconnect) {
	for len(ss.r0().sockets) > 0 {
		ss.dropSocket(ss.r().sockets[len(ss.r().sockets)-1], d.Metric.String())
	}
}

// served reports whether a CONNECT to nsp (not "/") is for this gateway
// to decide: a listed namespace, or any when the backend decides.
func (s *Server) served(nsp []byte) bool {
	if s.hub.Connecting() {
		return true
	}
	for _, n := range s.cfg.Namespaces {
		if n == string(nsp) {
			return true
		}
	}
	return false
}

// nspPacket handles a Socket.IO packet for a namespace other than "/" in
// chat mode.
func (ss *session) nspPacket(p *socketio.Packet, atts [][]byte) error {
	srv := ss.srv
	st := &srv.loops[ss.home.Index()]
	so := ss.socket(p.Namespace)
	switch p.Type {
	case socketio.Connect:
		if ss.limited {
			return nil // CONNECT floods are dropped, not answered
		}
		if ss.connectV5(p) {
			return errBadPacket // Socket.IO v5 from a v3 client (eio3.go)
		}
		refusal := ""
		switch {
		case chat.CheckNamespace(p.Namespace) != nil:
			refusal = refusedName
		case !srv.served(p.Namespace):
			refusal = refusedNamespace
		case so != nil:
			return errBadPacket // already connected to it, or connecting
		case len(ss.r0().sockets) >= MaxNamespaces:
			refusal = refusedTooMany
		}
		if refusal != "" {
			// The connect timeout keeps running: a client that only
			// knocks on namespaces it may not use is still dropped.
			st.buf = ss.appendConnectError(st.buf[:0], p.Namespace, refusal)
			ss.send(ws.OpText, st.buf)
			return nil
		}
		if !ss.verifyConnect(p) {
			return nil
		}
		if !srv.hub.UserAllowed(ss.ident.User()) {
			st.buf = ss.appendConnectError(st.buf[:0], p.Namespace, "too many connections for this user")
			ss.send(ws.OpText, st.buf)
			return nil
		}
		so = &nspSocket{ss: ss, name: append([]byte(nil), p.Namespace...)}
		ss.r().sockets = append(ss.r().sockets, so)
		if srv.hub.Connecting() {
			so.connectViaBackend(p)
			return nil
		}
		so.chat = srv.hub.Open(so, ss.home.Index(), ss.kind(), ss.ident)
		so.chat.SetNamespace(string(so.name))
		so.accepted()
	case socketio.Disconnect:
		if so != nil {
			ss.dropSocket(so, "1000") // the client left, as a normal close
		}
	case socketio.Event, socketio.BinaryEvent:
		if so == nil || !so.connected {
			return nil // not connected to that namespace: dropped
		}
		// DecodeEvent reads the events of "/": the namespace only chose
		// the socket.
		q := *p
		q.Namespace = nil
		return ss.event(so.chat, &q, atts)
	case socketio.Ack, socketio.BinaryAck:
		// The answer to an event the server asked this socket to
		// acknowledge (server API send with "ack").
		if so == nil || !so.connected {
			srv.cfg.Metrics.ServerAck(metrics.AckIgnored)
			return nil
		}
		ss.ack(p, so, atts)
	default:
		return errBadPacket // CONNECT_ERROR is server-to-client only
	}
	return nil
}

// verifyConnect checks the token of a CONNECT when the session has no
// identity yet and authentication is on (socket.io-client's auth:
// {token}). It reports whether the CONNECT may go on; when not, the
// client got its CONNECT_ERROR.
func (ss *session) verifyConnect(p *socketio.Packet) bool {
	srv := ss.srv
	if ss.ident != nil || srv.cfg.Verifier == nil {
		return true
	}
	tok := auth.TokenFromSocketIOAuth(p.Data)
	if tok == nil && !srv.cfg.AuthRequired {
		return true
	}
	ident, err := srv.cfg.Verifier.Verify(tok)
	if err != nil {
		srv.cfg.Metrics.HandshakeFailed(metrics.HandshakeUnauthorized)
		ss.sendConnectError(p.Namespace, connectRefusal(err))
		return false
	}
	ss.setIdent(ident)
	return true
}

// accepted connects so: the CONNECT ack with its chat session's id. No
// pid: only "/" recovers.
func (so *nspSocket) accepted() {
	ss := so.ss
	st := &ss.srv.loops[ss.home.Index()]
	so.connected = true
	ss.connectBy = 0
	st.buf = ss.appendConnectAck(st.buf[:0], so.name, so.chat.ID(), "")
	ss.send(ws.OpText, st.buf)
	if ss.srv.debugOn() {
		ss.srv.log.Debug("socket.io connect", "conn", so.chat.ID(), "namespace", string(so.name), "client", ss.addr().String())
	}
}

// connectViaBackend asks the backend about a CONNECT to so's namespace
// (-proxy-connect-url): its allow makes the namespace exist for this
// socket (dynamic namespaces), its refusal is a CONNECT_ERROR on the
// namespace, its disconnect closes the Engine.IO session.
func (so *nspSocket) connectViaBackend(p *socketio.Packet) {
	ss := so.ss
	srv := ss.srv
	info := ss.connectInfo(string(so.name), p)
	sess := srv.hub.OpenPending(so, ss.home.Index(), ss.kind(), ss.ident)
	sess.SetNamespace(string(so.name))
	so.chat = sess
	srv.hub.Connect(sess, info, func(err *chat.Error, d *chat.Disconnect) {
		if ss.done || ss.socket(so.name) != so {
			return
		}
		if d != nil {
			err = &chat.Error{Code: strconv.Itoa(int(d.Code)), Message: d.Reason}
		}
		if err != nil {
			ss.dropSocket(so, "refused")
			ss.refusedByBackend(so.name, err)
			if d != nil {
				srv.Flush(ss.home)
				ss.close(*d)
				return
			}
		} else {
			so.accepted()
		}
		srv.Flush(ss.home)
	})
}

// WriteReply implements chat.Peer: the ack of a request, on so's
// namespace.
func (so *nspSocket) WriteReply(r *chat.Reply) {
	ss := so.ss
	st := &ss.srv.loops[ss.home.Index()]
	st.buf = ss.srv.hub.Codec(ss.textKind()).AppendReply(st.buf[:0], r)
	if len(st.buf) > 0 {
		st.nsbuf = socketio.WithNamespace(st.nsbuf[:0], st.buf, so.name)
		ss.send(ws.OpText, st.nsbuf)
	}
}

// Deliver implements netpoll.Peer. A room's packets were encoded on the
// room's namespace and go out as they are; what was encoded for this one
// client (a direct message, a server event, joined/left) is rewritten on
// the namespace.
func (so *nspSocket) Deliver(p *payload.Shared) {
	ss := so.ss
	if ss.done || !so.connected {
		return
	}
	st := &ss.srv.loops[ss.home.Index()]
	if ss.parser == parserMsgpack {
		so.deliverMsgpack(p)
		return
	}
	text := p.Payload()
	st.nsbuf = socketio.WithNamespace(st.nsbuf[:0], text, so.name)
	if len(st.nsbuf) == len(text) {
		ss.deliver(p)
		return
	}
	ss.send(ws.OpText, st.nsbuf)
	for i := 0; i < p.Attachments(); i++ {
		ss.send(ws.OpBinary, p.Attachment(i))
	}
}

// deliverMsgpack is Deliver for a msgpack client: an event encoded for one
// client (on "/") is read back, written again on the namespace and
// translated; a room's packets, on their namespace already, go out
// as they are.
func (so *nspSocket) deliverMsgpack(p *payload.Shared) {
	ss := so.ss
	st := &ss.srv.loops[ss.home.Index()]
	var pk socketio.Packet
	text, atts, err := socketio.ParseMsgpack(p.Payload(), &pk, st.mp.text, st.mp.atts[:0])
	st.mp.text, st.mp.atts = text, atts[:0]
	if err != nil || string(pk.Namespace) != "/" || (pk.Type != socketio.Event && pk.Type != socketio.BinaryEvent) {
		ss.deliver(p) // a room's event, on its namespace already
		return
	}
	st.nsbuf = socketio.AppendEventRaw(st.nsbuf[:0], so.name, len(atts), pk.Data)
	out, err := socketio.AppendMsgpackPacket(st.mp.out[:0], st.nsbuf, atts)
	if err != nil {
		ss.deliver(p)
		return
	}
	st.mp.out = out
	ss.send(ws.OpBinary, out)
}

// Disconnect implements netpoll.Peer: the application disconnects this
// namespace's socket (server API, a backend's command). As socket.io's
// socket.disconnect(), it leaves the Engine.IO session and its other
// namespaces open; the client sees "io server disconnect".
func (so *nspSocket) Disconnect(d chat.Disconnect) {
	ss := so.ss
	if ss.done || ss.socket(so.name) != so {
		return
	}
	st := &ss.srv.loops[ss.home.Index()]
	st.buf = socketio.AppendDisconnect(st.buf[:0], so.name)
	ss.send(ws.OpText, st.buf)
	ss.dropSocket(so, d.Metric.String())
	ss.srv.Flush(ss.home)
}

// Describe implements chat.Describer.
func (so *nspSocket) Describe() (protocol, transport, remote string) {
	return so.ss.Describe()
}

// socketExpired reports whether the token of a namespace's chat session
// expired (chat.Hub.ExpireToken), which ends the Engine.IO session as for
// "/": all its sockets share one identity.
func (ss *session) socketExpired(now int64) bool {
	for _, so := range ss.r0().sockets {
		if so.connected && ss.srv.hub.ExpireToken(so.chat, now) {
			return true
		}
	}
	return false
}
