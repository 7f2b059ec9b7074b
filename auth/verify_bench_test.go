package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify measures one handshake's token check per algorithm:
// "miss" verifies the signature (the first connection with a token, or any
// invalid token), "hit" is a token seen before (a reconnect), served from
// the cache after SHA-256 and a map lookup.
func BenchmarkVerify(b *testing.B) {
	testKeys(b)
	now := time.Now()
	c := jwt.MapClaims{"sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "rooms": []string{"lobby", "team-*"}}
	algs := []struct {
		name string
		cfg  Config
		tok  []byte
	}{
		{"HS256", Config{HS256Secret: testSecret}, sign(b, jwt.SigningMethodHS256, testSecret, c)},
		{"RS256", Config{PublicKeyPEM: keys.rsaPub}, sign(b, jwt.SigningMethodRS256, keys.rsa, c)},
		{"ES256", Config{PublicKeyPEM: keys.ecPub}, sign(b, jwt.SigningMethodES256, keys.ec, c)},
	}
	for _, a := range algs {
		for _, mode := range []string{"miss", "hit"} {
			b.Run(fmt.Sprintf("%s/%s", a.name, mode), func(b *testing.B) {
				cfg := a.cfg
				if mode == "miss" {
					cfg.CacheSize = -1
				}
				v, err := NewVerifier(cfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := v.Verify(a.tok); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.SetBytes(int64(len(a.tok)))
				for b.Loop() {
					if _, err := v.Verify(a.tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	// A forged token: what an attacker's handshake costs the loop.
	b.Run("HS256/forged", func(b *testing.B) {
		v, _ := NewVerifier(Config{HS256Secret: testSecret})
		tok := sign(b, jwt.SigningMethodHS256, []byte("not the secret but 32 bytes long!"), c)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(tok); err != ErrBadSignature {
				b.Fatal(err)
			}
		}
	})
	b.Run("ES256/forged", func(b *testing.B) {
		v, _ := NewVerifier(Config{PublicKeyPEM: keys.ecPub})
		tok := sign(b, jwt.SigningMethodES256, keys.ec, c)
		tok[len(tok)-5] ^= 1
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(tok); err == nil {
				b.Fatal("forged token accepted")
			}
		}
	})
}

func BenchmarkOriginsAllowed(b *testing.B) {
	o, err := ParseOrigins("https://chat.example.com,https://app.example.com,https://*.example.org")
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range []string{"https://app.example.com", "https://a.b.example.org", "https://evil.example.net"} {
		b.Run(h, func(b *testing.B) {
			origin := []byte(h)
			b.ReportAllocs()
			for b.Loop() {
				o.Allowed(origin)
			}
		})
	}
}

func BenchmarkTokenFrom(b *testing.B) {
	tok := sign(b, jwt.SigningMethodHS256, testSecret, claimsAt(t0))
	q := []byte("EIO=4&transport=websocket&token=" + string(tok))
	b.ReportAllocs()
	for b.Loop() {
		TokenFrom(nil, q)
	}
}
