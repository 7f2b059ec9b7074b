package chat

import (
	"encoding/json"
	"time"

	"github.com/chatgate/chatgate/auth"
)

// Tokens on live connections. A connection's token is checked at its
// handshake (and Socket.IO CONNECT); after that its "exp" still holds: the
// transports' sweeps close a connection whose token expired
// (DisconnectTokenExpired, 3003) unless the client sent a fresh one first
// ({"type":"refresh","token":…}, the Socket.IO "refresh" event). A
// refreshed token must name the same user; its rooms and publish claims
// apply from then on. A revoked user or token (the server API's revoke)
// is refused at every handshake and refresh until the revocation runs
// out, and its connections are closed (DisconnectRevoked, 3004).

// ErrRefreshUser refuses a refresh naming another user (or any refresh of
// an anonymous connection: a connection does not change its user).
var ErrRefreshUser = &Error{CodeForbidden, "a refreshed token must name the connection's user"}

// token is the token in force: the last refresh, else the handshake's.
// Own loop only.
func (s *Session) token() *auth.Identity {
	if m := s.m(); m != nil && m.grant != nil {
		return m.grant
	}
	return s.ident
}

// TokenExpired reports whether s's token in force expired before now
// (Unix nanoseconds), with auth.DefaultLeeway of grace for clock skew.
// Anonymous sessions never expire. Own loop only, from the sweeps.
func (s *Session) TokenExpired(now int64) bool {
	t := s.token()
	if t == nil || t.Expires.IsZero() {
		return false
	}
	if m := s.m(); m != nil && m.extended != 0 && now <= m.extended {
		return false
	}
	return now > t.Expires.UnixNano()+int64(auth.DefaultLeeway)
}

// ExpireToken is what the transports' sweeps call for s on its loop: it
// reports whether s must close now because its token expired. With a
// refresh backend (-proxy-refresh-url) an expired session is not closed
// at once: the backend is asked, and its answer either lets it go on
// until the "expire_at" it gives (Unix seconds), or closes it with 3003
// (an error, a past expire_at, a backend that is down or slow) or with
// the backend's own disconnect.
func (h *Hub) ExpireToken(s *Session, now int64) bool {
	if !s.TokenExpired(now) {
		return false
	}
	if h.backend == nil || !h.backend.Handles(CallRefresh) {
		return true
	}
	if m := s.m(); m != nil && m.refreshing {
		return false
	}
	s.x().refreshing = true
	body, _ := json.Marshal(struct {
		Client string `json:"client"`
		User   string `json:"user"`
	}{s.id, s.User()})
	h.backend.Call(CallRefresh, body, func(a BackendAnswer) {
		h.transport.Exec(s, func() {
			s.m().refreshing = false
			if !h.sessions.has(s) {
				return
			}
			switch {
			case a.Disconnect != nil:
				h.transport.Disconnect(s, *a.Disconnect)
				return
			case a.Err != nil:
				h.transport.Disconnect(s, DisconnectTokenExpired)
				return
			}
			var res struct {
				ExpireAt int64 `json:"expire_at"`
			}
			if decodeResult(a.Result, &res) != nil || time.Unix(res.ExpireAt, 0).Before(time.Now()) {
				h.transport.Disconnect(s, DisconnectTokenExpired)
				return
			}
			s.m().extended = time.Unix(res.ExpireAt, 0).UnixNano()
		})
	})
	return false
}

// refresh applies OpRefresh.
func (h *Hub) refresh(s *Session, req *Request) *Error {
	if h.cfg.Verifier == nil {
		return &Error{CodeUnauthorized, "authentication is off"}
	}
	id, err := h.cfg.Verifier.Verify(req.Token)
	if err != nil {
		return &Error{CodeUnauthorized, auth.Reason(err)}
	}
	if s.ident == nil || id.Subject != s.ident.Subject {
		return ErrRefreshUser
	}
	s.x().grant = id
	s.m().extended = 0 // the new token's exp rules from now on
	return nil
}

// RevokeLocal closes the sessions on this node of user (when not "") or
// of the token with "jti" id (when not ""), and returns how many. Safe
// from any goroutine: it reads only what never changes after Open.
func (h *Hub) RevokeLocal(user, id string) int {
	n := 0
	for _, s := range h.sessions.all(nil) {
		if s.ident == nil {
			continue
		}
		if (user != "" && s.ident.Subject == user) || (id != "" && s.ident.TokenID == id) {
			h.transport.Disconnect(s, DisconnectRevoked)
			n++
		}
	}
	return n
}

// Revoke refuses user's or token id's handshakes and refreshes on this
// node until until, and closes their sessions here.
func (h *Hub) Revoke(user, id string, until time.Time) int {
	if h.cfg.Verifier != nil {
		h.cfg.Verifier.Revoke(user, id, until)
	}
	return h.RevokeLocal(user, id)
}
