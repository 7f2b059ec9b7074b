package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/chatgate/chatgate/chat"
)

// What a peer sends is checked as strictly as client input, with or
// without a key: a payload that breaks a rule is dropped whole and counted
// (Stats.Invalid). The bounds are chat's.
const (
	maxRoomLen   = chat.MaxRoomKeyLen // bytes: a room key, namespace included
	maxNickRunes = chat.MaxNickLen    // characters
	maxNickBytes = 4 * maxNickRunes
	// maxUserLen bounds a user id: chat's bound of one a backend sets
	// (token subjects are shorter).
	maxUserLen = 256
	// maxEventLen bounds an event name (server API, backend emits).
	maxEventLen = 128
	// maxAttachments bounds the binary attachments of one message, as
	// package engineio bounds those of one Socket.IO packet.
	maxAttachments = 64
	// maxServerData bounds the data of a message of the server (no sender
	// id): the server API's request body and a backend's answer are at
	// most 1 MiB.
	maxServerData = 1 << 20
	// maxSessionRooms bounds the rooms of one remote session.
	maxSessionRooms = 1 << 16
	// A connection id is its node's tag and then 6 to 13 characters of
	// idAlphabet (a base32 counter, see chat/id.go).
	minIDDigits, maxIDDigits = 6, 13
)

// idAlphabet is chat's connection id alphabet (chat/id.go).
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

var idDigit = func() (t [256]bool) {
	for i := 0; i < len(idAlphabet); i++ {
		t[idAlphabet[i]] = true
	}
	return t
}()

// errInvalid is the error of a payload that decodes but breaks the limits.
var errInvalid = errors.New("cluster: payload breaks the limits")

// ownedID reports whether id is a connection id of node tag.
func ownedID(tag string, id []byte) bool {
	if len(id) < len(tag)+minIDDigits || len(id) > len(tag)+maxIDDigits || string(id[:len(tag)]) != tag {
		return false
	}
	for _, c := range id[len(tag):] {
		if !idDigit[c] {
			return false
		}
	}
	return true
}

// wellFormedID reports whether id has the shape of a connection id of
// some node: a tag and then 6 to 13 characters of idAlphabet.
func wellFormedID(id []byte) bool {
	if len(id) < 1+minIDDigits || len(id) > 64+maxIDDigits || !validToken(str(id[:len(id)-minIDDigits])) {
		return false
	}
	for _, c := range id[len(id)-minIDDigits:] {
		if !idDigit[c] {
			return false
		}
	}
	return true
}

// idRule says whether id may name a connection of node origin: a payload
// of origin that names it as its own (a sender, a member, a snapshot's
// session; with origin the receiver itself, a direct message's target).
// Cluster.connOf is the rule of a running node; ownedID alone is the
// strict rule of ids by their tags.
type idRule func(origin string, id []byte) bool

// strictIDs is idRule by tags only (no session ever moved between nodes).
func strictIDs(origin string, id []byte) bool { return ownedID(origin, id) }

// connOf is the node's idRule. An id carries its node's tag, and that
// node's claim is believed. A session resumed on another node keeps its
// id (chat recovery), so another node may claim an id of any well-formed
// shape too, unless the session is open here or, as far as the replica
// knows, on a third node. Any goroutine.
func (c *Cluster) connOf(origin string, id []byte) bool {
	if ownedID(origin, id) {
		return true
	}
	if !wellFormedID(id) {
		return false
	}
	c.local.mu.Lock()
	_, here := c.local.sessions[string(id)]
	c.local.mu.Unlock()
	if origin == c.cfg.Node || here {
		return here && origin == c.cfg.Node
	}
	owner, ok := c.rep.owner(id)
	return !ok || owner == origin
}

func validRoom(room []byte) bool { return len(room) >= 1 && len(room) <= maxRoomLen }

// validNick accepts "" (a session without a nickname yet) and chat's
// nicknames.
func validNick(nick []byte) bool {
	return len(nick) <= maxNickBytes && utf8.Valid(nick) && utf8.RuneCount(nick) <= maxNickRunes
}

func validUser(user []byte) bool { return len(user) <= maxUserLen && utf8.Valid(user) }

// validData reports whether data can go to clients as it is: empty (sent
// as null) or one JSON value, within limit.
func validData(data []byte, limit int) bool {
	return len(data) <= limit && (len(data) == 0 || json.Valid(data))
}

// check applies the limits to a decoded payload from a peer. self is this
// node's tag, maxMsg Config.MaxMessage, may the rule of connection ids.
func check(w *wireMsg, self string, maxMsg int, may idRule) error {
	origin := str(w.origin)
	if !validToken(origin) {
		return errInvalid
	}
	ok := true
	switch w.kind {
	case kindRoom, kindDirect, kindUser, kindAll:
		ok = checkMessage(w, origin, self, maxMsg, may)
	case kindState:
		ok = w.op >= opOpen && w.op <= opLeave && may(origin, w.id) && validNick(w.nick) && validUser(w.user)
		if w.op == opJoin || w.op == opLeave {
			ok = ok && validRoom(w.room)
		} else {
			ok = ok && len(w.room) == 0
		}
	}
	if !ok {
		return errInvalid
	}
	return nil
}

func checkMessage(w *wireMsg, origin, self string, maxMsg int, may idRule) bool {
	switch w.kind {
	case kindRoom:
		if !validRoom(w.room) {
			return false
		}
	case kindDirect: // the target is a connection of this node
		if !may(self, w.room) {
			return false
		}
	case kindUser:
		if len(w.room) == 0 || !validUser(w.room) {
			return false
		}
	case kindAll:
		if len(w.room) != 0 {
			return false
		}
	}
	limit := maxServerData
	if len(w.from) > 0 {
		// A client's message: sent by a connection of the origin, no
		// larger than a client may send, and never with an event (only
		// the server's messages have one).
		if !may(origin, w.from) || len(w.event) > 0 || w.mflag != 0 || len(w.except) > 0 {
			return false
		}
		limit = maxMsg
	} else if len(w.nick) > 0 || len(w.user) > 0 {
		return false // the server has no nickname or user
	}
	if !validNick(w.nick) || !validUser(w.user) || len(w.event) > maxEventLen || !utf8.Valid(w.event) {
		return false
	}
	if w.mflag&^msgEventArgs != 0 || len(w.except) > 0 && !wellFormedID(w.except) {
		return false
	}
	if !validData(w.data, limit) {
		return false
	}
	if w.mflag&msgEventArgs != 0 {
		// A backend's emit: an event and its argument array.
		if len(w.event) == 0 || len(w.data) > 0 && bytes.TrimLeft(w.data, " \t\r\n")[0] != '[' {
			return false
		}
	}
	if len(w.atts) > maxAttachments {
		return false
	}
	for _, a := range w.atts {
		if len(a) > limit {
			return false
		}
	}
	return true
}

// checkSessions applies the limits to the sessions of node tag's snapshot.
func checkSessions(tag string, ss []snapSession, may idRule) error {
	for i := range ss {
		s := &ss[i]
		if !may(tag, []byte(s.id)) || !validNick([]byte(s.nick)) || !validUser([]byte(s.user)) || len(s.rooms) > maxSessionRooms {
			return errInvalid
		}
		for _, r := range s.rooms {
			if !validRoom([]byte(r)) {
				return errInvalid
			}
		}
	}
	return nil
}
