package netpoll

import (
	"crypto/rand"
	"encoding/base64"
	"errors"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/native"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/frame"
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
	errSIOClose = errors.New("netpoll: Engine.IO close")
)

// sioError wraps a malformed-packet error so the connection is closed with
// 1008 (the Socket.IO protocol closes on malformed packets).
type sioError struct{ err error }

func (e sioError) Error() string { return "netpoll: socket.io: " + e.err.Error() }
func (e sioError) Unwrap() error { return e.err }

// sioConn is the Socket.IO state of one connection.
type sioConn struct {
	sid       string
	nsps      uint8 // namespaces connected (bits nspRoot, nspCustom)
	awaiting  bool  // a ping is out and its pong not back yet
	due       int64 // next ping, or the pong deadline while awaiting
	connectBy int64 // deadline for the first CONNECT; 0 once one arrived
	// auth is the CONNECT payload of "/", kept for authentication.
	auth []byte
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

// upgradeSIO validates the Engine.IO query and upgrades the connection.
func (c *conn) upgradeSIO(req *Request, rest []byte) gnet.Action {
	q, err := socketio.ParseQuery(req.Query)
	if err == nil && q.Transport != "websocket" {
		// Long-polling is not served yet.
		err = socketio.ErrUnknownTransport
	}
	if err == nil && q.SID != "" {
		err = socketio.ErrUnknownSID
	}
	if err != nil {
		he := socketio.ErrBadRequest
		errors.As(err, &he)
		return c.respond(Response{Status: he.Status(), ContentType: "application/json",
			Body: socketio.AppendHTTPError(nil, he.Code, he.Message)})
	}
	return c.upgrade(req, endpointSIO, rest)
}

// openSIO sends the Engine.IO open packet right after the upgrade.
func (c *conn) openSIO() {
	lp := c.lp
	cfg := &lp.srv.cfg
	now := lp.srv.now()
	s := &sioConn{sid: newSID(), due: now + int64(cfg.SocketIO.PingInterval), connectBy: now + int64(cfg.SocketIO.ConnectTimeout)}
	c.sio = s
	lp.pbuf = socketio.AppendOpen(lp.pbuf[:0], socketio.Open{
		SID:          s.sid,
		Upgrades:     nil,
		PingInterval: cfg.SocketIO.PingInterval,
		PingTimeout:  cfg.SocketIO.PingTimeout,
		MaxPayload:   lp.srv.sioMaxPayload(),
	})
	lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpText, lp.pbuf)
}

// sioMessage handles one WebSocket message on a Socket.IO connection. An
// error closes the connection.
func (c *conn) sioMessage(op ws.OpCode, payload []byte) error {
	s := c.sio
	if op == ws.OpBinary {
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
		return c.sioPacket(&p, atts)
	}
	if s.binWant != 0 {
		return errBadPacket // text while attachments are due
	}
	t, data, err := socketio.ParseEIO(payload)
	if err != nil {
		return err
	}
	lp := c.lp
	switch t {
	case socketio.EIOPong:
		s.awaiting = false
		s.due = lp.srv.now() + int64(lp.srv.cfg.SocketIO.PingInterval)
	case socketio.EIOPing:
		// Clients do not ping in v4, except to probe an upgrade; answer
		// anyway, as the reference server does.
		lp.pbuf = socketio.AppendEIO(lp.pbuf[:0], socketio.EIOPong, data)
		lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpText, lp.pbuf)
	case socketio.EIOClose:
		return errSIOClose
	case socketio.EIONoop, socketio.EIOUpgrade:
	case socketio.EIOMessage:
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
		return c.sioPacket(&p, nil)
	default:
		return errBadPacket
	}
	return nil
}

// sioPacket handles one complete Socket.IO packet.
func (c *conn) sioPacket(p *socketio.Packet, atts [][]byte) error {
	lp := c.lp
	srv := lp.srv
	s := c.sio
	conformance := srv.cfg.SocketIO.Conformance
	bit := namespaceBit(p.Namespace, conformance)
	switch p.Type {
	case socketio.Connect:
		s.connectBy = 0
		if bit == 0 {
			lp.pbuf = socketio.AppendConnectError(lp.pbuf[:0], p.Namespace, "Invalid namespace")
			lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpText, lp.pbuf)
			return nil
		}
		if s.nsps&bit != 0 {
			return errBadPacket // already connected to it
		}
		s.nsps |= bit
		auth := p.Data
		if auth == nil {
			auth = []byte("{}")
		}
		var sid string
		if conformance {
			sid = newSID()
		} else {
			s.auth = append(s.auth[:0], auth...)
			c.sess = srv.hub.Open(c, lp.idx, kindSIO)
			sid = c.sess.ID()
			srv.log.Debug("socket.io connect", "conn", sid, "remote", c.gc.RemoteAddr().String())
		}
		lp.pbuf = socketio.AppendConnect(lp.pbuf[:0], p.Namespace, sid)
		lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpText, lp.pbuf)
		if conformance {
			lp.pbuf = socketio.AppendEvent(lp.pbuf[:0], p.Namespace, 0, "auth", auth)
			lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpText, lp.pbuf)
		}
	case socketio.Disconnect:
		if bit == 0 || s.nsps&bit == 0 {
			return nil
		}
		s.nsps &^= bit
		if c.sess != nil && bit == nspRoot {
			srv.hub.Close(c.sess)
			c.sess = nil
		}
		// The official test suite expects the reference server's
		// behaviour: leaving the last namespace ends the connection. In
		// chat mode the connection stays open so the client may connect
		// again (socket.io-client closes it itself when it is done).
		if conformance && s.nsps == 0 {
			return errPeerClosed
		}
	case socketio.Event, socketio.BinaryEvent:
		if bit == 0 || s.nsps&bit == 0 {
			return nil // not connected to that namespace: dropped
		}
		if conformance {
			return c.sioConformanceEvent(p, atts)
		}
		if c.sess == nil {
			return nil
		}
		if err := socketio.DecodeEvent(p, atts, &lp.req); err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) {
				return err
			}
			srv.hub.Fail(c.sess, lp.req.ID, ce)
			return nil
		}
		srv.hub.Handle(c.sess, &lp.req)
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

// sioConformanceEvent implements the events of the official test suite:
// "message" is emitted back as "message-back" and "message-with-ack" is
// acknowledged, both with the same arguments and attachments.
func (c *conn) sioConformanceEvent(p *socketio.Packet, atts [][]byte) error {
	if string(p.Namespace) != "/" {
		return nil
	}
	lp := c.lp
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
	lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpText, lp.pbuf)
	for _, a := range atts {
		lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpBinary, a)
	}
	return nil
}

// sioSweep runs the Engine.IO heartbeat and the connect timeout. Called by
// the loop's sweep.
func (c *conn) sioSweep(now int64) {
	s := c.sio
	cfg := &c.lp.srv.cfg.SocketIO
	switch {
	case s.connectBy != 0 && now > s.connectBy:
		c.closeNow(ws.StatusPolicyViolation, "no Socket.IO connect in time")
	case s.awaiting && now > s.due:
		c.closeNow(ws.StatusGoingAway, "ping timeout")
	case !s.awaiting && now >= s.due:
		s.awaiting = true
		s.due = now + int64(cfg.PingTimeout)
		_, _ = c.gc.Write(sioPingFrame)
	}
}

// sioPingFrame is an Engine.IO ping in a WebSocket text frame.
var sioPingFrame = frame.AppendFrame(nil, ws.OpText, []byte{byte(socketio.EIOPing)})

// sioMaxPayload is the maxPayload announced in the open packet: the
// largest message the connection's frame reader accepts.
func (s *Server) sioMaxPayload() int {
	if s.cfg.SocketIO.Conformance {
		return conformanceMaxPayload
	}
	return s.cfg.MaxMessage
}
