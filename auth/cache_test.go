package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// clock is a settable fake clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestCacheHonoursTime(t *testing.T) {
	clk := &clock{t: t0}
	v, err := NewVerifier(Config{HS256Secret: testSecret, Now: clk.now, Leeway: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.MapClaims{"sub": "alice", "nbf": t0.Add(-time.Minute).Unix(), "exp": t0.Add(time.Minute).Unix()}
	tok := sign(t, jwt.SigningMethodHS256, testSecret, c)

	steps := []struct {
		name string
		at   time.Time
		want error
		hit  bool // the identity must be the cached one
	}{
		{"first verification", t0, nil, false},
		{"hit", t0.Add(30 * time.Second), nil, true},
		{"hit inside leeway after exp", t0.Add(time.Minute + time.Second), nil, true},
		{"expired beyond leeway", t0.Add(time.Minute + 2*time.Second), ErrExpired, false},
		{"valid again after clock moved back", t0, nil, false},
		{"clock before nbf", t0.Add(-2 * time.Minute), ErrNotYetValid, false},
	}
	var first *Identity
	for _, s := range steps {
		clk.set(s.at)
		id, err := v.Verify(tok)
		if err != s.want {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.want)
		}
		if err != nil {
			if v.cache.len() != 0 {
				t.Fatalf("%s: stale entry kept in the cache", s.name)
			}
			continue
		}
		if first == nil {
			first = id
		}
		if s.hit && id != first {
			t.Fatalf("%s: identity not served from the cache", s.name)
		}
		first = id
	}
}

func TestCacheOnlyAccepted(t *testing.T) {
	v, err := NewVerifier(Config{HS256Secret: testSecret, Now: fixedNow(t0)})
	if err != nil {
		t.Fatal(err)
	}
	bad := sign(t, jwt.SigningMethodHS256, []byte("some other secret that is 32 bytes"), claimsAt(t0))
	for range 3 {
		if _, err := v.Verify(bad); err != ErrBadSignature {
			t.Fatalf("err = %v", err)
		}
	}
	if n := v.cache.len(); n != 0 {
		t.Fatalf("cache holds %d entries after rejections", n)
	}
}

func TestCacheBounded(t *testing.T) {
	const size = 32
	v, err := NewVerifier(Config{HS256Secret: testSecret, Now: fixedNow(t0), CacheSize: size})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		c := claimsAt(t0)
		c["sub"] = fmt.Sprint("user", i)
		tok := sign(t, jwt.SigningMethodHS256, testSecret, c)
		id, err := v.Verify(tok)
		if err != nil || id.Subject != c["sub"] {
			t.Fatalf("verify %d: %v %+v", i, err, id)
		}
	}
	if n := v.cache.len(); n > size || n == 0 {
		t.Fatalf("cache holds %d entries, bound %d", n, size)
	}
}

func TestCacheDisabled(t *testing.T) {
	v := hsVerifier(t, t0, 0)
	if v.cache != nil {
		t.Fatal("CacheSize -1 must disable the cache")
	}
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0))
	a, _ := v.Verify(tok)
	b, _ := v.Verify(tok)
	if a == b || a.Subject != b.Subject {
		t.Fatal("without a cache every call must verify afresh")
	}
}

func TestCacheConcurrent(t *testing.T) {
	v, err := NewVerifier(Config{HS256Secret: testSecret, Now: fixedNow(t0), CacheSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	toks := make([][]byte, 64)
	for i := range toks {
		c := claimsAt(t0)
		c["sub"] = fmt.Sprint("u", i)
		toks[i] = sign(t, jwt.SigningMethodHS256, testSecret, c)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := (i*7 + g) % len(toks)
				id, err := v.Verify(toks[k])
				if err != nil || id.Subject != fmt.Sprint("u", k) {
					t.Errorf("token %d: %v %+v", k, err, id)
					return
				}
			}
		}()
	}
	wg.Wait()
}
