package engineio

import (
	"crypto/sha256"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/netpoll"
)

// KindSocketIO is the rooms.Member kind of Socket.IO sessions: the index
// of the Socket.IO codec in chat.Config.Codecs (netpoll.KindNative is 0).
const KindSocketIO = 1

// Paths is where Mount serves Engine.IO: Socket.IO's default path, with
// and without the trailing slash.
var Paths = []string{"/socket.io/", "/socket.io"}

// conformanceEchoPath is the plain Engine.IO echo endpoint of conformance
// mode (the engine.io-protocol test suite).
const conformanceEchoPath = "/engine.io/"

// Server is the Engine.IO protocol, mounted on a netpoll.Server. It
// implements netpoll.Protocol; its callbacks run on the event loops.
type Server struct {
	cfg Config
	np  *netpoll.Server
	hub *chat.Hub
	log *slog.Logger

	reg registry
	// fwd forwards polling requests for sessions of other nodes (cluster
	// mode, forward.go); nil on a single node. node is this node's tag,
	// the prefix of its sids then.
	fwd     Forwarder
	node    string
	fwdBusy atomic.Int64 // forwarded requests in flight from this node
	// loops[i] is the state of loop i, touched only on that loop.
	loops []loopState
}

// loopState is what a loop keeps of the sessions homed on it.
type loopState struct {
	// sessions are the sessions born on long-polling homed here, for the
	// heartbeat sweep; a direct WebSocket session is swept with its
	// socket (directHandler.Sweep), so it needs no entry.
	sessions []*session
	dirty    []*session   // polling sessions with packets for a parked GET
	buf      []byte       // scratch for encoding one packet at a time
	nsbuf    []byte       // scratch for a packet rewritten on a namespace
	req      chat.Request // the request being decoded (reused)
	mp       msgpackScratch
	// perConn counts, per connection of this loop, the polling sessions
	// its handshakes opened that are still open (MaxSessionsPerConnection);
	// an entry goes with its last session.
	perConn map[netpoll.ConnID]int
	// lingering lists the sessions homed here whose sids linger after
	// their client closed them (registry.linger), oldest first: all
	// linger equally long, so they expire from the front.
	lingering []*session
}

// New returns the Engine.IO server for np and mounts it on Paths (and, in
// conformance mode, the plain echo endpoint). Call it before np.Run.
func New(cfg Config, np *netpoll.Server) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, np: np, hub: np.Hub(), log: cfg.Logger, loops: make([]loopState, np.Loops())}
	s.reg.m = make(map[string]*session)
	s.reg.closed = make(map[string]lingerEntry)
	np.Mount(s, Paths...)
	if cfg.Conformance {
		np.Mount(s, conformanceEchoPath)
	}
	return s
}

// MaxBody implements netpoll.Protocol: long-polling POSTs and WebSocket
// messages carry at most maxPayload bytes (engine.io-protocol v4).
func (s *Server) MaxBody() int { return s.cfg.MaxMessage }

// ShortestTimeout implements netpoll.Protocol.
func (s *Server) ShortestTimeout() time.Duration {
	return min(s.cfg.PingInterval, s.cfg.PingTimeout, s.cfg.ConnectTimeout)
}

// Sweep implements netpoll.Protocol: the heartbeat and connect timeout of
// every session born on long-polling homed on lp (netpoll sweeps a direct
// WebSocket session's socket right after: directHandler.Sweep).
func (s *Server) Sweep(lp *netpoll.Loop, now int64) {
	st := &s.loops[lp.Index()]
	// Backwards: closing a session swap-removes it.
	for i := len(st.sessions) - 1; i >= 0; i-- {
		if i >= len(st.sessions) {
			continue
		}
		st.sessions[i].sweep(now)
	}
	n := 0
	for n < len(st.lingering) && s.reg.expireLinger(st.lingering[n], now) {
		st.lingering[n] = nil
		n++
	}
	st.lingering = st.lingering[n:]
	// What the sweeps queued for parked GETs goes out at the end of the
	// loop's sweep (Flush), after the direct sessions' sweeps too.
}

// linger keeps the sid of ss, which its client is closing with no GET
// held, for one more GET (closeLinger). On the home loop, before the
// session leaves the registry, so that no GET finds the sid unknown in
// between.
func (s *Server) linger(ss *session) {
	st := &s.loops[ss.home.Index()]
	s.reg.linger(ss, ss.home.Now()+int64(closeLinger))
	st.lingering = append(st.lingering, ss)
}

// Flush implements netpoll.Protocol: it answers the parked GETs of the
// sessions that got packets during this pass of the loop.
func (s *Server) Flush(lp *netpoll.Loop) {
	st := &s.loops[lp.Index()]
	for i, ss := range st.dirty {
		ss.r().dirty = false
		st.dirty[i] = nil
		if ss.r().get.Valid() && len(ss.r().out) > 0 && !ss.done {
			get := ss.r().get
			ss.r().get = held{}
			ss.answer(get, 200, contentTypeText, ss.r().out, ss.r().getOrigin, ss.r().getKeep)
			ss.r().out = ss.r().out[:0]
		}
	}
	st.dirty = st.dirty[:0]
}

// Drain implements netpoll.Protocol: long-polling sessions end (a parked
// GET gets the close packet), upgraded ones too; sessions that began on
// their WebSockets end with their sockets, which netpoll closes with 1012
// and the reconnect hint.
func (s *Server) Drain(lp *netpoll.Loop) {
	st := &s.loops[lp.Index()]
	for i := len(st.sessions) - 1; i >= 0; i-- {
		if i < len(st.sessions) {
			st.sessions[i].close(chat.DisconnectShutdown)
		}
	}
}

// add puts a session born on long-polling on its home loop's list.
func (s *Server) add(ss *session) {
	st := &s.loops[ss.home.Index()]
	ss.idx = int32(len(st.sessions))
	st.sessions = append(st.sessions, ss)
}

// remove swap-removes ss from its home loop's list, if it is there.
func (s *Server) remove(ss *session) {
	if ss.direct {
		return
	}
	st := &s.loops[ss.home.Index()]
	last := int32(len(st.sessions) - 1)
	if ss.idx <= last && st.sessions[ss.idx] == ss {
		st.sessions[ss.idx] = st.sessions[last]
		st.sessions[ss.idx].idx = ss.idx
		st.sessions[last] = nil
		st.sessions = st.sessions[:last]
	}
}

// Content types of Engine.IO HTTP answers.
const (
	contentTypeText = "text/plain; charset=UTF-8"
	contentTypeJSON = "application/json"
)

// ServeHTTP implements netpoll.Protocol: a long-polling request, a CORS
// preflight, or a WebSocket upgrade (a new session, or the upgrade of a
// long-polling one).
func (s *Server) ServeHTTP(x *netpoll.Exchange) {
	req := x.Request()
	echo := string(req.Path) == conformanceEchoPath
	if string(req.Method) == "OPTIONS" {
		s.respond(x, 204, "", nil)
		return
	}
	q, err := socketio.ParseQueryAllow(req.Query, s.cfg.AllowEIO3)
	if err != nil {
		s.httpError(x, err)
		return
	}
	if q.Transport == "websocket" {
		if q.SID == "" {
			s.openWebSocket(x, echo, q.EIO == 3)
		} else {
			s.upgradeWebSocket(x, q.SID)
		}
		return
	}
	method := string(req.Method)
	if q.SID == "" {
		if method != "GET" {
			s.httpError(x, socketio.ErrBadHandshakeMethod)
			return
		}
		s.openPolling(x, echo, q.EIO == 3)
		return
	}
	// A request for a session passes the handshake's checks again: the
	// origin first (before the sid is even looked up), then the token.
	if ref := x.CheckOrigin(); ref != nil {
		s.refuse(x, *ref)
		return
	}
	ss := s.reg.get(q.SID)
	if ss == nil && method == "GET" {
		// Its client may have closed it a moment ago; the home loop
		// decides (onGet).
		ss = s.reg.lingering(q.SID)
	}
	if ss == nil && s.fwd != nil {
		// In cluster mode a sid names its home node (forward.go).
		if node := sidNode(q.SID); node != "" && node != s.node {
			s.forward(x, q.SID, node, method)
			return
		}
	}
	if ss == nil || ss.polled().onWS.Load() {
		s.httpError(x, socketio.ErrUnknownSID)
		return
	}
	if ref := s.checkToken(x, ss); ref != nil {
		s.refuse(x, *ref)
		return
	}
	origin := append([]byte(nil), req.Header("Origin")...)
	keep := req.KeepAlive()
	from := x.Loop()
	switch method {
	case "GET":
		var get netpoll.Parked
		get = x.Park(func() { ss.home.Run(from, func() { ss.getGone(get) }) })
		onGet := func() { ss.onGet(held{p: get}, origin, keep) }
		if relay := ss.polled().relay.Load(); relay != nil {
			// A WebSocket probes or carries the session. The client may
			// have sent it "5" before this GET, on its own connection,
			// which another loop reads: the GET goes through that
			// loop's mailbox, which runs after the loop's pending reads
			// (so "5" first, and then the GET is refused), as the
			// reference server, one thread, reads them in order.
			relay.Run(nil, func() { ss.home.Run(relay, onGet) })
			return
		}
		ss.home.Run(from, onGet)
	case "POST":
		body := x.Body()
		if ss.eio3 {
			// Off the home loop: the v3 framing becomes v4's (eio3.go).
			body = v3Body(body, req.Header("Content-Type"))
		} else if ss.home != from {
			body = append([]byte(nil), body...)
		}
		post := x.Park(func() {})
		ss.home.Run(from, func() { ss.onPost(held{p: post}, body, origin, keep) })
	default:
		s.httpError(x, socketio.ErrBadRequest)
	}
}

// openPolling answers a long-polling handshake: a new session homed on
// the request's loop. The session outlives the connection and any number
// of them could share one keep-alive connection, so each is admitted as
// a session of its own (its per-address and -max-connections slots), and
// one connection may have at most MaxSessionsPerConnection of them open.
func (s *Server) openPolling(x *netpoll.Exchange, echo, eio3 bool) {
	st := &s.loops[x.Loop().Index()]
	conn := x.Conn()
	count := !echo && !s.cfg.Conformance && s.cfg.MaxSessionsPerConnection > 0 && !x.FromTrustedProxy()
	if count && st.perConn[conn] >= s.cfg.MaxSessionsPerConnection {
		ref := netpoll.Response{Status: 429, ContentType: "text/plain; charset=utf-8",
			Body: []byte("too many sessions on this connection\n")}
		x.Refused(&ref)
		s.refuse(x, ref)
		return
	}
	var adm netpoll.Admission
	var ref *netpoll.Response
	if echo {
		adm, ref = x.Admit(false, false) // the conformance echo counts nothing
	} else {
		adm, ref = x.AdmitSession(false)
	}
	if ref != nil {
		s.refuse(x, *ref)
		return
	}
	s.cfg.Metrics.Handshake(metricsPolling)
	ss := s.newSession(x.Loop(), echo, true)
	if eio3 {
		ss.setEIO3()
		ss.r().v3Auth = v3AuthParam(x.Request())
	}
	s.keepHandshake(ss, x.Request())
	ss.setIdent(adm.Identity())
	if adm.Identity() != nil {
		// The token the session was admitted with (checkToken).
		req := x.Request()
		if tok := auth.TokenFrom(req.Header("Authorization"), req.Query); tok != nil {
			sum := sha256.Sum256(tok)
			ss.polled().tokenSum = &sum
		}
	}
	ss.ip = x.ClientIP().As16()
	if !echo {
		ss.r().slots, ss.r().slotted = adm, true
	}
	if count {
		if st.perConn == nil {
			st.perConn = make(map[netpoll.ConnID]int)
		}
		st.perConn[conn]++
		ss.polled().opener, ss.polled().counted = conn, true
	}
	s.reg.put(ss)
	buf := ss.appendOpen(nil, ss.sid(), []string{"websocket"})
	if eio3 {
		buf = ss.appendOut(nil, buf, false)
	}
	s.respond(x, 200, contentTypeText, buf)
	if eio3 {
		ss.connectV3()
	}
}

// openWebSocket upgrades a new session that starts on WebSocket: the
// session lives on the socket's loop and the socket is its transport.
func (s *Server) openWebSocket(x *netpoll.Exchange, echo, eio3 bool) {
	adm, ref := x.Admit(false, true)
	if ref != nil {
		x.Refuse(*ref)
		return
	}
	origin := string(x.Request().Header("Origin"))
	var headers map[string]string
	if s.hub.Connecting() {
		headers = x.Request().Headers(s.cfg.ProxyHeaders)
	}
	var v3Auth []byte
	if eio3 {
		v3Auth = v3AuthParam(x.Request())
	}
	x.Upgrade(adm, func(sock netpoll.Socket) netpoll.SocketHandler {
		s.cfg.Metrics.Handshake(metricsSocketIO)
		ss := s.newSession(sock.Loop(), echo, false)
		if eio3 {
			ss.setEIO3()
			ss.r().v3Auth = v3Auth
		}
		if s.hub.Connecting() {
			ss.r().origin, ss.r().headers = origin, headers
		}
		ss.setIdent(adm.Identity())
		// The socket is the session: its admission's slot is released
		// with the connection, not by the session.
		ss.ip = sock.ClientIP().As16()
		ss.ws = sock
		st := &s.loops[sock.Loop().Index()]
		st.buf = ss.appendDirectOpen(st.buf[:0])
		ss.send(ws.OpText, st.buf)
		if eio3 {
			ss.connectV3()
		}
		return directHandler{ss}
	})
}

// uncount gives back the MaxSessionsPerConnection slot of ss's opening
// connection, on the home loop (the opening connection's).
func (s *Server) uncount(ss *session) {
	st := &s.loops[ss.home.Index()]
	r := ss.r()
	if n := st.perConn[r.opener]; n > 1 {
		st.perConn[r.opener] = n - 1
	} else {
		delete(st.perConn, r.opener)
	}
	r.opener, r.counted = netpoll.ConnID{}, false
}

// refuse answers a polling request with a refusal (CORS headers added
// for an allowed origin) and closes the connection.
func (s *Server) refuse(x *netpoll.Exchange, resp netpoll.Response) {
	resp.Header = s.cfg.corsHeaders(x.Request().Header("Origin"), resp.Header)
	x.Refuse(resp)
}

// keepHandshake keeps what the backend's connect call is told of the
// handshake, when there is such a call.
func (s *Server) keepHandshake(ss *session, req *netpoll.Request) {
	if s.hub.Connecting() {
		ss.r().origin = string(req.Header("Origin"))
		ss.r().headers = req.Headers(s.cfg.ProxyHeaders)
	}
}

// respond answers a polling request (or preflight) and keeps the
// connection for the next one unless the client asked to close it.
func (s *Server) respond(x *netpoll.Exchange, status int, contentType string, body []byte) {
	req := x.Request()
	resp := netpoll.Response{Status: status, ContentType: contentType, Body: body, KeepAlive: req.KeepAlive()}
	if status == 204 {
		resp.Header = []string{
			"Access-Control-Allow-Methods: GET, POST, OPTIONS",
			"Access-Control-Max-Age: 86400",
		}
		if h := req.Header("Access-Control-Request-Headers"); len(h) > 0 {
			resp.Header = append(resp.Header, "Access-Control-Allow-Headers: "+string(h))
		}
	}
	resp.Header = s.cfg.corsHeaders(req.Header("Origin"), resp.Header)
	x.Respond(resp)
}

// httpError answers an Engine.IO request with its JSON error and closes
// the connection.
func (s *Server) httpError(x *netpoll.Exchange, err error) {
	he := socketio.ErrBadRequest
	if e, ok := err.(*socketio.HandshakeError); ok {
		he = e
	}
	resp := netpoll.Response{Status: he.Status(), ContentType: contentTypeJSON,
		Body: socketio.AppendHTTPError(nil, he.Code, he.Message)}
	resp.Header = s.cfg.corsHeaders(x.Request().Header("Origin"), resp.Header)
	x.Refuse(resp)
}

// registry maps sids to long-polling sessions for every loop.
type registry struct {
	mu sync.Mutex
	m  map[string]*session
	// closed holds the sids that linger after their clients closed their
	// sessions with no GET held (Server.linger), each until its
	// deadline or its one GET.
	closed map[string]lingerEntry
}

// lingerEntry is a lingering sid's session and deadline (Unix ns).
type lingerEntry struct {
	ss    *session
	until int64
}

func (r *registry) get(sid string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[sid]
}

func (r *registry) put(ss *session) {
	r.mu.Lock()
	r.m[ss.sid()] = ss
	r.mu.Unlock()
}

// linger keeps the sid of ss, which is closing, until until (Server.linger).
func (r *registry) linger(ss *session, until int64) {
	r.mu.Lock()
	r.closed[ss.sid()] = lingerEntry{ss, until}
	r.mu.Unlock()
}

// lingering returns the closed session whose sid lingers, or nil.
func (r *registry) lingering(sid string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed[sid].ss
}

// takeLinger ends the lingering of ss's sid for a GET, and reports
// whether it was still lingering at now: only one GET gets the noop.
func (r *registry) takeLinger(ss *session, now int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.closed[ss.sid()]
	if !ok || e.ss != ss {
		return false
	}
	delete(r.closed, ss.sid())
	return now <= e.until
}

// expireLinger ends the lingering of ss's sid if its deadline has passed
// at now (or it was taken), and reports whether it is over.
func (r *registry) expireLinger(ss *session, now int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.closed[ss.sid()]
	switch {
	case !ok || e.ss != ss:
		return true
	case now > e.until:
		delete(r.closed, ss.sid())
		return true
	}
	return false
}

func (r *registry) remove(ss *session) {
	r.mu.Lock()
	if r.m[ss.sid()] == ss {
		delete(r.m, ss.sid())
	}
	r.mu.Unlock()
}

// Results of registry.claimUpgrade.
const (
	upgradeClaimed = iota // the WebSocket may probe the session
	upgradeTaken          // another WebSocket probes or carries it
	upgradeGone           // the session has ended
)

// claimUpgrade marks ss as upgrading for a WebSocket that names it. The
// mark stays until that WebSocket's probe fails (releaseUpgrade), so a
// second WebSocket for the session, while the first probes or after the
// upgrade, finds it taken.
func (r *registry) claimUpgrade(ss *session) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.m[ss.sid()] != ss:
		return upgradeGone
	case ss.polled().upgrading:
		return upgradeTaken
	}
	ss.polled().upgrading = true
	return upgradeClaimed
}

func (r *registry) releaseUpgrade(ss *session) {
	r.mu.Lock()
	ss.polled().upgrading = false
	r.mu.Unlock()
}
