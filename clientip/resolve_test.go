package clientip

import (
	"net/netip"
	"strings"
	"testing"
)

// headers builds a header callback over a fixed map (names canonical).
func headers(kv ...string) func(string) []byte {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[strings.ToLower(kv[i])] = kv[i+1]
	}
	return func(name string) []byte {
		v, ok := m[strings.ToLower(name)]
		if !ok {
			return nil
		}
		return []byte(v)
	}
}

func TestResolve(t *testing.T) {
	// 127.0.0.1 is the local proxy (nginx on the same host); 10.0.0.0/8 an
	// internal load-balancer tier in front of it.
	trusted, err := ParseTrusted("127.0.0.1, 10.0.0.0/8, 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	const proxy = "127.0.0.1"
	tests := []struct {
		name string
		peer string
		hdr  []string
		want string
	}{
		// Untrusted peers: headers never count.
		{name: "direct, no headers", peer: "192.0.2.10", want: "192.0.2.10"},
		{name: "spoof: untrusted peer with XFF", peer: "192.0.2.10", hdr: []string{"X-Forwarded-For", "6.6.6.6"}, want: "192.0.2.10"},
		{name: "spoof: untrusted peer with Forwarded", peer: "192.0.2.10", hdr: []string{"Forwarded", "for=6.6.6.6"}, want: "192.0.2.10"},
		{name: "spoof: untrusted peer with X-Real-IP", peer: "192.0.2.10", hdr: []string{"X-Real-IP", "6.6.6.6"}, want: "192.0.2.10"},
		{name: "spoof: untrusted peer claims trusted chain", peer: "192.0.2.10", hdr: []string{"X-Forwarded-For", "6.6.6.6, 127.0.0.1"}, want: "192.0.2.10"},
		{name: "untrusted mapped peer is unmapped", peer: "::ffff:192.0.2.10", want: "192.0.2.10"},

		// Trusted peer, X-Forwarded-For.
		{name: "trusted, no headers", peer: proxy, want: proxy},
		{name: "xff single", peer: proxy, hdr: []string{"X-Forwarded-For", "203.0.113.7"}, want: "203.0.113.7"},
		{name: "spoof: client prepends fake entries", peer: proxy, hdr: []string{"X-Forwarded-For", "6.6.6.6, 1.1.1.1, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "spoof: client prepends a trusted-looking entry", peer: proxy, hdr: []string{"X-Forwarded-For", "10.0.0.1, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "multi-hop through trusted tier", peer: proxy, hdr: []string{"X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.0.0.2, 10.0.0.3"}, want: "203.0.113.7"},
		{name: "all hops trusted: leftmost good hop", peer: proxy, hdr: []string{"X-Forwarded-For", "10.0.0.2, 10.0.0.3"}, want: "10.0.0.2"},
		{name: "no spaces", peer: proxy, hdr: []string{"X-Forwarded-For", "6.6.6.6,203.0.113.7,10.0.0.3"}, want: "203.0.113.7"},
		{name: "empty elements ignored", peer: proxy, hdr: []string{"X-Forwarded-For", " , 203.0.113.7 ,, "}, want: "203.0.113.7"},
		{name: "xff ipv4 with port", peer: proxy, hdr: []string{"X-Forwarded-For", "203.0.113.7:51234"}, want: "203.0.113.7"},
		{name: "xff bare ipv6", peer: proxy, hdr: []string{"X-Forwarded-For", "2001:db8::7"}, want: "2001:db8::7"},
		{name: "xff bracketed ipv6 with port", peer: proxy, hdr: []string{"X-Forwarded-For", "[2001:db8::7]:443"}, want: "2001:db8::7"},
		{name: "xff mapped ipv6 unmapped", peer: proxy, hdr: []string{"X-Forwarded-For", "::ffff:203.0.113.7"}, want: "203.0.113.7"},
		{name: "xff trusted ipv6 proxy skipped", peer: proxy, hdr: []string{"X-Forwarded-For", "203.0.113.7, 2001:db8:ffff::1"}, want: "203.0.113.7"},
		{name: "xff unknown skipped", peer: proxy, hdr: []string{"X-Forwarded-For", "203.0.113.7, unknown"}, want: "203.0.113.7"},

		// Malformed entries stop the walk at the last good hop.
		{name: "garbage rightmost: peer", peer: proxy, hdr: []string{"X-Forwarded-For", "203.0.113.7, garbage"}, want: proxy},
		{name: "garbage after trusted hop: that hop", peer: proxy, hdr: []string{"X-Forwarded-For", "203.0.113.7, garbage, 10.0.0.3"}, want: "10.0.0.3"},
		{name: "garbage left of client: client", peer: proxy, hdr: []string{"X-Forwarded-For", "garbage, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "hostname is malformed", peer: proxy, hdr: []string{"X-Forwarded-For", "client.example"}, want: proxy},
		{name: "zone is malformed", peer: proxy, hdr: []string{"X-Forwarded-For", "fe80::1%eth0"}, want: proxy},
		{name: "bad port is malformed", peer: proxy, hdr: []string{"X-Forwarded-For", "203.0.113.7:99999"}, want: proxy},
		{name: "ipv4 in brackets is malformed", peer: proxy, hdr: []string{"X-Forwarded-For", "[203.0.113.7]"}, want: proxy},
		{name: "unclosed bracket is malformed", peer: proxy, hdr: []string{"X-Forwarded-For", "[2001:db8::7"}, want: proxy},
		{name: "only spaces: next header", peer: proxy, hdr: []string{"X-Forwarded-For", "  ", "X-Real-IP", "203.0.113.9"}, want: "203.0.113.9"},
		{name: "port without host is malformed", peer: proxy, hdr: []string{"X-Real-IP", ":0"}, want: proxy},
		{name: "very long entry is malformed", peer: proxy, hdr: []string{"X-Forwarded-For", strings.Repeat("1", 300)}, want: proxy},

		// X-Real-IP.
		{name: "x-real-ip", peer: proxy, hdr: []string{"X-Real-IP", "203.0.113.9"}, want: "203.0.113.9"},
		{name: "xff wins over x-real-ip", peer: proxy, hdr: []string{"X-Real-IP", "203.0.113.9", "X-Forwarded-For", "203.0.113.7"}, want: "203.0.113.7"},
		{name: "x-real-ip garbage", peer: proxy, hdr: []string{"X-Real-IP", "unix:"}, want: proxy},

		// RFC 7239 Forwarded.
		{name: "fwd simple", peer: proxy, hdr: []string{"Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"}, want: "192.0.2.60"},
		{name: "fwd wins over xff", peer: proxy, hdr: []string{"Forwarded", "for=192.0.2.60", "X-Forwarded-For", "203.0.113.7"}, want: "192.0.2.60"},
		{name: "fwd case-insensitive name", peer: proxy, hdr: []string{"Forwarded", "For=192.0.2.60"}, want: "192.0.2.60"},
		{name: "fwd quoted ipv6 with port", peer: proxy, hdr: []string{"Forwarded", `for="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::17"},
		{name: "fwd quoted ipv6", peer: proxy, hdr: []string{"Forwarded", `For="[2001:db8:cafe::17]"`}, want: "2001:db8:cafe::17"},
		{name: "fwd quoted ipv4 with port", peer: proxy, hdr: []string{"Forwarded", `for="192.0.2.43:47011"`}, want: "192.0.2.43"},
		{name: "fwd multi-hop", peer: proxy, hdr: []string{"Forwarded", "for=6.6.6.6, for=192.0.2.43, for=10.0.0.2;by=10.0.0.3"}, want: "192.0.2.43"},
		{name: "fwd spoof: prepended fake", peer: proxy, hdr: []string{"Forwarded", `for=6.6.6.6;proto=https, for="192.0.2.43"`}, want: "192.0.2.43"},
		{name: "fwd comma inside quotes", peer: proxy, hdr: []string{"Forwarded", `for=192.0.2.43;host="a,b", for=10.0.0.2`}, want: "192.0.2.43"},
		{name: "fwd spaces around separators", peer: proxy, hdr: []string{"Forwarded", "for=192.0.2.43 ; proto=http ,  for=10.0.0.2"}, want: "192.0.2.43"},
		{name: "fwd unknown skipped", peer: proxy, hdr: []string{"Forwarded", "for=192.0.2.43, for=unknown"}, want: "192.0.2.43"},
		{name: "fwd obfuscated skipped", peer: proxy, hdr: []string{"Forwarded", `for=192.0.2.43, for="_gazonk"`}, want: "192.0.2.43"},
		{name: "fwd obfuscated port", peer: proxy, hdr: []string{"Forwarded", `for="192.0.2.43:_p1"`}, want: "192.0.2.43"},
		{name: "fwd element without for skipped", peer: proxy, hdr: []string{"Forwarded", "for=192.0.2.43, proto=https"}, want: "192.0.2.43"},
		{name: "fwd without any for: xff", peer: proxy, hdr: []string{"Forwarded", "proto=https;host=example.com", "X-Forwarded-For", "203.0.113.7"}, want: "203.0.113.7"},
		{name: "fwd only unknown: peer", peer: proxy, hdr: []string{"Forwarded", "for=unknown"}, want: proxy},
		{name: "fwd malformed rightmost: peer", peer: proxy, hdr: []string{"Forwarded", "for=192.0.2.43, for=garbage"}, want: proxy},
		{name: "fwd malformed after trusted hop", peer: proxy, hdr: []string{"Forwarded", "for=192.0.2.43, for=garbage, for=10.0.0.2"}, want: "10.0.0.2"},
		{name: "fwd unquoted ipv6 brackets tolerated", peer: proxy, hdr: []string{"Forwarded", "for=[2001:db8::1]"}, want: "2001:db8::1"},
		{name: "fwd duplicate for is malformed", peer: proxy, hdr: []string{"Forwarded", "for=192.0.2.43;for=192.0.2.44"}, want: proxy},
		{name: "fwd unterminated quote is malformed", peer: proxy, hdr: []string{"Forwarded", `for=192.0.2.43, for="10.0.0.2`}, want: proxy},
		{name: "fwd pair without value sign", peer: proxy, hdr: []string{"Forwarded", "for=192.0.2.43, for"}, want: proxy},
		{name: "fwd junk after value", peer: proxy, hdr: []string{"Forwarded", `for="192.0.2.43"x`}, want: proxy},
		{name: "fwd escaped for value is malformed", peer: proxy, hdr: []string{"Forwarded", `for="192.0.2.\43"`}, want: proxy},
		{name: "fwd escaped quote elsewhere is fine", peer: proxy, hdr: []string{"Forwarded", `for=192.0.2.43;host="a\",b"`}, want: "192.0.2.43"},
		{name: "fwd all trusted: leftmost", peer: proxy, hdr: []string{"Forwarded", "for=10.0.0.1, for=10.0.0.2"}, want: "10.0.0.1"},
		{name: "fwd empty elements", peer: proxy, hdr: []string{"Forwarded", ",,for=192.0.2.43,,"}, want: "192.0.2.43"},

		// IPv6 peers.
		{name: "ipv6 trusted peer", peer: "2001:db8:ffff::9", hdr: []string{"X-Forwarded-For", "2001:db8::7"}, want: "2001:db8::7"},
		{name: "ipv6 untrusted peer", peer: "2001:db8::9", hdr: []string{"X-Forwarded-For", "6.6.6.6"}, want: "2001:db8::9"},
		{name: "mapped trusted peer", peer: "::ffff:127.0.0.1", hdr: []string{"X-Forwarded-For", "203.0.113.7"}, want: "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolve(netip.MustParseAddr(tt.peer), trusted, headers(tt.hdr...))
			if got != netip.MustParseAddr(tt.want) {
				t.Fatalf("Resolve = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResolveNoTrust(t *testing.T) {
	peer := netip.MustParseAddr("127.0.0.1")
	h := headers("X-Forwarded-For", "6.6.6.6", "Forwarded", "for=6.6.6.6")
	if got := Resolve(peer, nil, h); got != peer {
		t.Fatalf("nil Trusted: %v", got)
	}
	empty, _ := ParseTrusted("")
	if got := Resolve(peer, empty, h); got != peer {
		t.Fatalf("empty Trusted: %v", got)
	}
	all, _ := ParseTrusted("0.0.0.0/0")
	if got := Resolve(peer, all, nil); got != peer {
		t.Fatalf("nil header func: %v", got)
	}
}

// TestResolveManyHops: a chain longer than MaxHops ends the walk at the
// last good hop instead of reading further.
func TestResolveManyHops(t *testing.T) {
	trusted, _ := ParseTrusted("10.0.0.0/8")
	var b strings.Builder
	b.WriteString("for=192.0.2.1")
	for i := 0; i < MaxHops; i++ {
		b.WriteString(", for=10.0.0.9")
	}
	got := Resolve(netip.MustParseAddr("10.0.0.1"), trusted, headers("Forwarded", b.String()))
	if want := netip.MustParseAddr("10.0.0.9"); got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
	// One hop fewer and the client is in reach.
	short := strings.TrimSuffix(b.String(), ", for=10.0.0.9")
	got = Resolve(netip.MustParseAddr("10.0.0.1"), trusted, headers("Forwarded", short))
	if want := netip.MustParseAddr("192.0.2.1"); got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestAppendHeader(t *testing.T) {
	head := []byte("GET /ws HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nx-forwarded-for:  203.0.113.7 \r\nX-Real-IP: 1.2.3.4\r\n\r\nX-Forwarded-For: 9.9.9.9\r\n")
	tests := []struct {
		name, header, want string
	}{
		{"repeated lines joined", "X-Forwarded-For", "6.6.6.6, 203.0.113.7"},
		{"single", "X-Real-IP", "1.2.3.4"},
		{"absent", "Forwarded", ""},
		{"prefix of a name does not match", "X-Real", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendHeader(nil, head, tt.header)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("spoof: first line alone would be the client's", func(t *testing.T) {
		trusted, _ := ParseTrusted("127.0.0.1")
		var scratch []byte
		got := Resolve(netip.MustParseAddr("127.0.0.1"), trusted, func(name string) []byte {
			scratch = AppendHeader(scratch[:0], head, name)
			return scratch
		})
		if want := netip.MustParseAddr("203.0.113.7"); got != want {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

func TestResolveAllocs(t *testing.T) {
	trusted, _ := ParseTrusted("127.0.0.1, 10.0.0.0/8")
	peer := netip.MustParseAddr("127.0.0.1")
	head := []byte("GET /ws HTTP/1.1\r\nHost: x\r\n" +
		"Forwarded: for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.2\r\n" +
		"X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.0.0.2\r\n\r\n")
	scratch := make([]byte, 0, 256)
	lookup := func(name string) []byte {
		scratch = AppendHeader(scratch[:0], head, name)
		return scratch
	}
	var got netip.Addr
	allocs := testing.AllocsPerRun(100, func() { got = Resolve(peer, trusted, lookup) })
	if want := netip.MustParseAddr("2001:db8::7"); got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
	if allocs != 0 {
		t.Fatalf("Resolve allocates %.1f times per call", allocs)
	}
}

// FuzzResolve: no header content makes Resolve panic or return an invalid
// address; an untrusted peer always gets itself back; and the answer is
// either the peer or an address written in the chosen header.
func FuzzResolve(f *testing.F) {
	f.Add("for=192.0.2.60;proto=http, for=10.0.0.2", "6.6.6.6, 203.0.113.7", "1.2.3.4")
	f.Add(`for="[2001:db8::1]:4711", for=unknown, for="_x"`, "", "")
	f.Add(`for="unterminated`, "garbage, [::1", "unix:")
	f.Add("", "2001:db8::7, ::ffff:10.0.0.1,,", "")
	trusted, _ := ParseTrusted("127.0.0.1, 10.0.0.0/8, ::1")
	proxy := netip.MustParseAddr("127.0.0.1")
	stranger := netip.MustParseAddr("192.0.2.99")
	f.Fuzz(func(t *testing.T, fwd, xff, real string) {
		h := headers("Forwarded", fwd, "X-Forwarded-For", xff, "X-Real-IP", real)
		if got := Resolve(stranger, trusted, h); got != stranger {
			t.Fatalf("untrusted peer resolved to %v", got)
		}
		got := Resolve(proxy, trusted, h)
		if !got.IsValid() || got.Is4In6() || got.Zone() != "" {
			t.Fatalf("invalid result %v", got)
		}
		if got == proxy {
			return
		}
		// The address must appear in one of the headers, in some textual
		// form (compressed IPv6, mapped IPv4...): compare canonically.
		found := false
		for _, s := range []string{fwd, xff, real} {
			for _, tok := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" \t,;=\"[]", r) }) {
				for _, cand := range []string{tok, strings.TrimPrefix(tok, "for="), hostOf(tok)} {
					if a, err := netip.ParseAddr(cand); err == nil && a.Unmap() == got {
						found = true
					}
				}
			}
		}
		if !found {
			t.Fatalf("result %v not in headers %q %q %q", got, fwd, xff, real)
		}
	})
}

// hostOf strips a ":port" suffix from an IPv4 literal.
func hostOf(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		return s[:i]
	}
	return s
}
