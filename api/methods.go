package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/names"
	"github.com/chatgate/chatgate/chat/socketio"
)

// method runs one API method on decoded-but-raw params.
type method func(s *Server, ctx context.Context, params []byte) (any, *Error)

// methods is the API's method table.
var methods map[string]method

func init() {
	methods = map[string]method{
		"publish":     (*Server).publish,
		"broadcast":   (*Server).broadcast,
		"send":        (*Server).send,
		"join":        (*Server).join,
		"leave":       (*Server).leave,
		"disconnect":  (*Server).disconnect,
		"rooms":       (*Server).rooms,
		"members":     (*Server).members,
		"connections": (*Server).connections,
		"info":        (*Server).info,
		"batch":       (*Server).batch,
		"revoke":      (*Server).revoke,
		"history":     (*Server).history,
	}
}

// Limits of parameters.
const (
	maxEventLen  = 128 // bytes of an event name
	maxReasonLen = 123 // bytes of a close reason (RFC 6455 §5.5)
	maxBatch     = 1000
	maxRooms     = 1000 // rooms of one broadcast
)

// empty is the result of methods that return nothing.
type empty struct{}

// checkRoom applies the rule for room names (package chat/names) that
// the hub applies to clients' and backends' rooms.
func checkRoom(room string) *Error {
	if !names.Room(room) {
		return badRequest("room must be 1 to 128 bytes of valid UTF-8 without control or format characters")
	}
	return nil
}

// checkNamespace applies the rule for Socket.IO namespaces; "" is "/".
func checkNamespace(nsp string) *Error {
	if nsp != "" && chat.CheckNamespace(nsp) != nil {
		return badRequest(`namespace must start with "/" and be at most 256 bytes of text without commas, control or format characters`)
	}
	return nil
}

// roomKey is the hub's key of room in namespace nsp ("" is "/").
func roomKey(nsp, room string) []byte { return chat.RoomKey(nsp, []byte(room)) }

// namespaceOf is the namespace the API names: "/" for "".
func namespaceOf(nsp string) string {
	if nsp == "" {
		return chat.RootNamespace
	}
	return nsp
}

func checkData(data json.RawMessage) *Error {
	if len(data) == 0 {
		return badRequest(`missing "data"`)
	}
	return nil
}

func checkEvent(event string) *Error {
	if len(event) > maxEventLen || !utf8.ValidString(event) {
		return badRequest("event must be at most 128 bytes of valid UTF-8")
	}
	return nil
}

// target names the connections a method acts on: one connection, or
// every connection of a user.
type target struct {
	Client string `json:"client,omitempty"`
	User   string `json:"user,omitempty"`
}

func (t target) check() *Error {
	switch {
	case t.Client == "" && t.User == "":
		return badRequest(`give "client" or "user"`)
	case t.Client != "" && t.User != "":
		return badRequest(`give "client" or "user", not both`)
	}
	return nil
}

// ---- publish, broadcast ----

type publishParams struct {
	Room string `json:"room"`
	// Namespace is the room's Socket.IO namespace; "" is "/".
	Namespace string          `json:"namespace,omitempty"`
	Data      json.RawMessage `json:"data"`
	Event     string          `json:"event,omitempty"`
}

func (s *Server) publish(_ context.Context, raw []byte) (any, *Error) {
	var p publishParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	if err := firstError(checkRoom(p.Room), checkNamespace(p.Namespace), checkData(p.Data), checkEvent(p.Event)); err != nil {
		return nil, err
	}
	// The hub hands the message to the broker, which carries it to the
	// other nodes' members: one publish, as for a client's message.
	s.hub.Publish(roomKey(p.Namespace, p.Room), p.Data, p.Event)
	return empty{}, nil
}

type broadcastParams struct {
	Rooms     []string        `json:"rooms"`
	Namespace string          `json:"namespace,omitempty"`
	Data      json.RawMessage `json:"data"`
	Event     string          `json:"event,omitempty"`
}

func (s *Server) broadcast(_ context.Context, raw []byte) (any, *Error) {
	var p broadcastParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	if len(p.Rooms) == 0 || len(p.Rooms) > maxRooms {
		return nil, badRequest(`"rooms" must list 1 to 1000 rooms`)
	}
	for _, r := range p.Rooms {
		if err := checkRoom(r); err != nil {
			return nil, err
		}
	}
	if err := firstError(checkNamespace(p.Namespace), checkData(p.Data), checkEvent(p.Event)); err != nil {
		return nil, err
	}
	for _, r := range p.Rooms {
		s.hub.Publish(roomKey(p.Namespace, r), p.Data, p.Event)
	}
	return empty{}, nil
}

// ---- send ----

type sendParams struct {
	target
	Data  json.RawMessage `json:"data"`
	Event string          `json:"event,omitempty"`
	// Ack asks the client (one Socket.IO connection) to acknowledge the
	// event and waits for its answer, up to Timeout milliseconds
	// (DefaultAckTimeout when 0, at most MaxAckTimeout).
	Ack     bool `json:"ack,omitempty"`
	Timeout int  `json:"timeout,omitempty"`
}

type sendResult struct {
	Delivered int `json:"delivered"`
	// Ack is the client's acknowledgement: its arguments, a JSON array
	// (send with "ack" only).
	Ack json.RawMessage `json:"ack,omitempty"`
}

// Bounds of a send with "ack", in milliseconds. The maximum leaves the
// wait, with ackMargin and a hop to another node, inside the API
// listener's 30 s write timeout.
const (
	DefaultAckTimeout = 5000
	MaxAckTimeout     = 25000
)

// ackMargin is what a waiter for an acknowledgement allows past its
// timeout: for the timeout to come back from the event loop (the loop
// decides the outcome), and for a node's answer to come back over NATS.
const ackMargin = time.Second

func (s *Server) send(ctx context.Context, raw []byte) (any, *Error) {
	var p sendParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	if err := firstError(p.target.check(), checkData(p.Data), checkEvent(p.Event)); err != nil {
		return nil, err
	}
	if p.Timeout < 0 || p.Timeout > MaxAckTimeout {
		return nil, badRequest(`"timeout" must be 1 to 25000 milliseconds`)
	}
	if p.Ack {
		return s.sendAck(ctx, p)
	}
	res := s.sendLocal(p)
	for _, node := range s.remoteNodes(p.target) {
		var r sendResult
		if s.callNode(ctx, node, "send", p, &r) == nil {
			res.Delivered += r.Delivered
		}
	}
	return res, nil
}

// sendAck is a send with "ack": the event goes to one connection, on
// whichever node holds it, and the call waits for the client's
// acknowledgement.
func (s *Server) sendAck(ctx context.Context, p sendParams) (any, *Error) {
	switch {
	case p.Client == "":
		return nil, badRequest(`"ack" needs a "client" target: one connection acknowledges, not a user's`)
	case ctx.Value(inBatch{}) != nil:
		return nil, badRequest(`a send with "ack" cannot be in a batch`)
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultAckTimeout
	}
	if s.hub.Lookup([]byte(p.Client)) != nil {
		return s.sendAckLocal(ctx, p)
	}
	nodes := s.remoteNodes(p.target)
	if len(nodes) == 0 {
		return nil, notFound("no such client")
	}
	// The other node waits for the acknowledgement: this call waits for
	// that node up to the same timeout and a margin.
	var r sendResult
	wait := time.Duration(p.Timeout)*time.Millisecond + 2*ackMargin
	if err := s.callNodeWithin(ctx, nodes[0], "send", p, &r, wait); err != nil {
		return nil, err
	}
	return r, nil
}

// sendAckLocal sends p to its client on this node and waits for the
// outcome the client's event loop decides: the acknowledgement, the
// timeout, or the session's end. The wait is bounded in case the loop is
// gone.
func (s *Server) sendAckLocal(ctx context.Context, p sendParams) (any, *Error) {
	type outcome struct {
		args []byte
		err  *chat.Error
	}
	ch := make(chan outcome, 1) // the loop never blocks on it
	timeout := time.Duration(p.Timeout) * time.Millisecond
	if !s.hub.SendAckLocal([]byte(p.Client), p.Data, p.Event, timeout, func(args []byte, err *chat.Error) {
		ch <- outcome{args, err}
	}) {
		return nil, notFound("no such client")
	}
	bound := time.NewTimer(timeout + ackMargin)
	defer bound.Stop()
	select {
	case o := <-ch:
		if o.err != nil {
			return nil, fromChat(o.err)
		}
		return sendResult{Delivered: 1, Ack: o.args}, nil
	case <-bound.C:
		return nil, &Error{http.StatusServiceUnavailable, CodeInternal, "the event loop did not answer in time"}
	case <-ctx.Done():
		// The caller went away; the loop still ends the waiter.
		return nil, &Error{http.StatusServiceUnavailable, CodeInternal, "the call ended before the acknowledgement"}
	}
}

func (s *Server) sendLocal(p sendParams) sendResult {
	if p.Client != "" {
		if s.hub.SendLocal([]byte(p.Client), p.Data, p.Event) {
			return sendResult{Delivered: 1}
		}
		return sendResult{}
	}
	return sendResult{Delivered: s.hub.SendUserLocal([]byte(p.User), p.Data, p.Event)}
}

// ---- join, leave ----

type membershipParams struct {
	target
	Room string `json:"room"`
	// Namespace is the room's namespace ("" is "/"): only the target's
	// connections on that namespace join or leave it.
	Namespace string `json:"namespace,omitempty"`
}

// membershipResult counts the connections a join or leave applied to.
type membershipResult struct {
	Matched int `json:"matched"`
}

func (s *Server) join(ctx context.Context, raw []byte) (any, *Error) {
	return s.membership(ctx, raw, true)
}

func (s *Server) leave(ctx context.Context, raw []byte) (any, *Error) {
	return s.membership(ctx, raw, false)
}

func (s *Server) membership(ctx context.Context, raw []byte, join bool) (any, *Error) {
	var p membershipParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	if err := firstError(p.target.check(), checkRoom(p.Room), checkNamespace(p.Namespace)); err != nil {
		return nil, err
	}
	name := "leave"
	if join {
		name = "join"
	}
	// A node that fails (or does not answer) does not undo what the
	// others did: the call succeeds when any connection was matched, and
	// fails with the first error only when none was.
	matched, firstErr := s.membershipLocal(ctx, p, join)
	for _, node := range s.remoteNodes(p.target) {
		var r membershipResult
		if err := s.callNode(ctx, node, name, p, &r); err != nil {
			if err.Code != CodeNotFound && firstErr == nil {
				firstErr = err
			}
			continue
		}
		matched += r.Matched
	}
	switch {
	case matched > 0:
		return empty{}, nil
	case firstErr != nil:
		return nil, firstErr
	}
	return nil, notFound("no such client or user")
}

// membershipLocal applies a join or leave to the target's connections on
// this node, each on its own loop, and waits (bounded by ctx) for them.
// A connection already in (or, for leave, not in) the room counts as
// matched: the call's effect holds.
func (s *Server) membershipLocal(ctx context.Context, p membershipParams, join bool) (int, *Error) {
	sessions := s.hub.Targets(p.Client, p.User, nil)
	nsp := namespaceOf(p.Namespace)
	sessions = slices.DeleteFunc(sessions, func(s *chat.Session) bool { return s.Namespace() != nsp })
	if len(sessions) == 0 {
		return 0, nil
	}
	room := string(roomKey(p.Namespace, p.Room))
	// The loops answer in microseconds; the bound only guards against a
	// loop that is gone (its tasks are dropped).
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	results := make(chan *chat.Error, len(sessions))
	for _, sess := range sessions {
		done := func(e *chat.Error) { results <- e }
		if join {
			s.hub.ServerJoin(sess, room, done)
		} else {
			s.hub.ServerLeave(sess, room, done)
		}
	}
	matched := 0
	var firstErr *chat.Error
	for range sessions {
		select {
		case e := <-results:
			switch {
			case e == nil, e == chat.ErrNotMember:
				matched++
			case e == chat.ErrNoSuchConn:
			case firstErr == nil:
				firstErr = e
			}
		case <-ctx.Done():
			return 0, &Error{http.StatusServiceUnavailable, CodeInternal, "the event loops did not answer in time"}
		}
	}
	if matched == 0 && firstErr != nil {
		return 0, fromChat(firstErr)
	}
	return matched, nil
}

// ---- disconnect ----

type disconnectParams struct {
	target
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

type disconnectResult struct {
	Disconnected int `json:"disconnected"`
}

func (s *Server) disconnect(ctx context.Context, raw []byte) (any, *Error) {
	var p disconnectParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	if err := p.target.check(); err != nil {
		return nil, err
	}
	if p.Code == 0 {
		p.Code = int(chat.DisconnectServer.Code)
	}
	if p.Code < 4000 || p.Code > 4999 {
		return nil, badRequest(`"code" must be 4000 to 4999`)
	}
	if len(p.Reason) > maxReasonLen || !utf8.ValidString(p.Reason) {
		return nil, badRequest(`"reason" must be at most 123 bytes of valid UTF-8`)
	}
	if p.Reason == "" && p.Code == int(chat.DisconnectServer.Code) {
		p.Reason = chat.DisconnectServer.Reason
	}
	res := s.disconnectLocal(p)
	for _, node := range s.remoteNodes(p.target) {
		var r disconnectResult
		if s.callNode(ctx, node, "disconnect", p, &r) == nil {
			res.Disconnected += r.Disconnected
		}
	}
	return res, nil
}

func (s *Server) disconnectLocal(p disconnectParams) disconnectResult {
	d := chat.Disconnect{Code: uint16(p.Code), Reason: p.Reason, Metric: chat.DisconnectServer.Metric}
	sessions := s.hub.Targets(p.Client, p.User, nil)
	for _, sess := range sessions {
		s.hub.Disconnect(sess, d)
	}
	return disconnectResult{len(sessions)}
}

// ---- revoke ----

type revokeParams struct {
	User string `json:"user,omitempty"`
	JTI  string `json:"jti,omitempty"`
	// TTL is how long, in seconds, handshakes and refreshes of the user
	// or token are refused; default 3600, at most 30 days.
	TTL int `json:"ttl,omitempty"`
}

const maxRevokeTTL = 30 * 24 * 3600

func (s *Server) revoke(ctx context.Context, raw []byte) (any, *Error) {
	var p revokeParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	if (p.User == "") == (p.JTI == "") {
		return nil, badRequest(`give "user" or "jti"`)
	}
	if p.TTL == 0 {
		p.TTL = 3600
	}
	if p.TTL < 0 || p.TTL > maxRevokeTTL {
		return nil, badRequest(`"ttl" must be 1 to 2592000 seconds`)
	}
	res := s.revokeLocal(p)
	for _, node := range s.allNodes() {
		var r disconnectResult
		if s.callNode(ctx, node, "revoke", p, &r) == nil {
			res.Disconnected += r.Disconnected
		}
	}
	return res, nil
}

func (s *Server) revokeLocal(p revokeParams) disconnectResult {
	return disconnectResult{s.hub.Revoke(p.User, p.JTI, time.Now().Add(time.Duration(p.TTL)*time.Second))}
}

// ---- rooms, members ----

// The lists come in pages (chat.PageRooms, chat.PageMembers): "limit"
// entries at most (default chat.DefaultListLimit, larger than
// chat.MaxListLimit is lowered to it), and a "cursor" in the result when
// more follow, to pass back for the next page. The API lists every room,
// whatever -rooms-list shows clients: the backend is the authority.

// listPage reads a list's limit and cursor.
func listPage(limit *int, cursor string) (int, string, *Error) {
	if limit != nil && *limit < 1 {
		return 0, "", badRequest(`"limit" must be 1 or more`)
	}
	n := 0
	if limit != nil {
		n = *limit
	}
	after, err := chat.DecodeCursor([]byte(cursor))
	if err != nil {
		return 0, "", badRequest(`"cursor" must be the cursor of a previous result`)
	}
	return chat.ListLimit(n), after, nil
}

type roomsParams struct {
	Namespace string `json:"namespace,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
	Limit     *int   `json:"limit,omitempty"`
	Cursor    string `json:"cursor,omitempty"`
}

type roomInfo struct {
	Room      string `json:"room"`
	Namespace string `json:"namespace"`
	Count     int    `json:"count"`
}

type roomsResult struct {
	Rooms  []roomInfo `json:"rooms"`
	Cursor string     `json:"cursor,omitempty"`
}

func (s *Server) rooms(_ context.Context, raw []byte) (any, *Error) {
	var p roomsParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	if err := checkNamespace(p.Namespace); err != nil {
		return nil, err
	}
	limit, after, err := listPage(p.Limit, p.Cursor)
	if err != nil {
		return nil, err
	}
	// The rooms of one namespace: keys with its prefix, or for "/" the
	// keys without one.
	nsp := namespaceOf(p.Namespace)
	prefix := string(roomKey(p.Namespace, p.Prefix))
	var keep func(string) bool
	if nsp == chat.RootNamespace {
		keep = func(key string) bool { return chat.InNamespace(key, nsp) }
	}
	list, cursor := chat.PageRooms(s.hub.RoomsAll(prefix), after, prefix, limit, keep)
	out := make([]roomInfo, len(list))
	for i, r := range list {
		_, name := chat.SplitRoomString(r.Room)
		out[i] = roomInfo{name, nsp, r.Count}
	}
	return roomsResult{out, cursor}, nil
}

type membersParams struct {
	Room      string `json:"room"`
	Namespace string `json:"namespace,omitempty"`
	Limit     *int   `json:"limit,omitempty"`
	Cursor    string `json:"cursor,omitempty"`
}

type memberInfo struct {
	Client string `json:"client"`
	User   string `json:"user"`
	Nick   string `json:"nick"`
	Node   string `json:"node"`
}

type membersResult struct {
	Members []memberInfo `json:"members"`
	Cursor  string       `json:"cursor,omitempty"`
}

func (s *Server) members(_ context.Context, raw []byte) (any, *Error) {
	var p membersParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	if err := firstError(checkRoom(p.Room), checkNamespace(p.Namespace)); err != nil {
		return nil, err
	}
	limit, after, err := listPage(p.Limit, p.Cursor)
	if err != nil {
		return nil, err
	}
	list, cursor := chat.PageMembers(s.hub.MembersAll(string(roomKey(p.Namespace, p.Room))), after, limit)
	out := make([]memberInfo, len(list))
	for i, m := range list {
		out[i] = memberInfo{Client: m.ID, User: m.User, Nick: m.Nick, Node: s.nodeOf(m.ID)}
	}
	return membersResult{out, cursor}, nil
}

// nodeOf names the node of connection id.
func (s *Server) nodeOf(id string) string {
	if s.hub.Lookup([]byte(id)) != nil || s.cl == nil {
		return s.hub.Node()
	}
	if n, ok := s.cl.NodeOf([]byte(id)); ok {
		return n
	}
	return ""
}

// ---- history ----

// History is read from this node's log only (chat.Hub.History): offsets
// and epochs are per node, so a position is only meaningful on the node
// that gave it, and asking the other nodes would mix sequences.

type historyParams struct {
	Room      string        `json:"room"`
	Namespace string        `json:"namespace,omitempty"`
	Since     *historySince `json:"since,omitempty"`
	Limit     *int          `json:"limit,omitempty"`
}

// historySince is a position of a previous result: both fields are
// required, so that an offset is never read against the wrong epoch.
type historySince struct {
	Offset *uint64 `json:"offset"`
	Epoch  string  `json:"epoch"`
}

// historyMessage is a room message as history returns it. A backend's
// emit (chat.Message.EventArgs) has its argument array under "args" and
// no "data"; any other message has "data" and no "args".
type historyMessage struct {
	Room   string          `json:"room"`
	From   string          `json:"from"`
	Nick   string          `json:"nick"`
	User   string          `json:"user"`
	Data   json.RawMessage `json:"data,omitempty"`
	TS     int64           `json:"ts"`
	Offset uint64          `json:"offset"`
	Event  string          `json:"event,omitempty"`
	Args   json.RawMessage `json:"args,omitempty"`
}

type historyResult struct {
	Messages []historyMessage `json:"messages"`
	Offset   uint64           `json:"offset"`
	Epoch    string           `json:"epoch"`
}

func (s *Server) history(_ context.Context, raw []byte) (any, *Error) {
	var p historyParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	if err := firstError(checkRoom(p.Room), checkNamespace(p.Namespace)); err != nil {
		return nil, err
	}
	var since chat.Position
	if p.Since != nil {
		if p.Since.Offset == nil || p.Since.Epoch == "" {
			return nil, fromChat(chat.ErrMissingSince)
		}
		since = chat.Position{Offset: *p.Since.Offset, Epoch: p.Since.Epoch}
	}
	limit := 0 // the hub's default
	if p.Limit != nil {
		if *p.Limit < 1 || *p.Limit > chat.MaxHistoryLimit {
			return nil, badRequest(`"limit" must be 1 to 1000`)
		}
		limit = *p.Limit
	}
	msgs, pos, cerr := s.hub.History(roomKey(p.Namespace, p.Room), since, limit)
	if cerr != nil {
		return nil, fromChat(cerr)
	}
	out := make([]historyMessage, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		out[i] = historyMessage{Room: string(chat.RoomName(m.Room)), From: m.From, Nick: m.Nick, User: m.User,
			TS: m.TS, Offset: m.Offset, Event: m.Event}
		if m.EventArgs {
			out[i].Args = rawJSON(m, "[]")
		} else {
			out[i].Data = rawJSON(m, "null")
		}
	}
	return historyResult{out, pos.Offset, pos.Epoch}, nil
}

// rawJSON is m's data as native clients get it: a Socket.IO sender's
// binary attachments inlined as {"_binary":"<base64>"}, and empty data as
// the JSON value empty. m's bytes are the log's copies, which are never
// written after they are kept (chat.History): the result may alias them,
// and inlining writes to a new slice.
func rawJSON(m *chat.Message, empty string) json.RawMessage {
	if len(m.Data) == 0 {
		return json.RawMessage(empty)
	}
	if len(m.Attachments) > 0 {
		if out, err := socketio.InlineAttachments(nil, m.Data, m.Attachments); err == nil {
			return out
		}
		// A malformed placeholder: the data as it came, as the native
		// codec does.
	}
	return m.Data
}

// ---- connections, info ----

type connectionsParams struct {
	User string `json:"user,omitempty"`
}

type connInfo struct {
	Client     string   `json:"client"`
	User       string   `json:"user"`
	Nick       string   `json:"nick"`
	Rooms      []string `json:"rooms"`
	Namespace  string   `json:"namespace"`
	Protocol   string   `json:"protocol"`
	Transport  string   `json:"transport"`
	RemoteAddr string   `json:"remote_addr"`
	Node       string   `json:"node"`
}

type connectionsResult struct {
	Connections []connInfo `json:"connections"`
}

func (s *Server) connections(ctx context.Context, raw []byte) (any, *Error) {
	var p connectionsParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	res := s.connectionsLocal(p)
	for _, node := range s.allNodes() {
		var r connectionsResult
		if s.callNode(ctx, node, "connections", p, &r) == nil {
			res.Connections = append(res.Connections, r.Connections...)
		}
	}
	return res, nil
}

func (s *Server) connectionsLocal(p connectionsParams) connectionsResult {
	list := s.hub.ConnectionsLocal(p.User)
	out := make([]connInfo, len(list))
	node := s.hub.Node()
	for i, c := range list {
		for j, r := range c.Rooms {
			_, c.Rooms[j] = chat.SplitRoomString(r)
		}
		out[i] = connInfo{Client: c.Client, User: c.User, Nick: c.Nick, Rooms: c.Rooms, Namespace: c.Namespace,
			Protocol: c.Protocol, Transport: c.Transport, RemoteAddr: c.Remote, Node: node}
	}
	return connectionsResult{out}
}

type nodeInfo struct {
	Node        string  `json:"node"`
	Version     string  `json:"version"`
	Uptime      float64 `json:"uptime"` // seconds
	Connections int     `json:"connections"`
	Rooms       int     `json:"rooms"`
}

type infoResult struct {
	Nodes []nodeInfo `json:"nodes"`
}

func (s *Server) info(ctx context.Context, raw []byte) (any, *Error) {
	var p struct{}
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	res := s.infoLocal()
	for _, node := range s.allNodes() {
		var r infoResult
		if s.callNode(ctx, node, "info", p, &r) == nil {
			res.Nodes = append(res.Nodes, r.Nodes...)
		}
	}
	return res, nil
}

func (s *Server) infoLocal() infoResult {
	st := s.cfg.Stats()
	return infoResult{[]nodeInfo{{Node: s.hub.Node(), Version: s.cfg.Version,
		Uptime: time.Since(s.started).Round(time.Millisecond).Seconds(), Connections: st.Connections, Rooms: st.Rooms}}}
}

// ---- batch ----

type batchParams struct {
	Commands []struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	} `json:"commands"`
}

// inBatch marks the context of a batch's commands: a send with "ack",
// which waits for a client, is refused there (the commands run one after
// another inside one HTTP answer).
type inBatch struct{}

type reply struct {
	Result any    `json:"result,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

func (s *Server) batch(ctx context.Context, raw []byte) (any, *Error) {
	var p batchParams
	if err := decode(raw, &p); err != nil {
		return nil, err
	}
	if len(p.Commands) > maxBatch {
		return nil, badRequest(`"commands" holds at most 1000 commands`)
	}
	out := make([]reply, len(p.Commands))
	for i, c := range p.Commands {
		if c.Method == "batch" {
			out[i].Error = badRequest("batches do not nest")
			continue
		}
		params := c.Params
		if len(params) == 0 {
			params = []byte("{}")
		}
		res, err := s.call(context.WithValue(ctx, inBatch{}, true), c.Method, params)
		out[i] = reply{Result: res, Error: err}
	}
	return struct {
		Replies []reply `json:"replies"`
	}{out}, nil
}

func firstError(errs ...*Error) *Error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// ---- cluster ----

// remoteNodes lists the other nodes that may hold t's connections.
func (s *Server) remoteNodes(t target) []string {
	if s.cl == nil {
		return nil
	}
	if t.Client != "" {
		if s.hub.Lookup([]byte(t.Client)) != nil {
			return nil
		}
		if n, ok := s.cl.NodeOf([]byte(t.Client)); ok {
			return []string{n}
		}
		return nil
	}
	return s.cl.UserNodes(t.User)
}

// allNodes lists the other live nodes.
func (s *Server) allNodes() []string {
	if s.cl == nil {
		return nil
	}
	return s.cl.Nodes()
}

// remoteRequest is a method run on another node for this one: only the
// local part, so the call does not spread further.
type remoteRequest struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// callNode runs method's local part on node and decodes its result into
// out. A node that does not answer in time is skipped by the callers,
// which report what the reachable nodes did.
func (s *Server) callNode(ctx context.Context, node, method string, params, out any) *Error {
	return s.callNodeWithin(ctx, node, method, params, out, s.cfg.CallTimeout)
}

// callNodeWithin is callNode with its own bound of the wait for node.
func (s *Server) callNodeWithin(ctx context.Context, node, method string, params, out any, wait time.Duration) *Error {
	pb, err := json.Marshal(params)
	if err != nil {
		return &Error{http.StatusInternalServerError, CodeInternal, err.Error()}
	}
	req, _ := json.Marshal(remoteRequest{method, pb})
	cctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	b, err := s.cl.Call(cctx, node, req)
	if err != nil {
		s.log.Warn("api: node did not answer", "node", node, "method", method, "err", err)
		return &Error{http.StatusServiceUnavailable, CodeInternal, "node " + node + " did not answer"}
	}
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return &Error{http.StatusBadGateway, CodeInternal, "bad answer from node " + node}
	}
	if r.Error != nil {
		switch r.Error.Code {
		case CodeNotFound, CodeUnknownMethod:
			r.Error.Status = http.StatusNotFound
		case CodeInternal:
			r.Error.Status = http.StatusServiceUnavailable
		default:
			r.Error.Status = ackStatus(r.Error.Code)
		}
		return r.Error
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		return &Error{http.StatusBadGateway, CodeInternal, "bad answer from node " + node}
	}
	return nil
}

// ServeRemote answers another node's request (cluster.Cluster.Serve): the
// local part of a method, on this node only.
func (s *Server) ServeRemote(req []byte) []byte {
	var r remoteRequest
	var res any
	var apiErr *Error
	if err := json.Unmarshal(req, &r); err != nil {
		apiErr = errNotJSON
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
		res, apiErr = s.serveLocal(ctx, r.Method, r.Params)
		cancel()
	}
	b, _ := json.Marshal(reply{Result: res, Error: apiErr})
	return b
}

// maxRemoteAcks bounds the other nodes' sends with "ack" this node waits
// on at once, each on its own goroutine; past it they fail with
// too_many_acks.
const maxRemoteAcks = 1024

// ServeRemoteAsync answers another node's request like ServeRemote, for
// cluster.Cluster.ServeAsync: a send with "ack" waits for the client's
// acknowledgement on its own goroutine (at most maxRemoteAcks at once),
// every other request is answered before it returns.
func (s *Server) ServeRemoteAsync(req []byte, respond func([]byte)) {
	var r struct {
		Method string `json:"method"`
		Params struct {
			Ack bool `json:"ack"`
		} `json:"params"`
	}
	if json.Unmarshal(req, &r) != nil || r.Method != "send" || !r.Params.Ack {
		respond(s.ServeRemote(req))
		return
	}
	select {
	case s.remoteAcks <- struct{}{}:
	default:
		b, _ := json.Marshal(reply{Error: &Error{http.StatusTooManyRequests, CodeTooManyAcks,
			"this node waits for too many acknowledgements"}})
		respond(b)
		return
	}
	go func() {
		defer func() { <-s.remoteAcks }()
		respond(s.ServeRemote(req))
	}()
}

func (s *Server) serveLocal(ctx context.Context, method string, raw []byte) (any, *Error) {
	switch method {
	case "send":
		var p sendParams
		if err := decode(raw, &p); err != nil {
			return nil, err
		}
		if p.Ack {
			// Bounded by its own timeout, not by ctx (CallTimeout): the
			// caller waits as long (sendAck).
			return s.sendAckLocal(context.WithoutCancel(ctx), p)
		}
		return s.sendLocal(p), nil
	case "join", "leave":
		var p membershipParams
		if err := decode(raw, &p); err != nil {
			return nil, err
		}
		n, err := s.membershipLocal(ctx, p, method == "join")
		if err != nil {
			return nil, err
		}
		return membershipResult{n}, nil
	case "disconnect":
		var p disconnectParams
		if err := decode(raw, &p); err != nil {
			return nil, err
		}
		return s.disconnectLocal(p), nil
	case "connections":
		var p connectionsParams
		if err := decode(raw, &p); err != nil {
			return nil, err
		}
		return s.connectionsLocal(p), nil
	case "info":
		return s.infoLocal(), nil
	case "revoke":
		var p revokeParams
		if err := decode(raw, &p); err != nil {
			return nil, err
		}
		return s.revokeLocal(p), nil
	}
	return nil, errUnknownMethod
}
