package clientip

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/pires/go-proxyproto"
)

// PROXY protocol errors. Compare with errors.Is.
var (
	// ErrNeedMore means the bytes so far are a valid beginning of a PROXY
	// header but not a whole one: call again when more have arrived.
	ErrNeedMore = errors.New("clientip: incomplete PROXY header")
	// ErrNoProxyHeader means the bytes do not start with a PROXY v1 or v2
	// signature. With PROXY headers optional, the bytes are the
	// connection's own data (HTTP); with them required, the connection
	// must be closed.
	ErrNoProxyHeader = errors.New("clientip: no PROXY header")
	// ErrMalformed means the bytes start with a PROXY signature but the
	// header is invalid. The returned error wraps it together with
	// go-proxyproto's description of the fault.
	ErrMalformed = errors.New("clientip: malformed PROXY header")
)

const (
	// MaxV1Len is the longest v1 header, CRLF included (the worst case
	// "PROXY UNKNOWN <ipv6> <ipv6> 65535 65535\r\n" of the specification).
	MaxV1Len = 107
	// MaxV2Payload is the largest v2 address-and-TLV block accepted, in
	// bytes after the 16-byte fixed part. The specification allows 65535;
	// haproxy sends 12 (TCP4) or 36 (TCP6) plus the TLVs configured with
	// proxy-v2-options, well under this. It matches go-proxyproto's
	// default limit, and a longer header is refused as soon as its length
	// field arrives, before its body is buffered.
	MaxV2Payload = 4096

	v2FixedLen = 16
)

var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// ProxyHeader is a decoded PROXY protocol header.
type ProxyHeader struct {
	// Version is 1 (text) or 2 (binary).
	Version uint8
	// Local reports a header that names no client: v2 command LOCAL (the
	// proxy's own connection, such as a health check) or v1 "PROXY
	// UNKNOWN". Source and Dest are then zero.
	Local bool
	// Source is the client's address and port. It is valid only for a
	// PROXY header of an IPv4 or IPv6 connection; when it is not valid,
	// the caller keeps the TCP peer address. IPv4-mapped IPv6 addresses
	// are returned as IPv4.
	Source netip.AddrPort
	// Dest is the address and port the client connected to, on the proxy.
	Dest netip.AddrPort
}

// ParseProxyHeader decodes the PROXY protocol header (v1 or v2, as haproxy's
// send-proxy and send-proxy-v2 write them) at the start of b, the bytes a
// connection has sent so far. It returns the header and its length n: the
// connection's own data starts at b[n:]. It never looks past the header, so
// whatever follows (HTTP) is left for the caller.
//
// Errors: ErrNeedMore when b is a proper prefix of a possible header (v1:
// no LF within the first MaxV1Len bytes yet; v2: fewer than 16 plus the
// length field's bytes), ErrNoProxyHeader when b starts with neither
// signature, and an error wrapping ErrMalformed otherwise. The result for
// a given connection does not depend on how its bytes were split across
// reads: the caller may call again with all bytes buffered so far each time
// more arrive.
//
// The caller keeps b; the result does not alias it. Once a whole header is
// buffered it allocates a few small objects (see the package comment);
// the other results do not allocate. Safe from any goroutine.
//
// The decoding itself is go-proxyproto's (proxyproto.Read); it needs the
// whole header up front, because its v1 parser refuses a header that was
// not buffered in one read and it reads v2 bodies through a blocking
// reader. This function therefore frames the header first: it checks the
// signature, finds the v1 line end or the v2 length, and hands exactly
// the header bytes to proxyproto.Read.
func ParseProxyHeader(b []byte) (h ProxyHeader, n int, err error) {
	n, err = frameProxyHeader(b)
	if err != nil {
		return ProxyHeader{}, 0, err
	}
	r := readers.Get().(*headerReader)
	r.src.Reset(b[:n])
	r.buf.Reset(&r.src)
	ph, err := proxyproto.Read(r.buf)
	r.src.Reset(nil) // drop the reference to b before pooling
	r.buf.Reset(&r.src)
	readers.Put(r)
	if err != nil {
		return ProxyHeader{}, 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return convertHeader(ph), n, nil
}

// frameProxyHeader returns the length of the header at the start of b.
// Every check looks only at a prefix of b, in a fixed order, so that a
// longer b never changes an answer other than ErrNeedMore.
func frameProxyHeader(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, ErrNeedMore
	}
	switch b[0] {
	case sigV1[0]:
		if !bytes.HasPrefix(b, sigV1[:min(len(b), len(sigV1))]) {
			return 0, ErrNoProxyHeader
		}
		lim := min(len(b), MaxV1Len)
		if i := bytes.IndexByte(b[:lim], '\n'); i >= 0 {
			return i + 1, nil
		}
		if len(b) >= MaxV1Len {
			return 0, fmt.Errorf("%w: v1 line longer than %d bytes", ErrMalformed, MaxV1Len)
		}
		return 0, ErrNeedMore
	case sigV2[0]:
		if !bytes.HasPrefix(b, sigV2[:min(len(b), len(sigV2))]) {
			return 0, ErrNoProxyHeader
		}
		if len(b) <= 12 {
			return 0, ErrNeedMore
		}
		// Byte 12: version 2 in the high nibble, command LOCAL (0) or
		// PROXY (1) in the low one.
		if b[12] != 0x20 && b[12] != 0x21 {
			return 0, fmt.Errorf("%w: v2 version/command byte %#02x", ErrMalformed, b[12])
		}
		if len(b) < v2FixedLen {
			return 0, ErrNeedMore
		}
		l := int(binary.BigEndian.Uint16(b[14:16]))
		if l > MaxV2Payload {
			return 0, fmt.Errorf("%w: v2 length %d over %d", ErrMalformed, l, MaxV2Payload)
		}
		if len(b) < v2FixedLen+l {
			return 0, ErrNeedMore
		}
		return v2FixedLen + l, nil
	}
	return 0, ErrNoProxyHeader
}

func convertHeader(ph *proxyproto.Header) ProxyHeader {
	h := ProxyHeader{Version: ph.Version}
	if ph.Command.IsLocal() {
		h.Local = true
		return h
	}
	src, dst, ok := ph.IPs()
	if !ok {
		return h // a PROXY header for a Unix socket: no IP to report
	}
	sp, dp, _ := ph.Ports()
	if a, ok := netip.AddrFromSlice(src); ok {
		h.Source = netip.AddrPortFrom(a.Unmap(), uint16(sp))
	}
	if a, ok := netip.AddrFromSlice(dst); ok {
		h.Dest = netip.AddrPortFrom(a.Unmap(), uint16(dp))
	}
	return h
}

// headerReader is the pooled reader stack handed to proxyproto.Read.
type headerReader struct {
	src bytes.Reader
	buf *bufio.Reader
}

// readers holds headerReaders between calls. The bufio buffer is larger
// than MaxV1Len so that a v1 header is buffered in one fill, as
// go-proxyproto's v1 parser demands.
var readers = sync.Pool{New: func() any {
	r := &headerReader{}
	r.buf = bufio.NewReaderSize(&r.src, 256)
	return r
}}
