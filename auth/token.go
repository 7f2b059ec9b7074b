package auth

import (
	"bytes"
	"encoding/json"
	"net/url"
)

// TokenFrom extracts the token of a WebSocket handshake: from authorization
// (the Authorization header value) when it uses the Bearer scheme (RFC 6750
// §2.1, scheme case-insensitive), otherwise from the first "token"
// parameter of query (the request's query string without '?',
// percent-decoded). It returns nil when neither carries a non-empty token.
//
// Browsers cannot set headers on a WebSocket, so they use the query; other
// clients should prefer the header, which proxies do not write to access
// logs.
//
// The result aliases authorization or query unless the value needed
// percent-decoding, so it is valid only as long as they are. A value with a
// broken escape is returned undecoded, so that it fails verification
// instead of passing as "no token". Safe from any goroutine.
func TokenFrom(authorization []byte, query []byte) []byte {
	if t := bearer(authorization); t != nil {
		return t
	}
	return queryParam(query, "token")
}

// bearer returns the credentials of a "Bearer" authorization, or nil.
func bearer(h []byte) []byte {
	h = trimOWS(h)
	const scheme = "bearer"
	if len(h) <= len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return nil
	}
	if c := h[len(scheme)]; c != ' ' && c != '\t' {
		return nil // e.g. "Bearerx"
	}
	t := trimOWS(h[len(scheme):])
	if len(t) == 0 {
		return nil
	}
	return t
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// QueryParam returns the value of the first parameter named key in the raw
// query q, percent-decoded, or nil if it is absent or empty.
func QueryParam(q []byte, key string) []byte { return queryParam(q, key) }

// queryParam returns the value of the first parameter named key in q,
// percent-decoded, or nil if it is absent or empty.
func queryParam(q []byte, key string) []byte {
	for len(q) > 0 {
		var pair []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, nil
		}
		k, v, _ := bytes.Cut(pair, []byte{'='})
		if string(k) != key {
			continue
		}
		if len(v) == 0 {
			return nil
		}
		if bytes.IndexByte(v, '%') < 0 && bytes.IndexByte(v, '+') < 0 {
			return v
		}
		s, err := url.QueryUnescape(string(v))
		if err != nil {
			return v
		}
		if s == "" {
			return nil
		}
		return []byte(s)
	}
	return nil
}

// TokenFromSocketIOAuth extracts the token from the auth payload of a
// Socket.IO CONNECT packet, as sent by socket.io-client's `auth: {token}`
// option: the JSON object {"token":"<jwt>"}. An optional "Bearer " before
// the token is removed. It returns nil when the payload is not a JSON object
// or has no "token", or the token is null or empty. A "token" that is not a
// string is returned as its raw JSON, so that it fails verification rather
// than passing as "no token". The result does not alias rawJSON.
func TokenFromSocketIOAuth(rawJSON []byte) []byte {
	var p struct {
		Token json.RawMessage `json:"token"`
	}
	if err := json.Unmarshal(rawJSON, &p); err != nil {
		return nil
	}
	raw := p.Token
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] != '"' {
		return append([]byte(nil), raw...)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil
	}
	t := []byte(s)
	if b := bearer(t); b != nil {
		t = b
	}
	t = trimOWS(t)
	if len(t) == 0 {
		return nil
	}
	return t
}
