// Command mint prints a signed JWT for chatgate, for documentation, tests
// and local development:
//
//	go run ./auth/cmd/mint -secret "$CHATGATE_JWT_SECRET" -sub alice -rooms 'lobby,team-*' -ttl 1h
//
// With -secret (or the CHATGATE_JWT_SECRET environment variable) it signs
// HS256; with -key FILE, a PEM private key, it signs RS256 (RSA) or ES256
// (ECDSA P-256). -rooms is a comma-separated list of room names and
// prefix patterns ending in '*'; without it the token has no "rooms" claim
// and may join any room.
package main

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr, time.Now); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "mint:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("mint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("secret", "", "HS256 secret, at least 32 bytes (default $CHATGATE_JWT_SECRET)")
	keyFile := fs.String("key", "", "PEM private key file: RSA signs RS256, ECDSA P-256 signs ES256")
	sub := fs.String("sub", "", "user id (the \"sub\" claim), required")
	rooms := fs.String("rooms", "", "comma-separated rooms the token may join; 'team-*' is a prefix, '*' any (default: no claim, any room)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime: exp = now + ttl")
	nbf := fs.Duration("nbf", 0, "not valid before now + nbf (0: no nbf claim)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *sub == "" {
		return errors.New("-sub is required")
	}
	if *ttl <= 0 {
		return errors.New("-ttl must be positive")
	}
	if *secret == "" && *keyFile == "" {
		*secret = os.Getenv("CHATGATE_JWT_SECRET")
	}
	var (
		method jwt.SigningMethod
		key    any
	)
	switch {
	case *secret != "" && *keyFile != "":
		return errors.New("give either -secret or -key, not both")
	case *secret != "":
		if len(*secret) < 32 {
			return errors.New("the HS256 secret must be at least 32 bytes (RFC 7518 §3.2)")
		}
		method, key = jwt.SigningMethodHS256, []byte(*secret)
	case *keyFile != "":
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		if method, key, err = privateKey(b); err != nil {
			return err
		}
	default:
		return errors.New("give -secret (or set CHATGATE_JWT_SECRET) or -key")
	}

	t := now()
	claims := jwt.MapClaims{
		"sub": *sub,
		"iat": t.Unix(),
		"exp": t.Add(*ttl).Unix(),
	}
	if *nbf != 0 {
		claims["nbf"] = t.Add(*nbf).Unix()
	}
	if *rooms != "" {
		list := []string{}
		for _, r := range strings.Split(*rooms, ",") {
			if r = strings.TrimSpace(r); r != "" {
				list = append(list, r)
			}
		}
		claims["rooms"] = list
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, s)
	return err
}

// privateKey parses a PEM private key (PKCS#8, PKCS#1 or SEC 1).
func privateKey(b []byte) (jwt.SigningMethod, any, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, nil, errors.New("-key: no PEM block found")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, nil, fmt.Errorf("-key: unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("-key: %w", err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return jwt.SigningMethodRS256, k, nil
	case *ecdsa.PrivateKey:
		if k.Curve.Params().Name != "P-256" {
			return nil, nil, fmt.Errorf("-key: ECDSA curve %s, ES256 needs P-256", k.Curve.Params().Name)
		}
		return jwt.SigningMethodES256, k, nil
	}
	return nil, nil, fmt.Errorf("-key: unsupported key type %T", k)
}
