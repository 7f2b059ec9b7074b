package main

import (
	"strings"
	"testing"
)

func TestRedactKey(t *testing.T) {
	for in, want := range map[string]string{
		"-publisher api -api-key s3cret -n 10": "-publisher api -api-key REDACTED -n 10",
		"--api-key=s3cret -n 10":               "--api-key=REDACTED -n 10",
		"-n 10 -api-key":                       "-n 10 -api-key",
		"-label api-key":                       "-label api-key",
	} {
		if got := strings.Join(redactKey(strings.Fields(in)), " "); got != want {
			t.Errorf("redactKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckLoopbackURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"http://127.0.0.1:9091":   true,
		"http://localhost:9091/":  true,
		"http://[::1]:9091":       true,
		"http://127.0.0.1":        true,
		"http://10.0.0.1:9091":    false,
		"https://127.0.0.1:9091":  false,
		"127.0.0.1:9091":          false,
		"http://example.com:9091": false,
	} {
		if err := checkLoopbackURL(u); (err == nil) != ok {
			t.Errorf("checkLoopbackURL(%q) = %v", u, err)
		}
	}
}
