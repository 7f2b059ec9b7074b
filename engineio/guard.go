package engineio

import (
	"crypto/sha256"
	"crypto/subtle"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/netpoll"
)

// The sid is a bearer secret: a request that names it (a poll, a POST,
// the WebSocket of an upgrade) acts as the session, from any address. So
// every such request passes the handshake's checks again, on the loop it
// came on and before it is parked or upgraded: the origin allowlist
// (netpoll.Exchange.CheckOrigin, 403) and, when authentication is on, the
// token (checkToken, 401). A refused request changes nothing in the
// session. docs/security.md has the rules.

// errOtherUser refuses a token that names another user than the session's.
const errOtherUser = "token names another user"

// checkToken applies the token rules to a request for ss, when
// authentication is on, and returns the refusal (already logged), or nil:
//
//   - a token on the request (Authorization: Bearer or ?token=) that is
//     the handshake's own (the same bytes) passes: it was verified then,
//     and the session's own expiry and refresh govern it since;
//   - any other token must verify now and name the session's user (an
//     anonymous session has none, so it takes no token later);
//   - without a token, a session admitted with one at its handshake is
//     refused under -auth-required: its sid alone does not stand in for
//     its token. A session whose token came in the CONNECT auth payload
//     (which no later request repeats) is guarded by its sid alone.
//
// On any loop: it reads only what never changes after the session is
// registered, and the identity through its atomic mirror.
func (s *Server) checkToken(x *netpoll.Exchange, ss *session) *netpoll.Response {
	req := x.Request()
	r := s.tokenRefusal(req.Header("Authorization"), req.Query, ss)
	if r != nil {
		x.Refused(r)
	}
	return r
}

// tokenRefusal is checkToken's rule on a request's Authorization header
// and query, for a request forwarded from another node too (forward.go):
// the refusal, not yet logged, or nil.
func (s *Server) tokenRefusal(authorization, query []byte, ss *session) *netpoll.Response {
	v := s.cfg.Verifier
	if v == nil {
		return nil
	}
	tok := auth.TokenFrom(authorization, query)
	var reason, challenge string
	switch {
	case tok == nil:
		if !s.cfg.AuthRequired || ss.polled().tokenSum == nil {
			return nil
		}
		reason, challenge = auth.Reason(auth.ErrNoToken), auth.Challenge(auth.ErrNoToken)
	case ss.polled().tokenSum != nil && sameToken(tok, ss.polled().tokenSum):
		return nil
	default:
		ident, err := v.Verify(tok)
		switch {
		case err != nil:
			reason, challenge = auth.Reason(err), auth.Challenge(err)
		case ident.User() != ss.polled().identity.Load().User():
			reason = errOtherUser
			challenge = auth.Challenge(nil) + `, error="invalid_token", error_description="` + errOtherUser + `"`
		default:
			return nil
		}
	}
	r := &netpoll.Response{Status: 401, ContentType: "text/plain; charset=utf-8",
		Body: []byte("unauthorized: " + reason + "\n"), Header: []string{"WWW-Authenticate: " + challenge}}
	return r
}

// sameToken reports whether tok is the token whose SHA-256 is sum.
func sameToken(tok []byte, sum *[sha256.Size]byte) bool {
	got := sha256.Sum256(tok)
	return subtle.ConstantTimeCompare(got[:], sum[:]) == 1
}
