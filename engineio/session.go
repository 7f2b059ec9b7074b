package engineio

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/frame"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/metrics"
	"github.com/chatgate/chatgate/netpoll"
	"github.com/chatgate/chatgate/payload"
)

const (
	metricsPolling  = metrics.TransportPolling
	metricsSocketIO = metrics.TransportSocketIO
)

// session is one Engine.IO session and its Socket.IO state. Every field is
// touched only on the home loop, except what its doc says otherwise.
//
// Its transport is, by phase: long-polling (ws not Valid), a WebSocket
// probing an upgrade (probe), or the WebSocket after the upgrade or from
// the start (ws; direct when the session began on it). It is the chat
// session's peer: replies, pushes and broadcasts reach the client through
// send and Deliver, which pick the transport.
//
// A Socket.IO client on a WebSocket is a session for as long as it is
// connected, so the session keeps only what such a session needs
// (TestWebSocketSessionSize: the 112-byte size class). Everything that
// only a session born on long-polling needs (its sid, the registry's
// upgrade mark and the mirrors other loops read) is in sessionRare,
// allocated before such a session is registered; a direct WebSocket
// session is never registered (no request can name it), keeps no sid and
// never reads those fields.
type session struct {
	srv  *Server
	home *netpoll.Loop
	// ip is the client's address (addr) in its 16-byte form, as netpoll
	// keeps it, for the per-address limit, logs and Describe; set before
	// the session is shared, never changed.
	ip [16]byte

	ident *auth.Identity // verified identity: from the handshake or CONNECT
	chat  *chat.Session  // while "/" is connected (chat mode)
	// lim is the rate-limit state, allocated on the first packet and
	// dropped once its debt has drained (Server.Sweep), so an idle
	// session holds none; limited marks the packet being handled as over
	// the limit.
	lim *limit.Conn

	// rare is the state of the phases few sessions go through (long
	// polling, an upgrade probe, binary packets, server acks, a backend's
	// connect call, namespaces other than "/"); nil until one begins (r).
	// A session that starts on its WebSocket and only chats never
	// allocates it (TestWebSocketSessionSize). A session born on
	// long-polling has it from before it is registered, and it is never
	// replaced once set, so other goroutines may read the pointer of a
	// registered session (polled).
	rare *sessionRare

	// ws is the socket carrying the session.
	ws netpoll.Socket

	// Heartbeat: a ping is out and its pong not back yet (awaiting), the
	// next ping or the pong deadline (due), and the deadline of the first
	// CONNECT (connectBy, 0 once one arrived).
	due       int64
	connectBy int64
	// pingDue is when the ping that is out was due. The next one is due
	// PingInterval after it, not after the sweep that sent it, so the
	// sweep's lateness (up to a quarter of the shortest timeout) does
	// not add up over pings: the third ping of a conformance session
	// (900 ms) comes before its connect timeout (1 s), as the official
	// suites' "sends ping/pong packets" cases need.
	pingDue int64

	idx      int32 // index in the home loop's session list (not direct)
	awaiting bool
	echo     bool // plain Engine.IO echo (conformance mode)
	// direct: began on its WebSocket (never registered); set before the
	// session is shared, never changed, so any goroutine may read it.
	direct  bool
	done    bool
	limited bool
	// eio3: an Engine.IO v3 client (eio3.go), from the handshake on;
	// autoConnect: the server is connecting its "/" (connectV3).
	eio3        bool
	autoConnect bool
	nsps        uint8 // namespaces connected (nspRoot, nspCustom)
	// parser is the client's Socket.IO parser (msgpackMessage).
	parser uint8
}

// sessionRare is the part of a session that few sessions need (session.rare).
type sessionRare struct {
	// Set before a long-polling session is registered, then read by
	// requests for its sid on any loop (checkToken, ServeHTTP, the
	// registry), as their docs say.
	//
	// sid is the session's id, the registry's key.
	sid string
	// identity mirrors session.ident (setIdent) for checkToken; tokenSum
	// is the SHA-256 of the handshake's token when it carried one, else
	// nil, never changed.
	identity atomic.Pointer[auth.Identity]
	tokenSum *[sha256.Size]byte
	// onWS mirrors ws.Valid() for other goroutines (Describe, and the
	// polling requests ServeHTTP refuses); it is set as soon as the
	// client sends "5", before the home loop switches the session.
	onWS atomic.Bool
	// upgrading: a WebSocket probes or carries the session; guarded by
	// the registry lock.
	upgrading bool
	// relay is the loop of the last WebSocket that came to probe the
	// session (set on that loop as it opens); ServeHTTP orders a GET
	// behind what that loop has read.
	relay atomic.Pointer[netpoll.Loop]

	// opener is the connection whose handshake opened the session, while
	// the session counts against its MaxSessionsPerConnection (counted).
	opener  netpoll.ConnID
	counted bool
	// slots is a polling session's admission (AdmitSession: its
	// per-address and -max-connections slots), given back at close.
	slots   netpoll.Admission
	slotted bool
	// sockets are the namespaces other than "/" connected or connecting
	// (chat mode), at most MaxNamespaces.
	sockets []*nspSocket
	// v3Auth is a v3 handshake's "auth" query parameter (v3AuthParam),
	// the payload of the CONNECT the server makes for it.
	v3Auth []byte
	// A BINARY_EVENT or BINARY_ACK waiting for its attachments: its own
	// copy of the packet text, parsed again from that copy.
	binText []byte
	binAtts [][]byte
	binWant int
	// Server acks (chat.Acker): the waiters of the events the server
	// asked the client to acknowledge, by ack id (at most
	// chat.MaxServerAcks), and the next id; ids are never reused.
	acks    map[int64]*serverAck
	nextAck int64
	// Long-polling: packets waiting for a GET (as a polling payload), the
	// parked GET with its Origin (CORS) and keep-alive, and whether the
	// session waits in its loop's dirty list.
	out       []byte
	get       held
	getOrigin []byte
	getKeep   bool
	dirty     bool
	// The WebSocket probing an upgrade (probed once it has sent
	// "2probe").
	probe  netpoll.Socket
	probed bool
	// origin and headers are what the backend's connect call is told of
	// the handshake; kept only when the backend is asked (Connecting).
	origin  string
	headers map[string]string
}

// noRare is what r0 reads for a session without rare state. Never
// written.
var noRare sessionRare

// r returns ss's rare state, allocating it on first use: for writes.
// Home loop only (or before the session is shared).
func (ss *session) r() *sessionRare {
	if ss.rare == nil {
		ss.rare = new(sessionRare)
	}
	return ss.rare
}

// r0 returns ss's rare state for reading, without allocating it: the
// zero state when there is none. Never write through it.
func (ss *session) r0() *sessionRare {
	if ss.rare == nil {
		return &noRare
	}
	return ss.rare
}

// polled returns the rare state of a session born on long-polling, which
// has it from before it is registered: what requests for its sid read on
// any loop (sid, identity, tokenSum, onWS, upgrading, relay). Never nil
// for a registered session; never call it for a direct one.
func (ss *session) polled() *sessionRare { return ss.rare }

// sid is the session's id, "" for a direct WebSocket session (which keeps
// none: no request can name it). From any goroutine once registered.
func (ss *session) sid() string { return ss.r0().sid }

// addr is the client's address.
func (ss *session) addr() netip.Addr { return netip.AddrFrom16(ss.ip).Unmap() }

// Describe implements chat.Describer, from any goroutine: direct never
// changes, and a session that is not direct had its rare state before it
// was shared.
func (ss *session) Describe() (protocol, transport, remote string) {
	if ss.direct || ss.polled().onWS.Load() {
		return "socketio", "websocket", ss.addr().String()
	}
	return "socketio", "polling", ss.addr().String()
}

// sidLen is the length of a sid's random part: 15 random bytes in
// base64url.
const sidLen = 20

// appendRandomSID appends the random part of a new sid.
func appendRandomSID(dst []byte) []byte {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.AppendEncode(dst, b[:])
}

func newSID() string { return string(appendRandomSID(make([]byte, 0, sidLen))) }

// newSession makes a session homed on home. A session born on
// long-polling (polling) gets its rare state and its sid here, before it
// can be registered, and goes on the loop's list for the sweep; a direct
// one gets no sid to keep (openWebSocket writes one in its open packet
// only) and is swept with its socket.
func (s *Server) newSession(home *netpoll.Loop, echo, polling bool) *session {
	now := home.Now()
	ss := &session{srv: s, home: home, echo: echo,
		due: now + int64(s.cfg.PingInterval), connectBy: now + int64(s.cfg.ConnectTimeout)}
	if echo {
		ss.connectBy = 0 // a plain Engine.IO endpoint has no namespaces
	}
	if polling {
		ss.r().sid = s.newSID()
		s.add(ss)
	} else {
		ss.direct = true
	}
	return ss
}

// appendOpen appends the Engine.IO open packet of ss, with sid.
func (ss *session) appendOpen(dst []byte, sid string, upgrades []string) []byte {
	cfg := &ss.srv.cfg
	return socketio.AppendOpen(dst, socketio.Open{
		SID:          sid,
		Upgrades:     upgrades,
		PingInterval: cfg.PingInterval,
		PingTimeout:  cfg.PingTimeout,
		MaxPayload:   cfg.MaxMessage,
	})
}

// appendDirectOpen appends the open packet of a session that began on its
// WebSocket. Its sid is one no request can use (the session is not
// registered), so none is kept: it is made on the stack for the packet
// (TestDirectOpenDoesNotAllocate). The caller's dst is the loop's
// scratch, which send copies from, rather than a new packet per
// handshake.
func (ss *session) appendDirectOpen(dst []byte) []byte {
	var sid [64]byte // a longer cluster node tag spills to the heap
	return ss.appendOpen(dst, string(ss.srv.appendSID(sid[:0])), nil)
}

// send sends one Engine.IO packet to the client, on the home loop: a text
// packet (op OpText) or a binary attachment (OpBinary). It goes through the
// WebSocket's enqueue when there is one (relayed through the mailbox of a
// socket on another loop), else into the polling outbox, bounded by the
// same MaxPending.
func (ss *session) send(op ws.OpCode, b []byte) {
	if ss.done {
		return
	}
	if op == ws.OpText {
		if m, ok := ss.toMsgpack(b); ok {
			op, b = ws.OpBinary, m
		}
	}
	if ss.ws.Valid() {
		if op == ws.OpBinary && ss.eio3 {
			b = socketio.AppendBinaryV3(nil, b)
		}
		if ss.ws.Loop() == ss.home {
			ss.ws.Send(op, b)
			return
		}
		ss.ws.Loop().Push(ss.ws.Peer(), framedPayload(op, b))
		return
	}
	ss.r().out = ss.appendOut(ss.r().out, b, op == ws.OpBinary)
	if len(ss.r().out) > ss.srv.np.MaxPending() {
		ss.srv.cfg.Metrics.SlowConsumerClosed()
		ss.close(chat.DisconnectSlowConsumer)
		return
	}
	if ss.r().get.Valid() && !ss.r().dirty {
		ss.r().dirty = true
		st := &ss.srv.loops[ss.home.Index()]
		st.dirty = append(st.dirty, ss)
	}
}

// framedPayload returns a payload that is one WebSocket frame with opcode
// op and a copy of b, for relaying one Engine.IO packet to another loop.
// b is its text, so that a connection with permessage-deflate can
// compress it there.
func framedPayload(op ws.OpCode, b []byte) *payload.Shared {
	p := payload.New(b)
	var h [frame.MaxHeaderLen]byte
	p.SetHeader(frame.AppendHeader(h[:0], op, len(b)))
	return p
}

// WriteReply implements chat.Peer: the reply to a request the hub
// handled, encoded as an ack (nothing when the client asked for none).
func (ss *session) WriteReply(r *chat.Reply) {
	st := &ss.srv.loops[ss.home.Index()]
	st.buf = ss.srv.hub.Codec(ss.kind()).AppendReply(st.buf[:0], r)
	if len(st.buf) > 0 {
		ss.send(ss.payloadOp(), st.buf)
	}
}

// Deliver implements netpoll.Peer: a broadcast or pushed payload, on the
// home loop during a mailbox pass. On a WebSocket it is written framed as
// it came, with no copy; long-polling appends its parts to the outbox.
func (ss *session) Deliver(p *payload.Shared) {
	if ss.done || ss.nsps&nspRoot == 0 {
		// Not (yet, or no longer) connected to "/": its events are not
		// this client's (a CONNECT the backend is still deciding).
		return
	}
	ss.deliver(p)
}

// deliver sends p to the client as it is, on the home loop.
func (ss *session) deliver(p *payload.Shared) {
	if ss.done {
		return
	}
	if ss.ws.Valid() {
		if ss.eio3 && p.Attachments() > 0 {
			ss.deliverV3(p)
			return
		}
		if ss.ws.Loop() == ss.home {
			ss.ws.Deliver(p)
			return
		}
		p.Retain(1)
		ss.ws.Loop().Push(ss.ws.Peer(), p)
		return
	}
	ss.send(ss.payloadOp(), p.Payload())
	for i := 0; i < p.Attachments(); i++ {
		ss.send(ws.OpBinary, p.Attachment(i))
	}
}

// Disconnect implements netpoll.Peer. A disconnect by the application
// (server API) first sends the Socket.IO DISCONNECT packet for "/", as the
// reference server's socket.disconnect(true) does, so that the client
// sees "io server disconnect" and does not reconnect on its own.
func (ss *session) Disconnect(d chat.Disconnect) {
	if d.Metric == metrics.CloseServer && ss.nsps&nspRoot != 0 {
		st := &ss.srv.loops[ss.home.Index()]
		st.buf = socketio.AppendDisconnect(st.buf[:0], []byte("/"))
		ss.send(ws.OpText, st.buf)
		ss.srv.Flush(ss.home) // a parked GET takes it before the close packet
	}
	ss.close(d)
}

// setIdent sets the session's verified identity, on the home loop.
func (ss *session) setIdent(id *auth.Identity) {
	ss.ident = id
	if !ss.direct {
		ss.polled().identity.Store(id)
	}
}

// openChat opens the chat session when namespace "/" connects.
func (ss *session) openChat() *chat.Session {
	ss.chat = ss.srv.hub.Open(ss, ss.home.Index(), ss.kind(), ss.ident)
	return ss.chat
}

// closeChat closes the chat session when "/" disconnects or the session
// ends.
func (ss *session) closeChat() {
	ss.failAcks(nil)
	if ss.chat != nil {
		ss.srv.hub.Close(ss.chat)
		ss.chat = nil
	}
}

// endChat closes the chat session, if any, with d as the reason of its
// close, which decides whether it may be resumed (chat.Hub.Resume).
func (ss *session) endChat(d chat.Disconnect) {
	if ss.chat != nil {
		ss.chat.SetCloseReason(d.Metric.String())
	}
	ss.closeChat()
}

// sweep runs the session's timers at a sweep of the home loop: its
// rate-limit state is dropped once drained, and the heartbeat, the
// connect timeout and the token's expiry may end the session.
func (ss *session) sweep(now int64) {
	if ss.lim != nil && ss.lim.Drained(now, &ss.srv.cfg.Limits) {
		ss.lim = nil // back to a fresh state: an idle session keeps none
	}
	if d, end := ss.heartbeat(now); end {
		ss.close(d)
	} else if ss.chat != nil && ss.srv.hub.ExpireToken(ss.chat, now) || ss.socketExpired(now) {
		ss.close(chat.DisconnectTokenExpired)
	}
}

// heartbeat runs the Engine.IO heartbeat and the connect timeout, from
// the sweep of the home loop. It reports whether the session must close,
// and with what.
func (ss *session) heartbeat(now int64) (chat.Disconnect, bool) {
	cfg := &ss.srv.cfg
	switch {
	case ss.connectBy != 0 && now > ss.connectBy:
		return chat.DisconnectConnectTimeout, true
	case ss.awaiting && now > ss.due:
		return chat.DisconnectPingTimeout, true
	case !ss.awaiting && now >= ss.due:
		ss.awaiting = true
		ss.pingDue = ss.due
		// The pong is due pingTimeout after the ping was (the sweep
		// may send it late). A client that gets the ping now (a
		// WebSocket, a held poll) has at least half of pingTimeout to
		// answer; a polling client with no poll out could not have seen
		// it any sooner, so its deadline stays, as on the reference
		// server, whose timers fire on time.
		ss.due = ss.pingDue + int64(cfg.PingTimeout)
		if ss.ws.Valid() || ss.r0().get.Valid() {
			ss.due = max(ss.due, now+int64(cfg.PingTimeout)/2)
		} else if now > ss.due {
			return chat.DisconnectPingTimeout, true
		}
		ss.send(ws.OpText, []byte{byte(socketio.EIOPing)})
	}
	return chat.Disconnect{}, false
}

// heartbeatNow runs the heartbeat when a polling request comes for the
// session, with the exact time rather than the sweep's coarse one: a
// session whose pong is overdue ends before the request is served, not
// at the next sweep (up to a quarter of the shortest timeout later), as
// on the reference server, whose timers fire on time (engine.io-protocol
// suite, "closes the session upon ping timeout", polls exactly
// pingInterval+pingTimeout after the handshake). On the home loop.
func (ss *session) heartbeatNow() {
	if ss.done {
		return
	}
	if d, end := ss.heartbeat(time.Now().UnixNano()); end {
		ss.close(d)
	}
}

// close ends the session with d: its rooms are left (with presence), a
// parked GET gets a close packet (the server ends the session; when the
// client does, onPost has released the GET with a noop first), its
// WebSockets are closed with d, and the sid is forgotten. On the home
// loop; closing twice is harmless.
func (ss *session) close(d chat.Disconnect) {
	if ss.done {
		return
	}
	srv := ss.srv
	srv.log.Debug("socket.io session closed", "conn", ss.chatID(), "reason", d.Reason)
	// Forgotten first, so that a client that sees the end (a close
	// packet, a closed socket) finds the sid unknown and the session's
	// slots free.
	if !ss.direct {
		srv.reg.remove(ss)
	}
	if ss.r0().slotted {
		srv.np.ReleaseSession(ss.addr(), ss.r().slots)
		ss.r().slots, ss.r().slotted = netpoll.Admission{}, false
	}
	if ss.r0().counted {
		srv.uncount(ss)
	}
	ss.endChat(d)
	ss.closeSockets(d)
	if ss.r0().get.Valid() {
		get := ss.r().get
		ss.r().get = held{}
		ss.answer(get, 200, contentTypeText, ss.single(socketio.EIOClose), ss.r().getOrigin, ss.r().getKeep)
	}
	ss.done = true
	for _, w := range []netpoll.Socket{ss.ws, ss.r0().probe} {
		switch {
		case !w.Valid():
		case w.Loop() == ss.home:
			w.Disconnect(d)
		default:
			w.Loop().Close(w.Peer(), d)
		}
	}
	ss.ws = netpoll.Socket{}
	srv.remove(ss)
	if ss.rare != nil {
		ss.rare.probe = netpoll.Socket{}
		ss.rare.out = nil
	}
}

// debugOn reports whether debug logs are on: the arguments of a debug
// line (address texts, boxed values) are garbage on every connect even
// when they are off, so hot callers check first.
func (s *Server) debugOn() bool { return s.log.Enabled(context.Background(), slog.LevelDebug) }

// chatID names the session in logs: its chat id once "/" is connected,
// never the sid (a bearer secret).
func (ss *session) chatID() string {
	if ss.chat != nil {
		return ss.chat.ID()
	}
	return ""
}
