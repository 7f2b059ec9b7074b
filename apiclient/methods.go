package apiclient

import (
	"context"
	"encoding/json"
	"time"
)

// Target names the connections a method acts on: one connection by its id
// (Client), or every connection of a user, the sub of their token (User),
// on every node. Exactly one of the two is set.
type Target struct {
	// Client is a connection id (a native client's welcome id, a
	// Socket.IO client's socket.id).
	Client string `json:"client,omitempty"`
	// User is a user id: the sub claim of the tokens its connections
	// authenticated with.
	User string `json:"user,omitempty"`
}

// ClientTarget names the connection id.
func ClientTarget(id string) Target { return Target{Client: id} }

// UserTarget names every connection of user.
func UserTarget(user string) Target { return Target{User: user} }

// MessageOption sets an optional field of a message of Publish, Broadcast
// or Send.
type MessageOption func(*string)

// WithEvent names the Socket.IO event the message is delivered as:
// Socket.IO clients get that event with data as its one argument instead
// of a "message" event; native clients get the message with an "event"
// field. At most 128 bytes.
func WithEvent(name string) MessageOption {
	return func(event *string) { *event = name }
}

func eventOf(opts []MessageOption) string {
	var event string
	for _, o := range opts {
		o(&event)
	}
	return event
}

// PublishParams are the params of the publish method.
type PublishParams struct {
	Room string `json:"room"`
	// Namespace is the room's Socket.IO namespace; "" means "/".
	Namespace string `json:"namespace,omitempty"`
	Data      any    `json:"data"`
	Event     string `json:"event,omitempty"`
}

// BroadcastParams are the params of the broadcast method.
type BroadcastParams struct {
	Rooms []string `json:"rooms"`
	// Namespace is the rooms' Socket.IO namespace; "" means "/".
	Namespace string `json:"namespace,omitempty"`
	Data      any    `json:"data"`
	Event     string `json:"event,omitempty"`
}

// SendParams are the params of the send method.
type SendParams struct {
	Target
	Data  any    `json:"data"`
	Event string `json:"event,omitempty"`
	// Ack asks the one client of Target.Client to acknowledge the event
	// and waits for it (SendWithAck); Timeout is the wait in
	// milliseconds, 0 for the gateway's default (5000), at most 25000.
	Ack     bool `json:"ack,omitempty"`
	Timeout int  `json:"timeout,omitempty"`
}

// MembershipParams are the params of the join and leave methods.
type MembershipParams struct {
	Target
	Room string `json:"room"`
	// Namespace is the room's Socket.IO namespace ("" means "/"): only
	// the target's connections on it join or leave.
	Namespace string `json:"namespace,omitempty"`
}

// DisconnectParams are the params of the disconnect method. A zero Code
// means the API's default, 4000; an empty Reason with the default code
// means "disconnected by server".
type DisconnectParams struct {
	Target
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Publish delivers data, from the server (from ""), to every member of
// room on every node.
func (c *Client) Publish(ctx context.Context, room string, data any, opts ...MessageOption) error {
	return c.Call(ctx, "publish", PublishParams{Room: room, Data: data, Event: eventOf(opts)}, nil)
}

// Broadcast publishes data to each of rooms (1 to 1000 of them); a client
// in several of the rooms gets it once per room.
func (c *Client) Broadcast(ctx context.Context, rooms []string, data any, opts ...MessageOption) error {
	return c.Call(ctx, "broadcast", BroadcastParams{Rooms: rooms, Data: data, Event: eventOf(opts)}, nil)
}

// Send delivers data, from the server, to the target's connections on
// every node and returns how many it reached: 0, not an error, when the
// target has no connection.
func (c *Client) Send(ctx context.Context, to Target, data any, opts ...MessageOption) (delivered int, err error) {
	var r struct {
		Delivered int `json:"delivered"`
	}
	err = c.Call(ctx, "send", SendParams{Target: to, Data: data, Event: eventOf(opts)}, &r)
	return r.Delivered, err
}

// SendWithAck sends data, from the server, to connection client (a
// Socket.IO client) as an event it must acknowledge, and returns the
// arguments of its acknowledgement, a JSON array: socket.io's
// socket.timeout(timeout).emitWithAck(). timeout is rounded down to
// milliseconds; 0 means the gateway's default, 5 s, and more than 25 s is
// refused. The client may be on any node. It fails with an *Error of
// CodeAckTimeout, CodeAckDisconnect, CodeAckUnsupported (a native client),
// CodeTooManyAcks or CodeNotFound. The call's own bound is raised to the
// timeout plus a margin when it is shorter.
func (c *Client) SendWithAck(ctx context.Context, client string, data any, timeout time.Duration, opts ...MessageOption) (json.RawMessage, error) {
	var r struct {
		Ack json.RawMessage `json:"ack"`
	}
	ms := int(timeout / time.Millisecond)
	wait := 5*time.Second + ackCallMargin
	if ms > 0 {
		wait = time.Duration(ms)*time.Millisecond + ackCallMargin
	}
	cc := c
	if c.hc.Timeout != 0 && c.hc.Timeout < wait {
		hc := *c.hc
		hc.Timeout = wait
		cc = &Client{base: c.base, key: c.key, hc: &hc}
	}
	err := cc.Call(ctx, "send", SendParams{Target: ClientTarget(client), Data: data, Event: eventOf(opts), Ack: true, Timeout: ms}, &r)
	return r.Ack, err
}

// ackCallMargin is what SendWithAck's HTTP call allows past the ack's
// timeout: the gateway's own margins and a hop between nodes.
const ackCallMargin = 5 * time.Second

// Join adds the target's connections to room, as if each had asked: they
// are told ({"type":"joined"} / the "joined" event) and the room's other
// members get presence. Joining a room already joined changes nothing. An
// *Error with CodeNotFound means the target has no connection anywhere.
func (c *Client) Join(ctx context.Context, who Target, room string) error {
	return c.Call(ctx, "join", MembershipParams{Target: who, Room: room}, nil)
}

// Leave removes the target's connections from room, like Join ("left").
// A connection that is not in the room is left as it is.
func (c *Client) Leave(ctx context.Context, who Target, room string) error {
	return c.Call(ctx, "leave", MembershipParams{Target: who, Room: room}, nil)
}

// Disconnect closes the target's connections with WebSocket close code
// (4000–4999; 0 means 4000) and reason (at most 123 bytes; "" with the
// default code means "disconnected by server"), and returns how many it
// closed.
func (c *Client) Disconnect(ctx context.Context, who Target, code int, reason string) (n int, err error) {
	var r struct {
		Disconnected int `json:"disconnected"`
	}
	err = c.Call(ctx, "disconnect", DisconnectParams{Target: who, Code: code, Reason: reason}, &r)
	return r.Disconnected, err
}

// Room is a room of the cluster with its member count on all nodes.
type Room struct {
	Room string `json:"room"`
	// Namespace is the room's Socket.IO namespace ("/" for native
	// clients' rooms).
	Namespace string `json:"namespace"`
	Count     int    `json:"count"`
}

// Rooms lists the rooms of the cluster whose names start with prefix
// ("" for all), sorted by name.
func (c *Client) Rooms(ctx context.Context, prefix string) ([]Room, error) {
	var r struct {
		Rooms []Room `json:"rooms"`
	}
	err := c.Call(ctx, "rooms", struct {
		Prefix string `json:"prefix,omitempty"`
	}{prefix}, &r)
	return r.Rooms, err
}

// Member is one member of a room.
type Member struct {
	// Client is the connection id.
	Client string `json:"client"`
	// User is the connection's user ("" for an anonymous connection).
	User string `json:"user"`
	// Nick is its nickname ("" when it set none).
	Nick string `json:"nick"`
	// Node is the tag of the node the connection is on.
	Node string `json:"node"`
}

// Members lists room's members on every node, sorted by connection id.
func (c *Client) Members(ctx context.Context, room string) ([]Member, error) {
	var r struct {
		Members []Member `json:"members"`
	}
	err := c.Call(ctx, "members", struct {
		Room string `json:"room"`
	}{room}, &r)
	return r.Members, err
}

// Connection describes one open connection.
type Connection struct {
	// Client is the connection id.
	Client string `json:"client"`
	// User is the connection's user ("" for an anonymous connection).
	User string `json:"user"`
	// Nick is its nickname ("" when it set none).
	Nick string `json:"nick"`
	// Rooms are the rooms it is in.
	Rooms []string `json:"rooms"`
	// Namespace is its Socket.IO namespace ("/" for native clients).
	Namespace string `json:"namespace"`
	// Transport is "websocket" or "polling".
	Transport string `json:"transport"`
	// RemoteAddr is the client's IP address.
	RemoteAddr string `json:"remote_addr"`
	// Node is the tag of the node the connection is on.
	Node string `json:"node"`
}

// Connections lists the open connections of every node, or only user's
// when user is not "".
func (c *Client) Connections(ctx context.Context, user string) ([]Connection, error) {
	var r struct {
		Connections []Connection `json:"connections"`
	}
	err := c.Call(ctx, "connections", struct {
		User string `json:"user,omitempty"`
	}{user}, &r)
	return r.Connections, err
}

// NodeInfo describes one node of the cluster.
type NodeInfo struct {
	// Node is the node's tag, the prefix of its connection ids.
	Node string `json:"node"`
	// Version is the gateway's version.
	Version string `json:"version"`
	// Uptime is how long the node's API has been up, in seconds.
	Uptime float64 `json:"uptime"`
	// Connections is the number of chat sessions open on the node.
	Connections int `json:"connections"`
	// Rooms is the number of rooms with members on the node.
	Rooms int `json:"rooms"`
}

// Info describes every node that answered: the one called first, then
// the others.
func (c *Client) Info(ctx context.Context) ([]NodeInfo, error) {
	var r struct {
		Nodes []NodeInfo `json:"nodes"`
	}
	err := c.Call(ctx, "info", nil, &r)
	return r.Nodes, err
}

// Position is a place in a room's history on one node: the offset of the
// last message read (0: none) and the room's epoch on that node.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// HistoryParams are the params of the history method. A nil Since asks
// for the newest messages; a zero Limit means the API's default, 100.
type HistoryParams struct {
	Room string `json:"room"`
	// Namespace is the room's Socket.IO namespace; "" means "/".
	Namespace string    `json:"namespace,omitempty"`
	Since     *Position `json:"since,omitempty"`
	Limit     int       `json:"limit,omitempty"`
}

// Message is a room message as History returns it, as native clients got
// it. A backend's emit has Event and Args and no Data; any other message
// has Data (null included) and no Args.
type Message struct {
	Room string `json:"room"`
	// From is the sender's connection id; "" for a message from the
	// server (the API, the backend).
	From string `json:"from"`
	// Nick is the sender's nickname when it sent the message ("" if none).
	Nick string `json:"nick"`
	// User is the sender's user ("" for an anonymous sender or the server).
	User string `json:"user"`
	// Data is the message's JSON, byte for byte, with a Socket.IO
	// sender's binary attachments inlined as {"_binary":"<base64>"}.
	Data json.RawMessage `json:"data,omitempty"`
	// TS is when the gateway accepted the message, in Unix milliseconds.
	TS int64 `json:"ts"`
	// Offset is the message's place in the node's history.
	Offset uint64 `json:"offset"`
	// Event is the event name of a message published with WithEvent, or
	// of a backend's emit.
	Event string `json:"event,omitempty"`
	// Args are a backend's emit's arguments, a JSON array.
	Args json.RawMessage `json:"args,omitempty"`
}

// History returns up to limit (1 to 1000; 0 means 100) messages of room,
// oldest first: the newest ones when since is nil, else the oldest after
// since. pos is where the room's history stands. To read on, pass the
// last message's Offset with pos.Epoch as since, or &pos when msgs is
// empty (pos.Offset after a full page would skip what the page left out).
// No messages after since means nothing newer.
//
// History is read from the log of the node this Client calls, not the
// cluster's: offsets and epochs are per node, and a position from another
// node is unrecoverable here. Errors: CodeBadOffset when since is past
// the node's last message, CodeUnrecoverable when the messages after
// since are no longer kept or its epoch is not the room's (read again
// with a nil since), CodeNoHistory when the node keeps no history.
func (c *Client) History(ctx context.Context, room string, since *Position, limit int) (msgs []Message, pos Position, err error) {
	var r struct {
		Messages []Message `json:"messages"`
		Position
	}
	err = c.Call(ctx, "history", HistoryParams{Room: room, Since: since, Limit: limit}, &r)
	return r.Messages, r.Position, err
}

// Command is one call of a batch: a method name ("publish", "send", …;
// not "batch") and its params, such as a PublishParams.
type Command struct {
	Method string `json:"method"`
	Params any    `json:"params,omitempty"`
}

// Reply is the outcome of one command of a batch: its result, or its
// error (whose Status is 0: a batch answers 200 as a whole).
type Reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Decode returns the reply's error, if it has one, or decodes its result
// into v (unless v is nil).
func (r Reply) Decode(v any) error {
	if r.Error != nil {
		return r.Error
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(r.Result, v)
}

// Batch runs commands (at most 1000) in order in one request and returns
// one Reply per command, in the same order. A command that fails does not
// stop the others; the returned error is only for the batch as a whole.
func (c *Client) Batch(ctx context.Context, commands ...Command) ([]Reply, error) {
	if commands == nil {
		commands = []Command{}
	}
	var r struct {
		Replies []Reply `json:"replies"`
	}
	err := c.Call(ctx, "batch", struct {
		Commands []Command `json:"commands"`
	}{commands}, &r)
	return r.Replies, err
}
