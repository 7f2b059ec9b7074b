package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewVerifier(t *testing.T) {
	testKeys(t)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(keys.ec)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"},
		NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &keys.ec.PublicKey, keys.ec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		alg     string
		wantErr string
	}{
		{"hs256", Config{HS256Secret: testSecret}, "HS256", ""},
		{"rsa pkix", Config{PublicKeyPEM: keys.rsaPub}, "RS256", ""},
		{"rsa pkcs1", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&keys.rsa.PublicKey)})}, "RS256", ""},
		{"ecdsa p256", Config{PublicKeyPEM: keys.ecPub}, "ES256", ""},
		{"certificate", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})}, "ES256", ""},
		{"nothing", Config{}, "", "no HS256 secret and no public key"},
		{"both", Config{HS256Secret: testSecret, PublicKeyPEM: keys.ecPub}, "", "not both"},
		{"short secret", Config{HS256Secret: []byte("secret")}, "", "at least 32"},
		{"not pem", Config{PublicKeyPEM: []byte("hello")}, "", "no PEM block"},
		{"private key", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})}, "", "only the public key"},
		{"rsa 1024", Config{PublicKeyPEM: pkixPEM(&rsa1024.PublicKey)}, "", "need at least 2048"},
		{"p384", Config{PublicKeyPEM: pkixPEM(&p384.PublicKey)}, "", "needs P-256"},
		{"garbage der", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})}, "", "public key"},
		{"other block", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "FOO", Bytes: []byte{1}})}, "", "unsupported PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "auth: ") {
					t.Errorf("err %q lacks the package prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Algorithm() != tt.alg {
				t.Errorf("Algorithm = %s, want %s", v.Algorithm(), tt.alg)
			}
		})
	}
}

func TestNewVerifierCopiesSecret(t *testing.T) {
	s := append([]byte(nil), testSecret...)
	v, err := NewVerifier(Config{HS256Secret: s, Now: fixedNow(t0)})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0))
	clear(s)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("changing the caller's slice changed the verifier: %v", err)
	}
}

func TestVerifyHS256(t *testing.T) {
	hs := jwt.SigningMethodHS256
	with := func(kv ...any) jwt.MapClaims {
		c := claimsAt(t0)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	header := `{"alg":"HS256","typ":"JWT"}`
	good := sign(t, hs, testSecret, claimsAt(t0))
	parts := strings.Split(string(good), ".")
	tests := []struct {
		name   string
		token  []byte
		leeway time.Duration
		want   error
		sub    string
		rooms  string // RoomPattern list joined by ",", "<nil>" for nil
	}{
		{name: "valid", token: good, sub: "alice", rooms: "<nil>"},
		{name: "empty", token: nil, want: ErrNoToken},
		{name: "expired", token: sign(t, hs, testSecret, with("exp", t0.Add(-time.Second).Unix())), want: ErrExpired},
		{name: "expires now", token: sign(t, hs, testSecret, with("exp", t0.Unix())), want: ErrExpired},
		{name: "expired within leeway", token: sign(t, hs, testSecret, with("exp", t0.Add(-time.Second).Unix())), leeway: 5 * time.Second, sub: "alice", rooms: "<nil>"},
		{name: "expired beyond leeway", token: sign(t, hs, testSecret, with("exp", t0.Add(-10*time.Second).Unix())), leeway: 5 * time.Second, want: ErrExpired},
		{name: "nbf future", token: sign(t, hs, testSecret, with("nbf", t0.Add(time.Minute).Unix())), want: ErrNotYetValid},
		{name: "nbf now", token: sign(t, hs, testSecret, with("nbf", t0.Unix())), sub: "alice", rooms: "<nil>"},
		{name: "nbf within leeway", token: sign(t, hs, testSecret, with("nbf", t0.Add(3*time.Second).Unix())), leeway: 5 * time.Second, sub: "alice", rooms: "<nil>"},
		{name: "iat future", token: sign(t, hs, testSecret, with("iat", t0.Add(time.Minute).Unix())), want: ErrNotYetValid},
		{name: "no iat", token: sign(t, hs, testSecret, with("iat", nil)), sub: "alice", rooms: "<nil>"},
		{name: "no exp", token: sign(t, hs, testSecret, with("exp", nil)), want: ErrNoExpiry},
		{name: "exp string", token: sign(t, hs, testSecret, with("exp", "tomorrow")), want: ErrInvalidToken},
		{name: "no sub", token: sign(t, hs, testSecret, with("sub", nil)), want: ErrNoSubject},
		{name: "empty sub", token: sign(t, hs, testSecret, with("sub", "")), want: ErrNoSubject},
		{name: "sub number", token: sign(t, hs, testSecret, with("sub", 42)), want: ErrInvalidToken},
		{name: "sub max length", token: sign(t, hs, testSecret, with("sub", strings.Repeat("a", MaxSubjectLen))), sub: strings.Repeat("a", MaxSubjectLen), rooms: "<nil>"},
		{name: "sub too long", token: sign(t, hs, testSecret, with("sub", strings.Repeat("a", MaxSubjectLen+1))), want: ErrBadClaims},
		{name: "sub newline", token: sign(t, hs, testSecret, with("sub", "alice\nbob")), want: ErrBadClaims},
		{name: "sub bidi override", token: sign(t, hs, testSecret, with("sub", "alice\u202Eevil")), want: ErrBadClaims},
		{name: "sub line separator", token: sign(t, hs, testSecret, with("sub", "a\u2028b")), want: ErrBadClaims},
		{name: "sub unicode", token: sign(t, hs, testSecret, with("sub", "zoë@example.com")), sub: "zoë@example.com", rooms: "<nil>"},
		{name: "rooms", token: sign(t, hs, testSecret, with("rooms", []string{"lobby", "team-*"})), sub: "alice", rooms: "lobby,team-*"},
		{name: "rooms empty", token: sign(t, hs, testSecret, with("rooms", []string{})), sub: "alice", rooms: ""},
		{name: "rooms star", token: sign(t, hs, testSecret, with("rooms", []string{"lobby", "*"})), sub: "alice", rooms: "<nil>"},
		{name: "rooms null", token: rawHS256(header, `{"sub":"alice","exp":1700003600,"rooms":null}`, testSecret), sub: "alice", rooms: "<nil>"},
		{name: "rooms string", token: sign(t, hs, testSecret, with("rooms", "lobby")), want: ErrInvalidToken},
		{name: "rooms numbers", token: sign(t, hs, testSecret, with("rooms", []int{1})), want: ErrInvalidToken},
		{name: "rooms empty entry", token: sign(t, hs, testSecret, with("rooms", []string{"lobby", ""})), want: ErrBadClaims},
		{name: "wrong secret", token: sign(t, hs, []byte("another secret of at least 32 bytes!"), claimsAt(t0)), want: ErrBadSignature},
		{name: "tampered claims", token: []byte(parts[0] + "." + b64(`{"sub":"admin","iat":1700000000,"exp":1700003600}`) + "." + parts[2]), want: ErrBadSignature},
		{name: "signature dropped", token: []byte(parts[0] + "." + parts[1] + "."), want: ErrBadSignature},
		{name: "alg none", token: []byte(b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "."), want: ErrAlgorithm},
		{name: "alg None", token: []byte(b64(`{"alg":"None"}`) + "." + parts[1] + "."), want: ErrAlgorithm},
		{name: "alg missing", token: rawHS256(`{"typ":"JWT"}`, mustJSON(claimsAt(t0)), testSecret), want: ErrAlgorithm},
		{name: "alg HS384 same secret", token: sign(t, jwt.SigningMethodHS384, testSecret, claimsAt(t0)), want: ErrAlgorithm},
		{name: "alg HS512 same secret", token: sign(t, jwt.SigningMethodHS512, testSecret, claimsAt(t0)), want: ErrAlgorithm},
		{name: "crit header", token: rawHS256(`{"alg":"HS256","crit":["exp"]}`, mustJSON(claimsAt(t0)), testSecret), want: ErrInvalidToken},
		{name: "two parts", token: []byte(parts[0] + "." + parts[1]), want: ErrInvalidToken},
		{name: "four parts", token: []byte(string(good) + ".x"), want: ErrInvalidToken},
		{name: "not base64", token: []byte("!!!." + parts[1] + "." + parts[2]), want: ErrInvalidToken},
		{name: "padded base64", token: paddedHS256(`{"alg":"HS256"} `, mustJSON(claimsAt(t0))), want: ErrInvalidToken},
		{name: "header not json", token: []byte(b64("hello") + "." + parts[1] + "." + parts[2]), want: ErrInvalidToken},
		{name: "claims not object", token: rawHS256(header, `[1,2]`, testSecret), want: ErrInvalidToken},
		{name: "bearer prefix kept", token: []byte("Bearer " + string(good)), want: ErrInvalidToken},
		{name: "too long", token: []byte(strings.Repeat("a", MaxTokenLen+1)), want: ErrInvalidToken},
		{name: "garbage", token: []byte("hello"), want: ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := hsVerifier(t, t0, tt.leeway)
			id, err := v.Verify(tt.token)
			if tt.want != nil {
				if err != tt.want || !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if id != nil {
					t.Fatalf("identity %+v returned with an error", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if id.Subject != tt.sub || id.User() != tt.sub {
				t.Errorf("Subject = %q, want %q", id.Subject, tt.sub)
			}
			if got := roomsString(id.Rooms); got != tt.rooms {
				t.Errorf("Rooms = %s, want %s", got, tt.rooms)
			}
		})
	}
}

func TestDefaultLeeway(t *testing.T) {
	tests := []struct {
		name   string
		leeway time.Duration
		iat    time.Time
		want   error
	}{
		{"default tolerates issuer 20 s ahead", 0, t0.Add(20 * time.Second), nil},
		{"default refuses issuer 40 s ahead", 0, t0.Add(40 * time.Second), ErrNotYetValid},
		{"negative means none", -1, t0.Add(time.Second), ErrNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(Config{HS256Secret: testSecret, Now: fixedNow(t0), Leeway: tt.leeway})
			if err != nil {
				t.Fatal(err)
			}
			tok := sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "a", "iat": tt.iat.Unix(), "exp": tt.iat.Add(time.Hour).Unix()})
			if _, err := v.Verify(tok); err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyNonCanonicalSignature: a signature whose last base64 character
// carries non-zero padding bits decodes to the same bytes with a lenient
// decoder; strict decoding refuses it, so a token has one spelling.
func TestVerifyNonCanonicalSignature(t *testing.T) {
	v := hsVerifier(t, t0, 0)
	good := sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0))
	if _, err := v.Verify(good); err != nil {
		t.Fatal(err)
	}
	// 32 bytes = 43 base64 characters; the last one carries 4 data bits
	// and 2 padding bits. Flip the lowest padding bit.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	bad := append([]byte(nil), good...)
	last := strings.IndexByte(alphabet, bad[len(bad)-1])
	bad[len(bad)-1] = alphabet[last^1]
	if _, err := v.Verify(bad); err != ErrInvalidToken {
		t.Fatalf("non-canonical signature: err = %v, want %v", err, ErrInvalidToken)
	}
}

// paddedHS256 signs a token whose header segment keeps its '=' padding,
// which JWS forbids (RFC 7515 §2).
func paddedHS256(header, claims string) []byte {
	h := base64.URLEncoding.EncodeToString([]byte(header))
	if !strings.HasSuffix(h, "=") {
		panic("header needs padding")
	}
	in := h + "." + b64(claims)
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(in))
	return []byte(in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)))
}

func roomsString(r []RoomPattern) string {
	if r == nil {
		return "<nil>"
	}
	s := make([]string, len(r))
	for i, p := range r {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func TestVerifyAsymmetric(t *testing.T) {
	testKeys(t)
	rs, err := NewVerifier(Config{PublicKeyPEM: keys.rsaPub, Now: fixedNow(t0)})
	if err != nil {
		t.Fatal(err)
	}
	es, err := NewVerifier(Config{PublicKeyPEM: keys.ecPub, Now: fixedNow(t0)})
	if err != nil {
		t.Fatal(err)
	}
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := claimsAt(t0)
	tests := []struct {
		name  string
		v     *Verifier
		token []byte
		want  error
	}{
		{"rs256", rs, sign(t, jwt.SigningMethodRS256, keys.rsa, c), nil},
		{"es256", es, sign(t, jwt.SigningMethodES256, keys.ec, c), nil},
		{"es256 other key", es, sign(t, jwt.SigningMethodES256, otherEC, c), ErrBadSignature},
		// Algorithm confusion: the public key (which is public) used as
		// an HMAC secret must never verify.
		{"rs public key as hs256 secret", rs, sign(t, jwt.SigningMethodHS256, keys.rsaPub, c), ErrAlgorithm},
		{"es public key as hs256 secret", es, sign(t, jwt.SigningMethodHS256, keys.ecPub, c), ErrAlgorithm},
		{"es256 token to rs verifier", rs, sign(t, jwt.SigningMethodES256, keys.ec, c), ErrAlgorithm},
		{"rs256 token to es verifier", es, sign(t, jwt.SigningMethodRS256, keys.rsa, c), ErrAlgorithm},
		{"ps256 same rsa key", rs, sign(t, jwt.SigningMethodPS256, keys.rsa, c), ErrAlgorithm},
		{"rs512 same rsa key", rs, sign(t, jwt.SigningMethodRS512, keys.rsa, c), ErrAlgorithm},
		{"none", rs, []byte(b64(`{"alg":"none"}`) + "." + b64(mustJSON(c)) + "."), ErrAlgorithm},
		{"rs256 expired", rs, sign(t, jwt.SigningMethodRS256, keys.rsa, jwt.MapClaims{"sub": "a", "exp": t0.Add(-time.Minute).Unix()}), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.v.Verify(tt.token)
			if err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && id.Subject != "alice" {
				t.Fatalf("Subject = %q", id.Subject)
			}
		})
	}
}

// TestVerifyErrorOrder: a forged token learns nothing about its claims; the
// signature is checked before exp and sub.
func TestVerifyErrorOrder(t *testing.T) {
	v := hsVerifier(t, t0, 0)
	forged := sign(t, jwt.SigningMethodHS256, []byte("not the secret, but 32 bytes long"), jwt.MapClaims{"exp": 1})
	if _, err := v.Verify(forged); err != ErrBadSignature {
		t.Fatalf("err = %v, want %v", err, ErrBadSignature)
	}
}

func TestMayJoin(t *testing.T) {
	var anon *Identity
	any := &Identity{Subject: "a"}
	none := &Identity{Subject: "a", Rooms: []RoomPattern{}}
	some := &Identity{Subject: "a", Rooms: parseRooms([]string{"lobby", "team-*", "a*b", "x**"})}
	tests := []struct {
		id   *Identity
		room string
		want bool
	}{
		{anon, "anything", true},
		{any, "anything", true},
		{none, "lobby", false},
		{some, "lobby", true},
		{some, "Lobby", false},
		{some, "lobby2", false},
		{some, "lobb", false},
		{some, "team-", true},
		{some, "team-a", true},
		{some, "team-a/b", true},
		{some, "team", false},
		{some, "teamx", false},
		{some, "a*b", true},
		{some, "axb", false},
		{some, "x*", true},
		{some, "x*y", true},
		{some, "xy", false},
		{some, "", false},
	}
	for _, tt := range tests {
		name := roomsString(nilRooms(tt.id)) + "/" + tt.room
		t.Run(name, func(t *testing.T) {
			if got := tt.id.MayJoin([]byte(tt.room)); got != tt.want {
				t.Fatalf("MayJoin(%q) = %v, want %v", tt.room, got, tt.want)
			}
		})
	}
	if anon.User() != "" {
		t.Error("anonymous User() not empty")
	}
}

func nilRooms(id *Identity) []RoomPattern {
	if id == nil {
		return nil
	}
	return id.Rooms
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{ErrNoToken, `Bearer realm="chatgate"`},
		{nil, `Bearer realm="chatgate"`},
		{ErrExpired, `Bearer realm="chatgate", error="invalid_token", error_description="token expired"`},
		{ErrBadSignature, `Bearer realm="chatgate", error="invalid_token", error_description="bad signature"`},
		{errors.New("other"), `Bearer realm="chatgate", error="invalid_token", error_description="invalid token"`},
	}
	for _, tt := range tests {
		if got := Challenge(tt.err); got != tt.want {
			t.Errorf("Challenge(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
	reasons := map[error]string{
		ErrNoToken:                              "no token",
		ErrExpired:                              "token expired",
		fmt.Errorf("wrapped: %w", ErrAlgorithm): "signing algorithm not accepted",
		errors.New("other"):                     "invalid token",
	}
	for err, want := range reasons {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}
