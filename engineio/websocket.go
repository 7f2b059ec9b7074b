package engineio

import (
	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/netpoll"
)

// directHandler drives the WebSocket of a session that began on it: the
// socket and the session share a loop, so packets are handled in place.
type directHandler struct{ ss *session }

func (h directHandler) OnMessage(op ws.OpCode, payload []byte) error {
	payload, err := h.ss.wsMessage(op, payload)
	if err != nil {
		return errBadPacket
	}
	return h.ss.message(op, payload)
}

// Sweep runs the session's timers (heartbeat, connect timeout, token
// expiry) at netpoll's sweep of the socket, right after Server.Sweep with
// the same clock: the socket is on the session's home loop and ends with
// it, so the loop's session list needs no entry for it. Packets a close
// queued for parked GETs are answered at the end of the sweep (Flush).
func (h directHandler) Sweep(now int64) { h.ss.sweep(now) }

func (h directHandler) Closed() {
	h.ss.ws = netpoll.Socket{} // gone: nothing more to send or close
	h.ss.close(chat.DisconnectTransport)
}

func (h directHandler) ID() string { return h.ss.chatID() }

// upgradeWebSocket answers a WebSocket that names a long-polling session:
// it probes, then carries, that session (the upgrade).
//
// A WebSocket for a session that another one already probes or carries
// is opened and closed at once (ignoreWebSocket); one for a sid the
// gateway does not know gets 400.
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
	switch s.reg.claimUpgrade(ss) {
	case upgradeGone:
		s.httpError(x, socketio.ErrUnknownSID)
		return
	case upgradeTaken:
		s.ignoreWebSocket(x)
		return
	}
	from := x.Loop()
	ok := x.Upgrade(netpoll.Admission{}, func(sock netpoll.Socket) netpoll.SocketHandler {
		h := &relayHandler{ss: ss, sock: sock, since: from.Now()}
		ss.polled().relay.Store(sock.Loop())
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
			if !ss.r().probe.Valid() {
				ss.r().probe = sock
			}
		})
		return h
	})
	if !ok {
		s.reg.releaseUpgrade(ss)
	}
}

// ignoreWebSocket answers a WebSocket for a session that another one
// probes or carries: its handshake completes and it is closed at once
// (1000), while the session goes on, as the reference server does
// (engine.io-protocol test suite, "ignores WebSocket connection with same
// sid after upgrade"): the client sees a WebSocket that closes, not a
// failed handshake.
//
// open runs during the request's traffic handling, so the close frame
// goes out right behind the 101 in the same write, and the client's late
// messages are dropped (netpoll: a closing socket's messages are).
func (s *Server) ignoreWebSocket(x *netpoll.Exchange) {
	x.Upgrade(netpoll.Admission{}, func(sock netpoll.Socket) netpoll.SocketHandler {
		sock.Disconnect(chat.DisconnectNormal)
		return ignoredHandler{}
	})
}

// ignoredHandler drives a WebSocket closed as it opened (ignoreWebSocket):
// it carries nothing.
type ignoredHandler struct{}

func (ignoredHandler) OnMessage(ws.OpCode, []byte) error { return nil }
func (ignoredHandler) Sweep(int64)                       {}
func (ignoredHandler) Closed()                           {}
func (ignoredHandler) ID() string                        { return "" }

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
				ss.r().probe, ss.r().probed = sock, true
				ss.onProbe()
			})
			return nil
		case op == ws.OpText && string(payload) == "5":
			h.upgraded = true
			// Polling requests see the switch at once, not only once the
			// home loop has run onUpgrade: a GET the client sends right
			// after "5" is refused, as by the reference server
			// (engine.io-protocol suite, "ignores HTTP requests with same
			// sid after upgrade").
			ss.polled().onWS.Store(true)
			ss.home.Run(from, func() { ss.onUpgrade(sock) })
			return nil
		}
		return errBadPacket
	}
	data, err := ss.wsMessage(op, payload)
	if err != nil {
		return errBadPacket
	}
	if ss.home != from {
		data = append([]byte(nil), data...)
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
			if err == errClose {
				// The client's Engine.IO close is socket.io's
				// "transport close", as on a direct WebSocket or over
				// polling: the chat session ends as one (the client may
				// resume it), the socket with 1000.
				ss.endChat(chat.DisconnectTransport)
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
		if ss.r0().probe == sock {
			ss.r().probe = netpoll.Socket{}
		}
		ss.srv.reg.releaseUpgrade(ss)
	})
}

// ID names the socket in logs; a relay's session is on another loop, and
// its sid is a secret, so it has no name here.
func (h *relayHandler) ID() string { return "" }

// onProbe releases a parked GET so the client can finish the upgrade.
func (ss *session) onProbe() { ss.releaseGet() }

// onUpgrade switches the session to WebSocket sock: packets still waiting
// for a GET go first, then everything else.
func (ss *session) onUpgrade(sock netpoll.Socket) {
	if ss.done {
		return
	}
	ss.onProbe()
	ss.ws, ss.r().probe = sock, netpoll.Socket{}
	ss.polled().onWS.Store(true)
	pending := ss.r().out
	ss.r().out = nil
	ss.eachOut(pending, ss.send)
}
