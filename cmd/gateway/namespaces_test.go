package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

// TestSioNamespacesFlag: -sio-namespaces lists the namespaces other than
// "/" (always served), each checked at start.
func TestSioNamespacesFlag(t *testing.T) {
	for in, want := range map[string][]string{
		"/":                       nil,
		"":                        nil,
		"/admin":                  {"/admin"},
		" /, /admin ,/a/b,/admin": {"/admin", "/a/b"},
	} {
		o, err := parseFlags([]string{"-sio-namespaces", in}, io.Discard)
		if err != nil || !slices.Equal(o.eio.Namespaces, want) {
			t.Errorf("-sio-namespaces %q: %q, %v; want %q", in, o.eio.Namespaces, err, want)
		}
	}
	for _, bad := range []string{"admin", "/ok,admin", "/a\x01b", "/" + strings.Repeat("n", 256)} {
		if _, err := parseFlags([]string{"-sio-namespaces", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "-sio-namespaces") {
			t.Errorf("-sio-namespaces %q: %v, want an error naming the flag", bad, err)
		}
	}
}
