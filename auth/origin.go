package auth

import (
	"bytes"
	"fmt"
	"strings"
)

// Origins is an allowlist of browser origins (RFC 6454) for WebSocket
// handshakes. A browser always sends Origin on a WebSocket handshake
// (RFC 6455 §4.1, item 8) and lets any page open a WebSocket to any host,
// with the user's cookies: checking Origin is what stops a hostile page
// from using a visitor's session (cross-site WebSocket hijacking).
//
// Origins is immutable after ParseOrigins and safe for concurrent use. A
// nil *Origins allows every origin.
type Origins struct {
	any   bool
	exact []origin
	wild  []origin // host is the suffix after "*", starting with '.'
	list  string
}

// origin is a parsed origin; port 0 is the scheme's default. Its slices
// alias the parsed input.
type origin struct {
	scheme []byte
	host   []byte
	port   int
}

// ParseOrigins parses a comma-separated allowlist. Entries are
//
//   - an exact origin, "https://chat.example.com" or "http://localhost:8080":
//     scheme, host and port must all match (an omitted port is the
//     scheme's default: 80 for http/ws, 443 for https/wss);
//   - a wildcard subdomain, "https://*.example.com": any subdomain at any
//     depth ("https://a.example.com", "https://a.b.example.com"), but not
//     "https://example.com" itself, with the same scheme and port rules.
//     The part after "*." needs at least two labels, so "https://*.com"
//     is an error;
//   - "*": every origin.
//
// Matching ignores ASCII case. Entries have no path, query, user info or
// trailing slash. "null" (the origin of sandboxed frames and file: pages)
// is refused as an entry: any page can produce it. Spaces around entries
// are ignored. An empty list allows every origin. Errors wrap ErrBadOrigin.
func ParseOrigins(list string) (*Origins, error) {
	o := &Origins{list: strings.TrimSpace(list)}
	n := 0
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		n++
		if e == "*" {
			o.any = true
			continue
		}
		if strings.EqualFold(e, "null") {
			return nil, fmt.Errorf("%w %q: any sandboxed page can send the \"null\" origin; use \"*\" to allow all", ErrBadOrigin, e)
		}
		scheme, hostport, ok := strings.Cut(e, "://")
		if !ok {
			return nil, fmt.Errorf("%w %q: want scheme://host[:port]", ErrBadOrigin, e)
		}
		wild := strings.HasPrefix(hostport, "*.")
		if wild {
			hostport = "x" + hostport[1:] // validate the rest as a host
		}
		p, ok := parseOrigin([]byte(scheme + "://" + hostport))
		if !ok {
			return nil, fmt.Errorf("%w %q: want scheme://host[:port] without path, user info or trailing slash", ErrBadOrigin, e)
		}
		if wild {
			p.host = p.host[1:] // ".example.com"
			if bytes.Count(p.host, []byte(".")) < 2 {
				return nil, fmt.Errorf("%w %q: a wildcard needs a domain of at least two labels", ErrBadOrigin, e)
			}
			o.wild = append(o.wild, p)
		} else {
			o.exact = append(o.exact, p)
		}
	}
	if n == 0 {
		o.any = true
	}
	return o, nil
}

// String returns the list as given to ParseOrigins.
func (o *Origins) String() string {
	if o == nil || o.list == "" {
		return "*"
	}
	return o.list
}

// AllowAll reports whether every origin is allowed.
func (o *Origins) AllowAll() bool { return o == nil || o.any }

// Allowed reports whether a handshake with this Origin header value may
// proceed. A missing or empty Origin is always allowed: only browsers send
// one, and cross-site WebSocket hijacking needs a browser, which always
// sends it; non-browser clients (bots, CLI tools, servers) are authenticated
// by their token instead. A malformed origin, including "null", is refused
// unless every origin is allowed. It does not allocate. Safe from any
// goroutine.
func (o *Origins) Allowed(h []byte) bool {
	if o == nil || o.any || len(h) == 0 {
		return true
	}
	p, ok := parseOrigin(h)
	if !ok {
		return false
	}
	for i := range o.exact {
		e := &o.exact[i]
		if e.port == p.port && bytes.EqualFold(e.scheme, p.scheme) && bytes.EqualFold(e.host, p.host) {
			return true
		}
	}
	for i := range o.wild {
		w := &o.wild[i]
		if w.port != p.port || !bytes.EqualFold(w.scheme, p.scheme) {
			continue
		}
		// host = label(s) + ".example.com": the suffix must match and at
		// least one label must precede it (parseOrigin allows no empty
		// labels, so host cannot be ".example.com").
		if len(p.host) > len(w.host) && bytes.EqualFold(p.host[len(p.host)-len(w.host):], w.host) {
			return true
		}
	}
	return false
}

// parseOrigin parses the serialization of a tuple origin (RFC 6454 §6.2):
// scheme "://" host [":" port]. The slices of the result alias b. Ports
// equal to the scheme's default become 0.
func parseOrigin(b []byte) (origin, bool) {
	i := bytes.Index(b, []byte("://"))
	if i <= 0 {
		return origin{}, false
	}
	scheme, hp := b[:i], b[i+3:]
	for j, c := range scheme {
		alpha := c|0x20 >= 'a' && c|0x20 <= 'z'
		if !alpha && (j == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return origin{}, false
		}
	}
	var host, port []byte
	if len(hp) > 0 && hp[0] == '[' {
		end := bytes.IndexByte(hp, ']')
		if end < 0 {
			return origin{}, false
		}
		host, hp = hp[:end+1], hp[end+1:]
		for _, c := range host[1 : len(host)-1] {
			if !(isHex(c) || c == ':' || c == '.') {
				return origin{}, false
			}
		}
		if len(host) == 2 {
			return origin{}, false
		}
		if len(hp) > 0 {
			if hp[0] != ':' {
				return origin{}, false
			}
			port = hp[1:]
			if len(port) == 0 {
				return origin{}, false
			}
		}
	} else {
		host = hp
		if k := bytes.LastIndexByte(hp, ':'); k >= 0 {
			host, port = hp[:k], hp[k+1:]
			if len(port) == 0 {
				return origin{}, false
			}
		}
		if !validHost(host) {
			return origin{}, false
		}
	}
	p := 0
	if port != nil {
		if len(port) > 5 {
			return origin{}, false
		}
		for _, c := range port {
			if c < '0' || c > '9' {
				return origin{}, false
			}
			p = p*10 + int(c-'0')
		}
		if p == 0 || p > 65535 {
			return origin{}, false
		}
	}
	if p == defaultPort(scheme) {
		p = 0
	}
	return origin{scheme: scheme, host: host, port: p}, true
}

func defaultPort(scheme []byte) int {
	switch {
	case bytes.EqualFold(scheme, []byte("http")), bytes.EqualFold(scheme, []byte("ws")):
		return 80
	case bytes.EqualFold(scheme, []byte("https")), bytes.EqualFold(scheme, []byte("wss")):
		return 443
	}
	return -1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f'
}

// validHost reports whether h is a DNS name or IPv4 address: labels of
// letters, digits, '-' and '_', separated by single dots, no empty label
// (so no leading or trailing dot).
func validHost(h []byte) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	label := 0
	for _, c := range h {
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c|0x20 >= 'a' && c|0x20 <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}
