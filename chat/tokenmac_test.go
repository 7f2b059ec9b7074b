package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/chatgate/chatgate/rooms"
)

// TestTokenMACReusesItsState: the session token's MAC, computed with a
// pooled keyed state, is the HMAC of the id under the recovery key, the
// same for every call and different per id; it allocates only its text.
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
		if got := h.tokenMAC(id); got != want(id) {
			t.Errorf("tokenMAC(%q) = %q, want %q", id, got, want(id))
		}
	}
	if raceEnabled {
		return // sync.Pool drops items under the race detector: allocation counts mean nothing
	}
	h.tokenMAC("warm")
	if n := testing.AllocsPerRun(100, func() { h.tokenMAC("node1-c42") }); n > 1 {
		t.Errorf("tokenMAC: %v allocs, want 1 (the text)", n)
	}
}
