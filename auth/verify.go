package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Limits on keys, tokens and claims.
const (
	// MaxTokenLen bounds a token in bytes. Longer input is refused with
	// ErrInvalidToken before anything is decoded: the JSON of an unverified
	// token is decoded before its signature is checked, so its size must be
	// bounded. Real tokens are a few hundred bytes.
	MaxTokenLen = 4096
	// MaxSubjectLen bounds the "sub" claim in bytes; it is shown to other
	// users next to nicknames.
	MaxSubjectLen = 128
	// MinSecretLen is the shortest HS256 secret accepted: RFC 7518 §3.2
	// requires a key at least as long as the hash output (256 bits).
	MinSecretLen = 32
	// MinRSABits is the smallest RSA modulus accepted for RS256 (RFC 7518
	// §3.3 requires 2048 bits).
	MinRSABits = 2048
	// DefaultCacheSize is the number of accepted tokens a Verifier
	// remembers when Config.CacheSize is 0.
	DefaultCacheSize = 1024
	// DefaultLeeway is the clock skew tolerated when Config.Leeway is 0.
	// Without any, a token minted by an issuer whose clock runs a second
	// ahead would be refused as "not valid yet" (its iat in the future).
	DefaultLeeway = 30 * time.Second
)

// Config configures a Verifier. Exactly one of HS256Secret and PublicKeyPEM
// must be set.
type Config struct {
	// HS256Secret is the shared secret of HS256 tokens, at least
	// MinSecretLen bytes.
	HS256Secret []byte
	// PublicKeyPEM is a PEM public key ("PUBLIC KEY", "RSA PUBLIC KEY" or
	// a "CERTIFICATE"): an RSA key (at least MinRSABits) selects RS256, an
	// ECDSA P-256 key selects ES256. Private keys are refused: the gateway
	// only verifies.
	PublicKeyPEM []byte
	// Leeway tolerates clock skew between the token issuer and the gateway
	// when checking exp, nbf and iat. 0 means DefaultLeeway; negative
	// means none.
	Leeway time.Duration
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
	// CacheSize is how many accepted tokens are remembered so that a token
	// presented again skips its signature check. 0 means DefaultCacheSize;
	// negative disables the cache.
	CacheSize int
}

// Verifier verifies JWTs with one configured key and algorithm. It is
// immutable after NewVerifier and safe for concurrent use by all event
// loops; Verify never blocks on I/O.
type Verifier struct {
	alg    string
	key    any
	parser *jwt.Parser
	keyFn  jwt.Keyfunc
	now    func() time.Time
	leeway time.Duration
	cache  *cache // nil when disabled
	revs   revocations
}

// NewVerifier returns a Verifier for cfg. Only the algorithm of the
// configured key is accepted (HS256, RS256 or ES256): tokens with "alg":
// "none" or any other algorithm are refused, so a public key can never be
// used as an HMAC secret (algorithm confusion).
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{now: cfg.Now, leeway: cfg.Leeway}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	switch {
	case len(cfg.HS256Secret) > 0 && len(cfg.PublicKeyPEM) > 0:
		return nil, errors.New("auth: configure either an HS256 secret or a public key, not both")
	case len(cfg.HS256Secret) > 0:
		if len(cfg.HS256Secret) < MinSecretLen {
			return nil, fmt.Errorf("auth: HS256 secret is %d bytes, need at least %d (RFC 7518 §3.2)", len(cfg.HS256Secret), MinSecretLen)
		}
		v.alg = jwt.SigningMethodHS256.Alg()
		v.key = append([]byte(nil), cfg.HS256Secret...)
	case len(cfg.PublicKeyPEM) > 0:
		alg, key, err := parsePublicKey(cfg.PublicKeyPEM)
		if err != nil {
			return nil, err
		}
		v.alg, v.key = alg, key
	default:
		return nil, errors.New("auth: no HS256 secret and no public key configured")
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{v.alg}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
		// Reject non-canonical base64 so that a token has exactly one
		// accepted spelling.
		jwt.WithStrictDecoding(),
	)
	v.keyFn = v.keyFor
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		v.cache = newCache(size)
	}
	return v, nil
}

// Algorithm returns the one JWS algorithm the Verifier accepts: "HS256",
// "RS256" or "ES256".
func (v *Verifier) Algorithm() string { return v.alg }

// keyFor is the jwt.Keyfunc. The algorithm has already been checked
// against the one configured (jwt.WithValidMethods) when it runs.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	// RFC 7515 §4.1.11: a recipient that does not understand the listed
	// critical extensions must reject the token. chatgate understands none.
	if _, ok := t.Header["crit"]; ok {
		return nil, ErrInvalidToken
	}
	return v.key, nil
}

// claims are the JWT claims chatgate reads.
type claims struct {
	jwt.RegisteredClaims
	Rooms   []string `json:"rooms"`
	Publish []string `json:"publish"`
}

// Validate implements jwt.ClaimsValidator; it runs after the signature has
// been verified.
func (c *claims) Validate() error {
	if c.Subject == "" {
		return ErrNoSubject
	}
	if len(c.Subject) > MaxSubjectLen || !displayable(c.Subject) {
		return ErrBadClaims
	}
	for _, r := range c.Rooms {
		if r == "" {
			return ErrBadClaims
		}
	}
	for _, r := range c.Publish {
		if r == "" {
			return ErrBadClaims
		}
	}
	if len(c.ID) > MaxSubjectLen {
		return ErrBadClaims
	}
	return nil
}

// displayable reports whether s is valid UTF-8 without control characters,
// line separators or bidirectional overrides, which could forge or hide
// text where the subject is shown next to other users' messages.
func displayable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// Verify checks token (the compact JWS serialization, without "Bearer")
// and returns the identity it carries. It enforces the signature, "alg",
// "exp" (required), "nbf" and "iat" (optional; refused when in the
// future), each time check with the leeway, and requires a "sub".
//
// The returned Identity may be shared with other callers that presented the
// same token (it comes from the cache): it must not be modified. Errors are
// the Err* values of this package. An empty token yields ErrNoToken.
//
// Safe for concurrent use; it allocates, which is fine at handshake rate.
func (v *Verifier) Verify(token []byte) (*Identity, error) {
	if len(token) == 0 {
		return nil, ErrNoToken
	}
	if len(token) > MaxTokenLen || !compactJWS(token) {
		return nil, ErrInvalidToken
	}
	var key [sha256.Size]byte
	if v.cache != nil {
		key = sha256.Sum256(token)
		if id := v.cache.get(&key, v.now(), v.leeway); id != nil {
			if v.revs.revoked(id, v.now()) {
				return nil, ErrRevoked
			}
			return id, nil
		}
	}
	var c claims
	tok, err := v.parser.ParseWithClaims(string(token), &c, v.keyFn)
	if err != nil {
		return nil, v.classify(tok, err)
	}
	id := &Identity{Subject: c.Subject, Expires: c.ExpiresAt.Time, TokenID: c.ID}
	if c.NotBefore != nil {
		id.notBefore = c.NotBefore.Time
	}
	if c.IssuedAt != nil && c.IssuedAt.After(id.notBefore) {
		id.notBefore = c.IssuedAt.Time
	}
	if c.Rooms != nil {
		id.Rooms = parseRooms(c.Rooms)
	}
	if c.Publish != nil {
		id.Publish = parseRooms(c.Publish)
		id.publishSet = true
	}
	if v.cache != nil {
		v.cache.put(&key, id)
	}
	if v.revs.revoked(id, v.now()) {
		return nil, ErrRevoked
	}
	return id, nil
}

// compactJWS reports whether token holds only what the compact JWS
// serialization may: base64url characters and the dots between the
// parts. Go's base64 decoding skips CR and LF even in strict mode, so
// without this a token with line breaks in its signature would verify:
// one token with many spellings, each its own cache entry, that other
// JWT implementations refuse (found by FuzzVerify).
func compactJWS(token []byte) bool {
	for _, c := range token {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// classify maps an error of the jwt package to this package's sentinels.
func (v *Verifier) classify(tok *jwt.Token, err error) error {
	var e Error
	if errors.As(err, &e) {
		return e // from keyFor or claims.Validate
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrInvalidToken
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// WithValidMethods reports a wrong "alg" as a signature error.
		if tok != nil && tok.Method != nil && tok.Method.Alg() != v.alg {
			return ErrAlgorithm
		}
		return ErrBadSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrAlgorithm // "alg" missing or unknown
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ErrNoExpiry
	}
	return ErrInvalidToken
}

// parsePublicKey reads the first PEM block of b and picks the algorithm
// from the key type.
func parsePublicKey(b []byte) (alg string, key any, err error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return "", nil, errors.New("auth: public key: no PEM block found")
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE") {
			return "", nil, fmt.Errorf("auth: public key: got a %s; the gateway needs only the public key (openssl pkey -in key.pem -pubout)", block.Type)
		}
		return "", nil, fmt.Errorf("auth: public key: unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return "", nil, fmt.Errorf("auth: public key: %w", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return "", nil, fmt.Errorf("auth: public key: RSA key has %d bits, need at least %d", k.N.BitLen(), MinRSABits)
		}
		return jwt.SigningMethodRS256.Alg(), k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", nil, fmt.Errorf("auth: public key: ECDSA curve %s, ES256 needs P-256", k.Curve.Params().Name)
		}
		return jwt.SigningMethodES256.Alg(), k, nil
	}
	return "", nil, fmt.Errorf("auth: public key: unsupported key type %T (want RSA or ECDSA P-256)", pub)
}
