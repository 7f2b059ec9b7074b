// Package clientip finds the real client address of a connection that may
// have arrived through reverse proxies. It is pure: no I/O, no goroutines,
// no gnet, so the event loop can call it while it parses a connection's
// first bytes.
//
// Two mechanisms carry the client address across a proxy, and a gateway
// may use either:
//
//   - HTTP headers (RFC 7239 Forwarded, X-Forwarded-For, X-Real-IP), which
//     Resolve honours only when the TCP peer is a trusted proxy (Trusted);
//   - the PROXY protocol (v1 text, v2 binary), a header the proxy writes at
//     the very start of the TCP connection, before any HTTP, which
//     ParseProxyHeader decodes from the bytes buffered so far.
//
// Typical use on the event loop, once per connection:
//
//	trusted, err := clientip.ParseTrusted("10.0.0.0/8, 127.0.0.1") // at startup
//
//	// First bytes of a connection when PROXY headers are expected:
//	h, n, err := clientip.ParseProxyHeader(buf)
//	switch {
//	case errors.Is(err, clientip.ErrNeedMore):
//		// keep buf, wait for more bytes
//	case errors.Is(err, clientip.ErrNoProxyHeader):
//		// optional mode: no header, buf is HTTP; required mode: close
//	case err != nil:
//		// malformed: close
//	default:
//		if h.Source.IsValid() {
//			peer = h.Source.Addr() // LOCAL/UNKNOWN keep the TCP peer
//		}
//		buf = buf[n:] // the HTTP request starts here
//	}
//
//	// Once the request head is complete:
//	client := clientip.Resolve(peer, trusted, func(name string) []byte {
//		scratch = clientip.AppendHeader(scratch[:0], head, name)
//		return scratch
//	})
//
// # Allocations
//
// Trusted.Contains, Resolve and AppendHeader (with a scratch buffer of
// sufficient capacity) do not allocate; Resolve's header callback may, if
// the caller's does. ParseTrusted allocates (it runs at startup).
// ParseProxyHeader allocates a few small objects per complete header
// (go-proxyproto's Header and its addresses), once per connection;
// ErrNeedMore and ErrNoProxyHeader results do not allocate.
package clientip
