package engineio

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/metrics"
	"github.com/chatgate/chatgate/netpoll"
)

// Long-polling without sticky sessions. A polling session lives on the
// node whose loop answered its handshake (its home node). In cluster mode
// its sid is that node's tag, a dot and the random part ("a1b2.Xk…"), so
// a node that receives a GET or POST for a sid it does not hold reads the
// home node from the sid, with no lookup, and forwards the request over
// NATS (cluster.Cluster.CallPolling); the home node handles it as it
// would a request of its own — a GET with nothing to send is held until
// there is, at the latest the next ping — and its answer goes back
// through the receiving node to the client.
//
// The receiving node parks the client's request as it parks a held GET,
// and one goroutine per forwarded request waits for the home node's answer
// (never the event loop); the answer reaches the client through its loop's
// mailbox (netpoll.Parked.Answer). At most Config.MaxForwarded are in
// flight per node. What the client gets when forwarding fails:
//
//   - a sid naming no live node (forged, or its node is gone): 400
//     {"code":1,"message":"Session ID unknown"}, the reference server's
//     answer to an unknown sid;
//   - a session that has ended (or ends before the request reaches it):
//     the home node's own answer, 400 Session ID unknown, or the close
//     packet for a GET held when it ended;
//   - NATS down, or no answer in time (PingInterval+PingTimeout+
//     forwardMargin for a GET, PingTimeout+forwardMargin for a POST), or
//     past MaxForwarded: 503. The session may well be alive, so it is not
//     called unknown; the client treats any non-200 as a transport error
//     and reconnects, and a 503 tells operators and load balancers the
//     fault is transient (chatgate_polling_forwarded_total tells them
//     apart).
//
// The random part of a sid keeps its 120 bits: the node tag only adds to
// it, so a sid is no easier to guess in cluster mode.

// Forwarder is the cluster as polling forwarding needs it; a
// *cluster.Cluster is one.
type Forwarder interface {
	// Node is this node's tag.
	Node() string
	// Nodes lists the tags of the other live nodes.
	Nodes() []string
	// Connected reports whether NATS is reachable.
	Connected() bool
	// CallPolling sends a forwarded request to node and returns its
	// answer; it fails at once while NATS is down.
	CallPolling(ctx context.Context, node string, req []byte) ([]byte, error)
	// ServePolling serves the requests other nodes forward here.
	ServePolling(fn func(req []byte, respond func([]byte))) error
}

// sidSep separates a cluster sid's node tag from its random part: a
// character neither a node tag nor base64url uses.
const sidSep = "."

// forwardMargin is added to a forwarded request's timeout on top of the
// longest the home node may take to answer it.
const forwardMargin = 5 * time.Second

// SetForwarder turns on polling forwarding through f (cluster mode): the
// sids of new sessions carry f's node tag, and f serves the requests other
// nodes forward here. Call it before the server runs.
func (s *Server) SetForwarder(f Forwarder) error {
	if err := f.ServePolling(s.serveForwarded); err != nil {
		return err
	}
	s.fwd, s.node = f, f.Node()
	return nil
}

// newSID returns a new session's sid: its node tag first in cluster mode.
func (s *Server) newSID() string {
	var b [64]byte
	return string(s.appendSID(b[:0]))
}

// appendSID appends a new sid (newSID) to dst.
func (s *Server) appendSID(dst []byte) []byte {
	if s.node != "" {
		dst = append(append(dst, s.node...), sidSep...)
	}
	return appendRandomSID(dst)
}

// sidNode returns the node tag of a cluster sid, or "" for a sid without
// one.
func sidNode(sid string) string {
	i := strings.LastIndex(sid, sidSep)
	if i <= 0 {
		return ""
	}
	return sid[:i]
}

// forward forwards a polling request for sid, whose home is node, and
// parks it until the answer comes. On the request's loop; the origin has
// been checked.
func (s *Server) forward(x *netpoll.Exchange, sid, node, method string) {
	m := s.cfg.Metrics
	if method != "GET" && method != "POST" {
		s.httpError(x, socketio.ErrBadRequest)
		return
	}
	if !s.fwd.Connected() {
		// First: during an outage the node list empties as heartbeats
		// stop, and a live session's node is not unknown, only out of
		// reach.
		m.Forwarded(metrics.ForwardUnavailable)
		s.unavailable(x)
		return
	}
	if !slices.Contains(s.fwd.Nodes(), node) {
		m.Forwarded(metrics.ForwardUnknownNode)
		s.httpError(x, socketio.ErrUnknownSID)
		return
	}
	if s.fwdBusy.Add(1) > int64(s.cfg.MaxForwarded) {
		s.fwdBusy.Add(-1)
		m.Forwarded(metrics.ForwardBusy)
		s.unavailable(x)
		return
	}
	req := x.Request()
	fr := forwardReq{post: method == "POST", sid: sid, origin: req.Header("Origin"),
		authorization: req.Header("Authorization"), query: req.Query,
		contentType: req.Header("Content-Type"), body: x.Body()}
	b := fr.append(nil) // a copy: the request aliases the read buffer
	origin := append([]byte(nil), req.Header("Origin")...)
	keep := req.KeepAlive()
	timeout := s.cfg.PingTimeout + forwardMargin
	if !fr.post {
		timeout += s.cfg.PingInterval
	}
	// A client that goes away leaves the answer to be dropped (Answer
	// skips a closed connection).
	p := x.Park(func() {})
	go s.callHome(p, node, b, origin, keep, timeout)
}

// callHome waits for the home node's answer to a forwarded request and
// answers the parked client with it. On its own goroutine.
func (s *Server) callHome(p netpoll.Parked, node string, req, origin []byte, keep bool, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	b, err := s.fwd.CallPolling(ctx, node, req)
	cancel()
	s.fwdBusy.Add(-1)
	var res forwardRes
	if err == nil {
		err = res.decode(b)
	}
	if err != nil {
		s.cfg.Metrics.Forwarded(metrics.ForwardUnavailable)
		resp := unavailableResponse()
		resp.Header = s.cfg.corsHeaders(origin, resp.Header)
		p.Answer(nil, resp)
		return
	}
	if res.status == 200 {
		s.cfg.Metrics.Forwarded(metrics.ForwardAnswered)
	} else {
		s.cfg.Metrics.Forwarded(metrics.ForwardRefused)
	}
	p.Answer(nil, netpoll.Response{Status: res.status, ContentType: res.contentType,
		Header: res.header, Body: res.body, KeepAlive: keep && res.keep})
}

// unavailableResponse is the answer when a request cannot be forwarded
// now (see the package comment above).
func unavailableResponse() netpoll.Response {
	return netpoll.Response{Status: 503, ContentType: "text/plain; charset=utf-8",
		Body: []byte("session's node unreachable\n")}
}

// unavailable refuses a polling request with 503 and closes the
// connection.
func (s *Server) unavailable(x *netpoll.Exchange) { s.refuse(x, unavailableResponse()) }

// serveForwarded handles a request another node forwarded here, on a NATS
// goroutine, one at a time: it never blocks, and hands the request to the
// session's home loop as ServeHTTP does. Malformed input is answered 400.
func (s *Server) serveForwarded(b []byte, respond func([]byte)) {
	rem := &remote{respond: respond}
	var fr forwardReq
	if err := fr.decode(b, s.cfg.MaxMessage); err != nil {
		s.cfg.Metrics.Forwarded(metrics.ForwardBad)
		rem.answer(errorResponse(socketio.ErrBadRequest), false)
		return
	}
	s.cfg.Metrics.Forwarded(metrics.ForwardServed)
	ss := s.reg.get(fr.sid)
	if ss == nil && !fr.post {
		ss = s.reg.lingering(fr.sid)
	}
	if ss == nil || ss.polled().onWS.Load() {
		resp := errorResponse(socketio.ErrUnknownSID)
		resp.Header = s.cfg.corsHeaders(fr.origin, nil)
		rem.answer(resp, false)
		return
	}
	if ref := s.tokenRefusal(fr.authorization, fr.query, ss); ref != nil {
		ref.Header = s.cfg.corsHeaders(fr.origin, ref.Header)
		rem.answer(*ref, false)
		return
	}
	h := held{r: rem}
	origin := fr.origin
	if !fr.post {
		onGet := func() { ss.onGet(h, origin, true) }
		if relay := ss.polled().relay.Load(); relay != nil {
			// Behind what a probing WebSocket has read (ServeHTTP).
			relay.Run(nil, func() { ss.home.Run(relay, onGet) })
			return
		}
		ss.home.Run(nil, onGet)
		return
	}
	body := fr.body
	if ss.eio3 {
		body = v3Body(body, fr.contentType)
	}
	ss.home.Run(nil, func() { ss.onPost(h, body, origin, true) })
}

// errorResponse is the JSON error answer of he.
func errorResponse(he *socketio.HandshakeError) netpoll.Response {
	return netpoll.Response{Status: he.Status(), ContentType: contentTypeJSON,
		Body: socketio.AppendHTTPError(nil, he.Code, he.Message)}
}

// remote is a request forwarded from another node, held until its answer.
type remote struct {
	respond func([]byte)
}

// answer sends resp back to the node that forwarded the request. From a
// loop (async: the NATS publish happens on a goroutine of its own, so a
// loop never waits on the NATS connection's write buffer) or from the NATS
// goroutine.
func (r *remote) answer(resp netpoll.Response, async bool) {
	res := forwardRes{status: resp.Status, keep: resp.KeepAlive, contentType: resp.ContentType,
		header: resp.Header, body: resp.Body}
	b := res.append(nil)
	if async {
		go r.respond(b)
		return
	}
	r.respond(b)
}

// The forwarding codec. A request: version, method ('G' or 'P'), then
// the sid, Origin, Authorization, query, Content-Type and body, each a
// uvarint length and its bytes. An answer: version, status (uint16), a
// keep-alive byte, the Content-Type, a uvarint count of header lines and
// each line, and the body, strings as above.

const forwardVersion = 1

// Bounds of the codec: a header line count and the sid are small; fields
// other than the body share forwardMaxField.
const (
	forwardMaxHeaders = 16
	forwardMaxField   = 16 << 10
)

var errForward = errors.New("engineio: malformed forwarded polling message")

// forwardReq is a forwarded polling request. Decoded fields alias the
// message.
type forwardReq struct {
	post                         bool
	sid                          string
	origin, authorization, query []byte
	contentType, body            []byte
}

func (r *forwardReq) append(b []byte) []byte {
	m := byte('G')
	if r.post {
		m = 'P'
	}
	b = append(b, forwardVersion, m)
	b = appendField(b, []byte(r.sid))
	for _, f := range [][]byte{r.origin, r.authorization, r.query, r.contentType, r.body} {
		b = appendField(b, f)
	}
	return b
}

// decode reads a request whose body is at most maxBody bytes.
func (r *forwardReq) decode(b []byte, maxBody int) error {
	if len(b) < 2 || b[0] != forwardVersion || b[1] != 'G' && b[1] != 'P' {
		return errForward
	}
	r.post = b[1] == 'P'
	b = b[2:]
	var sid []byte
	var ok bool
	for _, f := range []*[]byte{&sid, &r.origin, &r.authorization, &r.query, &r.contentType} {
		if *f, b, ok = readField(b, forwardMaxField); !ok {
			return errForward
		}
	}
	if r.body, b, ok = readField(b, maxBody); !ok || len(b) != 0 || len(sid) == 0 {
		return errForward
	}
	r.sid = string(sid)
	return nil
}

// forwardRes is the home node's answer to a forwarded request.
type forwardRes struct {
	status      int
	keep        bool
	contentType string
	header      []string
	body        []byte
}

func (r *forwardRes) append(b []byte) []byte {
	b = append(b, forwardVersion, byte(r.status>>8), byte(r.status), 0)
	if r.keep {
		b[len(b)-1] = 1
	}
	b = appendField(b, []byte(r.contentType))
	b = binary.AppendUvarint(b, uint64(len(r.header)))
	for _, h := range r.header {
		b = appendField(b, []byte(h))
	}
	return appendField(b, r.body)
}

func (r *forwardRes) decode(b []byte) error {
	if len(b) < 4 || b[0] != forwardVersion || b[3] > 1 {
		return errForward
	}
	r.status, r.keep = int(b[1])<<8|int(b[2]), b[3] == 1
	if r.status < 200 || r.status > 599 {
		return errForward
	}
	ct, b, ok := readField(b[4:], forwardMaxField)
	if !ok || strings.ContainsAny(string(ct), "\r\n\x00") {
		return errForward
	}
	r.contentType = string(ct)
	n, k := binary.Uvarint(b)
	if k <= 0 || n > forwardMaxHeaders {
		return errForward
	}
	b = b[k:]
	r.header = make([]string, 0, n)
	for range n {
		var h []byte
		if h, b, ok = readField(b, forwardMaxField); !ok || !validHeaderLine(h) {
			return errForward
		}
		r.header = append(r.header, string(h))
	}
	// The body is bounded by the NATS message size.
	if r.body, b, ok = readField(b, len(b)); !ok || len(b) != 0 {
		return errForward
	}
	return nil
}

// validHeaderLine reports whether h can be written as a header line as it
// is ("Name: value", no line breaks), so that a forged answer cannot
// split the response.
func validHeaderLine(h []byte) bool {
	if i := strings.IndexByte(string(h), ':'); i <= 0 {
		return false
	}
	for _, c := range h {
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

func appendField(b, f []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return append(b, f...)
}

// readField reads one length-prefixed field of at most max bytes.
func readField(b []byte, max int) (f, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(max) || n > uint64(len(b)-k) {
		return nil, b, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}
