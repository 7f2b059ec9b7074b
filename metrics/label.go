package metrics

// The label values of every labelled metric form small fixed sets, each
// named by a typed constant. The children of each metric are resolved once in
// New and kept in arrays indexed by these constants, so the hot path costs an
// array index and an atomic add: no label hashing, no map lookup, no
// allocation. A value out of range is counted under "other" (or ignored
// where there is no "other"), never a panic.

// Transport is how a client speaks to the gateway, once its handshake has
// succeeded.
type Transport uint8

// Transports, the values of the label transport.
const (
	TransportWebSocket Transport = iota // "websocket": native protocol on /ws, and /echo
	TransportSocketIO                   // "socketio": Engine.IO v4 over WebSocket
	TransportPolling                    // "polling": Engine.IO v4 HTTP long-polling
	numTransports
)

var transportNames = [numTransports]string{"websocket", "socketio", "polling"}

// String returns the label value of t.
func (t Transport) String() string {
	if t < numTransports {
		return transportNames[t]
	}
	return "unknown"
}

// CloseReason is why a TCP connection of the public listener ended: the
// status code of the first close frame (RFC 6455 §7.4), whichever side sent
// it, or one of the non-WebSocket outcomes "tcp", "timeout" and "http".
//
// The zero value is CloseTCP, so a per-connection field that nobody set
// means "the connection ended without a close handshake".
type CloseReason uint8

// Close reasons, the values of the label reason of
// chatgate_connections_closed_total.
const (
	// CloseTCP: the connection ended without a close handshake (reset, EOF
	// or write error after the upgrade); also what code 1006 means.
	CloseTCP CloseReason = iota
	// CloseTimeout: the gateway gave up waiting: request head
	// (handshake timeout, 408), ping or Engine.IO pong, Socket.IO CONNECT.
	// It takes precedence over the close code sent with it.
	CloseTimeout
	// CloseHTTP: the connection never upgraded: a plain HTTP request, a
	// refused handshake, or a peer that left before sending a request.
	CloseHTTP
	CloseNormal          // 1000 normal closure
	CloseGoingAway       // 1001 going away (browser tab closed, ping timeout)
	CloseProtocolError   // 1002 protocol error
	CloseUnsupportedData // 1003 unsupported data
	CloseNoStatus        // 1005 the peer's close frame carried no code
	CloseInvalidPayload  // 1007 invalid payload (bad UTF-8)
	ClosePolicyViolation // 1008 policy violation (slow consumer, bad Socket.IO packet)
	CloseMessageTooBig   // 1009 message too big
	CloseInternalError   // 1011 internal error
	CloseServiceRestart  // 1012 service restart (drain)
	CloseOtherCode       // any other close code ("other")
	// Policy closes told apart (they all send 1008, or 4000 for the
	// server's own disconnect): see chat.Disconnect.
	CloseRateLimited  // "rate_limited": sustained flooding past the rate limits
	CloseSlowConsumer // "slow_consumer": unsent backlog over -max-pending (reset)
	CloseBadPacket    // "bad_packet": malformed Engine.IO / Socket.IO packet
	CloseServer       // "server": disconnected by the application (server API, 4000–4999; revocation 3004)
	CloseExpired      // "expired": the token expired and was not refreshed (3003)
	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{
	"tcp", "timeout", "http",
	"1000", "1001", "1002", "1003", "1005", "1007", "1008", "1009", "1011",
	"1012",
	"other",
	"rate_limited", "slow_consumer", "bad_packet", "server", "expired",
}

// String returns the label value of r.
func (r CloseReason) String() string {
	if r < numCloseReasons {
		return closeReasonNames[r]
	}
	return "other"
}

// CloseCode maps a WebSocket close status code (RFC 6455 §7.4.1) to its
// reason. Codes outside the fixed set, such as application codes
// 3000–4999, are CloseOtherCode; 1006 (abnormal closure, never sent on the
// wire) is CloseTCP.
func CloseCode(code int) CloseReason {
	switch code {
	case 1000:
		return CloseNormal
	case 1001:
		return CloseGoingAway
	case 1002:
		return CloseProtocolError
	case 1003:
		return CloseUnsupportedData
	case 1005:
		return CloseNoStatus
	case 1006:
		return CloseTCP
	case 1007:
		return CloseInvalidPayload
	case 1008:
		return ClosePolicyViolation
	case 1009:
		return CloseMessageTooBig
	case 1011:
		return CloseInternalError
	case 1012:
		return CloseServiceRestart
	}
	return CloseOtherCode
}

// HandshakeFailure is why a connection was refused before it became a
// WebSocket (or Engine.IO) session.
type HandshakeFailure uint8

// Handshake failure reasons, the values of the label reason of
// chatgate_handshakes_failed_total.
const (
	HandshakeBadRequest    HandshakeFailure = iota // "bad_request": malformed head or body framing, wrong method or version, bad Engine.IO query (400, 405, 411, 505)
	HandshakeNotFound                              // "not_found": no such path (404)
	HandshakeTimeout                               // "timeout": request head not complete in time (408)
	HandshakeTooLarge                              // "too_large": request head or body over the limit (413, 414, 431)
	HandshakeBadUpgrade                            // "bad_upgrade": not a valid WebSocket upgrade (426, or refused by the upgrader)
	HandshakeUnauthorized                          // "unauthorized": missing or invalid credentials (401)
	HandshakeForbidden                             // "forbidden": credentials or origin not allowed (403)
	HandshakeOverloaded                            // "overloaded": refused for capacity or rate (429, 503)
	HandshakeDraining                              // "draining": refused because the gateway is shutting down
	HandshakeProxyProtocol                         // "proxy_protocol": missing or malformed PROXY protocol header
	HandshakeRateLimited                           // "rate_limited": over the node's -handshake-rate (503 with Retry-After)
	HandshakeOther                                 // "other": any other refusal
	numHandshakeFailures
)

var handshakeFailureNames = [numHandshakeFailures]string{
	"bad_request", "not_found", "timeout", "too_large", "bad_upgrade",
	"unauthorized", "forbidden", "overloaded", "draining", "proxy_protocol",
	"rate_limited", "other",
}

// String returns the label value of f.
func (f HandshakeFailure) String() string {
	if f < numHandshakeFailures {
		return handshakeFailureNames[f]
	}
	return "other"
}

// HandshakeStatus maps the HTTP status of a refusal (4xx or 5xx) to its
// reason, so a single call where error responses are written covers every
// refusal. Refusals that share a status but not a cause (a 503 while
// draining, a PROXY header error) should pass their reason directly.
func HandshakeStatus(status int) HandshakeFailure {
	switch status {
	case 400, 405, 411, 505:
		return HandshakeBadRequest
	case 401:
		return HandshakeUnauthorized
	case 403:
		return HandshakeForbidden
	case 404:
		return HandshakeNotFound
	case 408:
		return HandshakeTimeout
	case 413, 414, 431:
		return HandshakeTooLarge
	case 426:
		return HandshakeBadUpgrade
	case 429, 503:
		return HandshakeOverloaded
	}
	return HandshakeOther
}

// errorCodes are the label values of chatgate_errors_total: the error codes
// of docs/protocol.md (chat.Code*) plus those reserved for limits and
// authentication, and "other" last.
var errorCodes = [...]string{
	"bad_json", "unknown_type", "missing_field", "invalid_name",
	"invalid_room", "not_member", "no_such_connection", "unsupported",
	"rate_limited", "too_large", "unauthorized", "forbidden",
	"no_such_user", "too_many_rooms",
	"backend_unavailable", "backend_timeout", "backend_error", "not_ready",
	"bad_offset", "unrecoverable", "no_history",
	"other",
}

const errOther = len(errorCodes) - 1

// errorIndex returns the index of code in errorCodes. A switch on a string
// compiles to length and byte comparisons: unlike a map it needs no hashing,
// and it never allocates.
func errorIndex(code string) int {
	switch code {
	case "bad_json":
		return 0
	case "unknown_type":
		return 1
	case "missing_field":
		return 2
	case "invalid_name":
		return 3
	case "invalid_room":
		return 4
	case "not_member":
		return 5
	case "no_such_connection":
		return 6
	case "unsupported":
		return 7
	case "rate_limited":
		return 8
	case "too_large":
		return 9
	case "unauthorized":
		return 10
	case "forbidden":
		return 11
	case "no_such_user":
		return 12
	case "too_many_rooms":
		return 13
	case "backend_unavailable":
		return 14
	case "backend_timeout":
		return 15
	case "backend_error":
		return 16
	case "not_ready":
		return 17
	case "bad_offset":
		return 18
	case "unrecoverable":
		return 19
	case "no_history":
		return 20
	}
	return errOther
}
