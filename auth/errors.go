package auth

import (
	"errors"
	"strings"
)

// Error is a sentinel error of this package. Compare with errors.Is.
type Error string

func (e Error) Error() string { return string(e) }

// Errors returned by Verify and the origin parser. The text after "auth: "
// is safe to show to clients: it names what is wrong with the token, never
// anything about the key.
const (
	// ErrNoToken: the request carried no token at all.
	ErrNoToken Error = "auth: no token"
	// ErrInvalidToken: the token is not a well-formed JWS compact
	// serialization (three base64url parts, JSON header and claims), is
	// longer than MaxTokenLen, or uses header features chatgate does not
	// implement ("crit").
	ErrInvalidToken Error = "auth: malformed token"
	// ErrAlgorithm: the token's "alg" is not the one the Verifier was
	// configured for ("none" and algorithm confusion end here).
	ErrAlgorithm Error = "auth: signing algorithm not accepted"
	// ErrBadSignature: the signature does not match the key.
	ErrBadSignature Error = "auth: bad signature"
	// ErrExpired: "exp" is in the past (beyond the leeway).
	ErrExpired Error = "auth: token expired"
	// ErrNotYetValid: "nbf" or "iat" is in the future (beyond the leeway).
	ErrNotYetValid Error = "auth: token not valid yet"
	// ErrNoExpiry: the token has no "exp" claim. Tokens that never expire
	// are refused.
	ErrNoExpiry Error = "auth: token has no exp claim"
	// ErrNoSubject: the token has no "sub" claim, or an empty one.
	ErrNoSubject Error = "auth: token has no sub claim"
	// ErrBadClaims: a claim has a value chatgate refuses: "sub" longer than
	// MaxSubjectLen, not UTF-8 or with control characters; a "rooms" entry
	// that is empty.
	ErrBadClaims Error = "auth: invalid claims"
	// ErrBadOrigin: an entry of an origin allowlist does not parse.
	ErrBadOrigin Error = "auth: invalid origin"
	// ErrRevoked: the token's "jti" or its user was revoked (the server
	// API's revoke) and the revocation has not run out.
	ErrRevoked Error = "auth: token revoked"
)

// Reason returns the client-facing description of an error of this
// package, without the "auth: " prefix ("token expired", "no token"), for
// the body of a 401 or the reason of a Socket.IO CONNECT_ERROR. Other
// errors give "invalid token".
func Reason(err error) string {
	var e Error
	if errors.As(err, &e) {
		return strings.TrimPrefix(string(e), "auth: ")
	}
	return "invalid token"
}

// Challenge returns the WWW-Authenticate header value (RFC 6750 §3) for a
// 401 response caused by err: a bare challenge when no token was given,
// otherwise error="invalid_token" with err's reason as the description.
func Challenge(err error) string {
	const realm = `Bearer realm="chatgate"`
	if err == nil || errors.Is(err, ErrNoToken) {
		return realm
	}
	return realm + `, error="invalid_token", error_description="` + Reason(err) + `"`
}
