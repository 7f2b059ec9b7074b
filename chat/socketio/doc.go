// Package socketio is chatgate's codec for Socket.IO clients: Engine.IO
// protocol v4 packets, Socket.IO protocol v5 packets, and the mapping
// between Socket.IO events and the chat model of package chat. It is pure:
// no I/O, no gnet, no goroutines. The transport (netpoll) feeds it the
// payloads of WebSocket messages (or the bodies of long-polling requests)
// and writes out what its encoders append.
//
// Reading one WebSocket text message:
//
//	t, data, err := socketio.ParseEIO(payload)
//	if err != nil { /* close */ }
//	switch t {
//	case socketio.EIOPong: // heartbeat answered
//	case socketio.EIOMessage:
//		var p socketio.Packet
//		if err := socketio.ParsePacket(data, &p); err != nil { /* close */ }
//		// For a BINARY_EVENT, collect p.Attachments binary messages first.
//		var req chat.Request
//		err := socketio.DecodeEvent(&p, attachments, &req)
//		var ce *chat.Error
//		switch {
//		case errors.As(err, &ce):
//			hub.Fail(session, req.ID, ce) // error ack; connection stays open
//		case err != nil:
//			// protocol error: close
//		default:
//			hub.Handle(session, &req)
//		}
//	}
//
// and on the way out, any encoder, or a chat.Codec method of Codec:
//
//	buf = socketio.AppendConnect(buf[:0], p.Namespace, sid)
//	buf = socketio.Codec{}.AppendMessage(buf[:0], &msg)
//
// # Engine.IO v4
//
// References are to the sections of the engine.io-protocol specification,
// revision 4 (github.com/socketio/engine.io-protocol).
//
// Every packet is a type digit followed by its data ("Packet encoding"):
// 0 open, 1 close, 2 ping, 3 pong, 4 message, 5 upgrade, 6 noop. Over
// WebSocket one text message is one packet ("2", "3probe",
// "42[\"hi\"]"), and a binary message is the raw data of a message packet,
// with no type byte. The server opens a session with ("Handshake")
//
//	0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}
//
// and then pings every pingInterval; the client answers each ping with a
// pong within pingTimeout ("Heartbeat").
//
// Over HTTP long-polling ("Packet encoding", HTTP long-polling) a body
// holds packets separated by the record separator 0x1e, and a binary
// packet is written as 'b' followed by its standard base64:
//
//	4hello\x1ebAQIDBA==
//
// The handshake's query string carries EIO=4, transport=websocket or
// polling, and sid once the session exists ("Query parameters"). Failures
// are answered with HTTP 400 (403 for Forbidden) and a JSON body, as the
// reference server does:
//
//	{"code":0,"message":"Transport unknown"}
//
// Engine.IO v3 (socket.io-client 2.x, served with the gateway's
// -sio-allow-eio3) has its own encoders and decoders in eio3.go:
// length-prefixed polling payloads ("6:4hello", lengths in UTF-16 code
// units), binary payloads, WebSocket binary frames led by 0x04, and the
// Socket.IO v4 CONNECT and ERROR packets without payload objects.
//
// # Socket.IO v5
//
// References are to the sections of the socket.io-protocol specification,
// revision 5 (github.com/socketio/socket.io-protocol). A Socket.IO packet
// is the data of one Engine.IO message packet ("Packet encoding"):
//
//	<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
//
// with types 0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR,
// 5 BINARY_EVENT, 6 BINARY_ACK ("Exchange protocol"). The namespace is left
// out when it is the main one, "/". On the wire, with the Engine.IO '4':
//
//	40                                  client connects to "/"
//	40{"sid":"abc"}                     server accepts ("Connection to a namespace")
//	44/foo,{"message":"Invalid namespace"}  server refuses "/foo"
//	42["join","lobby"]                  event, no ack wanted ("Sending and receiving data")
//	4212["join","lobby"]                event with ack id 12
//	4312[{"room":"lobby","count":2}]    the ack ("Acknowledgement")
//	451-["message",{"room":"r","data":{"_placeholder":true,"num":0}}]
//	                                    binary event; one binary message follows
//	41                                  disconnect ("Disconnection from a namespace")
//
// ParsePacket enforces the payload rules of the specification, whose
// violation closes the connection: CONNECT carries an object or nothing,
// DISCONNECT nothing, CONNECT_ERROR an object, EVENT a non-empty array
// starting with the event name, ACK an array. Binary payloads are
// replaced by {"_placeholder":true,"num":i} objects, and CountPlaceholders
// checks them against the announced count.
//
// # The msgpack parser
//
// Clients using socket.io-msgpack-parser send each Socket.IO packet as one
// msgpack map {"type", "nsp", "data", "id"} in one binary message, binary
// values inline. ParseMsgpack translates such a packet into the text
// packet above (its binary values into placeholders and attachments), so
// everything after it is the same for both parsers; MsgpackCodec and
// AppendMsgpackPacket translate the text packets the encoders write back
// into msgpack. See msgpack.go for the rules.
//
// # Chat events
//
// Chat is served on namespace "/". A client emits "nick", "join", "leave",
// "members", "message", "rooms" and "ping" with an acknowledgement callback
// (see DecodeEvent), and receives the acknowledgement as a one-element
// ACK, success or {"error":{"code","message"}} (see Codec.AppendReply). A
// request without an ack id is carried out but answered with nothing.
// Messages and presence arrive as the events "message" and "presence".
//
// # Allocation and lifetime
//
// ParsePacket, ParseEIO, SplitPayload and DecodeEvent do not allocate
// (DecodeEvent only for strings holding escapes or invalid UTF-8): what
// they return aliases their input and is valid as long as it is. The
// Append encoders allocate only when dst must grow. ParseQuery allocates
// only for a sid and for a query with escapes, DecodePollingPacket's
// base64 decoding always; they are handshake and long-polling paths. Everything in the package is safe for concurrent use
// from any goroutine or event loop.
package socketio
