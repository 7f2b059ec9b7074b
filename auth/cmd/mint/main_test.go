package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
)

const secret = "0123456789abcdef0123456789abcdef"

var now = time.Unix(1_700_000_000, 0)

func mint(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut, func() time.Time { return now })
	return strings.TrimSpace(out.String()), err
}

func TestMintHS256(t *testing.T) {
	tok, err := mint(t, "-secret", secret, "-sub", "alice", "-rooms", "lobby, team-*", "-ttl", "10m")
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{HS256Secret: []byte(secret), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "alice" || !id.Expires.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("identity %+v", id)
	}
	if !id.MayJoin([]byte("lobby")) || !id.MayJoin([]byte("team-x")) || id.MayJoin([]byte("other")) {
		t.Fatalf("rooms %v", id.Rooms)
	}
}

func TestMintEnvSecret(t *testing.T) {
	t.Setenv("CHATGATE_JWT_SECRET", secret)
	tok, err := mint(t, "-sub", "bob")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewVerifier(auth.Config{HS256Secret: []byte(secret), Now: func() time.Time { return now }})
	id, err := v.Verify([]byte(tok))
	if err != nil || id.Rooms != nil {
		t.Fatalf("%v %+v", err, id)
	}
}

func TestMintES256(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := mint(t, "-key", path, "-sub", "carol", "-nbf", "-1m")
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	v, err := auth.NewVerifier(auth.Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.Verify([]byte(tok)); err != nil || id.Subject != "carol" {
		t.Fatalf("%v %+v", err, id)
	}
}

func TestMintErrors(t *testing.T) {
	t.Setenv("CHATGATE_JWT_SECRET", "")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-secret", secret}, "-sub is required"},
		{[]string{"-sub", "a"}, "give -secret"},
		{[]string{"-sub", "a", "-secret", "short"}, "at least 32 bytes"},
		{[]string{"-sub", "a", "-secret", secret, "-key", "x.pem"}, "not both"},
		{[]string{"-sub", "a", "-secret", secret, "-ttl", "0"}, "-ttl must be positive"},
		{[]string{"-sub", "a", "-secret", secret, "extra"}, "unexpected arguments"},
		{[]string{"-sub", "a", "-key", "/nonexistent.pem"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := mint(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
