package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"sync"

	"github.com/nats-io/nats.go"
)

// Cluster trust: who may connect to NATS (credentials, TLS) and which
// payloads a node believes (an HMAC with the shared Config.Key). See
// docs/cluster.md, "Security".

// wireSigned is the version byte of a signed payload: the fields of
// version 1 followed by macLen bytes of HMAC-SHA256, with Config.Key, over
// every byte before it (the version byte included). A node with a key
// sends and accepts only this version; a node without one only version 1.
const wireSigned = 2

// macLen is the length of the HMAC that ends a signed payload.
const macLen = sha256.Size

// errForged is the error of a payload whose signature is missing or wrong.
var errForged = errors.New("cluster: unsigned or forged payload")

// signer signs and checks payloads with the cluster key. The zero value
// (no key) passes version-1 payloads through unchanged. Safe for
// concurrent use: each call takes its own HMAC state from the pool.
type signer struct {
	key  []byte
	pool sync.Pool // hash.Hash: HMAC-SHA256 keyed with key
}

func newSigner(key []byte) *signer {
	s := &signer{}
	if len(key) > 0 {
		s.key = append([]byte(nil), key...)
		s.pool.New = func() any { return hmac.New(sha256.New, s.key) }
	}
	return s
}

// on reports whether payloads are signed.
func (s *signer) on() bool { return s.key != nil }

// seal turns the version-1 payload b (as the append* encoders make it)
// into a signed one in place, appending the HMAC. Without a key it
// returns b unchanged.
func (s *signer) seal(b []byte) []byte {
	if s.key == nil || len(b) == 0 {
		return b
	}
	b[0] = wireSigned
	h := s.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(b)
	b = h.Sum(b)
	s.pool.Put(h)
	return b
}

// open checks payload b and returns its body, which decodeBody reads:
// with a key, b must be signed with it and the body is b without its HMAC;
// anything else, whatever its version, is errForged (it does not come from
// a holder of the key). Without a key, b must be version 1 (errVersion
// otherwise). open does not copy: the body aliases b.
func (s *signer) open(b []byte) ([]byte, error) {
	if len(b) < 2 {
		return nil, errShort
	}
	if s.key == nil {
		if b[0] != wireVersion {
			return nil, errVersion
		}
		return b, nil
	}
	if b[0] != wireSigned || len(b) < 2+macLen {
		return nil, errForged
	}
	body := b[:len(b)-macLen]
	var sum [macLen]byte
	h := s.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(body)
	mac := h.Sum(sum[:0])
	s.pool.Put(h)
	if !hmac.Equal(mac, b[len(body):]) {
		return nil, errForged
	}
	return body, nil
}

// natsAuthOptions returns the nats.go options for cfg's credentials and
// TLS. Errors (a seed file that does not parse) are configuration errors.
func natsAuthOptions(cfg *Config) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	// RootCAs and ClientCert require TLS, whatever the URL's scheme (as
	// does a tls:// URL): a server without it is refused.
	if cfg.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
	}
	if cfg.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCertFile, cfg.TLSKeyFile))
	}
	return opts, nil
}
