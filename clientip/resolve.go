package clientip

import (
	"bytes"
	"net/netip"
	"unsafe"
)

// MaxHops bounds the Forwarded elements Resolve examines: only the
// rightmost MaxHops elements are kept (on the stack) while the header is
// scanned. Elements further left are never reached by an honest chain of
// trusted proxies, so dropping them only ends the walk early.
const MaxHops = 32

// Resolve returns the address of the client behind peer, the TCP peer of
// the connection (or the source of its PROXY header).
//
// If peer is not in t, peer is returned and no header is read: a client
// talking to the gateway directly cannot choose its own address. If peer is
// trusted, the first of these headers that is present decides:
//
//  1. Forwarded (RFC 7239), if at least one element has a for= parameter;
//  2. X-Forwarded-For, if not empty;
//  3. X-Real-IP, if not empty.
//
// The chosen list is walked from the right, the hop nearest to the
// gateway, towards the left:
//
//   - an address that is itself in t is a proxy: it becomes the last good
//     hop and the walk continues;
//   - the first address not in t is the client, and is returned;
//   - "unknown", an obfuscated identifier ("_hidden", RFC 7239 §6.3), an
//     empty list element or a Forwarded element without for= is skipped:
//     only proxies write these, for hops they cannot or will not name;
//   - anything else (not an IP address, a zoned address, a bad port, bad
//     Forwarded syntax) is malformed and ends the walk;
//   - when the walk ends without finding an untrusted address (malformed
//     entry, left end of the list, or MaxHops Forwarded elements), the last
//     good hop is returned: the leftmost trusted address seen before that
//     point, or peer if there was none.
//
// Accepted address forms in every header: 192.0.2.1, 192.0.2.1:4711,
// 2001:db8::1, [2001:db8::1], [2001:db8::1]:4711, in Forwarded also quoted
// ("[2001:db8::1]:4711"). IPv4-mapped IPv6 addresses are returned as IPv4.
//
// header returns the value of a request header by name, nil if absent.
// If a header occurs on several lines they must be joined with commas in
// order (AppendHeader does this); taking only the first line would let a
// client's own X-Forwarded-For hide the one a proxy appended on a line of
// its own. Resolve calls header at most three times, and uses each result
// only until it calls header again, so the callback may reuse one buffer.
//
// Headers are believed only as far as the trusted proxies write them: each
// trusted proxy must set or strip all three headers, because a Forwarded
// header passed through unchanged takes precedence over the
// X-Forwarded-For the proxy appends.
//
// Resolve does not allocate; safe from any goroutine.
func Resolve(peer netip.Addr, t *Trusted, header func(name string) []byte) netip.Addr {
	peer = peer.Unmap()
	if header == nil || !t.Contains(peer) {
		return peer
	}
	if a, ok := walkForwarded(peer, t, header("Forwarded")); ok {
		return a
	}
	if v := trimOWS(header("X-Forwarded-For")); len(v) > 0 {
		return walkList(peer, t, v)
	}
	if v := trimOWS(header("X-Real-IP")); len(v) > 0 {
		return walkList(peer, t, v)
	}
	return peer
}

// hopKind classifies one element of a forwarding chain.
type hopKind uint8

const (
	hopAddr hopKind = iota // an IP address
	hopSkip                // unknown, obfuscated, empty, or no for=
	hopBad                 // malformed: ends the walk
)

// walker applies Resolve's rule to hops fed from right to left.
type walker struct {
	t    *Trusted
	last netip.Addr // the last good hop: peer, then each trusted address
}

// step feeds the next hop to the left and reports the result once the walk
// is over.
func (w *walker) step(kind hopKind, a netip.Addr) (netip.Addr, bool) {
	switch kind {
	case hopSkip:
		return netip.Addr{}, false
	case hopBad:
		return w.last, true
	}
	if !w.t.Contains(a) {
		return a, true
	}
	w.last = a
	return netip.Addr{}, false
}

// walkList walks a comma-separated list of nodes (X-Forwarded-For,
// X-Real-IP) from the right. The values hold no quoted strings, so the
// list can be split from the right directly.
func walkList(peer netip.Addr, t *Trusted, v []byte) netip.Addr {
	w := walker{t: t, last: peer}
	for len(v) > 0 {
		var el []byte
		if i := bytes.LastIndexByte(v, ','); i >= 0 {
			el, v = v[i+1:], v[:i]
		} else {
			el, v = v, nil
		}
		el = trimOWS(el)
		if len(el) == 0 {
			continue // empty list elements are ignored (RFC 9110 §5.6.1)
		}
		a, kind := parseNode(el)
		if r, done := w.step(kind, a); done {
			return r
		}
	}
	return w.last
}

// hop is one Forwarded element kept for the right-to-left walk.
type hop struct {
	addr netip.Addr
	kind hopKind
}

// walkForwarded applies the walk to a Forwarded header value. It reports
// false, and the caller falls back to X-Forwarded-For, when no element has
// a for= parameter.
//
// Quoted strings may hold commas, so elements are delimited left to right
// into a ring of the rightmost MaxHops, then walked from the right.
func walkForwarded(peer netip.Addr, t *Trusted, v []byte) (netip.Addr, bool) {
	if len(v) == 0 {
		return netip.Addr{}, false
	}
	var ring [MaxHops]hop
	n, sawFor := 0, false
	for i := 0; i < len(v); {
		var h hop
		var hasFor bool
		h, hasFor, i = parseElement(v, i)
		sawFor = sawFor || hasFor
		ring[n%MaxHops] = h
		n++
	}
	if !sawFor {
		return netip.Addr{}, false
	}
	w := walker{t: t, last: peer}
	for k := n - 1; k >= 0 && k >= n-MaxHops; k-- {
		h := ring[k%MaxHops]
		if r, done := w.step(h.kind, h.addr); done {
			return r, true
		}
	}
	return w.last, true
}

// parseElement parses the forwarded-element starting at v[i] (RFC 7239 §4):
// pairs token=value separated by ';', the value a token or a quoted
// string. Whitespace around ';' and ',' is tolerated, as are unquoted
// values with characters outside token (192.0.2.1:80 is sent unquoted by
// some proxies). It returns the element's hop, whether it had a for=
// parameter, and the index just past the element's comma.
func parseElement(v []byte, i int) (h hop, hasFor bool, next int) {
	h.kind = hopSkip
	bad := false
	for {
		i = skipOWS(v, i)
		if i >= len(v) {
			break
		}
		if v[i] == ',' {
			i++
			break
		}
		if v[i] == ';' {
			i++
			continue
		}
		s := i
		for i < len(v) && isTchar(v[i]) {
			i++
		}
		name := v[s:i]
		if len(name) == 0 || i >= len(v) || v[i] != '=' {
			bad = true
			i = skipElement(v, i)
			break
		}
		i++
		var val []byte
		escaped := false
		if i < len(v) && v[i] == '"' {
			i++
			s = i
			for i < len(v) && v[i] != '"' {
				if v[i] == '\\' {
					escaped = true
					i++
				}
				i++
			}
			if i >= len(v) {
				// Unterminated quoted string: it swallows the rest.
				bad = true
				i = len(v)
				break
			}
			val = v[s:i]
			i++
		} else {
			s = i
			for i < len(v) && !isValueDelim(v[i]) {
				i++
			}
			val = v[s:i]
		}
		if len(name) == 3 && (name[0]|0x20) == 'f' && (name[1]|0x20) == 'o' && (name[2]|0x20) == 'r' {
			switch {
			case hasFor: // a parameter occurs at most once per element (§4)
				bad = true
			case escaped: // no node needs a quoted-pair
				bad = true
			default:
				h.addr, h.kind = parseNode(val)
			}
			hasFor = true
		}
		if j := skipOWS(v, i); j < len(v) && v[j] != ';' && v[j] != ',' {
			bad = true
			i = skipElement(v, j)
			break
		}
	}
	if bad {
		h = hop{kind: hopBad}
	}
	return h, hasFor, i
}

// skipElement returns the index just past the next comma outside quoted
// strings, or len(v).
func skipElement(v []byte, i int) int {
	for i < len(v) {
		switch v[i] {
		case ',':
			return i + 1
		case '"':
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
		}
		i++
	}
	return len(v)
}

// parseNode parses one hop: an RFC 7239 node (§6) or an X-Forwarded-For
// entry. See Resolve for the accepted forms.
func parseNode(b []byte) (netip.Addr, hopKind) {
	if len(b) == 0 {
		return netip.Addr{}, hopBad
	}
	if b[0] == '[' {
		j := bytes.IndexByte(b, ']')
		if j < 0 {
			return netip.Addr{}, hopBad
		}
		a, ok := parseIP(b[1:j])
		if !ok || !a.Is6() {
			return netip.Addr{}, hopBad
		}
		if rest := b[j+1:]; len(rest) > 0 && (rest[0] != ':' || !validPort(rest[1:])) {
			return netip.Addr{}, hopBad
		}
		return a.Unmap(), hopAddr
	}
	if bytes.Count(b, []byte{':'}) >= 2 {
		// A bare IPv6 address, as X-Forwarded-For carries it. It cannot
		// carry a port without brackets.
		a, ok := parseIP(b)
		if !ok || !a.Is6() {
			return netip.Addr{}, hopBad
		}
		return a.Unmap(), hopAddr
	}
	host := b
	if j := bytes.IndexByte(b, ':'); j >= 0 {
		host = b[:j]
		if !validPort(b[j+1:]) {
			return netip.Addr{}, hopBad
		}
	}
	if len(host) == 0 {
		return netip.Addr{}, hopBad // ":80"
	}
	if equalFoldASCII(host, "unknown") {
		return netip.Addr{}, hopSkip
	}
	if host[0] == '_' {
		if validObf(host[1:]) {
			return netip.Addr{}, hopSkip
		}
		return netip.Addr{}, hopBad
	}
	a, ok := parseIP(host)
	if !ok || !a.Is4() {
		return netip.Addr{}, hopBad
	}
	return a, hopAddr
}

// parseIP parses an IPv4 or IPv6 address without a zone. It does not
// allocate: netip.ParseAddr needs a string, and converting the header
// bytes would copy them, so they are viewed as a string for the duration
// of the call. That is safe because ParseAddr keeps no reference to its
// input except in a zone (refused before the call) or in the error value,
// which is dropped here at once.
func parseIP(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 45 || bytes.IndexByte(b, '%') >= 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	if err != nil {
		return netip.Addr{}, false
	}
	return a, true
}

// validPort reports whether b is a node-port (RFC 7239 §6): 1–5 digits up
// to 65535, or an obfuscated port "_" followed by identifier characters.
func validPort(b []byte) bool {
	if len(b) > 0 && b[0] == '_' {
		return validObf(b[1:])
	}
	if len(b) == 0 || len(b) > 5 {
		return false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// validObf reports whether b is the part after "_" of an obfuscated node
// or port: 1*( ALPHA / DIGIT / "." / "_" / "-" ).
func validObf(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if c|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// isValueDelim reports whether c ends an unquoted Forwarded value.
func isValueDelim(c byte) bool {
	return c == ',' || c == ';' || c == ' ' || c == '\t' || c == '"'
}

func skipOWS(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	return i
}

func trimOWS(b []byte) []byte {
	return bytes.Trim(b, " \t")
}
