package clientip

import (
	"net/netip"
	"testing"
)

func BenchmarkResolve(b *testing.B) {
	trusted, _ := ParseTrusted("127.0.0.1, 10.0.0.0/8")
	peer := netip.MustParseAddr("127.0.0.1")
	cases := []struct {
		name string
		head string
	}{
		{"untrusted-peer", ""},
		{"xff-1hop", "X-Forwarded-For: 203.0.113.7\r\n"},
		{"xff-4hops", "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.0.0.2, 10.0.0.3\r\n"},
		{"forwarded-ipv6", "Forwarded: for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.2\r\n"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			head := []byte("GET /ws HTTP/1.1\r\nHost: x\r\n" + c.head + "\r\n")
			p := peer
			if c.head == "" {
				p = netip.MustParseAddr("192.0.2.1")
			}
			scratch := make([]byte, 0, 256)
			lookup := func(name string) []byte {
				scratch = AppendHeader(scratch[:0], head, name)
				return scratch
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = Resolve(p, trusted, lookup)
			}
		})
	}
}
