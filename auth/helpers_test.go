package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testSecret is a 32-byte HS256 secret.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// t0 is the fake "now" of the tests.
var t0 = time.Unix(1_700_000_000, 0)

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

// keys are generated once: RSA generation takes a while.
var keys struct {
	once   sync.Once
	rsa    *rsa.PrivateKey
	rsaPub []byte // PKIX PEM
	ec     *ecdsa.PrivateKey
	ecPub  []byte // PKIX PEM
}

func testKeys(tb testing.TB) {
	tb.Helper()
	keys.once.Do(func() {
		var err error
		if keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keys.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		keys.rsaPub = pkixPEM(&keys.rsa.PublicKey)
		keys.ecPub = pkixPEM(&keys.ec.PublicKey)
	})
}

func pkixPEM(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// claimsAt returns valid claims for "alice" issued at now, expiring in an
// hour.
func claimsAt(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{"sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// sign signs claims with the given method and key through the jwt package.
func sign(tb testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) []byte {
	tb.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return []byte(s)
}

// rawHS256 builds a token from an arbitrary header and claims, signed with
// HMAC-SHA256 over exactly those bytes, bypassing the jwt package's checks.
func rawHS256(header, claims string, key []byte) []byte {
	in := b64(header) + "." + b64(claims)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(in))
	return []byte(in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)))
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// hsVerifier returns an uncached HS256 verifier at now; leeway 0 means
// none here (not DefaultLeeway), so that table tests state every second.
func hsVerifier(tb testing.TB, now time.Time, leeway time.Duration) *Verifier {
	tb.Helper()
	if leeway == 0 {
		leeway = -1
	}
	v, err := NewVerifier(Config{HS256Secret: testSecret, Now: fixedNow(now), Leeway: leeway, CacheSize: -1})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
