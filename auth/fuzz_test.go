package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: arbitrary input never panics, is never accepted by a verifier
// whose key the input was not made with, and is accepted by the right
// verifier only if it is a canonical HS256 token whose signature is the
// HMAC of its first two parts under the secret, with valid claims.
func FuzzVerify(f *testing.F) {
	testKeys(f)
	hs := jwt.SigningMethodHS256
	f.Add(sign(f, hs, testSecret, claimsAt(t0)))
	f.Add(sign(f, hs, testSecret, jwt.MapClaims{"sub": "bob", "exp": t0.Add(time.Hour).Unix(), "rooms": []string{"a", "b*"}}))
	f.Add(sign(f, hs, testSecret, jwt.MapClaims{"sub": "bob", "exp": t0.Add(-time.Hour).Unix()}))
	f.Add(sign(f, jwt.SigningMethodHS384, testSecret, claimsAt(t0)))
	f.Add(sign(f, hs, keys.ecPub, claimsAt(t0)))
	f.Add(sign(f, jwt.SigningMethodES256, keys.ec, claimsAt(t0)))
	f.Add(sign(f, jwt.SigningMethodRS256, keys.rsa, claimsAt(t0)))
	f.Add([]byte(b64(`{"alg":"none"}`) + "." + b64(mustJSON(claimsAt(t0))) + "."))
	f.Add(rawHS256(`{"alg":"HS256","crit":["x"]}`, mustJSON(claimsAt(t0)), testSecret))
	f.Add([]byte("a.b.c"))
	f.Add([]byte(".."))
	f.Add([]byte{})

	right := hsVerifier(f, t0, 0)
	cached, err := NewVerifier(Config{HS256Secret: testSecret, Now: fixedNow(t0), Leeway: -1, CacheSize: 8})
	if err != nil {
		f.Fatal(err)
	}
	wrong, err := NewVerifier(Config{HS256Secret: []byte("a different secret, 32 bytes long"), Now: fixedNow(t0)})
	if err != nil {
		f.Fatal(err)
	}
	es, err := NewVerifier(Config{PublicKeyPEM: keys.ecPub, Now: fixedNow(t0)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok []byte) {
		if _, err := wrong.Verify(tok); err == nil {
			t.Fatalf("accepted without the key: %q", tok)
		}
		id, err := right.Verify(tok)
		id2, err2 := cached.Verify(tok)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("cache changes the verdict: %v vs %v", err, err2)
		}
		if _, ok := err.(Error); err != nil && !ok {
			t.Fatalf("error %v (%T) is not a sentinel", err, err)
		}
		// An ES256 verifier may accept only tokens really signed with the
		// EC key (the seed); the fuzzer cannot sign, so any other
		// acceptance is a forgery.
		if _, err := es.Verify(tok); err == nil && !validES256(tok) {
			t.Fatalf("ES256 verifier accepted %q", tok)
		}
		if err != nil {
			return
		}
		parts := strings.Split(string(tok), ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %d parts", len(parts))
		}
		mac := hmac.New(sha256.New, testSecret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if parts[2] != base64.RawURLEncoding.EncodeToString(mac.Sum(nil)) {
			t.Fatalf("accepted a signature that is not the canonical HMAC: %q", tok)
		}
		var h struct{ Alg string }
		hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
		if json.Unmarshal(hb, &h) != nil || h.Alg != "HS256" {
			t.Fatalf("accepted alg %q", h.Alg)
		}
		if id.Subject == "" || len(id.Subject) > MaxSubjectLen || !id.Expires.After(t0) {
			t.Fatalf("accepted claims %+v", id)
		}
		if id2.Subject != id.Subject || !id2.Expires.Equal(id.Expires) {
			t.Fatalf("cached identity %+v differs from %+v", id2, id)
		}
	})
}

// validES256 re-checks an ES256 token with the jwt package directly.
func validES256(tok []byte) bool {
	_, err := jwt.Parse(string(tok), func(*jwt.Token) (any, error) { return &keys.ec.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(fixedNow(t0)))
	return err == nil
}

// FuzzOrigins: parsing any list and checking any origin never panics, and a
// fixed allowlist never lets through an origin that an independent,
// simpler reading of the rules would refuse.
func FuzzOrigins(f *testing.F) {
	for _, s := range []struct{ list, origin string }{
		{"https://chat.example.com", "https://chat.example.com"},
		{"https://*.example.com", "https://evil-example.com"},
		{"https://*.example.com", "https://example.com.evil.com"},
		{"https://*.example.com:8443,http://localhost:3000", "http://localhost:3000"},
		{"*", "null"},
		{"https://[::1]:443", "https://[::1]"},
		{"", "https://CHAT.EXAMPLE.COM/"},
		{"null", "null"},
	} {
		f.Add(s.list, s.origin)
	}
	fixed, err := ParseOrigins("https://chat.example.com,https://*.example.org")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, list, origin string) {
		if o, err := ParseOrigins(list); err == nil {
			o.Allowed([]byte(origin))
			_ = o.String()
		}
		got := fixed.Allowed([]byte(origin))
		if got != referenceAllowed(origin) {
			t.Fatalf("Allowed(%q) = %v, reference says %v", origin, got, !got)
		}
		if got != fixed.Allowed([]byte(asciiUpper(origin))) {
			t.Fatalf("Allowed(%q) depends on case", origin)
		}
	})
}

// referenceAllowed is an independent, slow statement of the fixed list
// "https://chat.example.com,https://*.example.org".
func referenceAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	for i := 0; i < len(origin); i++ {
		if origin[i] >= 0x80 {
			return false // origins are ASCII (hosts in punycode)
		}
	}
	s := strings.ToLower(origin)
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		return false
	}
	host := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host = rest[:i]
		p, err := strconv.Atoi(rest[i+1:])
		if err != nil || p != 443 || strings.ContainsAny(rest[i+1:], "+-") || len(rest[i+1:]) > 5 {
			return false
		}
	}
	if host == "chat.example.com" {
		return true
	}
	sub, ok := strings.CutSuffix(host, ".example.org")
	if !ok || sub == "" {
		return false
	}
	for _, label := range strings.Split(sub, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return len(host) <= 253
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// FuzzTokenFrom: extraction never panics, never returns an empty non-nil
// token, and a Bearer token never keeps surrounding whitespace.
func FuzzTokenFrom(f *testing.F) {
	f.Add("Bearer abc", "token=x")
	f.Add("", "a=b&token=%41%zz")
	f.Add("bearer\t", "token=")
	f.Add("", `{"token":"x"}`)
	f.Fuzz(func(t *testing.T, authz, query string) {
		got := TokenFrom([]byte(authz), []byte(query))
		if got != nil && len(got) == 0 {
			t.Fatal("empty non-nil token")
		}
		if b := bearer([]byte(authz)); b != nil {
			if !bytes.Equal(b, got) {
				t.Fatal("a Bearer header must win over the query")
			}
			if c := b[0]; c == ' ' || c == '\t' {
				t.Fatalf("untrimmed token %q", b)
			}
		}
		sio := TokenFromSocketIOAuth([]byte(query))
		if sio != nil && len(sio) == 0 {
			t.Fatal("empty non-nil Socket.IO token")
		}
	})
}
