package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/chatgate/chatgate/rooms"
)

// TestTokenMACReusesItsState: the session token's MAC, computed with a
// pooled keyed state, is the HMAC of the id under the recovery key, the
// same for every call and different per id; appended to a buffer, it
// allocates nothing.
func TestTokenMACReusesItsState(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	h := NewHub(Config{RecoveryKey: key}, rooms.New(1))
	want := func(id string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte("chatgate session\x00"))
		m.Write([]byte(id))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
	}
	for _, id := range []string{"a", "b", "a", "node1-c42"} {
		if got := string(h.appendTokenMAC(nil, id)); got != want(id) || len(got) != tokenMACLen {
			t.Errorf("appendTokenMAC(%q) = %q, want %q", id, got, want(id))
		}
	}
	if raceEnabled {
		return // sync.Pool drops items under the race detector: allocation counts mean nothing
	}
	buf := make([]byte, 0, 64)
	h.appendTokenMAC(buf, "warm")
	if n := testing.AllocsPerRun(100, func() { h.appendTokenMAC(buf, "node1-c42") }); n != 0 {
		t.Errorf("appendTokenMAC: %v allocs, want 0", n)
	}
}

// TestSessionTokenOneAllocation: the token a handshake hands out is the
// id, a dot and the id's MAC, and it checks (tokenID gives the id back;
// a changed MAC does not check); making it allocates its text only (the
// MAC's text and a concatenation took two, 72 bytes of garbage per
// handshake), checking it nothing.
func TestSessionTokenOneAllocation(t *testing.T) {
	h := NewHub(Config{RecoveryKey: []byte("k"), RecoveryWindow: time.Minute}, rooms.New(1))
	s := &Session{id: h.ids.next()}
	tok := h.SessionToken(s)
	if want := s.id + "." + string(h.appendTokenMAC(nil, s.id)); tok != want {
		t.Fatalf("SessionToken = %q, want %q", tok, want)
	}
	if string(h.appendSessionToken([]byte("x"), s)) != "x"+tok {
		t.Fatalf("appendSessionToken does not append the token")
	}
	if id, ok := h.tokenID(tok); !ok || id != s.id {
		t.Fatalf("tokenID(%q) = %q, %v", tok, id, ok)
	}
	bad := []byte(tok)
	bad[len(bad)-1] ^= 1
	if _, ok := h.tokenID(string(bad)); ok {
		t.Fatalf("tokenID accepted a changed MAC")
	}
	if raceEnabled {
		return // sync.Pool drops items under the race detector
	}
	if n := testing.AllocsPerRun(100, func() { _ = h.SessionToken(s) }); n != 1 {
		t.Errorf("SessionToken: %v allocs, want 1 (the text)", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = h.tokenID(tok) }); n != 0 {
		t.Errorf("tokenID: %v allocs, want 0", n)
	}
}
