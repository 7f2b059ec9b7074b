package netpoll

import (
	"bytes"
	"net/netip"
	"strconv"
	"sync"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/frame"
	"github.com/chatgate/chatgate/metrics"
	"github.com/chatgate/chatgate/payload"
)

// Engine.IO over HTTP long-polling, on the event loops.
//
// A polling session lives on a home loop, the loop of the connection that
// made the handshake; its state is touched only there. Its HTTP requests
// arrive on whatever connections, and so loops, the client uses: the
// request's loop parses it and hands it to the home loop through the
// mailbox, and the home loop hands the response back the same way. A GET
// with nothing to send is parked until there is (at the latest the next
// ping, every PingInterval). Packets for the client wait in the session's
// outbox, bounded by MaxPending, and go out in one payload per GET.
//
// Upgrade: a WebSocket with the session's sid probes ("2probe" →
// "3probe"), the parked GET is released with a noop, and the client's "5"
// switches the session to the WebSocket. The session stays on its home
// loop: packets for the client are relayed to the WebSocket's loop, and the
// client's packets are relayed home, both through the mailboxes, so their
// order is kept and nothing is lost or repeated across the switch.

// pollSession is one Engine.IO session that started on long-polling.
type pollSession struct {
	sio     *sioConn
	home    *loop
	sess    *chat.Session
	remote  string
	ip      netip.Addr // the client's address, for the per-address limit
	ipHeld  bool
	homeIdx int // index in home.polls

	out []byte // pending packets, as a polling payload
	get *conn  // parked GET, on any loop
	// probe is the WebSocket probing an upgrade, until it completes;
	// probed is set once it has sent "2probe".
	probe  *conn
	probed bool
	// getOrigin and getKeep are the parked GET's Origin (for CORS) and
	// whether its connection stays open after the response.
	getOrigin []byte
	getKeep   bool
	ws        *conn // the WebSocket after the upgrade, on any loop
	done      bool

	// upgrading is set by the loop that accepts the probing WebSocket, so
	// it is guarded by the registry lock rather than owned by home.
	upgrading bool

	dirty bool // queued in home.dirtyPolls
}

// pollRegistry maps sids to polling sessions for every loop.
type pollRegistry struct {
	mu sync.Mutex
	m  map[string]*pollSession
}

func (r *pollRegistry) get(sid string) *pollSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[sid]
}

func (r *pollRegistry) put(ps *pollSession) {
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[string]*pollSession)
	}
	r.m[ps.sio.sid] = ps
	r.mu.Unlock()
}

func (r *pollRegistry) remove(ps *pollSession) {
	r.mu.Lock()
	if r.m[ps.sio.sid] == ps {
		delete(r.m, ps.sio.sid)
	}
	r.mu.Unlock()
}

// claimUpgrade marks ps as upgrading; false if it already is (a second
// WebSocket for one session is refused).
func (r *pollRegistry) claimUpgrade(ps *pollSession) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ps.upgrading || r.m[ps.sio.sid] != ps {
		return false
	}
	ps.upgrading = true
	return true
}

func (r *pollRegistry) releaseUpgrade(ps *pollSession) {
	r.mu.Lock()
	ps.upgrading = false
	r.mu.Unlock()
}

// serveSIO answers a request to the Engine.IO path: a polling request, a
// CORS preflight or a WebSocket upgrade.
func (c *conn) serveSIO(req *Request, body, rest []byte, echo bool) gnet.Action {
	lp := c.lp
	srv := lp.srv
	if string(req.Method) == "OPTIONS" {
		return c.respondPoll(req, 204, "", nil)
	}
	q, err := socketio.ParseQuery(req.Query)
	if err != nil {
		return c.pollError(req, err)
	}
	if q.Transport == "websocket" {
		if q.SID == "" {
			return c.upgradeWith(req, endpointSIO, rest, nil, echo)
		}
		ps := srv.polls.get(q.SID)
		if ps == nil || !srv.polls.claimUpgrade(ps) {
			return c.pollError(req, socketio.ErrUnknownSID)
		}
		act := c.upgradeWith(req, endpointSIO, rest, ps, echo)
		if c.state != stateOpen {
			srv.polls.releaseUpgrade(ps)
		}
		return act
	}
	method := string(req.Method)
	if q.SID == "" {
		if method != "GET" {
			return c.pollError(req, socketio.ErrBadHandshakeMethod)
		}
		adm, ref := srv.admit(req, c.clientIP(), false, !echo && !c.ipHeld)
		if ref != nil {
			c.refuse(ref)
			ref.Header = srv.corsHeaders(req.Header("Origin"), ref.Header)
			return c.respond(*ref)
		}
		ps := srv.newPollSession(lp, c, echo)
		ps.sio.ident = adm.ident
		ps.ip, ps.ipHeld = c.clientIP(), adm.ipHeld
		lp.pbuf = ps.sio.appendOpen(lp.pbuf[:0], []string{"websocket"})
		return c.respondPoll(req, 200, "text/plain; charset=UTF-8", lp.pbuf)
	}
	ps := srv.polls.get(q.SID)
	if ps == nil {
		return c.pollError(req, socketio.ErrUnknownSID)
	}
	origin := append([]byte(nil), req.Header("Origin")...)
	keep := keepAlive(req)
	switch method {
	case "GET":
		c.state = stateParked
		lp.parked[c] = ps
		ps.home.run(lp, func() { ps.onGet(c, origin, keep) })
		return gnet.None
	case "POST":
		if ps.home != lp {
			body = append([]byte(nil), body...)
		}
		c.state = stateParked
		lp.parked[c] = ps
		ps.home.run(lp, func() { ps.onPost(c, body, origin, keep) })
		return gnet.None
	}
	return c.pollError(req, socketio.ErrBadRequest)
}

// pollError answers an Engine.IO request with its JSON error.
func (c *conn) pollError(req *Request, err error) gnet.Action {
	he := socketio.ErrBadRequest
	if e, ok := err.(*socketio.HandshakeError); ok {
		he = e
	}
	resp := Response{Status: he.Status(), ContentType: "application/json",
		Body: socketio.AppendHTTPError(nil, he.Code, he.Message)}
	resp.Header = c.lp.srv.corsHeaders(req.Header("Origin"), resp.Header)
	return c.respond(resp)
}

// respondPoll answers a polling request and keeps the connection for the
// next one unless the client asked to close it.
func (c *conn) respondPoll(req *Request, status int, contentType string, body []byte) gnet.Action {
	resp := Response{Status: status, ContentType: contentType, Body: body, KeepAlive: keepAlive(req)}
	if status == 204 {
		resp.Header = []string{
			"Access-Control-Allow-Methods: GET, POST, OPTIONS",
			"Access-Control-Max-Age: 86400",
		}
		if h := req.Header("Access-Control-Request-Headers"); len(h) > 0 {
			resp.Header = append(resp.Header, "Access-Control-Allow-Headers: "+string(h))
		}
	}
	resp.Header = c.lp.srv.corsHeaders(req.Header("Origin"), resp.Header)
	return c.reply(resp)
}

// reply writes a response in the middle of c's traffic handling and keeps
// the connection if the response allows it.
func (c *conn) reply(resp Response) gnet.Action {
	c.lp.wbuf = appendResponse(c.lp.wbuf, resp)
	if !resp.KeepAlive {
		c.state = stateClosed
		c.dropHead()
		return gnet.Close
	}
	c.state = stateHTTP
	c.stamp = c.lp.srv.now() + int64(c.lp.srv.cfg.HandshakeTimeout)
	return gnet.None
}

// keepAlive reports whether the client wants the connection kept after
// the response: HTTP/1.1 unless it says close, HTTP/1.0 only if it asks.
func keepAlive(req *Request) bool {
	v := req.Header("Connection")
	if req.HTTP10 {
		return bytes.EqualFold(v, []byte("keep-alive"))
	}
	return !bytes.EqualFold(v, []byte("close"))
}

// corsHeaders adds the CORS headers for a request from origin, when the
// origin is allowed (-cors-origins).
func (s *Server) corsHeaders(origin []byte, h []string) []string {
	if len(origin) == 0 || !s.cfg.corsAllowed(origin) {
		return h
	}
	return append(h,
		"Access-Control-Allow-Origin: "+string(origin),
		"Access-Control-Allow-Credentials: true",
		"Vary: Origin")
}

// newPollSession makes a polling session homed on lp.
func (s *Server) newPollSession(lp *loop, c *conn, echo bool) *pollSession {
	s.m.Handshake(metrics.TransportPolling)
	ps := &pollSession{home: lp, remote: c.clientIP().String()}
	ps.sio = s.newSIOState(ps, echo)
	if echo {
		ps.sio.connectBy = 0
	}
	ps.homeIdx = len(lp.polls)
	lp.polls = append(lp.polls, ps)
	s.polls.put(ps)
	return ps
}

// run executes fn on lp: at once when from is lp, else through lp's
// mailbox.
func (lp *loop) run(from *loop, fn func()) {
	if from == lp {
		fn()
		lp.flushPolls()
		return
	}
	lp.post(task{kind: taskRun, run: fn})
}

// onGet handles a GET for the session, on its home loop.
func (ps *pollSession) onGet(c *conn, origin []byte, keep bool) {
	switch {
	case ps.done || ps.ws != nil:
		ps.answer(c, 400, "application/json", socketio.AppendHTTPError(nil, socketio.CodeUnknownSID, "Session ID unknown"), origin, false)
	case ps.get != nil:
		// A second concurrent GET: the first gets a close packet, the
		// second an error, and the session ends (engine.io-protocol v4).
		first := ps.get
		ps.get = nil
		ps.answer(first, 200, "text/plain; charset=UTF-8", []byte{byte(socketio.EIOClose)}, nil, true)
		ps.answer(c, 400, "application/json", socketio.AppendHTTPError(nil, socketio.CodeBadRequest, "Bad request"), origin, false)
		ps.close("second concurrent GET")
	case len(ps.out) > 0:
		ps.answer(c, 200, "text/plain; charset=UTF-8", ps.out, origin, keep)
		ps.out = ps.out[:0]
	case ps.probed:
		// An upgrade is under way: do not hold the client's poll, or it
		// stalls until the next ping before it can finish the switch.
		ps.answer(c, 200, "text/plain; charset=UTF-8", []byte{byte(socketio.EIONoop)}, origin, keep)
	default:
		ps.get = c
		ps.getOrigin, ps.getKeep = origin, keep
	}
}

// onPost handles a POST of packets, on the session's home loop.
func (ps *pollSession) onPost(c *conn, body, origin []byte, keep bool) {
	if ps.done || ps.ws != nil {
		ps.answer(c, 400, "application/json", socketio.AppendHTTPError(nil, socketio.CodeUnknownSID, "Session ID unknown"), origin, false)
		return
	}
	lp := ps.home
	err := socketio.SplitPayload(body, func(pkt []byte) error {
		binary, data, err := socketio.DecodePollingPacket(pkt)
		if err != nil {
			return err
		}
		op := ws.OpText
		if binary {
			op = ws.OpBinary
		}
		return ps.sio.message(lp, op, data)
	})
	if err != nil && err != errSIOClose {
		ps.answer(c, 400, "application/json", socketio.AppendHTTPError(nil, socketio.CodeBadRequest, "Bad request"), origin, false)
		ps.close("invalid packet")
		return
	}
	ps.answer(c, 200, "text/html", []byte("ok"), origin, keep)
	if err == errSIOClose {
		ps.close("client close")
	}
}

// answer sends an HTTP response on c, which may belong to another loop.
// Called on the home loop.
func (ps *pollSession) answer(c *conn, status int, contentType string, body, origin []byte, keep bool) {
	srv := ps.home.srv
	resp := Response{Status: status, ContentType: contentType, KeepAlive: keep}
	resp.Header = srv.corsHeaders(origin, nil)
	if c.lp == ps.home {
		c.finishPoll(appendResponse(nil, withBody(resp, body)), keep)
		return
	}
	b := appendResponse(nil, withBody(resp, body)) // copied: body is reused
	c.lp.post(task{kind: taskRun, run: func() { c.finishPoll(b, keep) }})
}

func withBody(r Response, body []byte) Response { r.Body = body; return r }

// finishPoll writes a polling response on c's own loop and readies the
// connection for its next request.
func (c *conn) finishPoll(b []byte, keep bool) {
	lp := c.lp
	if c.state != stateParked {
		return // the client went away meanwhile
	}
	delete(lp.parked, c)
	_, _ = c.gc.Write(b)
	if !keep || lp.srv.draining.Load() {
		c.state = stateClosed
		_ = lp.el.Close(c.gc)
		return
	}
	c.state = stateHTTP
	c.stamp = lp.srv.now() + int64(lp.srv.cfg.HandshakeTimeout)
}

// sioTransport of a polling session.

func (ps *pollSession) sioSend(op ws.OpCode, payload []byte) {
	if ps.done {
		return
	}
	if ps.ws != nil {
		ps.toWS(framedPayload(op, payload))
		return
	}
	ps.out = socketio.AppendPayloadPacket(ps.out, payload, op == ws.OpBinary)
	if len(ps.out) > ps.home.srv.cfg.MaxPending {
		ps.close("slow consumer")
		return
	}
	if ps.get != nil && !ps.dirty {
		ps.dirty = true
		ps.home.dirtyPolls = append(ps.home.dirtyPolls, ps)
	}
}

func (ps *pollSession) sioChat() *chat.Session { return ps.sess }
func (ps *pollSession) sioRemote() string      { return ps.remote }
func (ps *pollSession) sioOpenChat(ident *auth.Identity) *chat.Session {
	ps.sess = ps.home.srv.hub.Open(ps, ps.home.idx, kindSIO, ident)
	return ps.sess
}
func (ps *pollSession) sioCloseChat() {
	if ps.sess != nil {
		ps.home.srv.hub.Close(ps.sess)
		ps.sess = nil
	}
}

// WriteReply implements chat.Peer.
func (ps *pollSession) WriteReply(r *chat.Reply) {
	lp := ps.home
	lp.pbuf = lp.srv.hub.Codec(kindSIO).AppendReply(lp.pbuf[:0], r)
	if len(lp.pbuf) > 0 {
		ps.sioSend(ws.OpText, lp.pbuf)
	}
}

// Deliver implements Peer: it takes a broadcast or direct payload for the
// session, on its home loop during a mailbox pass. Long-polling frames it
// as Engine.IO packets of the HTTP payload; after the upgrade it goes on
// to the WebSocket, already framed.
func (ps *pollSession) Deliver(p *payload.Shared) {
	if ps.done {
		return
	}
	if ps.ws != nil {
		p.Retain(1)
		ps.toWS(p)
		return
	}
	ps.sioSend(ws.OpText, p.Payload())
	for i := 0; i < p.Attachments(); i++ {
		ps.sioSend(ws.OpBinary, p.Attachment(i))
	}
}

// Disconnect implements Peer.
func (ps *pollSession) Disconnect(d chat.Disconnect) { ps.close(d.Reason) }

// toWS sends a payload to the session's WebSocket, taking over p's
// reference.
func (ps *pollSession) toWS(p *payload.Shared) {
	t := task{kind: taskPush, peer: ps.ws}
	t.payloads[0] = p
	ps.ws.lp.post(t)
}

// framedPayload returns a payload that is one WebSocket frame with opcode
// op and a copy of b, for relaying a single Engine.IO packet.
func framedPayload(op ws.OpCode, b []byte) *payload.Shared {
	p := payload.Acquire()
	p.SetFramed(func(dst []byte) []byte { return frame.AppendFrame(dst, op, b) })
	return p
}

// flushPolls answers the parked GETs of sessions that got packets during
// this pass of the loop.
func (lp *loop) flushPolls() {
	for i, ps := range lp.dirtyPolls {
		ps.dirty = false
		lp.dirtyPolls[i] = nil
		if ps.get != nil && len(ps.out) > 0 && !ps.done {
			c := ps.get
			ps.get = nil
			ps.answer(c, 200, "text/plain; charset=UTF-8", ps.out, ps.getOrigin, ps.getKeep)
			ps.out = ps.out[:0]
		}
	}
	lp.dirtyPolls = lp.dirtyPolls[:0]
}

// close ends the session: its rooms are left (with presence), a parked GET
// gets a close packet, the WebSocket is closed, and the sid is forgotten.
func (ps *pollSession) close(reason string) {
	if ps.done {
		return
	}
	lp := ps.home
	lp.srv.log.Debug("socket.io session closed", "sid", ps.sio.sid, "reason", reason)
	ps.sioCloseChat()
	if ps.get != nil {
		c := ps.get
		ps.get = nil
		ps.answer(c, 200, "text/plain; charset=UTF-8", []byte{byte(socketio.EIOClose)}, ps.getOrigin, ps.getKeep)
	}
	ps.done = true
	for _, w := range []*conn{ps.ws, ps.probe} {
		if w == nil {
			continue
		}
		w.lp.post(task{kind: taskDisconnect, peer: w, d: chat.DisconnectNormal})
	}
	ps.ws, ps.probe = nil, nil
	lp.srv.polls.remove(ps)
	if ps.ipHeld {
		lp.srv.perIP.Release(ps.ip)
		ps.ipHeld = false
	}
	// Swap-remove from the home loop's sweep list.
	last := len(lp.polls) - 1
	if ps.homeIdx <= last && lp.polls[ps.homeIdx] == ps {
		lp.polls[ps.homeIdx] = lp.polls[last]
		lp.polls[ps.homeIdx].homeIdx = ps.homeIdx
		lp.polls[last] = nil
		lp.polls = lp.polls[:last]
	}
	ps.out = nil
}

// sweepPolls runs the heartbeat of the loop's polling sessions.
func (lp *loop) sweepPolls(now int64) {
	for i := len(lp.polls) - 1; i >= 0; i-- {
		if i >= len(lp.polls) {
			continue
		}
		ps := lp.polls[i]
		if d, end := ps.sio.heartbeat(now); end {
			ps.close(d.Reason)
		}
	}
	lp.flushPolls()
}

// Upgrade: the probing WebSocket (on any loop) relays to the home loop.

// relayUpgrade handles a message on a WebSocket that carries (or probes
// for) polling session ps. Called on the WebSocket's loop.
func (c *conn) relayUpgrade(ps *pollSession, op ws.OpCode, payload []byte) error {
	if !c.upgraded {
		switch {
		case op == ws.OpText && string(payload) == "2probe":
			c.sendFrame(ws.OpText, []byte("3probe"))
			ps.home.run(c.lp, func() {
				ps.probe, ps.probed = c, true
				ps.onProbe()
			})
			return nil
		case op == ws.OpText && string(payload) == "5":
			c.upgraded = true
			ps.home.run(c.lp, func() { ps.onUpgrade(c) })
			return nil
		}
		return errBadPacket
	}
	data := payload
	if ps.home != c.lp {
		data = append([]byte(nil), payload...)
	}
	ps.home.run(c.lp, func() {
		if ps.done {
			return
		}
		if err := ps.sio.message(ps.home, op, data); err != nil {
			ps.close(err.Error())
		}
	})
	return nil
}

// onProbe releases a parked GET so the client can finish the upgrade.
func (ps *pollSession) onProbe() {
	if ps.get != nil && !ps.done {
		c := ps.get
		ps.get = nil
		ps.answer(c, 200, "text/plain; charset=UTF-8", []byte{byte(socketio.EIONoop)}, ps.getOrigin, ps.getKeep)
	}
}

// onUpgrade switches the session to WebSocket c: packets still waiting for
// a GET go first, then everything else.
func (ps *pollSession) onUpgrade(c *conn) {
	if ps.done {
		return
	}
	ps.onProbe()
	ps.ws, ps.probe = c, nil
	pending := ps.out
	ps.out = nil
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
		ps.sioSend(op, data)
	}
}

// transportGone tells the home loop that c, which carried or probed ps,
// closed. Called on c's loop.
func (c *conn) transportGone(ps *pollSession) {
	upgraded := c.upgraded
	ps.home.run(c.lp, func() {
		if ps.ws == c || upgraded {
			ps.close("transport close")
			return
		}
		if ps.probe == c {
			ps.probe = nil
		}
		ps.home.srv.polls.releaseUpgrade(ps)
	})
}

// parkedGone tells the home loop that a connection with a parked request
// closed, so its GET is not answered into the void. Called on c's loop.
func (c *conn) parkedGone(ps *pollSession) {
	ps.home.run(c.lp, func() {
		if ps.get == c {
			ps.get = nil
		}
	})
}

// parseContentLength parses a Content-Length value.
func parseContentLength(v []byte) (int, bool) {
	n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
	return n, err == nil && n >= 0
}
