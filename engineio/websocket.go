package engineio

import (
	"bytes"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/netpoll"
)

// directHandler drives the WebSocket of a session that began on it: the
// socket and the session share a loop, so packets are handled in place.
type directHandler struct{ ss *session }

func (h directHandler) OnMessage(op ws.OpCode, payload []byte) error {
	return h.ss.message(op, payload)
}

// Sweep does nothing: the session's heartbeat runs in Server.Sweep.
func (h directHandler) Sweep(int64) {}

func (h directHandler) Closed() {
	h.ss.ws = netpoll.Socket{} // gone: nothing more to send or close
	h.ss.close(chat.DisconnectTransport)
}

func (h directHandler) ID() string { return h.ss.chatID() }

// upgradeWebSocket answers a WebSocket that names a long-polling session:
// it probes, then carries, that session (the upgrade).
//
// Whoever presents the sid gets the session (its socket id, its rooms):
// the sid is a bearer secret. The upgrade passes the checks of every
// request for it (the origin before the sid is looked up, then the
// token; checkToken), as the handshake did.
func (s *Server) upgradeWebSocket(x *netpoll.Exchange, sid string) {
	if ref := x.CheckOrigin(); ref != nil {
		x.Refuse(*ref)
		return
	}
	ss := s.reg.get(sid)
	if ss == nil {
		s.httpError(x, socketio.ErrUnknownSID)
		return
	}
	if ref := s.checkToken(x, ss); ref != nil {
		x.Refuse(*ref)
		return
	}
	if !s.reg.claimUpgrade(ss) {
		s.httpError(x, socketio.ErrUnknownSID)
		return
	}
	from := x.Loop()
	ok := x.Upgrade(netpoll.Admission{}, func(sock netpoll.Socket) netpoll.SocketHandler {
		h := &relayHandler{ss: ss, sock: sock, since: from.Now()}
		// The home learns of its probe at once, so that the probe goes
		// down with the session even if it never speaks.
		ss.home.Run(from, func() {
			if ss.done {
				sock.Loop().Run(ss.home, func() {
					if sock.Open() {
						sock.Disconnect(chat.DisconnectNormal)
					}
				})
				return
			}
			if !ss.probe.Valid() {
				ss.probe = sock
			}
		})
		return h
	})
	if !ok {
		s.reg.releaseUpgrade(ss)
	}
}

// relayHandler drives a WebSocket that probes, then carries, a
// long-polling session homed on any loop. It runs on the socket's loop and
// reaches the session through the home loop's mailbox.
type relayHandler struct {
	ss       *session
	sock     netpoll.Socket
	since    int64 // when the socket opened, for the upgrade timeout
	upgraded bool  // the client sent "5": the session is on this socket
}

func (h *relayHandler) OnMessage(op ws.OpCode, payload []byte) error {
	ss, sock := h.ss, h.sock
	from := sock.Loop()
	if !h.upgraded {
		switch {
		case op == ws.OpText && string(payload) == "2probe":
			sock.Send(ws.OpText, []byte("3probe"))
			ss.home.Run(from, func() {
				ss.probe, ss.probed = sock, true
				ss.onProbe()
			})
			return nil
		case op == ws.OpText && string(payload) == "5":
			h.upgraded = true
			ss.home.Run(from, func() { ss.onUpgrade(sock) })
			return nil
		}
		return errBadPacket
	}
	data := payload
	if ss.home != from {
		data = append([]byte(nil), payload...)
	}
	ss.home.Run(from, func() {
		if ss.done {
			return
		}
		if err := ss.message(op, data); err != nil {
			d := chat.DisconnectBadPacket
			switch e := err.(type) {
			case chat.Disconnect:
				d = e
			}
			ss.close(d)
		}
	})
	return nil
}

// Sweep closes a probe that does not finish its upgrade in time, so it
// cannot block the session's next attempt forever.
func (h *relayHandler) Sweep(now int64) {
	if !h.upgraded && now-h.since > int64(upgradeTimeout) {
		h.sock.Disconnect(chat.DisconnectUpgradeTimeout)
	}
}

// Closed tells the home loop that the socket, which carried or probed the
// session, closed.
func (h *relayHandler) Closed() {
	ss, sock, upgraded := h.ss, h.sock, h.upgraded
	ss.home.Run(sock.Loop(), func() {
		if ss.ws == sock || upgraded {
			ss.ws = netpoll.Socket{}
			ss.close(chat.DisconnectTransport)
			return
		}
		if ss.probe == sock {
			ss.probe = netpoll.Socket{}
		}
		ss.srv.reg.releaseUpgrade(ss)
	})
}

// ID names the socket in logs; a relay's session is on another loop, and
// its sid is a secret, so it has no name here.
func (h *relayHandler) ID() string { return "" }

// onProbe releases a parked GET so the client can finish the upgrade.
func (ss *session) onProbe() {
	if ss.get.Valid() && !ss.done {
		get := ss.get
		ss.get = netpoll.Parked{}
		ss.answer(get, 200, contentTypeText, []byte{byte(socketio.EIONoop)}, ss.getOrigin, ss.getKeep)
	}
}

// onUpgrade switches the session to WebSocket sock: packets still waiting
// for a GET go first, then everything else.
func (ss *session) onUpgrade(sock netpoll.Socket) {
	if ss.done {
		return
	}
	ss.onProbe()
	ss.ws, ss.probe = sock, netpoll.Socket{}
	ss.onWS.Store(true)
	pending := ss.out
	ss.out = nil
	for len(pending) > 0 {
		pkt := pending
		if i := bytes.IndexByte(pending, socketio.RecordSeparator); i >= 0 {
			pkt, pending = pending[:i], pending[i+1:]
		} else {
			pending = nil
		}
		binary, data, err := socketio.DecodePollingPacket(pkt)
		if err != nil {
			continue
		}
		op := ws.OpText
		if binary {
			op = ws.OpBinary
		}
		ss.send(op, data)
	}
}
