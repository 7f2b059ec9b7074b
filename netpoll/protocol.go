package netpoll

import (
	"net"
	"net/netip"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/payload"
)

// Protocols above the socket. netpoll owns sockets, HTTP heads, upgrades
// and loops; a protocol with a state machine of its own on top of them —
// Engine.IO, with its sessions, long-polling and transport upgrade — is
// mounted on a path and driven through the handles below, as nbio swaps a
// connection's parser on upgrade. netpoll never imports the protocol.
//
// Threading: every callback runs on an event loop, and every handle
// (Exchange, Parked, Socket, Loop) says which of its methods may be called
// from where. A protocol keeps each session's state on one loop and moves
// work between loops with Loop.Run.

// Protocol is a protocol mounted on one or more paths (Server.Mount).
type Protocol interface {
	// ServeHTTP handles one request to a mounted path, on the loop of the
	// connection it came on. Before it returns it must answer the request
	// (Respond, Refuse), park it (Park) or upgrade it (Upgrade).
	ServeHTTP(x *Exchange)
	// MaxBody bounds the bodies of requests to the protocol's paths.
	MaxBody() int
	// ShortestTimeout is the protocol's shortest timer; the loops' sweep
	// runs at least four times per period of it.
	ShortestTimeout() time.Duration
	// Sweep runs on each loop at every sweep (the timeout check), with the
	// coarse clock.
	Sweep(lp *Loop, now int64)
	// Flush runs on a loop at the end of every pass that may have queued
	// output (traffic, mailbox, sweep), so a protocol can answer its
	// parked requests once per pass.
	Flush(lp *Loop)
	// Drain runs on each loop when the server starts draining.
	Drain(lp *Loop)
}

// Mount serves p on the given exact paths. Call it before Run.
func (s *Server) Mount(p Protocol, paths ...string) {
	for _, path := range paths {
		s.mounts[path] = p
	}
	if !containsProtocol(s.protocols, p) {
		s.protocols = append(s.protocols, p)
	}
}

func containsProtocol(list []Protocol, p Protocol) bool {
	for _, q := range list {
		if q == p {
			return true
		}
	}
	return false
}

// Loop is one event loop, as a protocol sees it.
type Loop = loop

// Index is the loop's index, the one rooms.Member.Loop returns for
// sessions it owns. Safe from any goroutine.
func (lp *loop) Index() int { return lp.idx }

// Now is the coarse clock in Unix nanoseconds. Safe from any goroutine.
func (lp *loop) Now() int64 { return lp.srv.now() }

// Run runs fn on lp: at once when the caller is on from and from is lp,
// else through lp's mailbox. from may be nil (a foreign goroutine).
func (lp *loop) Run(from *Loop, fn func()) {
	if from == lp {
		fn()
		lp.flushProtocols()
		return
	}
	lp.post(task{kind: taskRun, run: fn})
}

// Push hands p to peer, which lives on lp, through lp's mailbox; it takes
// over the caller's reference. p must be framed (FrameWebSocket) when the
// peer is a Socket. Safe from any goroutine.
func (lp *loop) Push(peer Peer, p *payload.Shared) {
	t := task{kind: taskPush, peer: peer}
	t.payloads[0] = p
	lp.post(t)
}

// Close disconnects peer, which lives on lp, through lp's mailbox. Safe
// from any goroutine.
func (lp *loop) Close(peer Peer, d chat.Disconnect) {
	lp.post(task{kind: taskDisconnect, peer: peer, d: d})
}

// flushProtocols runs every protocol's Flush on lp.
func (lp *loop) flushProtocols() {
	for _, p := range lp.srv.protocols {
		p.Flush(lp)
	}
}

// Exchange is one HTTP request handed to a Protocol. It is valid only
// during ServeHTTP, on the connection's loop.
type Exchange struct {
	c    *conn
	req  *Request
	body []byte
	rest []byte // bytes after the request (frames behind an upgrade)
	act  gnet.Action
	done bool
}

// Request is the request head; Body its body. Both alias the read buffer:
// valid during ServeHTTP only.
func (x *Exchange) Request() *Request { return x.req }

// Body returns the request body (valid during ServeHTTP only).
func (x *Exchange) Body() []byte { return x.body }

// Loop is the loop of the request's connection.
func (x *Exchange) Loop() *Loop { return x.c.lp }

// ClientIP is the client's address (see package clientip).
func (x *Exchange) ClientIP() netip.Addr { return x.c.clientIP() }

// Admission is what an admitted handshake carries on: the client's
// verified identity, if any, and whether a per-address slot was taken for
// it (Release gives it back when the session ends).
type Admission = admission

// Admit checks the request as a new session's handshake (per-address
// limit, origin, token; docs/security.md): a refused one gets the response
// to send instead (Refuse). tokenRequired is false where the token may
// still come later (a Socket.IO CONNECT); holdIP takes a slot of the
// per-address limit, except on a connection that already holds one (a
// direct client).
func (x *Exchange) Admit(tokenRequired, holdIP bool) (Admission, *Response) {
	adm, ref := x.c.lp.srv.admit(x.req, x.c.clientIP(), tokenRequired, holdIP && !x.c.ipHeld)
	if ref != nil {
		x.c.refuse(ref)
	}
	return adm, ref
}

// AdmitSession checks the request as the handshake of a session that
// outlives its connection (long-polling), as Admit does, but the session
// always takes a slot of the per-address limit and one of
// -max-connections (503), whatever the connection holds: sessions count
// however many share one keep-alive connection. Server.ReleaseSession
// gives the slots back when the session ends.
//
// The capacity check comes first, as at accept.
func (x *Exchange) AdmitSession(tokenRequired bool) (Admission, *Response) {
	srv := x.c.lp.srv
	var ref *Response
	if srv.total.Acquire(srv.cfg.Limits.MaxConnections) {
		var adm Admission
		if adm, ref = srv.admit(x.req, x.c.clientIP(), tokenRequired, true); ref == nil {
			return adm, nil
		}
		srv.total.Release()
	} else {
		ref = refused(textResponse(503, "too many connections\n"))
	}
	x.c.refuse(ref)
	return Admission{}, ref
}

// CheckOrigin checks only the origin allowlist, for a request that joins
// an admitted session (a poll, a POST, a transport upgrade); it returns
// the refusal, or nil.
func (x *Exchange) CheckOrigin() *Response {
	if x.c.lp.srv.cfg.Origins.Allowed(x.req.Header("Origin")) {
		return nil
	}
	r := textResponse(403, "origin not allowed\n")
	x.c.refuse(&r)
	return &r
}

// Refused logs a refusal the protocol decided itself (as Admit logs
// its own), before the protocol sends it with Refuse.
func (x *Exchange) Refused(r *Response) { x.c.refuse(r) }

// ConnID names a connection, for a protocol's bookkeeping per connection:
// a comparable key, valid as long as the protocol keeps it.
type ConnID struct{ c *conn }

// Conn names the request's connection.
func (x *Exchange) Conn() ConnID { return ConnID{x.c} }

// FromTrustedProxy reports whether the request's TCP peer is a trusted
// proxy (-trusted-proxies) speaking plain HTTP (no PROXY protocol), whose
// keep-alive connections carry the requests of many clients.
func (x *Exchange) FromTrustedProxy() bool {
	srv := x.c.lp.srv
	if srv.cfg.ProxyProtocol != ProxyOff || srv.cfg.TrustedProxies.Len() == 0 {
		return false
	}
	ta, ok := x.c.gc.RemoteAddr().(*net.TCPAddr)
	return ok && srv.cfg.TrustedProxies.Contains(ta.AddrPort().Addr().Unmap())
}

// ReleaseSession gives back the slots of an Admission from AdmitSession
// for a client at ip, once its session has ended. Safe from any
// goroutine.
func (s *Server) ReleaseSession(ip netip.Addr, a Admission) {
	s.releaseIP(ip, a)
	s.total.Release()
}

// Respond answers the request and keeps the connection for the next one
// when resp.KeepAlive allows it.
func (x *Exchange) Respond(resp Response) {
	x.done = true
	x.act = x.c.reply(resp)
}

// Refuse answers the request and closes the connection.
func (x *Exchange) Refuse(resp Response) {
	x.done = true
	x.act = x.c.respond(resp)
}

// Park holds the request for an answer that comes later, from any loop,
// through the returned handle. gone runs on the connection's loop if the
// client goes away first.
func (x *Exchange) Park(gone func()) Parked {
	x.done = true
	c := x.c
	c.state = stateParked
	c.lp.parked[c] = gone
	return Parked{c}
}

// Upgrade completes a WebSocket handshake for the request; adm is its
// admission (the zero Admission for a socket that joins an admitted
// session). open is called with the new socket and returns the handler of
// its messages. It reports whether the upgrade succeeded; a failed one has
// been answered (426 or 400) and adm's slot released.
func (x *Exchange) Upgrade(adm Admission, open func(Socket) SocketHandler) bool {
	x.done = true
	c := x.c
	if !c.handshake(x.req, adm) {
		x.act = gnet.Close
		return false
	}
	c.ep = endpointProtocol
	c.setProtocol(&protoConn{h: open(Socket{c})})
	if len(x.rest) > 0 {
		x.act = c.onFrames(x.rest)
	}
	return true
}

// Parked is a held HTTP request. Its zero value holds nothing.
type Parked struct{ c *conn }

// Valid reports whether p holds a request.
func (p Parked) Valid() bool { return p.c != nil }

// Loop is the loop of the held request's connection.
func (p Parked) Loop() *Loop { return p.c.lp }

// Answer sends resp on the held request's connection, from any loop: on
// from (the caller's loop) at once when it owns the connection, else
// through the connection's mailbox. A connection that went away meanwhile
// is skipped.
func (p Parked) Answer(from *Loop, resp Response) {
	c := p.c
	b := appendResponse(nil, resp)
	if c.lp == from {
		c.finishParked(b, resp.KeepAlive)
		return
	}
	c.lp.post(task{kind: taskRun, run: func() { c.finishParked(b, resp.KeepAlive) }})
}

// finishParked writes a held request's response on c's own loop and
// readies the connection for its next request.
func (c *conn) finishParked(b []byte, keep bool) {
	lp := c.lp
	if c.state != stateParked {
		return // the client went away meanwhile
	}
	delete(lp.parked, c)
	_, _ = c.gc.Write(b)
	lp.sent += len(b)
	if !keep || lp.srv.draining.Load() {
		c.state = stateClosed
		_ = lp.el.Close(c.gc)
		return
	}
	c.state = stateHTTP
	c.stamp = lp.srv.now() + int64(lp.srv.cfg.HandshakeTimeout)
}

// SocketHandler drives a WebSocket for a protocol. Its methods run on the
// socket's loop.
type SocketHandler interface {
	// OnMessage handles one complete message. A returned error closes the
	// socket: a chat.Disconnect with that disconnect, anything else as a
	// malformed packet (1008).
	OnMessage(op ws.OpCode, payload []byte) error
	// Sweep runs at every sweep of the loop while the socket is open.
	Sweep(now int64)
	// Closed runs once when the connection has ended.
	Closed()
	// ID names the socket in logs (a session id, never a secret).
	ID() string
}

// Socket is a WebSocket driven by a protocol. Its methods run on the
// socket's loop (Loop), except where they say otherwise.
type Socket struct{ c *conn }

// Loop is the socket's loop. Safe from any goroutine.
func (s Socket) Loop() *Loop { return s.c.lp }

// Peer is the socket as a push destination (Loop.Push, Loop.Close). Safe
// from any goroutine.
func (s Socket) Peer() Peer { return s.c }

// Send frames payload as one message with opcode op and queues it under
// the outbound policy.
func (s Socket) Send(op ws.OpCode, payload []byte) { s.c.sendFrame(op, payload) }

// Deliver queues a framed shared payload (see FrameWebSocket) during a
// mailbox pass, as Peer.Deliver.
func (s Socket) Deliver(p *payload.Shared) { s.c.Deliver(p) }

// Disconnect closes the socket with d (see Peer).
func (s Socket) Disconnect(d chat.Disconnect) { s.c.Disconnect(d) }

// RemoteAddr is the TCP peer's address, for logs.
func (s Socket) RemoteAddr() string { return s.c.gc.RemoteAddr().String() }

// ClientIP is the client's address.
func (s Socket) ClientIP() netip.Addr { return s.c.clientIP() }

// Open reports whether the socket is still open.
func (s Socket) Open() bool { return s.c.state == stateOpen }

// MaxPending is the outbound backlog bound (Config.MaxPending), for
// protocols that queue output of their own (long-polling).
func (s *Server) MaxPending() int { return s.cfg.MaxPending }

// Hub is the chat hub the server was made for.
func (s *Server) Hub() *chat.Hub { return s.hub }

// Valid reports whether s holds a socket (the zero Socket holds none).
func (s Socket) Valid() bool { return s.c != nil }

// Loops is the number of event loops the server runs (loop indexes are
// 0 to Loops-1). Safe from any goroutine.
func (s *Server) Loops() int { return s.numLoops }
