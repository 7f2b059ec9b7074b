package auth

import (
	"strings"
	"time"
)

// Identity is what a verified token says about its holder. It is immutable:
// the same *Identity may be handed to every connection that presents the
// same token.
//
// A nil *Identity is an anonymous connection (authentication optional and
// no token given); every method accepts it.
type Identity struct {
	// Subject is the token's "sub": the user id shown next to the nickname
	// in messages, member lists and presence events.
	Subject string
	// Rooms lists the rooms the holder may join, from the "rooms" claim.
	// nil means any room (no claim, or a "*" entry); an empty non-nil
	// slice means none.
	Rooms []RoomPattern
	// Publish narrows the rooms the holder may send to, from the
	// "publish" claim (same patterns as Rooms); without the claim the
	// holder may send wherever it may join. Sending also needs
	// membership, so a room must be in both.
	Publish []RoomPattern
	// Expires is the token's "exp". It is checked when the token is
	// verified, and on open connections (the transports close a
	// connection whose token expired and was not refreshed).
	Expires time.Time
	// TokenID is the token's "jti", "" when absent: what a revocation can
	// name.
	TokenID string

	publishSet bool // the token had a "publish" claim

	// notBefore is the latest of "nbf" and "iat" (zero if neither), which
	// a cache hit checks again in case the clock moved back.
	notBefore time.Time
}

// User returns the user id (the token's "sub"), or "" for an anonymous
// connection (nil id).
func (id *Identity) User() string {
	if id == nil {
		return ""
	}
	return id.Subject
}

// MayJoin reports whether the holder may join room. An anonymous
// connection (nil id) may join any room: when authentication is optional,
// anonymous clients are not restricted by room, only by the limits every
// connection has. Safe from any goroutine.
func (id *Identity) MayJoin(room []byte) bool {
	if id == nil || id.Rooms == nil {
		return true
	}
	for _, p := range id.Rooms {
		if p.Match(room) {
			return true
		}
	}
	return false
}

// MayPublish reports whether the holder may send to room: allowed by the
// "publish" claim when the token has one (a "*" entry allows any room).
// An anonymous connection (nil id) may. Safe from any goroutine.
func (id *Identity) MayPublish(room []byte) bool {
	if id == nil || !id.publishSet || id.Publish == nil {
		return true
	}
	for _, p := range id.Publish {
		if p.Match(room) {
			return true
		}
	}
	return false
}

// valid reports whether the identity's token is still valid at now, with
// the same rules (and leeway) as the first verification.
func (id *Identity) valid(now time.Time, leeway time.Duration) bool {
	return now.Before(id.Expires.Add(leeway)) && !now.Before(id.notBefore.Add(-leeway))
}

// RoomPattern is one entry of the "rooms" claim: an exact room name, or a
// prefix when the entry ends with '*' ("team-*" matches "team-", "team-a"
// and "team-a/b"). Only a trailing '*' is special; elsewhere it is an
// ordinary character. Names compare byte for byte, case-sensitively, like
// room names themselves.
type RoomPattern struct {
	// Name is the exact room name, or the prefix when Prefix is set.
	Name string
	// Prefix makes Name match every room that starts with it.
	Prefix bool
}

// Match reports whether room matches the pattern.
func (p RoomPattern) Match(room []byte) bool {
	if p.Prefix {
		return len(room) >= len(p.Name) && string(room[:len(p.Name)]) == p.Name
	}
	return string(room) == p.Name
}

// String returns the pattern as written in the claim.
func (p RoomPattern) String() string {
	if p.Prefix {
		return p.Name + "*"
	}
	return p.Name
}

// parseRooms turns the "rooms" claim into patterns; nil when an entry is
// "*" (any room). Entries are known to be non-empty.
func parseRooms(entries []string) []RoomPattern {
	out := make([]RoomPattern, 0, len(entries))
	for _, e := range entries {
		if e == "*" {
			return nil
		}
		if name, ok := strings.CutSuffix(e, "*"); ok {
			out = append(out, RoomPattern{Name: name, Prefix: true})
		} else {
			out = append(out, RoomPattern{Name: e})
		}
	}
	return out
}
