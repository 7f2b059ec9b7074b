package chat

import (
	"strconv"
	"time"

	"github.com/chatgate/chatgate/metrics"
)

// Disconnect is why the gateway ends a connection: the WebSocket close code
// and reason the client sees (RFC 6455 §7.4; Socket.IO clients see the
// Engine.IO transport close), and the label it is counted under in
// chatgate_connections_closed_total. Every close the gateway starts is one
// of these values, so a code always means the same thing; docs/protocol.md
// lists them.
//
// Codes 4000–4999 are the application's (RFC 6455 §7.4.2): the server API
// uses them to disconnect clients.
type Disconnect struct {
	Code   uint16
	Reason string // at most 123 bytes, so it fits a close frame
	Metric metrics.CloseReason
}

// Disconnects the gateway itself starts. Protocol errors found by the frame
// reader (1002, 1007, 1009) carry the reader's own reason; see
// ProtocolDisconnect.
var (
	// DisconnectNormal ends a session the client asked to end (an
	// Engine.IO close packet).
	DisconnectNormal = Disconnect{1000, "", metrics.CloseNormal}
	// DisconnectShutdown is sent to every client when the gateway drains
	// (1012 service restart, RFC 6455 §7.4.1 as registered by IANA); the
	// drain adds a reconnect hint to the reason (DisconnectRestart).
	DisconnectShutdown = Disconnect{1012, "server restarting", metrics.CloseServiceRestart}
	// DisconnectTransport: the connection that carried an Engine.IO
	// session closed, or the client closed the Engine.IO session without
	// leaving the namespace first (socket.io's "transport close"). As in
	// socket.io, the session may be resumed (connection state recovery);
	// leaving the namespace ("41") may not.
	DisconnectTransport = Disconnect{1000, "", metrics.CloseTCP}
	// DisconnectPingTimeout: the client stopped answering pings.
	DisconnectPingTimeout = Disconnect{1001, "ping timeout", metrics.CloseTimeout}
	// DisconnectConnectTimeout: a Socket.IO client did not connect a
	// namespace in time.
	DisconnectConnectTimeout = Disconnect{1008, "no Socket.IO connect in time", metrics.CloseTimeout}
	// DisconnectUpgradeTimeout: a WebSocket probing a long-polling session
	// did not finish the upgrade in time.
	DisconnectUpgradeTimeout = Disconnect{1008, "upgrade timeout", metrics.CloseTimeout}
	// DisconnectRateLimit: the client kept sending past its rate limits.
	DisconnectRateLimit = Disconnect{1008, "rate limit exceeded", metrics.CloseRateLimited}
	// DisconnectSlowConsumer: the client's unsent backlog passed
	// -max-pending. The connection is reset rather than closed, since the
	// close frame would wait behind the backlog.
	DisconnectSlowConsumer = Disconnect{1008, "slow consumer", metrics.CloseSlowConsumer}
	// DisconnectBadPacket: a malformed Engine.IO or Socket.IO packet.
	DisconnectBadPacket = Disconnect{1008, "invalid Socket.IO packet", metrics.CloseBadPacket}
	// DisconnectServer: the application's backend disconnected the client
	// (the default of the server API's disconnect).
	DisconnectServer = Disconnect{4000, "disconnected by server", metrics.CloseServer}
	// DisconnectTokenExpired: the connection's token expired and the
	// client did not refresh it.
	DisconnectTokenExpired = Disconnect{3003, "token expired", metrics.CloseExpired}
	// DisconnectRevoked: the connection's user or token was revoked
	// (server API revoke).
	DisconnectRevoked = Disconnect{3004, "token revoked", metrics.CloseServer}
)

// DisconnectRestart is DisconnectShutdown with a reconnect hint:
// "server restarting; reconnect=<ms>", where ms is the window over which
// a client should spread its reconnect (a random wait in [0, ms]), so that
// a node's clients do not all arrive at the other nodes at once. A spread
// of zero or less gives DisconnectShutdown itself.
func DisconnectRestart(spread time.Duration) Disconnect {
	if spread <= 0 {
		return DisconnectShutdown
	}
	d := DisconnectShutdown
	d.Reason += "; reconnect=" + strconv.FormatInt(spread.Milliseconds(), 10)
	return d
}

// ProtocolDisconnect is the disconnect for a WebSocket protocol error with
// close code code (1002, 1007, 1009, …) and the frame reader's reason.
func ProtocolDisconnect(code uint16, reason string) Disconnect {
	return Disconnect{code, reason, metrics.CloseCode(int(code))}
}

// Error makes a Disconnect an error, so that a handler deep in a read path
// can return it and the transport closes with it.
func (d Disconnect) Error() string {
	return "disconnect " + strconv.Itoa(int(d.Code)) + " " + d.Reason
}
