package netpoll

import (
	"strconv"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/frame"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/metrics"
	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
)

// Reconnect-storm control (docs/deploy.md, "Reconnect storms"): the node
// admits at most Limits.HandshakeRate new sessions per second, with
// Limits.HandshakeBurst at once. A handshake past it is refused with 503
// and a Retry-After that spreads the refused clients over the time the
// node needs to let them all in (limit.Gate), before any other work on
// it: no origin or token check, no backend call, no session, no history
// read.

// CloseTryAgainLater is the close code (RFC 6455 §7.4.1, registered as
// "Try Again Later") a /ws?limited=close client gets instead of the 503:
// a browser cannot read the status of a refused upgrade, but it reads a
// close frame's code and reason.
const CloseTryAgainLater = 1013

// rateLimitedBody is the body of every handshake-rate refusal.
var rateLimitedBody = []byte("too many handshakes, retry later\n")

// rateLimitedResponses builds the refusals once, one per Retry-After
// second, so that a refusal in a storm allocates nothing.
func rateLimitedResponses() []Response {
	n := int(limit.MaxRetryAfter/time.Second) + 1 // RetryAfter may round the horizon up
	rs := make([]Response, n+1)
	for i := 1; i <= n; i++ {
		h := []string{"Retry-After: " + strconv.Itoa(i)}
		// Capped, so that a protocol appending its own lines (CORS) copies.
		rs[i] = Response{Status: 503, Body: rateLimitedBody, Header: h[:1:1], retryAfter: i}
	}
	return rs
}

// handshakeRate takes a token from the node's handshake rate, and returns
// the refusal to send when there is none (nil when it passes). Safe from
// any loop. It reads the wall clock rather than the sweep's coarse one: a
// storm arrives within one sweep period, and at a rate of thousands a
// second the bucket must refill between handshakes, not once a period.
func (s *Server) handshakeRate() *Response {
	lim := &s.cfg.Limits
	if lim.HandshakeRate <= 0 {
		return nil
	}
	ok, wait := s.hsGate.Take(time.Now().UnixNano(), lim.HandshakeRate, lim.HandshakeBurst)
	if ok {
		return nil
	}
	return &s.limited[min(limit.RetryAfter(wait), len(s.limited)-1)]
}

// closeWhenLimited reports whether the client asked (?limited=close) to
// learn of a handshake-rate refusal from a close frame rather than a 503.
func closeWhenLimited(req *Request) bool {
	return string(auth.QueryParam(req.Query, "limited")) == "close"
}

// closeLimited answers a handshake-rate refusal of a /ws?limited=close
// client: the upgrade completes, then the connection closes at once with
// 1013 and the reason "retry-after=<ms>", the Retry-After in
// milliseconds. No session is opened; the only work beyond the 503 is the
// 101 response and a close frame.
func (c *conn) closeLimited(req *Request, seconds int) gnet.Action {
	if !c.handshake(req, admission{}) {
		return gnet.Close // answered already (426 or 400)
	}
	c.lp.srv.m.HandshakeFailed(metrics.HandshakeRateLimited)
	var b [32]byte
	reason := strconv.AppendInt(append(b[:0], "retry-after="...), int64(seconds)*1000, 10)
	c.lp.wbuf = frame.AppendClose(c.lp.wbuf, ws.StatusCode(CloseTryAgainLater), string(reason))
	c.why = metrics.CloseCode(CloseTryAgainLater)
	c.state = stateClosed
	c.dropHead()
	return gnet.Close
}
