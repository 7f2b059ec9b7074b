// Package engineio serves Socket.IO clients: Engine.IO v4 sessions with
// their handshake, heartbeats, long-polling and WebSocket transports and
// the upgrade between them, CORS, and the Socket.IO v5 packet layer that
// connects a session to the chat hub. It is mounted on netpoll
// (netpoll.Protocol at /socket.io/), which owns the sockets, HTTP heads,
// WebSocket handshakes and loops; the wire codecs (packet parsing and
// encoding) live in chat/socketio. With Config.AllowEIO3 it also serves
// Engine.IO v3 / Socket.IO v4 clients (socket.io-client 2.x), whose
// differences are confined to eio3.go and a per-session version.
//
// A session is homed on one event loop and its state is touched only
// there. A session that starts on a WebSocket is homed on that socket's
// loop. A long-polling session is homed on the loop of its handshake; its
// later requests arrive on whatever connections the client uses, are
// parked there (netpoll.Exchange.Park) and handed to the home loop
// (netpoll.Loop.Run), which answers them back through the parked handle.
// After an upgrade the session stays home: packets for the client are
// pushed to the WebSocket's loop and the client's packets are run on the
// home loop, both through the mailboxes, so their order holds and nothing
// is lost or repeated across the switch.
//
// Output goes through netpoll's one outbound path: the WebSocket's
// enqueue for WebSocket transports, and for long-polling an outbox bounded
// by the same -max-pending, answered once per loop pass.
package engineio
