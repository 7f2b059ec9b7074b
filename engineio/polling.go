package engineio

import (
	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/netpoll"
)

// Long-polling: a GET with nothing to send is parked until there is (at the
// latest the next ping, every PingInterval); packets for the client wait
// in the session's outbox and go out in one payload per GET.

// onGet handles a GET for the session, on its home loop.
func (ss *session) onGet(get held, origin []byte, keep bool) {
	ss.heartbeatNow()
	switch {
	case ss.done && ss.srv.reg.takeLinger(ss, ss.home.Now()):
		// A GET the client sent before it closed the session, handled
		// after the close (closeLinger): it gets the noop it would have
		// got held.
		ss.answer(get, 200, contentTypeText, ss.single(socketio.EIONoop), origin, keep)
	case ss.done || ss.ws.Valid():
		ss.answer(get, 400, contentTypeJSON, socketio.AppendHTTPError(nil, socketio.CodeUnknownSID, "Session ID unknown"), origin, false)
	case ss.r().get.Valid():
		// A second concurrent GET: the first gets a close packet, the
		// second an error, and the session ends (engine.io-protocol v4).
		first := ss.r().get
		ss.r().get = held{}
		ss.answer(first, 200, contentTypeText, ss.single(socketio.EIOClose), nil, true)
		ss.answer(get, 400, contentTypeJSON, socketio.AppendHTTPError(nil, socketio.CodeBadRequest, "Bad request"), origin, false)
		ss.close(chat.DisconnectBadPacket)
	case len(ss.r().out) > 0:
		ss.answer(get, 200, contentTypeText, ss.r().out, origin, keep)
		ss.r().out = ss.r().out[:0]
	case ss.r().probed:
		// An upgrade is under way: do not hold the client's poll, or it
		// stalls until the next ping before it can finish the switch.
		ss.answer(get, 200, contentTypeText, ss.single(socketio.EIONoop), origin, keep)
	default:
		ss.r().get = get
		ss.r().getOrigin, ss.r().getKeep = origin, keep
	}
}

// releaseGet answers a held GET with a noop packet, which ends the poll
// and nothing else (an upgrade's probe, the client's own close). On the
// home loop.
func (ss *session) releaseGet() {
	if ss.r().get.Valid() && !ss.done {
		get := ss.r().get
		ss.r().get = held{}
		ss.answer(get, 200, contentTypeText, ss.single(socketio.EIONoop), ss.r().getOrigin, ss.r().getKeep)
	}
}

// getGone forgets a parked GET whose connection closed, so that it is not
// answered into the void. On the home loop.
func (ss *session) getGone(get netpoll.Parked) {
	if ss.r().get == (held{p: get}) {
		ss.r().get = held{}
	}
}

// onPost handles a POST of packets, on the session's home loop.
func (ss *session) onPost(post held, body, origin []byte, keep bool) {
	ss.heartbeatNow()
	if ss.done || ss.ws.Valid() {
		ss.answer(post, 400, contentTypeJSON, socketio.AppendHTTPError(nil, socketio.CodeUnknownSID, "Session ID unknown"), origin, false)
		return
	}
	err := socketio.SplitPayload(body, func(pkt []byte) error {
		binary, data, err := socketio.DecodePollingPacket(pkt)
		if err != nil {
			return err
		}
		op := ws.OpText
		if binary {
			op = ws.OpBinary
		}
		return ss.message(op, data)
	})
	if err != nil && err != errClose {
		ss.answer(post, 400, contentTypeJSON, socketio.AppendHTTPError(nil, socketio.CodeBadRequest, "Bad request"), origin, false)
		d := chat.DisconnectBadPacket
		if dd, ok := err.(chat.Disconnect); ok {
			d = dd
		}
		ss.close(d)
		return
	}
	if err == errClose {
		// The client closed the session: the poll it left held ends with
		// a noop, as the reference server's does (engine.io-protocol
		// test suite, "forcefully closes the session"); the close packet
		// is for a session the server ends. With no poll held, one may
		// be on its way on another loop: the sid lingers for it. The
		// session ends before the answer: a client that has seen "ok"
		// finds its slots free and its sid forgotten (but for that one
		// GET). Not the client leaving the namespace: it may resume.
		if ss.r0().get.Valid() {
			ss.releaseGet()
		} else {
			ss.srv.linger(ss)
		}
		ss.close(chat.DisconnectTransport)
	}
	ss.answer(post, 200, "text/html", []byte("ok"), origin, keep)
}

// answer sends an HTTP response on a held request: a parked one, which
// may be on another loop, or one forwarded from another node (forward.go).
// On the home loop; body is copied.
func (ss *session) answer(h held, status int, contentType string, body, origin []byte, keep bool) {
	resp := netpoll.Response{Status: status, ContentType: contentType, Body: body, KeepAlive: keep}
	resp.Header = ss.srv.cfg.corsHeaders(origin, nil)
	if h.r != nil {
		h.r.answer(resp, true)
		return
	}
	h.p.Answer(ss.home, resp)
}

// held is a polling request waiting for its answer: parked on a loop of
// this node (p), or forwarded from another node over the cluster (r).
// Its zero value holds nothing.
type held struct {
	p netpoll.Parked
	r *remote
}

// Valid reports whether h holds a request.
func (h held) Valid() bool { return h.p.Valid() || h.r != nil }
