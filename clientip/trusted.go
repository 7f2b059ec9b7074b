package clientip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrBadTrusted reports an entry of a trusted-proxy list that is neither an
// IP address nor a CIDR prefix.
var ErrBadTrusted = errors.New("clientip: bad trusted proxy")

// Trusted is a set of proxy addresses whose forwarding headers are believed.
// A nil or empty *Trusted trusts nobody. It is immutable once built and safe
// for concurrent use from any goroutine or event loop.
type Trusted struct {
	prefixes []netip.Prefix
}

// ParseTrusted parses a comma-separated list of CIDR prefixes or bare IP
// addresses, IPv4 or IPv6 ("10.0.0.0/8, 192.0.2.7, 2001:db8::/32").
// Whitespace around entries and empty entries are ignored, so "" yields an
// empty set that trusts nobody. A bare address is a single-host prefix.
// IPv4-mapped IPv6 addresses are taken as IPv4 (::ffff:10.0.0.1 is
// 10.0.0.1); zoned addresses (fe80::1%eth0) are refused because forwarded
// headers never carry zones. Host bits of a prefix are masked off
// (10.1.2.3/8 is 10.0.0.0/8).
func ParseTrusted(cidrs string) (*Trusted, error) {
	t := &Trusted{}
	for _, s := range strings.Split(cidrs, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := parseTrustedEntry(s)
		if err != nil {
			return nil, err
		}
		t.prefixes = append(t.prefixes, p)
	}
	return t, nil
}

func parseTrustedEntry(s string) (netip.Prefix, error) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%w %q: zoned addresses are not supported", ErrBadTrusted, s)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w %q: %v", ErrBadTrusted, s, err)
		}
		if a := p.Addr(); a.Is4In6() {
			// ::ffff:10.0.0.0/104 means 10.0.0.0/8: addresses are compared
			// unmapped.
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("%w %q: IPv4-mapped prefix shorter than /96", ErrBadTrusted, s)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w %q: %v", ErrBadTrusted, s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Contains reports whether ip belongs to a trusted proxy. IPv4-mapped IPv6
// addresses match IPv4 entries; a zone on ip is ignored. It does not
// allocate; the list is scanned linearly, which is the fastest way for the
// handful of entries a deployment has.
func (t *Trusted) Contains(ip netip.Addr) bool {
	if t == nil || len(t.prefixes) == 0 || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range t.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Len returns the number of entries.
func (t *Trusted) Len() int {
	if t == nil {
		return 0
	}
	return len(t.prefixes)
}

// String returns the entries in canonical form, comma-separated, for logs.
func (t *Trusted) String() string {
	if t == nil {
		return ""
	}
	s := make([]string, len(t.prefixes))
	for i, p := range t.prefixes {
		if p.IsSingleIP() {
			s[i] = p.Addr().String()
		} else {
			s[i] = p.String()
		}
	}
	return strings.Join(s, ",")
}
