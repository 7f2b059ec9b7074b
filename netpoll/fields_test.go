package netpoll

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/clientip"
	"github.com/chatgate/chatgate/limit"
)

// Field lines follow RFC 9112 §5 (validFieldLine): the cases below are
// each refused with 400, whatever the path.
var badFieldHeads = map[string]string{
	"space before colon":      "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
	"tab before colon":        "GET /healthz HTTP/1.1\r\nHost\t: x\r\n\r\n",
	"obs-fold":                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
	"obs-fold with colon":     "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tX-Forwarded-For: 1.2.3.4\r\n\r\n",
	"space before first line": "GET /healthz HTTP/1.1\r\n Host: x\r\n\r\n",
	"empty name":              "GET /healthz HTTP/1.1\r\n: x\r\n\r\n",
	"name not a token":        "GET /healthz HTTP/1.1\r\nX(A): x\r\n\r\n",
	"name with non-ASCII":     "GET /healthz HTTP/1.1\r\nX-\xc3\xa9: x\r\n\r\n",
	"NUL in value":            "GET /healthz HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
	"bare LF in value":        "GET /healthz HTTP/1.1\r\nX-A: a\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
	"bare CR in value":        "GET /healthz HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
	"no colon":                "GET /healthz HTTP/1.1\r\nnocolon\r\n\r\n",
}

var goodFieldHeads = map[string]string{
	"plain":              "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
	"no space":           "GET /healthz HTTP/1.1\r\nHost:x\r\n\r\n",
	"spaces around":      "GET /healthz HTTP/1.1\r\nHost: \t x \t\r\n\r\n",
	"empty value":        "GET /healthz HTTP/1.1\r\nX-Empty:\r\n\r\n",
	"colon in value":     "GET /healthz HTTP/1.1\r\nHost: x:8080\r\n\r\n",
	"token punctuation":  "GET /healthz HTTP/1.1\r\nX!#$%&'*+-.^_`|~9: v\r\n\r\n",
	"obs-text in value":  "GET /healthz HTTP/1.1\r\nX-A: caf\xc3\xa9 \xff\r\n\r\n",
	"other ctl in value": "GET /healthz HTTP/1.1\r\nX-A: a\x01b\x7f\r\n\r\n",
}

func TestFieldSyntax(t *testing.T) {
	for name, head := range badFieldHeads {
		if _, err := parseHead([]byte(head)); err != errMalformedHead {
			t.Errorf("%s: parseHead = %v, want errMalformedHead", name, err)
		}
	}
	for name, head := range goodFieldHeads {
		if _, err := parseHead([]byte(head)); err != nil {
			t.Errorf("%s: parseHead = %v", name, err)
		}
	}
}

// TestFieldSyntaxOnTheWire: the refusal is a 400 from the server, for
// plain requests and upgrades alike.
func TestFieldSyntaxOnTheWire(t *testing.T) {
	ts := startTestServer(t, Config{})
	status := func(head string) int {
		t.Helper()
		nc, err := net.DialTimeout("tcp", ts.addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatalf("%q: %v", head, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for name, head := range badFieldHeads {
		if st := status(head); st != 400 {
			t.Errorf("%s: HTTP %d, want 400", name, st)
		}
	}
	for name, head := range goodFieldHeads {
		if st := status(head); st != 200 {
			t.Errorf("%s: HTTP %d, want 200", name, st)
		}
	}
	up := strings.Replace(upgradeReq, "Host: x", "Host : x", 1)
	if st := status(up); st != 400 {
		t.Errorf("upgrade with a space before a colon: HTTP %d, want 400", st)
	}
	if st := status(upgradeReq); st != 101 {
		t.Errorf("upgrade: HTTP %d, want 101", st)
	}
}

// FuzzFieldLines: in a head parseHead accepts, every line ends in CRLF
// and the readers of the head agree: Header finds what
// clientip.AppendHeader finds for a field that occurs once.
func FuzzFieldLines(f *testing.F) {
	for _, h := range badFieldHeads {
		f.Add([]byte(h))
	}
	for _, h := range goodFieldHeads {
		f.Add([]byte(h))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headEnd(b)
		if n < 0 {
			return
		}
		r, err := parseHead(b[:n])
		if err != nil {
			return
		}
		body := r.Head[:len(r.Head)-2]
		if bytes.Count(body, []byte("\n")) != bytes.Count(body, []byte("\r\n")) ||
			bytes.Count(body, []byte("\r")) != bytes.Count(body, []byte("\r\n")) {
			t.Fatalf("accepted a bare CR or LF: %q", r.Head)
		}
		lines := strings.Split(string(body), "\r\n")[1:]
		for _, line := range lines[:len(lines)-1] {
			name, _, _ := strings.Cut(line, ":")
			if strings.Count(strings.ToLower(string(body)), "\n"+strings.ToLower(name)+":") != 1 {
				continue
			}
			got := r.Header(name)
			want := clientip.AppendHeader(nil, r.Head, name)
			if !bytes.Equal(got, want) {
				t.Fatalf("%q: Header(%q) = %q, AppendHeader = %q", r.Head, name, got, want)
			}
		}
	})
}

// TestGarbageForwardingCountsAgainstProxy: a request a trusted proxy
// forwarded whose X-Forwarded-For names no client resolves to the proxy's
// address, and counts against it; the proxy's own requests (no forwarding
// header) still do not. The proxy's address comes from a PROXY header, as
// loopback peers are never counted.
func TestGarbageForwardingCountsAgainstProxy(t *testing.T) {
	trusted, err := clientip.ParseTrusted("192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, Config{TrustedProxies: trusted, ProxyProtocol: ProxyRequired,
		Limits: limit.Config{MaxConnectionsPerIP: 2, MessagesPerSecond: -1, BytesPerSecond: -1}})
	open := func(src, extra string) (net.Conn, int) {
		t.Helper()
		nc, err := net.DialTimeout("tcp", ts.addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		req := "PROXY TCP4 " + src + " 127.0.0.1 4000 80\r\n" + strings.Replace(upgradeReq, "\r\n\r\n", "\r\n"+extra+"\r\n\r\n", 1)
		if _, err := nc.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatalf("%q from %s: %v", extra, src, err)
		}
		resp.Body.Close()
		return nc, resp.StatusCode
	}
	for i, xff := range []string{"X-Forwarded-For: garbage", "X-Forwarded-For:", "X-Forwarded-For: 1.2.3", "Forwarded: for=unknown", "X-Real-IP: ::1%eth0"} {
		src := "192.0.2." + string(rune('1'+i))
		for n := 1; n <= 2; n++ {
			if _, st := open(src, xff); st != 101 {
				t.Fatalf("%q from %s, connection %d: HTTP %d, want 101", xff, src, n, st)
			}
		}
		if _, st := open(src, xff); st != 429 {
			t.Errorf("%q from %s, 3rd connection: HTTP %d, want 429 (counted against the proxy)", xff, src, st)
		}
	}
	// The proxy's own connections, with no forwarding header, are not
	// counted; a named client is counted as itself.
	for n := 1; n <= 3; n++ {
		if _, st := open("192.0.2.100", "X-Other: 1"); st != 101 {
			t.Fatalf("proxy's own connection %d: HTTP %d, want 101", n, st)
		}
	}
	for n := 1; n <= 2; n++ {
		if _, st := open("192.0.2.101", "X-Forwarded-For: 203.0.113.7"); st != 101 {
			t.Fatalf("client connection %d: HTTP %d", n, st)
		}
	}
	if _, st := open("192.0.2.102", "X-Forwarded-For: 203.0.113.7"); st != 429 {
		t.Errorf("3rd connection of 203.0.113.7 through another proxy: HTTP %d, want 429", st)
	}
}
