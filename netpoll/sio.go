package netpoll

import (
	"crypto/rand"
	"encoding/base64"
	"errors"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/native"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/metrics"
)

// Socket.IO over WebSocket (Engine.IO v4, Socket.IO v5). The Engine.IO
// session is the WebSocket connection itself: the server sends the open
// packet after the upgrade, pings every PingInterval and closes a client
// whose pong does not come within PingTimeout. A chat session exists while
// the client is connected to namespace "/"; its id is the Socket.IO
// socket.id, the same id native clients see.

// kindSIO is the rooms.Member kind of Socket.IO sessions (index into
// chat.Config.Codecs).
const kindSIO = 1

// Codecs returns the wire codecs in member-kind order (kindNative,
// kindSIO), for chat.Config.Codecs.
func Codecs() []chat.Codec {
	return []chat.Codec{kindNative: native.Codec{}, kindSIO: socketio.Codec{}}
}

// maxAttachments bounds the binary attachments of one packet.
const maxAttachments = 64

// Namespaces served in conformance mode, as bits of sioConn.nsps.
const (
	nspRoot   = 1 << 0
	nspCustom = 1 << 1
)

var (
	errBadPacket = errors.New("netpoll: invalid Socket.IO packet")
	// errSIOClose: the client sent an Engine.IO close packet.
	errSIOClose = chat.DisconnectNormal
)

// sioError wraps a malformed-packet error so the connection is closed with
// 1008 (the Socket.IO protocol closes on malformed packets).
type sioError struct{ err error }

func (e sioError) Error() string { return "netpoll: socket.io: " + e.err.Error() }
func (e sioError) Unwrap() error { return e.err }

// sioTransport carries one Engine.IO session's packets: the WebSocket
// connection itself for a direct connection (*conn), or a long-polling
// session that may later move to a WebSocket (*pollSession). Every method
// runs on the loop that owns the session.
type sioTransport interface {
	// sioSend sends one Engine.IO packet: a text packet (op OpText) or a
	// binary attachment (OpBinary).
	sioSend(op ws.OpCode, payload []byte)
	// sioChat returns the session's chat session, nil if none.
	sioChat() *chat.Session
	// sioOpenChat opens the chat session when namespace "/" connects.
	sioOpenChat(ident *auth.Identity) *chat.Session
	// sioCloseChat closes the chat session when "/" disconnects.
	sioCloseChat()
	// sioRemote is the client's address, for logs.
	sioRemote() string
}

// sioConn is the Socket.IO state of one Engine.IO session.
type sioConn struct {
	t   sioTransport
	srv *Server
	// relay, on a WebSocket that probes or carries a long-polling session,
	// is that session: the connection only relays to it.
	relay     *pollSession
	echo      bool // plain Engine.IO echo endpoint (conformance mode)
	sid       string
	nsps      uint8 // namespaces connected (bits nspRoot, nspCustom)
	awaiting  bool  // a ping is out and its pong not back yet
	due       int64 // next ping, or the pong deadline while awaiting
	connectBy int64 // deadline for the first CONNECT; 0 once one arrived
	// ident is the client's verified identity: from the handshake's token,
	// or from the CONNECT auth payload; nil while anonymous.
	ident *auth.Identity
	// lim is the rate-limit state; it follows the session across
	// transports. limited marks the packet being handled as over the limit.
	lim     limit.Conn
	limited bool
	// A BINARY_EVENT or BINARY_ACK waiting for its attachments: its own
	// copy of the packet text, parsed again from that copy.
	binText []byte
	binAtts [][]byte
	binWant int
}

func newSID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newSIOState returns the state of a new Engine.IO session on t.
func (s *Server) newSIOState(t sioTransport, echo bool) *sioConn {
	now := s.now()
	return &sioConn{t: t, srv: s, echo: echo, sid: newSID(),
		due: now + int64(s.cfg.SocketIO.PingInterval), connectBy: now + int64(s.cfg.SocketIO.ConnectTimeout)}
}

// appendOpen appends the Engine.IO open packet of s.
func (s *sioConn) appendOpen(dst []byte, upgrades []string) []byte {
	cfg := &s.srv.cfg.SocketIO
	return socketio.AppendOpen(dst, socketio.Open{
		SID:          s.sid,
		Upgrades:     upgrades,
		PingInterval: cfg.PingInterval,
		PingTimeout:  cfg.PingTimeout,
		MaxPayload:   s.srv.sioMaxPayload(),
	})
}

// openSIO sends the Engine.IO open packet right after the upgrade of a
// direct WebSocket connection.
func (c *conn) openSIO(echo bool) {
	lp := c.lp
	c.sio = lp.srv.newSIOState(c, echo)
	if echo {
		c.sio.connectBy = 0 // a plain Engine.IO endpoint has no namespaces
	}
	lp.pbuf = c.sio.appendOpen(lp.pbuf[:0], nil)
	c.sendFrame(ws.OpText, lp.pbuf)
}

// sioTransport of a direct WebSocket connection.
func (c *conn) sioSend(op ws.OpCode, payload []byte) { c.sendFrame(op, payload) }
func (c *conn) sioChat() *chat.Session               { return c.sess }
func (c *conn) sioRemote() string                    { return c.gc.RemoteAddr().String() }
func (c *conn) sioOpenChat(ident *auth.Identity) *chat.Session {
	c.sess = c.lp.srv.hub.Open(c, c.lp.idx, kindSIO, ident)
	return c.sess
}
func (c *conn) sioCloseChat() {
	if c.sess != nil {
		c.lp.srv.hub.Close(c.sess)
		c.sess = nil
	}
}

// message handles one Engine.IO message: a text packet or a binary
// attachment. An error closes the session.
func (s *sioConn) message(lp *loop, op ws.OpCode, payload []byte) error {
	// Every Engine.IO packet counts against the rate limits (pings and
	// CONNECT/DISCONNECT cycles cost the gateway too). A limited event is
	// answered with rate_limited through its ack; anything else limited is
	// dropped.
	switch s.lim.Message(s.srv.now(), len(payload), &s.srv.cfg.Limits) {
	case limit.Abuse:
		return chat.DisconnectRateLimit
	case limit.Limited:
		s.limited = true
		defer func() { s.limited = false }()
	}
	if op == ws.OpBinary {
		if s.echo {
			s.t.sioSend(ws.OpBinary, payload)
			return nil
		}
		if s.binWant == 0 {
			return errBadPacket // an attachment nobody announced
		}
		s.binAtts = append(s.binAtts, append([]byte(nil), payload...))
		if len(s.binAtts) < s.binWant {
			return nil
		}
		var p socketio.Packet
		if err := socketio.ParsePacket(s.binText, &p); err != nil {
			return err
		}
		atts := s.binAtts
		s.binText, s.binAtts, s.binWant = nil, nil, 0
		return s.packet(lp, &p, atts)
	}
	t, data, err := socketio.ParseEIO(payload)
	if err != nil {
		return err
	}
	if s.limited && t != socketio.EIOMessage {
		return nil // a limited ping, noop or close: dropped
	}
	if s.binWant != 0 && t == socketio.EIOMessage {
		// A packet while attachments are due. Engine.IO packets (a pong)
		// may come in between; Socket.IO packets may not.
		return errBadPacket
	}
	switch t {
	case socketio.EIOPong:
		s.awaiting = false
		s.due = s.srv.now() + int64(s.srv.cfg.SocketIO.PingInterval)
	case socketio.EIOPing:
		// Clients do not ping in v4, except to probe an upgrade; answer
		// anyway, as the reference server does.
		lp.pbuf = socketio.AppendEIO(lp.pbuf[:0], socketio.EIOPong, data)
		s.t.sioSend(ws.OpText, lp.pbuf)
	case socketio.EIOClose:
		return errSIOClose
	case socketio.EIONoop, socketio.EIOUpgrade:
	case socketio.EIOMessage:
		if s.echo {
			s.t.sioSend(ws.OpText, payload)
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
			s.binText = append([]byte(nil), data...)
			s.binWant = p.Attachments
			return nil
		}
		return s.packet(lp, &p, nil)
	default:
		return errBadPacket
	}
	return nil
}

// packet handles one complete Socket.IO packet.
func (s *sioConn) packet(lp *loop, p *socketio.Packet, atts [][]byte) error {
	srv := s.srv
	conformance := srv.cfg.SocketIO.Conformance
	bit := namespaceBit(p.Namespace, conformance)
	switch p.Type {
	case socketio.Connect:
		if s.limited {
			return nil // CONNECT floods are dropped, not answered
		}
		if bit == 0 {
			// Refused: the connect timeout keeps running, so a client
			// that only knocks on unknown namespaces is still dropped.
			lp.pbuf = socketio.AppendConnectError(lp.pbuf[:0], p.Namespace, "Invalid namespace")
			s.t.sioSend(ws.OpText, lp.pbuf)
			return nil
		}
		if s.nsps&bit != 0 {
			return errBadPacket // already connected to it
		}
		authData := p.Data
		if authData == nil {
			authData = []byte("{}")
		}
		if !conformance && s.ident == nil && srv.cfg.Verifier != nil {
			// The token may come with CONNECT: socket.io-client's
			// auth: {token}.
			tok := auth.TokenFromSocketIOAuth(p.Data)
			if tok != nil || srv.cfg.AuthRequired {
				ident, err := srv.cfg.Verifier.Verify(tok)
				if err != nil {
					srv.m.HandshakeFailed(metrics.HandshakeUnauthorized)
					lp.pbuf = socketio.AppendEIO(lp.pbuf[:0], socketio.EIOMessage, nil)
					lp.pbuf = append(lp.pbuf, byte(socketio.ConnectError))
					if string(p.Namespace) != "/" {
						lp.pbuf = append(append(lp.pbuf, p.Namespace...), ',')
					}
					lp.pbuf = append(lp.pbuf, connectRefusal(err)...)
					s.t.sioSend(ws.OpText, lp.pbuf)
					return nil
				}
				s.ident = ident
			}
		}
		s.connectBy = 0
		s.nsps |= bit
		var sid string
		if conformance {
			sid = newSID()
		} else {
			sid = s.t.sioOpenChat(s.ident).ID()
			srv.log.Debug("socket.io connect", "conn", sid, "client", s.t.sioRemote())
		}
		lp.pbuf = socketio.AppendConnect(lp.pbuf[:0], p.Namespace, sid)
		s.t.sioSend(ws.OpText, lp.pbuf)
		if conformance {
			lp.pbuf = socketio.AppendEvent(lp.pbuf[:0], p.Namespace, 0, "auth", authData)
			s.t.sioSend(ws.OpText, lp.pbuf)
		}
	case socketio.Disconnect:
		if bit == 0 || s.nsps&bit == 0 {
			return nil
		}
		s.nsps &^= bit
		if bit == nspRoot {
			s.t.sioCloseChat()
		}
		// The official test suite expects the reference server's
		// behaviour: leaving the last namespace ends the connection. In
		// chat mode the connection stays open so the client may connect
		// again (socket.io-client closes it itself when it is done).
		if conformance && s.nsps == 0 {
			return errSIOClose
		}
	case socketio.Event, socketio.BinaryEvent:
		if bit == 0 || s.nsps&bit == 0 {
			return nil // not connected to that namespace: dropped
		}
		if conformance {
			return s.conformanceEvent(lp, p, atts)
		}
		sess := s.t.sioChat()
		if sess == nil {
			return nil
		}
		if err := socketio.DecodeEvent(p, atts, &lp.req); err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) {
				return err
			}
			srv.hub.Fail(sess, &lp.req, ce)
			return nil
		}
		if s.limited {
			srv.hub.Fail(sess, &lp.req, chat.ErrRateLimited)
			return nil
		}
		srv.hub.Handle(sess, &lp.req)
	case socketio.Ack, socketio.BinaryAck:
		// The server never asks clients for acknowledgements.
	default:
		return errBadPacket // CONNECT_ERROR is server-to-client only
	}
	return nil
}

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
func (s *sioConn) conformanceEvent(lp *loop, p *socketio.Packet, atts [][]byte) error {
	if string(p.Namespace) != "/" {
		return nil
	}
	switch string(p.EventName()) {
	case `"message"`:
		arr := socketio.ReplaceEventName(p.Data, "message-back", nil)
		lp.pbuf = socketio.AppendEventRaw(lp.pbuf[:0], p.Namespace, len(atts), arr)
	case `"message-with-ack"`:
		if !p.HasID {
			return nil
		}
		lp.pbuf = socketio.AppendAck(lp.pbuf[:0], p.Namespace, p.ID, len(atts), socketio.EventArgs(p.Data, nil))
	default:
		return nil
	}
	s.t.sioSend(ws.OpText, lp.pbuf)
	for _, a := range atts {
		s.t.sioSend(ws.OpBinary, a)
	}
	return nil
}

// heartbeat runs the Engine.IO heartbeat and the connect timeout, from
// the sweep of the session's loop. It reports whether the session must
// close, and with what.
func (s *sioConn) heartbeat(now int64) (chat.Disconnect, bool) {
	cfg := &s.srv.cfg.SocketIO
	switch {
	case s.connectBy != 0 && now > s.connectBy:
		return chat.DisconnectConnectTimeout, true
	case s.awaiting && now > s.due:
		return chat.DisconnectPingTimeout, true
	case !s.awaiting && now >= s.due:
		s.awaiting = true
		s.due = now + int64(cfg.PingTimeout)
		s.t.sioSend(ws.OpText, []byte{byte(socketio.EIOPing)})
	}
	return chat.Disconnect{}, false
}

// sioSweep runs the heartbeat of a direct WebSocket connection.
func (c *conn) sioSweep(now int64) {
	if d, end := c.sio.heartbeat(now); end {
		c.closeNow(d)
	}
}

// sioMaxPayload is the maxPayload announced in the open packet: the
// largest message the connection's frame reader accepts.
func (s *Server) sioMaxPayload() int {
	if s.cfg.SocketIO.Conformance {
		return conformanceMaxPayload
	}
	return s.cfg.MaxMessage
}

// maxBody bounds HTTP request bodies: long-polling POSTs carry at most
// maxPayload bytes (engine.io-protocol v4).
func (s *Server) maxBody() int { return s.sioMaxPayload() }
