package netpoll

import (
	"net/netip"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/clientip"
)

// Admission: what a client must pass before it becomes a chat session —
// its browser origin, its token, and the per-address connection limit —
// checked on the event loop before the upgrade (or the long-polling
// handshake), so a refused client gets a plain HTTP answer and never
// appears in any room or list.

// admission is what an admitted handshake carries on: the client's
// identity (nil: anonymous) and whether a per-address slot was taken for
// it (to be released when the connection or session ends).
type admission struct {
	ident  *auth.Identity
	ipHeld bool
}

// admit checks a handshake from ip; a refused one gets the HTTP answer to
// send instead of the upgrade. tokenRequired is false where the
// token may still come later (a Socket.IO CONNECT); holdIP takes a slot of
// the per-address limit.
//
// The order is the documented one (docs/security.md): the node's
// handshake rate first (a storm is refused before any work on it), then
// the per-address limit (cheap, and it bounds what one address can make
// the gateway verify), then the origin, then the token.
func (s *Server) admit(req *Request, ip netip.Addr, tokenRequired, holdIP bool) (admission, *Response) {
	var a admission
	if ref := s.handshakeRate(); ref != nil {
		return a, ref
	}
	// A trusted proxy's own requests (health checks: no forwarding
	// header at all) are not counted against its address. A request it
	// forwarded whose headers named no client (garbage, "unknown", only
	// trusted hops) resolved to the proxy's address, and counts there.
	if holdIP && (!s.cfg.TrustedProxies.Contains(ip) || clientip.HasForwarding(req.Head)) {
		if !s.perIP.Acquire(ip, s.cfg.Limits.MaxConnectionsPerIP) {
			return a, refused(textResponse(429, "too many connections from this address\n"))
		}
		a.ipHeld = true
	}
	if !s.cfg.Origins.Allowed(req.Header("Origin")) {
		s.releaseIP(ip, a)
		return a, refused(textResponse(403, "origin not allowed\n"))
	}
	if v := s.cfg.Verifier; v != nil {
		tok := auth.TokenFrom(req.Header("Authorization"), req.Query)
		if tok != nil || (tokenRequired && s.cfg.AuthRequired) {
			ident, err := v.Verify(tok)
			if err != nil {
				s.releaseIP(ip, a)
				return a, &Response{Status: 401, Body: []byte("unauthorized: " + auth.Reason(err) + "\n"),
					Header: []string{"WWW-Authenticate: " + auth.Challenge(err)}}
			}
			a.ident = ident
		}
	}
	return a, nil
}

// releaseIP gives back the per-address slot of a refused admission.
func (s *Server) releaseIP(ip netip.Addr, a admission) {
	if a.ipHeld {
		s.perIP.Release(ip)
	}
}

// refuse logs a refused handshake on c; the response that follows
// (respond) counts it in the metrics by its status.
func (c *conn) refuse(r *Response) {
	c.lp.srv.log.Debug("handshake refused", "client", c.clientIP().String(), "status", r.Status)
}

func refused(r Response) *Response { return &r }

// Identity is the client's verified identity, nil while anonymous.
func (a admission) Identity() *auth.Identity { return a.ident }

// HoldsIP reports whether the admission took a per-address slot, which
// its holder gives back when the session ends.
func (a admission) HoldsIP() bool { return a.ipHeld }
