package engineio

import (
	"crypto/sha256"
	"testing"
	"time"
)

func TestSessionLimitDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.ConnectTimeout != 10*time.Second || DefaultConnectTimeout != 10*time.Second {
		t.Errorf("connect timeout %v (default %v), want 10s", c.ConnectTimeout, DefaultConnectTimeout)
	}
	if c.MaxSessionsPerConnection != 1 {
		t.Errorf("sessions per connection %d, want 1", c.MaxSessionsPerConnection)
	}
	if c := (Config{MaxSessionsPerConnection: -1}).withDefaults(); c.MaxSessionsPerConnection != -1 {
		t.Errorf("unlimited sessions per connection became %d", c.MaxSessionsPerConnection)
	}
	if c := (Config{Conformance: true}).withDefaults(); c.ConnectTimeout != conformanceConnectTimeout {
		t.Errorf("conformance connect timeout %v", c.ConnectTimeout)
	}
}

func TestSameToken(t *testing.T) {
	sum := sha256.Sum256([]byte("a.b.c"))
	if !sameToken([]byte("a.b.c"), &sum) {
		t.Error("the same token is not the same")
	}
	for _, tok := range []string{"a.b.d", "a.b.c ", "", "A.b.c"} {
		if sameToken([]byte(tok), &sum) {
			t.Errorf("%q taken for the handshake's token", tok)
		}
	}
}
