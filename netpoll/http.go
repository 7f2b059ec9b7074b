package netpoll

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"github.com/gobwas/httphead"
	"github.com/panjf2000/gnet/v2"
)

// Request is the parsed head of one HTTP request. Its slices alias the
// buffered head: they are valid only until the handler that received the
// Request returns.
type Request struct {
	Method []byte
	Path   []byte
	Query  []byte // without the '?'
	// Head is the whole request head, request line through the blank line.
	Head []byte
	// HTTP10 is set for an HTTP/1.0 request (no keep-alive by default).
	HTTP10 bool
}

// Header returns the value of the first header named key (case-insensitive),
// or nil.
func (r *Request) Header(key string) []byte {
	lines := r.Head
	// Skip the request line.
	if i := bytes.IndexByte(lines, '\n'); i >= 0 {
		lines = lines[i+1:]
	}
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		if i < 0 {
			i = len(lines)
		}
		line := bytes.TrimRight(lines[:i], "\r")
		if i < len(lines) {
			lines = lines[i+1:]
		} else {
			lines = nil
		}
		if len(line) == 0 {
			break
		}
		k, v, ok := httphead.ParseHeaderLine(line)
		if ok && len(k) == len(key) && bytes.EqualFold(k, []byte(key)) {
			return v
		}
	}
	return nil
}

// Response is a complete, non-upgrade HTTP response.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
	// Header holds extra header lines, each "Name: value" without CRLF.
	Header []string
	// HeadOnly sends the headers of Body (its Content-Length) without the
	// body itself, for HEAD requests.
	HeadOnly bool
	// KeepAlive leaves the connection open for the client's next request;
	// otherwise the response says "Connection: close".
	KeepAlive bool
	// retryAfter marks a refusal by the handshake rate (-handshake-rate):
	// the seconds of its Retry-After header, counted as "rate_limited".
	retryAfter int
}

// HandlerFunc answers a plain HTTP request on the event loop. It must not
// block; r is valid only until it returns.
type HandlerFunc func(r *Request) Response

var (
	errMalformedHead = errors.New("netpoll: malformed HTTP request head")
	errBadVersion    = errors.New("netpoll: unsupported HTTP version")
)

// headEnd returns the length of the request head at the start of b,
// through the blank line that ends it, or -1 if b does not hold it all yet.
func headEnd(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return -1
}

// parseHead parses a complete request head (as delimited by headEnd). Header
// lines are checked for syntax here (validFieldLine) so that a malformed
// request gets a 400 whatever its path.
func parseHead(head []byte) (Request, error) {
	i := bytes.Index(head, []byte("\r\n"))
	if i < 0 {
		return Request{}, errMalformedHead
	}
	rl, ok := httphead.ParseRequestLine(head[:i])
	if !ok || len(rl.Method) == 0 || len(rl.URI) == 0 {
		return Request{}, errMalformedHead
	}
	if rl.Version.Major != 1 {
		return Request{}, errBadVersion
	}
	for _, c := range rl.Method {
		if c < 'A' || c > 'Z' {
			return Request{}, errMalformedHead
		}
	}
	// The request-target holds no whitespace or control characters (RFC
	// 9112, 3.2); httphead splits the line at spaces only, and would hand
	// on a target with a bare CR or LF in it (found by FuzzFieldLines).
	for _, c := range rl.URI {
		if c <= ' ' || c == 0x7f {
			return Request{}, errMalformedHead
		}
	}
	// Every header line must parse; the blank line ends the head.
	rest := head[i+2:]
	for len(rest) > 0 {
		j := bytes.Index(rest, []byte("\r\n"))
		if j < 0 {
			return Request{}, errMalformedHead
		}
		line := rest[:j]
		rest = rest[j+2:]
		if len(line) == 0 {
			break
		}
		if !validFieldLine(line) {
			return Request{}, errMalformedHead
		}
	}
	req := Request{Method: rl.Method, Head: head, HTTP10: rl.Version.Minor == 0}
	uri := rl.URI
	// Absolute-form targets ("http://host/path") are allowed by RFC 9112.
	if bytes.HasPrefix(uri, []byte("http://")) || bytes.HasPrefix(uri, []byte("https://")) {
		k := bytes.Index(uri, []byte("://")) + 3
		if s := bytes.IndexByte(uri[k:], '/'); s >= 0 {
			uri = uri[k+s:]
		} else {
			uri = []byte("/")
		}
	}
	if uri[0] != '/' {
		return Request{}, errMalformedHead
	}
	if q := bytes.IndexByte(uri, '?'); q >= 0 {
		req.Path, req.Query = uri[:q], uri[q+1:]
	} else {
		req.Path = uri
	}
	return req, nil
}

// validFieldLine reports whether line, without its CRLF, is a field line
// as RFC 9112 §5 writes one: a field name that is a token (RFC 9110 §5.1),
// the colon right after it — whitespace between the name and the colon
// must get a 400 (RFC 9112 §5.1) — and a value without NUL, CR or LF (RFC
// 9110 §5.5). A line that starts with whitespace is an obs-fold, the
// continuation of the line before (RFC 9112 §5.2): refused too, as is
// whitespace between the request line and the first field (§2.2). Other
// controls in a value are kept (RFC 9110 §5.5 allows that).
//
// Requiring this keeps every reader of the head in agreement: Header and
// clientip.AppendHeader split lines at LF and match names exactly, so a
// bare LF in a value or a space before a colon could otherwise show one
// field to one reader and another to the next.
func validFieldLine(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false // no colon, or an empty name
	}
	for _, c := range line[:colon] {
		if !httphead.OctetTypes[c].IsToken() {
			return false
		}
	}
	for _, c := range line[colon+1:] {
		if c == 0 || c == '\r' || c == '\n' {
			return false
		}
	}
	return true
}

// appendResponse appends resp as an HTTP/1.1 response that closes the
// connection.
func appendResponse(dst []byte, resp Response) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(resp.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(resp.Status)...)
	dst = append(dst, "\r\n"...)
	// A 304 has no content, and the Content-Length it may carry would have
	// to be the 200's (RFC 9110, 8.6): it gets neither that nor a type.
	if resp.Status != 304 {
		ct := resp.ContentType
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		dst = append(dst, "Content-Type: "...)
		dst = append(dst, ct...)
		dst = append(dst, "\r\nContent-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(resp.Body)), 10)
		dst = append(dst, "\r\n"...)
	}
	if !hasHeader(resp.Header, "Cache-Control") {
		dst = append(dst, "Cache-Control: no-store\r\n"...)
	}
	if !resp.KeepAlive {
		dst = append(dst, "Connection: close\r\n"...)
	}
	for _, h := range resp.Header {
		dst = append(dst, h...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	if resp.HeadOnly || resp.Status == 304 {
		return dst
	}
	return append(dst, resp.Body...)
}

// hasHeader reports whether lines set the header name.
func hasHeader(lines []string, name string) bool {
	for _, l := range lines {
		if len(l) > len(name) && l[len(name)] == ':' && strings.EqualFold(l[:len(name)], name) {
			return true
		}
	}
	return false
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 204:
		return "No Content"
	case 304:
		return "Not Modified"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 429:
		return "Too Many Requests"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 426:
		return "Upgrade Required"
	case 431:
		return "Request Header Fields Too Large"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}

func textResponse(status int, body string) Response {
	return Response{Status: status, Body: []byte(body)}
}

// insertConnectionClose adds "Connection: close" after the status line of
// the response that starts at b[start:].
func insertConnectionClose(b []byte, start int) []byte {
	i := bytes.Index(b[start:], []byte("\r\n"))
	if i < 0 {
		return b
	}
	at := start + i + 2
	const line = "Connection: close\r\n"
	b = append(b, line...)
	copy(b[at+len(line):], b[at:len(b)-len(line)])
	copy(b[at:], line)
	return b
}

// KeepAlive reports whether the client wants the connection kept after
// the response: HTTP/1.1 unless it says close, HTTP/1.0 only if it asks.
func (r *Request) KeepAlive() bool {
	v := r.Header("Connection")
	if r.HTTP10 {
		return bytes.EqualFold(v, []byte("keep-alive"))
	}
	return !bytes.EqualFold(v, []byte("close"))
}

// NotModified reports whether r's If-None-Match ("*" or a list of entity
// tags, RFC 9110 section 13.1.2) matches etag, the quoted validator the
// resource is served with: the client's copy is current, and the answer is
// 304. The comparison is weak, the rule for If-None-Match, so a W/ prefix
// is ignored. It allocates nothing, so a static file handler can call it
// on every request.
func (r *Request) NotModified(etag []byte) bool {
	list := r.Header("If-None-Match")
	for len(list) > 0 {
		var tag []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			tag, list = list[:i], list[i+1:]
		} else {
			tag, list = list, nil
		}
		tag = bytes.TrimSpace(tag)
		tag = bytes.TrimPrefix(tag, []byte("W/"))
		if bytes.Equal(tag, etag) || (len(tag) == 1 && tag[0] == '*') {
			return true
		}
	}
	return false
}

// parseContentLength parses a Content-Length value.
func parseContentLength(v []byte) (int, bool) {
	n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
	return n, err == nil && n >= 0
}

// reply writes a response in the middle of c's traffic handling and keeps
// the connection if the response allows it.
func (c *conn) reply(resp Response) gnet.Action {
	c.lp.wbuf = appendResponse(c.lp.wbuf, resp)
	if !resp.KeepAlive {
		c.state = stateClosed
		c.dropHead()
		return gnet.Close
	}
	c.state = stateHTTP
	c.stamp = c.lp.srv.now() + int64(c.lp.srv.cfg.HandshakeTimeout)
	return gnet.None
}

// Headers returns the values of the named headers that r carries (the
// first of each), by name; nil when names is empty. For the backend's
// connect call (-proxy-headers).
func (r *Request) Headers(names []string) map[string]string {
	if len(names) == 0 {
		return nil
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		if v := r.Header(n); v != nil {
			out[n] = string(v)
		}
	}
	return out
}
