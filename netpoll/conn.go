package netpoll

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/native"
	"github.com/chatgate/chatgate/clientip"
	"github.com/chatgate/chatgate/frame"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/metrics"
	"github.com/chatgate/chatgate/payload"
)

type connState uint8

const (
	stateHTTP    connState = iota // reading the HTTP request head
	stateProxy                    // reading the PROXY protocol header
	stateOpen                     // WebSocket open
	stateClosing                  // close frame sent, waiting for the peer's
	stateParked                   // HTTP request held by a protocol (Exchange.Park), response pending
	stateSending                  // a final response still being sent: closed once it is out (sweep)
	stateClosed                   // gone; late tasks skip it
)

type endpoint uint8

const (
	endpointChat     endpoint = iota // /ws: the native chat protocol
	endpointEcho                     // /echo: every message sent back unchanged
	endpointProtocol                 // a WebSocket driven by a mounted Protocol (conn.proto)
)

// KindNative is the rooms.Member kind of native-protocol sessions: the
// index of the native codec in chat.Config.Codecs.
const KindNative = 0

// errPeerClosed stops frame processing after the peer's close frame.
var errPeerClosed = errors.New("netpoll: peer closed")

// conn is the per-connection state machine. Every field is touched only on
// the owning loop. It is kept small (TestConnSize: the 80-byte size class)
// because an idle gateway is mostly conn structs: state needed only
// briefly (a partial request head, frames queued during a mailbox pass)
// lives in side tables of the loop, and a frame cut across reads or
// rate-limit debt in a connMore that exists only while it is needed.
type conn struct {
	gc gnet.Conn
	lp *loop
	// peer is the endpoint's own object, by ep, read through session
	// and protocol (never directly): the *chat.Session of a native chat
	// connection (ep endpointChat: from its opening, in the upgrade or a
	// held connectFirst, until it ends; nil otherwise) or the
	// *protoConn of a mounted protocol's connection (ep
	// endpointProtocol, set with it in Exchange.Upgrade). The two never
	// coexist, so they share one pointer; an echo connection has
	// neither. unsafe.Pointer keeps the referent alive for the garbage
	// collector like any pointer; ep says its type.
	peer unsafe.Pointer
	// more holds what a connection needs only for a while: the frame
	// reader's state while a frame or a fragmented message is cut across
	// reads (otherwise frames are parsed with the loop's shared reader)
	// and the rate-limit debt until it has drained. nil when it holds
	// neither (an idle connection); recycled through the loop
	// (loop.getMore, loop.putMore).
	more *connMore
	// ip is the client's address (16-byte form, see clientIP): the TCP
	// peer, the PROXY protocol source, or, from trusted proxies, the
	// forwarding headers' client.
	ip [16]byte
	// stamp is, by state: the handshake deadline (stateHTTP), the coarse
	// time of the last inbound bytes (stateOpen), the close-handshake
	// deadline (stateClosing) or the deadline of sending a final
	// response (stateSending), all in Unix nanoseconds.
	stamp    int64
	sweepIdx int32 // index in lp.conns (connList)
	pendIdx  int32 // 1 + index in lp.pending while frames are queued, else 0
	state    connState
	ep       endpoint
	pinged   bool
	partial  bool // a partial request head is kept in lp.heads
	// deflate: the client negotiated permessage-deflate (-compression).
	deflate bool
	// why is the close reason counted when the connection ends; the first
	// close frame sent or received sets it.
	why metrics.CloseReason
	// ipHeld: the connection counts against its address's limit.
	ipHeld bool
	// backlogged: c is in its loop's list of connections with unsent
	// bytes (loop.backlog, the node-wide budget in budget.go).
	backlogged bool
}

// session is c's chat session (conn.peer): nil unless c is a native chat
// connection whose session is open.
func (c *conn) session() *chat.Session {
	if c.ep == endpointProtocol {
		return nil
	}
	return (*chat.Session)(c.peer)
}

// setSession sets (or, with nil, clears) the session of a native chat
// connection (c.ep is not endpointProtocol).
func (c *conn) setSession(s *chat.Session) { c.peer = unsafe.Pointer(s) }

// protocol is the mounted protocol's handler of c (conn.peer), nil unless
// c is a protocol connection.
func (c *conn) protocol() *protoConn {
	if c.ep != endpointProtocol {
		return nil
	}
	return (*protoConn)(c.peer)
}

// setProtocol sets the handler of a protocol connection, once its ep is
// endpointProtocol.
func (c *conn) setProtocol(p *protoConn) { c.peer = unsafe.Pointer(p) }

// protoConn is a protocol connection's handler (conn.peer): behind a
// pointer, so the native connections, most of an idle gateway, do not
// carry an interface they never use.
type protoConn struct{ h SocketHandler }

// connMore is the state a connection holds only for a while (conn.more).
// A zero lim is a fresh rate-limit state: debt that has drained and none
// at all are the same.
type connMore struct {
	rd  *frame.Reader // own frame reader state while a frame is cut, else nil
	lim limit.Conn
}

// idle reports whether m holds nothing worth keeping at now: no reader
// state and no rate-limit debt.
func (m *connMore) idle(now int64, cfg *limit.Config) bool {
	return m.rd == nil && m.lim.Drained(now, cfg)
}

// dropMore gives c's connMore back to the loop. The frame reader state,
// if any, is reset (its buffers go back to their pools).
func (c *conn) dropMore() {
	m := c.more
	if m == nil {
		return
	}
	c.more = nil
	if m.rd != nil {
		m.rd.Reset()
	}
	c.lp.putMore(m)
}

// clientIP returns the client's address.
func (c *conn) clientIP() netip.Addr { return netip.AddrFrom16(c.ip).Unmap() }

// setIP records the client's address.
func (c *conn) setIP(a netip.Addr) { c.ip = a.As16() }

// setWhy records why c closes, unless a reason is already known.
func (c *conn) setWhy(r metrics.CloseReason) {
	if c.why == metrics.CloseTCP {
		c.why = r
	}
}

// onTraffic handles newly read bytes. buf belongs to the loop and is valid
// only during the call.
func (c *conn) onTraffic(buf []byte) gnet.Action {
	lp := c.lp
	lp.srv.m.BytesReceived(len(buf))
	if c.state == stateOpen {
		c.stamp = lp.srv.now()
		c.pinged = false
	}
	lp.wbuf = lp.wbuf[:0]
	lp.cur = c
	var action gnet.Action
	switch c.state {
	case stateHTTP:
		action = c.onHTTP(buf)
	case stateProxy:
		action = c.onProxy(buf)
	case stateOpen, stateClosing:
		action = c.onFrames(buf)
	default:
		// Bytes while a request is parked (HTTP pipelining) or after the
		// end: this gateway does not pipeline.
		action = gnet.Close
	}
	lp.cur = nil
	if c.state == stateClosed && c.why == metrics.CloseSlowConsumer {
		// Cut as a slow consumer while its traffic was handled: nothing
		// more is written to it.
		lp.wbuf = lp.wbuf[:0]
		action = gnet.Close
	}
	if len(lp.wbuf) > 0 {
		_, _ = c.gc.Write(lp.wbuf)
		lp.srv.m.BytesSent(len(lp.wbuf))
		if c.state == stateOpen {
			// Counted, not enforced: gnet is inside c's read, so c
			// must not be closed under it; the pass end or the next
			// sweep enforces.
			lp.markBacklog(c)
		}
	}
	if action == gnet.Close && c.state == stateClosed && c.why == metrics.CloseHTTP && c.gc.OutboundBuffered() > 0 {
		// A final response larger than the socket took at once (a
		// static file such as the Socket.IO client bundle): gnet's
		// close writes only what the socket takes at that moment and
		// drops the rest, so the connection stays until the sweep sees
		// the response out, or its deadline passes.
		c.state = stateSending
		c.stamp = lp.srv.now() + int64(lp.srv.cfg.HandshakeTimeout)
		action = gnet.None
	}
	if cap(lp.wbuf) > 1<<20 {
		lp.wbuf = nil // do not pin a huge echo buffer forever
	}
	lp.flushProtocols()
	return action
}

func (c *conn) onHTTP(buf []byte) gnet.Action {
	lp := c.lp
	max := lp.srv.cfg.MaxHeaderBytes
	data := buf
	if c.partial {
		data = append(lp.heads[c], buf...)
		lp.heads[c] = data
	}
	n := headEnd(data)
	if n < 0 && len(data) <= max {
		c.keepPartial(buf)
		return gnet.None
	}
	if n < 0 || n > max {
		return c.respond(textResponse(431, "request head too large\n"))
	}
	head, rest := data[:n], data[n:]
	// The parsed head lives in the loop: handlers see it only while they
	// run, so it need not be allocated per request.
	var err error
	lp.hreq, err = parseHead(head)
	req := &lp.hreq
	if err != nil {
		if errors.Is(err, errBadVersion) {
			return c.respond(textResponse(505, "HTTP/1.1 required\n"))
		}
		return c.respond(textResponse(400, "malformed request\n"))
	}
	if t := lp.srv.cfg.TrustedProxies; t != nil && t.Len() > 0 {
		// Every line of a repeated header counts: a forged first line must
		// not hide the proxy's own.
		c.setIP(clientip.Resolve(c.clientIP(), t, func(name string) []byte {
			lp.hscratch = clientip.AppendHeader(lp.hscratch[:0], req.Head, name)
			return lp.hscratch
		}))
	}
	// A body (long-polling POST) must have arrived whole.
	var body []byte
	if req.Header("Content-Length") != nil && req.Header("Transfer-Encoding") != nil {
		// Both framings at once is how requests are smuggled past proxies
		// (RFC 9112 §6.1): refuse.
		return c.respond(textResponse(400, "Content-Length with Transfer-Encoding\n"))
	}
	if cl := req.Header("Content-Length"); cl != nil {
		size, ok := parseContentLength(cl)
		if !ok {
			return c.respond(textResponse(400, "bad Content-Length\n"))
		}
		if size > lp.srv.maxBody {
			return c.respond(textResponse(413, "body too large\n"))
		}
		if len(rest) < size {
			c.keepPartial(buf)
			return gnet.None
		}
		body, rest = rest[:size], rest[size:]
	} else if req.Header("Transfer-Encoding") != nil {
		return c.respond(textResponse(411, "Content-Length required\n"))
	}
	switch {
	case string(req.Path) == "/ws":
		return c.upgrade(req, endpointChat, rest)
	case string(req.Path) == "/echo" && lp.srv.cfg.Echo:
		return c.upgrade(req, endpointEcho, rest)
	}
	if p := lp.srv.mounts[string(req.Path)]; p != nil {
		return c.serveHTTPThen(c.serveProtocol(p, req, body, rest), rest)
	}
	h := lp.srv.routes[string(req.Path)]
	if h == nil {
		return c.respond(textResponse(404, "not found\n"))
	}
	if string(req.Method) != "GET" && string(req.Method) != "HEAD" {
		return c.respond(Response{Status: 405, Body: []byte("method not allowed\n"), Header: []string{"Allow: GET, HEAD"}})
	}
	resp := h(req)
	resp.HeadOnly = string(req.Method) == "HEAD"
	return c.respond(resp)
}

// onProxy reads the PROXY protocol header that starts the connection, then
// goes on with HTTP.
func (c *conn) onProxy(buf []byte) gnet.Action {
	lp := c.lp
	data := buf
	if c.partial {
		data = append(lp.heads[c], buf...)
		lp.heads[c] = data
	}
	h, n, err := clientip.ParseProxyHeader(data)
	switch {
	case errors.Is(err, clientip.ErrNeedMore):
		c.keepPartial(buf)
		return gnet.None
	case errors.Is(err, clientip.ErrNoProxyHeader) && lp.srv.cfg.ProxyProtocol == ProxyOptional:
		n = 0
	case err != nil:
		lp.srv.log.Warn("PROXY protocol header refused", "remote", c.gc.RemoteAddr().String(), "err", err)
		lp.srv.m.HandshakeFailed(metrics.HandshakeProxyProtocol)
		c.why = metrics.CloseHTTP
		c.state = stateClosed
		c.dropHead()
		return gnet.Close
	default:
		if h.Source.IsValid() {
			c.setIP(h.Source.Addr())
		}
	}
	c.state = stateHTTP
	rest := append([]byte(nil), data[n:]...) // data may be the kept head, dropped next
	c.dropHead()
	if len(rest) == 0 {
		return gnet.None
	}
	return c.onHTTP(rest)
}

// keepPartial keeps an incomplete request (head or body) for the next
// read: buf is the loop's shared buffer.
func (c *conn) keepPartial(buf []byte) {
	if !c.partial {
		c.partial = true
		c.lp.heads[c] = append(make([]byte, 0, 2*len(buf)), buf...)
	}
}

// serveProtocol hands a request to a mounted protocol.
func (c *conn) serveProtocol(p Protocol, req *Request, body, rest []byte) gnet.Action {
	// The exchange is the loop's: it is valid only during ServeHTTP, and
	// a local would escape through the interface call, garbage on every
	// request (each Socket.IO handshake and long-polling request).
	x := &c.lp.exch
	if x.c != nil {
		x = new(Exchange) // nested in another's ServeHTTP: not expected
	}
	*x = Exchange{c: c, req: req, body: body, rest: rest}
	p.ServeHTTP(x)
	done, act := x.done, x.act
	*x = Exchange{} // keeps nothing alive, and is free again
	if !done {
		// A protocol bug: never leave a client waiting for nothing.
		c.lp.srv.log.Error("protocol left a request unanswered", "path", string(req.Path))
		return c.respond(textResponse(500, "internal error\n"))
	}
	return act
}

// serveHTTPThen finishes a keep-alive request: the bytes of the request
// are dropped and, since this gateway does not pipeline, anything the
// client sent behind them closes the connection.
func (c *conn) serveHTTPThen(action gnet.Action, rest []byte) gnet.Action {
	if c.state == stateOpen {
		return action // upgraded: rest went to the frame reader
	}
	c.dropHead()
	if action == gnet.None && len(rest) > 0 {
		return gnet.Close
	}
	return action
}

// respond writes a complete HTTP response and closes the connection once it
// is sent.
func (c *conn) respond(resp Response) gnet.Action {
	switch {
	case resp.retryAfter > 0:
		c.lp.srv.m.HandshakeFailed(metrics.HandshakeRateLimited)
	case resp.Status >= 400:
		c.lp.srv.m.HandshakeFailed(metrics.HandshakeStatus(resp.Status))
	}
	c.why = metrics.CloseHTTP
	c.lp.wbuf = appendResponse(c.lp.wbuf, resp)
	c.state = stateClosed
	c.dropHead()
	return gnet.Close
}

// timeoutHTTP answers a connection whose request head did not arrive in
// time. Called by the sweep, on the loop.
func (c *conn) timeoutHTTP() {
	c.lp.srv.m.HandshakeFailed(metrics.HandshakeTimeout)
	c.why = metrics.CloseTimeout
	_, _ = c.gc.Write(appendResponse(nil, textResponse(408, "request timeout\n")))
	c.state = stateClosed
	_ = c.lp.el.Close(c.gc)
}

// bufWriter lets gobwas/ws write the handshake response into the loop's
// output buffer.
type bufWriter struct{ b *[]byte }

func (w bufWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}

type headReadWriter struct {
	*bytes.Reader
	bufWriter
}

// upgrade upgrades to the native chat endpoint or the echo endpoint.
func (c *conn) upgrade(req *Request, ep endpoint, rest []byte) gnet.Action {
	lp := c.lp
	srv := lp.srv
	var adm admission
	if ep != endpointEcho {
		var ref *Response
		adm, ref = srv.admit(req, c.clientIP(), true, !c.ipHeld)
		if ref != nil {
			c.refuse(ref)
			if ref.retryAfter > 0 && ep == endpointChat && closeWhenLimited(req) {
				return c.closeLimited(req, ref.retryAfter)
			}
			return c.respond(*ref)
		}
		if !srv.hub.UserAllowed(adm.ident.User()) {
			c.releaseIP(adm)
			ref := textResponse(429, "too many connections for this user\n")
			c.refuse(&ref)
			return c.respond(ref)
		}
	}
	// The welcome is the loop's: filled here, passed to the codec behind
	// an interface (where a local would escape), so a handshake does not
	// leave one behind as garbage.
	w := &lp.welcome
	*w = chat.Welcome{}
	var replay []*payload.Shared
	if ep == endpointChat {
		// A resumed session skips the backend's connect call: the
		// backend accepted it before it dropped.
		var s *chat.Session
		s, replay = c.resume(req, adm.ident, w)
		c.setSession(s)
	}
	if ep == endpointChat && c.session() == nil && srv.hub.Connecting() {
		return c.connectFirst(req, adm, rest)
	}
	if !c.handshake(req, adm) {
		release(replay)
		if c.session() != nil {
			srv.hub.Close(c.session())
			c.setSession(nil)
		}
		return gnet.Close
	}
	srv.m.Handshake(metrics.TransportWebSocket)
	c.ep = ep
	if ep == endpointChat {
		if c.session() == nil {
			c.setSession(srv.hub.Open(c, lp.idx, KindNative, adm.ident))
		}
		c.welcome(w)
		for _, p := range replay {
			// Right behind the welcome, in this pass's output: before
			// any reply and any live message (Hub.Resume).
			lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpText, p.Payload())
		}
		release(replay)
		if srv.log.Enabled(context.Background(), slog.LevelDebug) {
			// Guarded: the arguments (address texts, boxed values) are
			// garbage on every handshake even when debug logs are off.
			srv.log.Debug("connection open", "conn", c.session().ID(), "client", c.clientIP().String(), "remote", c.gc.RemoteAddr().String(), "recovered", w.Recovered)
		}
	}
	var action gnet.Action
	if len(rest) > 0 {
		// Frames sent right behind the handshake (rest may alias the kept
		// partial head, which is dropped only after this call).
		action = c.onFrames(rest)
	}
	c.dropHead()
	return action
}

// resume opens the session a client asks to resume (?resume=<session
// token>, and ?offset=<last offset received>), or returns nil when there
// is none to resume; w records that it was asked and the outcome. The
// replay (Hub.Resume) is the caller's to write behind the welcome and to
// release.
func (c *conn) resume(req *Request, ident *auth.Identity, w *chat.Welcome) (*chat.Session, []*payload.Shared) {
	srv := c.lp.srv
	tok := auth.QueryParam(req.Query, "resume")
	if len(tok) == 0 || !srv.hub.Recovering() {
		return nil, nil
	}
	w.Resumed = true
	rq := chat.ResumeRequest{Token: string(tok)}
	if off := auth.QueryParam(req.Query, "offset"); len(off) > 0 {
		rq.Offset, rq.HasOffset = chat.ParseOffset(off)
	}
	s, replay := srv.hub.Resume(c, c.lp.idx, KindNative, ident, rq)
	w.Recovered = s != nil
	return s, replay
}

// release gives back the payloads of a replay once written.
func release(ps []*payload.Shared) {
	for _, p := range ps {
		p.Release()
	}
}

// welcome writes the native welcome of c's open session into the pass's
// output, completing w with the session's id, user, nick and token.
func (c *conn) welcome(w *chat.Welcome) {
	lp := c.lp
	hub := lp.srv.hub
	s := c.session()
	w.ID, w.User, w.Nick, w.Session = s.ID(), s.User(), s.Nick(), hub.SessionToken(s)
	lp.pbuf = hub.Codec(KindNative).AppendWelcome(lp.pbuf[:0], w)
	lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpText, lp.pbuf)
	// w may be the loop's (upgrade): it does not keep the texts alive.
	w.ID, w.User, w.Nick, w.Session = "", "", "", ""
}

// connectFirst asks the application's backend about a native client before
// its upgrade (-proxy-connect-url): the request is held (stateParked) with
// a pending session, and the answer, on this loop, completes the upgrade
// and the welcome, refuses with 401, or upgrades and closes with the
// backend's disconnect code.
func (c *conn) connectFirst(req *Request, adm admission, rest []byte) gnet.Action {
	lp := c.lp
	srv := lp.srv
	if len(rest) > 0 {
		c.releaseIP(adm)
		return c.respond(textResponse(400, "nothing may follow an upgrade request before its answer\n"))
	}
	head := append([]byte(nil), req.Head...)
	info := chat.ConnectInfo{Transport: "websocket", Protocol: "native", RemoteAddr: c.clientIP().String(),
		Origin: string(req.Header("Origin")), Headers: req.Headers(srv.cfg.ProxyHeaders)}
	if a := auth.QueryParam(req.Query, "auth"); len(a) > 0 && json.Valid(a) {
		info.Auth = append(json.RawMessage(nil), a...)
	}
	if adm.ipHeld {
		c.ipHeld = true // released when the connection ends, upgraded or not
	}
	c.setSession(srv.hub.OpenPending(c, lp.idx, KindNative, adm.ident))
	c.state = stateParked
	lp.parked[c] = func() {} // the session closes with the connection (closed)
	c.dropHead()
	sess := c.session()
	srv.hub.Connect(sess, info, func(err *chat.Error, d *chat.Disconnect) {
		if c.state != stateParked || c.session() != sess {
			return
		}
		delete(lp.parked, c)
		c.finishConnect(head, err, d)
	})
	return gnet.None
}

// finishConnect completes a held upgrade with the backend's answer, on
// c's loop outside its traffic handling.
func (c *conn) finishConnect(head []byte, err *chat.Error, d *chat.Disconnect) {
	lp := c.lp
	srv := lp.srv
	lp.wbuf = lp.wbuf[:0]
	lp.cur = c // the handshake and welcome go out in one write
	defer func() { lp.cur = nil }()
	if err != nil {
		srv.hub.Close(c.session())
		c.setSession(nil)
		srv.m.HandshakeFailed(metrics.HandshakeUnauthorized)
		body, _ := json.Marshal(map[string]map[string]string{"error": {"code": err.Code, "message": err.Message}})
		c.why = metrics.CloseHTTP
		lp.wbuf = appendResponse(lp.wbuf, Response{Status: 401, ContentType: "application/json", Body: append(body, '\n')})
		_, _ = c.gc.Write(lp.wbuf)
		c.state = stateClosed
		_ = lp.el.Close(c.gc)
		return
	}
	c.state = stateHTTP
	if !c.handshake(&Request{Head: head}, admission{}) {
		srv.hub.Close(c.session())
		c.setSession(nil)
		_, _ = c.gc.Write(lp.wbuf)
		_ = lp.el.Close(c.gc)
		return
	}
	srv.m.Handshake(metrics.TransportWebSocket)
	c.ep = endpointChat
	if d != nil {
		_, _ = c.gc.Write(lp.wbuf)
		lp.wbuf = lp.wbuf[:0]
		lp.cur = nil
		c.Disconnect(*d)
		return
	}
	lp.welcome = chat.Welcome{}
	c.welcome(&lp.welcome)
	_, _ = c.gc.Write(lp.wbuf)
	lp.sent += len(lp.wbuf)
	lp.wbuf = lp.wbuf[:0]
}

// handshake completes the WebSocket handshake of req with gobwas/ws,
// writing the 101 response (or the refusal) into the traffic pass's
// output. On failure the connection is marked closed and adm's
// per-address slot released.
func (c *conn) handshake(req *Request, adm admission) bool {
	lp := c.lp
	srv := lp.srv
	if !bytes.EqualFold(req.Header("Upgrade"), []byte("websocket")) {
		c.releaseIP(adm)
		// A plain GET of a WebSocket endpoint.
		c.respond(Response{Status: 426, Body: []byte("this endpoint speaks WebSocket only\n"),
			Header: []string{"Upgrade: websocket", "Sec-WebSocket-Version: 13"}})
		return false
	}
	start := len(lp.wbuf)
	lp.hsr.Reset(req.Head)
	lp.hsrw = headReadWriter{&lp.hsr, bufWriter{&lp.wbuf}}
	lp.flate.Reset()
	if _, err := lp.upgrader.Upgrade(&lp.hsrw); err != nil {
		// gobwas/ws has written the HTTP error response; mark it as the
		// last on this connection so clients do not try to reuse it.
		lp.wbuf = insertConnectionClose(lp.wbuf, start)
		srv.m.HandshakeFailed(metrics.HandshakeBadUpgrade)
		c.why = metrics.CloseHTTP
		srv.log.Debug("handshake refused", "remote", c.gc.RemoteAddr().String(), "err", err)
		c.releaseIP(adm)
		c.state = stateClosed
		c.dropHead()
		return false
	}
	if adm.ipHeld {
		c.ipHeld = true
	}
	_, c.deflate = lp.flate.Accepted()
	c.state = stateOpen
	c.stamp = srv.now()
	return true
}

// onFrames feeds bytes to the frame reader; c is the frame.Handler.
func (c *conn) onFrames(buf []byte) gnet.Action {
	lp := c.lp
	var rd *frame.Reader
	if c.more != nil {
		rd = c.more.rd
	}
	if rd == nil {
		rd = &lp.rd
		rd.Init(c.maxMessage())
		rd.SetDeflate(c.deflate)
	}
	err := rd.Feed(buf, c)
	switch {
	case rd == &lp.rd && rd.Pending() && err == nil:
		// A frame is cut across reads: the connection keeps its own
		// reader state until it completes.
		if c.more == nil {
			c.more = lp.getMore()
		}
		c.more.rd = new(frame.Reader)
		*c.more.rd = lp.rd
		lp.rd = frame.Reader{}
	case rd == &lp.rd:
		rd.Reset()
	case !rd.Pending() && err == nil:
		c.more.rd = nil // whole again: back to the shared reader
		if c.more.lim == (limit.Conn{}) {
			c.dropMore() // and nothing else kept (no rate limit here)
		}
	}
	if err == nil {
		return gnet.None
	}
	if errors.Is(err, errPeerClosed) {
		c.state = stateClosed
		return gnet.Close
	}
	d := disconnectFor(err)
	if d.Metric == metrics.CloseRateLimited {
		c.lp.srv.log.Warn("rate limit exceeded, closing", "conn", c.id(), "client", c.clientIP().String())
	} else {
		c.lp.srv.log.Debug("closing on a protocol error", "conn", c.id(), "code", int(d.Code), "err", err)
	}
	c.setWhy(d.Metric)
	if c.state == stateOpen {
		c.lp.wbuf = frame.AppendClose(c.lp.wbuf, ws.StatusCode(d.Code), d.Reason)
	}
	c.state = stateClosed
	return gnet.Close
}

// protocolError wraps a mounted protocol's error other than a Disconnect:
// a malformed packet, closed with 1008.
type protocolError struct{ err error }

func (e protocolError) Error() string { return "netpoll: protocol: " + e.err.Error() }
func (e protocolError) Unwrap() error { return e.err }

// disconnectFor maps an error of the read path to the disconnect that
// names it: the one place where errors become close codes.
func disconnectFor(err error) chat.Disconnect {
	var d chat.Disconnect
	if errors.As(err, &d) {
		return d
	}
	var pe protocolError
	if errors.As(err, &pe) {
		return chat.DisconnectBadPacket
	}
	// A WebSocket protocol violation: the close code that names it
	// (RFC 6455 §7.1.7) and the reader's reason.
	var fe *frame.Error
	reason := ""
	if errors.As(err, &fe) {
		reason = fe.Reason
	}
	return chat.ProtocolDisconnect(uint16(frame.CloseCode(err)), reason)
}

// OnMessage implements frame.Handler.
func (c *conn) OnMessage(op ws.OpCode, payload []byte) error {
	if c.state != stateOpen {
		return nil // closing: the peer's late messages are dropped
	}
	if c.session() == nil && c.ep == endpointChat {
		return nil // draining: the session ended, the close frame follows
	}
	lp := c.lp
	switch c.ep {
	case endpointEcho:
		lp.wbuf = frame.AppendFrame(lp.wbuf, op, payload)
		return nil
	case endpointProtocol:
		if err := c.protocol().h.OnMessage(op, payload); err != nil {
			var d chat.Disconnect
			if errors.As(err, &d) {
				return d
			}
			return protocolError{err}
		}
		return nil
	}
	// Admission before work: every message counts against the rate
	// limits before it is decoded, so garbage (bad JSON, binary frames,
	// unknown types) costs a flooder the same as valid requests.
	verdict := c.rateLimit(len(payload))
	if verdict == limit.Abuse {
		return chat.DisconnectRateLimit
	}
	hub := lp.srv.hub
	lp.req.Reset()
	var bad *chat.Error
	if op != ws.OpText {
		bad = chat.ErrUnsupported
	} else if err := native.Decode(payload, &lp.req); err != nil {
		// A type assertion, not errors.As: taking bad's address would move
		// it to the heap on every message. Decode returns the sentinels
		// themselves.
		var ok bool
		if bad, ok = err.(*chat.Error); !ok {
			bad = chat.ErrBadJSON
		}
	}
	switch {
	case verdict == limit.Limited:
		// The request is refused whatever it was; its id, when it could
		// be read, is echoed so the client knows which one.
		hub.Fail(c.session(), &lp.req, chat.ErrRateLimited)
	case bad != nil:
		hub.Fail(c.session(), &lp.req, bad)
	default:
		hub.Handle(c.session(), &lp.req)
	}
	return nil
}

// OnControl implements frame.Handler.
func (c *conn) OnControl(op ws.OpCode, payload []byte) error {
	lp := c.lp
	switch op {
	case ws.OpPing:
		if c.ep != endpointEcho {
			// A ping flood is a message flood.
			switch c.rateLimit(len(payload)) {
			case limit.Limited:
				return nil
			case limit.Abuse:
				return chat.DisconnectRateLimit
			}
		}
		c.sendFrame(ws.OpPong, payload)
	case ws.OpClose:
		if len(payload) >= 2 {
			c.setWhy(metrics.CloseCode(int(payload[0])<<8 | int(payload[1])))
		} else {
			c.setWhy(metrics.CloseNoStatus)
		}
		if c.state == stateOpen {
			// Echo the peer's status code (RFC 6455 §5.5.1).
			if len(payload) >= 2 {
				lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpClose, payload[:2])
			} else {
				lp.wbuf = frame.AppendFrame(lp.wbuf, ws.OpClose, nil)
			}
		}
		return errPeerClosed
	}
	return nil
}

// WriteReply implements chat.Peer. It runs on the loop while the
// connection's traffic is handled, so the reply joins the same write.
func (c *conn) WriteReply(r *chat.Reply) {
	lp := c.lp
	lp.pbuf = lp.srv.hub.Codec(c.kind()).AppendReply(lp.pbuf[:0], r)
	if len(lp.pbuf) > 0 {
		c.sendFrame(ws.OpText, lp.pbuf)
	}
}

// The outbound path of a WebSocket connection. Every byte the gateway
// sends on an open WebSocket passes outboundOK, the one outbound policy:
// a connection whose unsent backlog is over MaxPending is closed as a slow
// consumer instead of growing gateway memory. There are three ways in, by
// where the bytes come from:
//
//   - sendFrame frames a payload the caller owns (a reply, a pong, an
//     Engine.IO packet) and copies it out;
//   - Deliver queues a shared payload during a mailbox pass; the loop
//     writes each connection once per pass (loop.flush);
//   - sendRaw writes compiled bytes (a ping).

// outboundOK applies the outbound policy before extra bytes are queued
// for c: false, with c closed as a slow consumer, once its backlog (bytes
// gnet holds, plus output pending in this traffic pass) is over
// MaxPending. On c's loop only.
func (c *conn) outboundOK(extra int) bool {
	if c.state != stateOpen {
		return false
	}
	backlog := c.gc.OutboundBuffered() + extra
	if c.lp.cur == c {
		backlog += len(c.lp.wbuf)
	}
	if backlog > c.lp.srv.cfg.MaxPending {
		c.slowConsumer("max_pending")
		return false
	}
	return true
}

// sendFrame frames payload as one message with opcode op and queues it:
// into the output of the current traffic pass when c's traffic is being
// handled (so it joins that write), else written at once.
func (c *conn) sendFrame(op ws.OpCode, payload []byte) {
	if !c.outboundOK(0) {
		return
	}
	lp := c.lp
	if lp.cur == c {
		lp.wbuf = c.appendFrame(lp.wbuf, op, payload)
		return
	}
	lp.tmp = c.appendFrame(lp.tmp[:0], op, payload)
	_, _ = c.gc.Write(lp.tmp)
	lp.sent += len(lp.tmp)
	lp.noteWrite(c, len(lp.tmp))
}

// appendFrame frames a payload of c's own (a reply, an Engine.IO
// packet), compressed for itself when c negotiated permessage-deflate.
func (c *conn) appendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	if c.deflate {
		return frame.AppendDeflatedFrame(dst, op, payload)
	}
	return frame.AppendFrame(dst, op, payload)
}

// sendRaw writes b, a complete frame, at once. Not during c's traffic
// handling (use sendFrame).
func (c *conn) sendRaw(b []byte) {
	if c.outboundOK(0) {
		_, _ = c.gc.Write(b)
	}
}

// Deliver implements Peer: it queues p's WebSocket framing for this pass
// of the mailbox. p stays referenced by its task until the pass is
// written.
func (c *conn) Deliver(p *payload.Shared) {
	if c.state != stateOpen {
		return
	}
	b := p.Framed()
	if c.deflate {
		// Compressed once per payload, by the first compressing member
		// to get it, whatever loop it is on; the others share it.
		z := p.Alt(deflateFramed)
		if perConnDeflate {
			z = deflateFramed(nil, p) // the benchmark's baseline
		}
		if len(z) > 0 {
			b = z
		}
	}
	if len(b) > 0 {
		c.lp.queue(c, b)
	}
}

// deflateFramed builds a payload's compressed framing (payload.Alt) from
// its WebSocket framing: the text compressed in one frame with RSV1, the
// same opcode. A payload with attachments, one too short to gain, or a
// relay that carries its frame outside the text (engineio's
// framedPayload) has none, and is sent as framed.
func deflateFramed(dst []byte, p *payload.Shared) []byte {
	f := p.Framed()
	text := p.Payload()
	if len(f) == 0 || p.Attachments() > 0 || len(text) < frame.DeflateMin || len(f) != frame.HeaderLen(len(text))+len(text) {
		return dst
	}
	start := len(dst)
	dst = frame.AppendDeflatedFrame(dst, ws.OpCode(f[0]&0x0f), text)
	if dst[start]&0x40 == 0 {
		return dst[:start] // not smaller compressed: the plain frame serves
	}
	deflates.Add(1)
	return dst
}

// deflates counts the payloads compressed by deflateFramed, for tests.
var deflates atomic.Int64

// perConnDeflate, set only by BenchmarkDeflate, compresses a broadcast
// for every compressing member instead of once, to measure what sharing
// saves.
var perConnDeflate bool

// Disconnect implements Peer: it closes c with d, waiting for the peer's
// close frame (the close handshake) up to the close timeout.
func (c *conn) Disconnect(d chat.Disconnect) {
	if c.state != stateOpen {
		return
	}
	if d == chat.DisconnectSlowConsumer {
		c.slowConsumer("max_pending")
		return
	}
	if c.lp.cur == c {
		// During c's own traffic handling: the close frame joins the
		// pass's output, after what was queued before it.
		c.setWhy(d.Metric)
		c.lp.wbuf = frame.AppendClose(c.lp.wbuf, ws.StatusCode(d.Code), d.Reason)
		c.state = stateClosing
		c.stamp = c.lp.srv.now() + int64(c.lp.srv.cfg.CloseTimeout)
		return
	}
	if d.Metric == metrics.CloseTimeout || d == chat.DisconnectUpgradeTimeout {
		c.closeNow(d) // the peer is not answering: no handshake to wait for
		return
	}
	c.startClose(d)
}

// maxMessage is the largest message the endpoint accepts.
func (c *conn) maxMessage() int {
	if c.ep == endpointProtocol {
		return c.lp.srv.protoMaxBody
	}
	return c.lp.srv.cfg.MaxMessage
}

// kind is the session kind (codec) of the connection's endpoint.
func (c *conn) kind() int { return KindNative }

// startClose sends a close frame and waits for the peer's answer until the
// close timeout. Called on the loop outside traffic handling.
func (c *conn) startClose(d chat.Disconnect) {
	c.setWhy(d.Metric)
	_, _ = c.gc.Write(frame.AppendClose(nil, ws.StatusCode(d.Code), d.Reason))
	c.state = stateClosing
	c.stamp = c.lp.srv.now() + int64(c.lp.srv.cfg.CloseTimeout)
}

// endSession closes c's chat session, if it has one, as closed for why,
// while the connection stays for its close handshake. Called on the loop.
func (c *conn) endSession(why metrics.CloseReason) {
	if c.session() == nil {
		return
	}
	c.session().SetCloseReason(why.String())
	c.lp.srv.hub.Close(c.session())
	c.setSession(nil)
}

// closeNow sends a close frame and drops the connection at once. Called on
// the loop outside traffic handling.
func (c *conn) closeNow(d chat.Disconnect) {
	c.setWhy(d.Metric)
	_, _ = c.gc.Write(frame.AppendClose(nil, ws.StatusCode(d.Code), d.Reason))
	c.state = stateClosed
	_ = c.lp.el.Close(c.gc)
}

// slowConsumer closes a connection whose unsent backlog passed MaxPending
// (reason "max_pending"), or the largest backlog of a node over
// MaxPendingTotal ("node_budget"). During c's own traffic handling the
// close is left to onTraffic, which drops the pass's output and returns
// gnet.Close.
func (c *conn) slowConsumer(reason string) {
	srv := c.lp.srv
	srv.m.SlowConsumerClosed()
	c.setWhy(metrics.CloseSlowConsumer)
	srv.log.Warn("slow consumer closed", "conn", c.id(), "client", c.clientIP().String(), "pending", c.gc.OutboundBuffered(), "reason", reason)
	// Its backlog is what it is not reading, so a close frame would sit
	// behind it: reset the connection instead (SO_LINGER 0), which the
	// client sees at once and which frees the backlog now.
	_ = c.gc.SetLinger(0)
	c.state = stateClosed
	if c.lp.cur != c {
		_ = c.lp.el.Close(c.gc)
	}
}

// id names the connection in logs: its chat session id, its protocol's
// name for it, or "".
func (c *conn) id() string {
	switch {
	case c.session() != nil:
		return c.session().ID()
	case c.protocol() != nil:
		return c.protocol().h.ID()
	}
	return ""
}

// closed runs from OnClose: it leaves every room and releases buffers.
func (c *conn) closed(err error) {
	if c.state == stateParked {
		if gone, ok := c.lp.parked[c]; ok {
			delete(c.lp.parked, c)
			gone()
		}
	}
	if p := c.protocol(); p != nil {
		p.h.Closed()
		c.peer = nil
	}
	if c.ipHeld {
		c.lp.srv.perIP.Release(c.clientIP())
		c.ipHeld = false
	}
	c.state = stateClosed
	c.lp.remove(c)
	c.dropMore()
	c.dropHead()
	if c.session() != nil {
		srv := c.lp.srv
		c.session().SetCloseReason(c.why.String())
		srv.hub.Close(c.session())
		if srv.log.Enabled(context.Background(), slog.LevelDebug) {
			srv.log.Debug("connection closed", "conn", c.session().ID(), "err", err)
		}
	}
}

// rateLimit accounts one inbound message of size bytes.
func (c *conn) rateLimit(size int) limit.Verdict {
	if c.more == nil {
		c.more = c.lp.getMore()
	}
	return c.more.lim.Message(c.lp.srv.now(), size, &c.lp.srv.cfg.Limits)
}

// releaseIP gives back a per-address slot taken by an admission that did
// not end in a connection.
func (c *conn) releaseIP(a admission) {
	if a.ipHeld {
		c.lp.srv.perIP.Release(c.clientIP())
	}
}

// dropHead forgets a kept partial request head.
func (c *conn) dropHead() {
	if c.partial {
		delete(c.lp.heads, c)
		c.partial = false
	}
}

// Describe implements chat.Describer. The client's address is set before
// the session opens and never changes, so any goroutine may read it.
func (c *conn) Describe() (protocol, transport, remote string) {
	return "native", "websocket", c.clientIP().String()
}
