package clientip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/pires/go-proxyproto"
)

// v2 builds a PROXY v2 header by hand: command byte (0x20 LOCAL, 0x21
// PROXY), family/protocol byte and the address block plus TLVs.
func v2(cmd, fam byte, body []byte) []byte {
	b := append([]byte(nil), sigV2...)
	b = append(b, cmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(body)))
	return append(b, body...)
}

// v2tcp4 is a PROXY TCP4 header as haproxy's send-proxy-v2 writes it.
func v2tcp4(src, dst string, sport, dport uint16, tlvs ...byte) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	body := append(append([]byte{}, s[:]...), d[:]...)
	body = binary.BigEndian.AppendUint16(body, sport)
	body = binary.BigEndian.AppendUint16(body, dport)
	return v2(0x21, 0x11, append(body, tlvs...))
}

func v2tcp6(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	body := append(append([]byte{}, s[:]...), d[:]...)
	body = binary.BigEndian.AppendUint16(body, sport)
	body = binary.BigEndian.AppendUint16(body, dport)
	return v2(0x21, 0x21, body)
}

const httpGet = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"

var (
	v1TCP4    = []byte("PROXY TCP4 192.0.2.10 192.0.2.1 51234 443\r\n")
	v1TCP6    = []byte("PROXY TCP6 2001:db8::10 2001:db8::1 51234 443\r\n")
	v1Unknown = []byte("PROXY UNKNOWN\r\n")
	v1Longest = []byte("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n")
	// AWS-style TLV: type 0xEA, length 3.
	v2TLV = v2tcp4("192.0.2.10", "192.0.2.1", 51234, 443, 0xEA, 0, 3, 'a', 'b', 'c')
)

func TestParseProxyHeader(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name    string
		in      []byte
		want    ProxyHeader
		wantN   int
		wantErr error
	}{
		{name: "v1 tcp4", in: v1TCP4, wantN: len(v1TCP4),
			want: ProxyHeader{Version: 1, Source: ap("192.0.2.10:51234"), Dest: ap("192.0.2.1:443")}},
		{name: "v1 tcp4 followed by http", in: append(append([]byte{}, v1TCP4...), httpGet...), wantN: len(v1TCP4),
			want: ProxyHeader{Version: 1, Source: ap("192.0.2.10:51234"), Dest: ap("192.0.2.1:443")}},
		{name: "v1 tcp6", in: v1TCP6, wantN: len(v1TCP6),
			want: ProxyHeader{Version: 1, Source: ap("[2001:db8::10]:51234"), Dest: ap("[2001:db8::1]:443")}},
		{name: "v1 unknown", in: v1Unknown, wantN: len(v1Unknown), want: ProxyHeader{Version: 1, Local: true}},
		{name: "v1 unknown longest", in: v1Longest, wantN: MaxV1Len, want: ProxyHeader{Version: 1, Local: true}},
		{name: "v2 tcp4", in: v2tcp4("192.0.2.10", "192.0.2.1", 51234, 443), wantN: 28,
			want: ProxyHeader{Version: 2, Source: ap("192.0.2.10:51234"), Dest: ap("192.0.2.1:443")}},
		{name: "v2 tcp4 followed by http", in: append(v2tcp4("192.0.2.10", "192.0.2.1", 51234, 443), httpGet...), wantN: 28,
			want: ProxyHeader{Version: 2, Source: ap("192.0.2.10:51234"), Dest: ap("192.0.2.1:443")}},
		{name: "v2 tcp6", in: v2tcp6("2001:db8::10", "2001:db8::1", 51234, 443), wantN: 52,
			want: ProxyHeader{Version: 2, Source: ap("[2001:db8::10]:51234"), Dest: ap("[2001:db8::1]:443")}},
		{name: "v2 tcp6 mapped source unmapped", in: v2tcp6("::ffff:192.0.2.10", "::ffff:192.0.2.1", 1, 2), wantN: 52,
			want: ProxyHeader{Version: 2, Source: ap("192.0.2.10:1"), Dest: ap("192.0.2.1:2")}},
		{name: "v2 with tlvs", in: v2TLV, wantN: len(v2TLV),
			want: ProxyHeader{Version: 2, Source: ap("192.0.2.10:51234"), Dest: ap("192.0.2.1:443")}},
		{name: "v2 local (health check)", in: v2(0x20, 0x00, nil), wantN: 16, want: ProxyHeader{Version: 2, Local: true}},
		{name: "v2 local with addresses", in: append(v2tcp4("192.0.2.10", "192.0.2.1", 1, 2)[:12:12], append([]byte{0x20}, v2tcp4("192.0.2.10", "192.0.2.1", 1, 2)[13:]...)...), wantN: 28,
			want: ProxyHeader{Version: 2, Local: true}},

		// Incomplete.
		{name: "empty", in: nil, wantErr: ErrNeedMore},
		{name: "v1 signature prefix", in: []byte("PRO"), wantErr: ErrNeedMore},
		{name: "v1 without crlf", in: v1TCP4[:len(v1TCP4)-2], wantErr: ErrNeedMore},
		{name: "v1 cr without lf", in: v1TCP4[:len(v1TCP4)-1], wantErr: ErrNeedMore},
		{name: "v2 signature prefix", in: sigV2[:5], wantErr: ErrNeedMore},
		{name: "v2 fixed part short", in: v2tcp4("192.0.2.10", "192.0.2.1", 1, 2)[:15], wantErr: ErrNeedMore},
		{name: "v2 body short", in: v2tcp4("192.0.2.10", "192.0.2.1", 1, 2)[:27], wantErr: ErrNeedMore},

		// Not a PROXY header.
		{name: "http get", in: []byte(httpGet), wantErr: ErrNoProxyHeader},
		{name: "http post", in: []byte("POST / HTTP/1.1\r\n"), wantErr: ErrNoProxyHeader},
		{name: "http put prefix", in: []byte("PU"), wantErr: ErrNoProxyHeader},
		{name: "proxy without space", in: []byte("PROXYTCP4"), wantErr: ErrNoProxyHeader},
		{name: "crlf but not v2", in: []byte("\r\n\r\nGET"), wantErr: ErrNoProxyHeader},
		{name: "tls client hello", in: []byte{0x16, 0x03, 0x01, 0x02, 0x00}, wantErr: ErrNoProxyHeader},

		// Malformed.
		{name: "v1 too long", in: append([]byte("PROXY TCP4 "), bytes.Repeat([]byte("1"), 100)...), wantErr: ErrMalformed},
		{name: "v1 lf without cr", in: []byte("PROXY TCP4 192.0.2.10 192.0.2.1 51234 443\n"), wantErr: ErrMalformed},
		{name: "v1 bad protocol", in: []byte("PROXY UDP4 192.0.2.10 192.0.2.1 51234 443\r\n"), wantErr: ErrMalformed},
		{name: "v1 bad address", in: []byte("PROXY TCP4 192.0.2.999 192.0.2.1 51234 443\r\n"), wantErr: ErrMalformed},
		{name: "v1 ipv6 in tcp4", in: []byte("PROXY TCP4 2001:db8::1 192.0.2.1 51234 443\r\n"), wantErr: ErrMalformed},
		{name: "v1 bad port", in: []byte("PROXY TCP4 192.0.2.10 192.0.2.1 70000 443\r\n"), wantErr: ErrMalformed},
		{name: "v1 missing fields", in: []byte("PROXY TCP4 192.0.2.10\r\n"), wantErr: ErrMalformed},
		{name: "v1 double space", in: []byte("PROXY TCP4  192.0.2.10 192.0.2.1 51234 443\r\n"), wantErr: ErrMalformed},
		{name: "v2 bad version", in: append(append([]byte{}, sigV2...), 0x11), wantErr: ErrMalformed},
		{name: "v2 bad command", in: append(append([]byte{}, sigV2...), 0x22), wantErr: ErrMalformed},
		{name: "v2 bad family", in: v2(0x21, 0x99, make([]byte, 12)), wantErr: ErrMalformed},
		{name: "v2 proxy unspec", in: v2(0x21, 0x00, nil), wantErr: ErrMalformed},
		{name: "v2 body too short for family", in: v2(0x21, 0x11, make([]byte, 4)), wantErr: ErrMalformed},
		{name: "v2 length over limit", in: append(append([]byte{}, sigV2...), 0x21, 0x11, 0xff, 0xff), wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := ParseProxyHeader(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if n != 0 || h != (ProxyHeader{}) {
					t.Fatalf("error with result %+v, %d", h, n)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if n != tt.wantN || h != tt.want {
				t.Fatalf("got %+v, n=%d; want %+v, n=%d", h, n, tt.want, tt.wantN)
			}
		})
	}
}

// TestParseProxyHeaderLibraryFormat checks the headers go-proxyproto's own
// writer produces, an encoder independent of the hand-built ones above.
func TestParseProxyHeaderLibraryFormat(t *testing.T) {
	src := &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 40000}
	dst := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}
	src6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 40000}
	dst6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 8080}
	for _, tc := range []struct {
		name     string
		version  byte
		src, dst net.Addr
	}{
		{"v1 tcp4", 1, src, dst},
		{"v2 tcp4", 2, src, dst},
		{"v1 tcp6", 1, src6, dst6},
		{"v2 tcp6", 2, src6, dst6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proxyproto.HeaderProxyFromAddrs(tc.version, tc.src, tc.dst).Format()
			if err != nil {
				t.Fatal(err)
			}
			h, n, err := ParseProxyHeader(append(b, httpGet...))
			if err != nil {
				t.Fatal(err)
			}
			want := tc.src.(*net.TCPAddr).AddrPort()
			if n != len(b) || h.Version != tc.version || h.Source != netip.AddrPortFrom(want.Addr().Unmap(), want.Port()) {
				t.Fatalf("got %+v n=%d for %q", h, n, b)
			}
		})
	}
}

func TestParseProxyHeaderAllocs(t *testing.T) {
	partial := v1TCP4[:20]
	http := []byte(httpGet)
	if a := testing.AllocsPerRun(100, func() { _, _, _ = ParseProxyHeader(partial) }); a != 0 {
		t.Fatalf("ErrNeedMore path allocates %.1f times", a)
	}
	if a := testing.AllocsPerRun(100, func() { _, _, _ = ParseProxyHeader(http) }); a != 0 {
		t.Fatalf("ErrNoProxyHeader path allocates %.1f times", a)
	}
}

func BenchmarkParseProxyHeader(b *testing.B) {
	for _, c := range []struct {
		name string
		in   []byte
	}{
		{"v1-tcp4", append(append([]byte{}, v1TCP4...), httpGet...)},
		{"v2-tcp4", append(v2tcp4("192.0.2.10", "192.0.2.1", 51234, 443), httpGet...)},
		{"v2-tcp6", append(v2tcp6("2001:db8::10", "2001:db8::1", 51234, 443), httpGet...)},
		{"no-header", []byte(httpGet)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = ParseProxyHeader(c.in)
			}
		})
	}
}

// FuzzParseProxyHeader: whatever the input, ParseProxyHeader never panics,
// and every prefix of the input either asks for more bytes or gives exactly
// the answer the whole input gives, so the result does not depend on how
// the bytes were split across reads. A successful parse never consumes more
// than the header: the prefix ending at n gives the same result.
func FuzzParseProxyHeader(f *testing.F) {
	for _, s := range [][]byte{
		v1TCP4, v1TCP6, v1Unknown, v1Longest,
		append(append([]byte{}, v1TCP4...), httpGet...),
		[]byte("PROXY TCP4 192.0.2.999 192.0.2.1 1 2\r\n"),
		v2tcp4("192.0.2.10", "192.0.2.1", 51234, 443),
		append(v2tcp4("192.0.2.10", "192.0.2.1", 51234, 443), httpGet...),
		v2tcp6("2001:db8::10", "2001:db8::1", 51234, 443),
		v2TLV,
		v2(0x20, 0x00, nil),
		v2(0x20, 0x11, []byte{1, 2, 3}),
		v2(0x21, 0x31, make([]byte, 216)), // AF_UNIX stream
		[]byte(httpGet),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, n, err := ParseProxyHeader(in)
		if errors.Is(err, ErrNeedMore) {
			return // every prefix of an incomplete header is incomplete too
		}
		if err == nil && (n <= 0 || n > len(in)) {
			t.Fatalf("n = %d for %d bytes", n, len(in))
		}
		if err != nil && !errors.Is(err, ErrNoProxyHeader) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unclassified error %v", err)
		}
		settled := false
		for k := 0; k <= len(in); k++ {
			hk, nk, errk := ParseProxyHeader(in[:k])
			if errors.Is(errk, ErrNeedMore) {
				if settled {
					t.Fatalf("prefix %d wants more after an earlier prefix settled", k)
				}
				if err == nil && k >= n {
					t.Fatalf("prefix %d wants more but the header ends at %d", k, n)
				}
				continue
			}
			settled = true
			if hk != h || nk != n || (errk == nil) != (err == nil) ||
				(errk != nil && errk.Error() != err.Error()) {
				t.Fatalf("prefix %d: (%+v, %d, %v), whole input: (%+v, %d, %v)", k, hk, nk, errk, h, n, err)
			}
		}
	})
}
