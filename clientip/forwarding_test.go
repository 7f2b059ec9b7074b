package clientip

import (
	"net/netip"
	"testing"
)

func TestHasForwarding(t *testing.T) {
	tests := []struct {
		head string
		want bool
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nx-forwarded-for: garbage\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nX-Forwarded-For:\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nFORWARDED: for=unknown\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nX-Real-IP: 1.2.3\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nX-Real-IPs: 1.2.3.4\r\nX-Forwarded: for=1.2.3.4\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\nX-Forwarded-For: 1.2.3.4\r\n", false}, // after the head
		{"GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4", true},
		{"GET / HTTP/1.1", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := HasForwarding([]byte(tc.head)); got != tc.want {
			t.Errorf("HasForwarding(%q) = %v, want %v", tc.head, got, tc.want)
		}
	}
	head := []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: y\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { HasForwarding(head) }); n != 0 {
		t.Errorf("HasForwarding allocates %v times", n)
	}
}

// TestGarbageResolvesToProxy: a trusted proxy's forwarding headers that
// name no client resolve to the proxy itself — a valid address, which
// the per-address limit counts because HasForwarding reports the header —
// never to an invalid netip.Addr.
func TestGarbageResolvesToProxy(t *testing.T) {
	tr, err := ParseTrusted("192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	proxy := netip.MustParseAddr("192.0.2.10")
	for _, h := range []map[string]string{
		{"X-Forwarded-For": "garbage"},
		{"X-Forwarded-For": "1.2.3"},
		{"X-Forwarded-For": ","},
		{"X-Forwarded-For": "unknown"},
		{"X-Forwarded-For": "192.0.2.11"},
		{"X-Forwarded-For": "fe80::1%eth0"},
		{"X-Real-IP": "300.1.1.1"},
		{"Forwarded": "for=unknown"},
		{"Forwarded": "for=\"garbage"},
		{"Forwarded": "proto=https"},
	} {
		got := Resolve(proxy, tr, func(name string) []byte {
			if v, ok := h[name]; ok {
				return []byte(v)
			}
			return nil
		})
		if !got.IsValid() || !tr.Contains(got) {
			t.Errorf("%v: resolved to %v, want a trusted hop", h, got)
		}
	}
}
