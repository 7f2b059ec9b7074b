package main

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
)

// request is one parsed inbound message on its way to the hub.
type request struct {
	c   *client
	in  inbound
	bad bool // the frame was not a JSON object
}

// hub owns every client and room. Only its run goroutine touches the maps
// and the clients' nick and rooms fields, so none of them needs a lock.
type hub struct {
	presence bool
	sendBuf  int

	clients map[string]*client
	rooms   map[string]map[*client]struct{}
	nextID  uint64

	register   chan *client
	unregister chan *client
	requests   chan request

	// Counters published for /stats, written by run.
	nconns, nrooms, dropped atomic.Int64
}

func newHub(presence bool, sendBuf int) *hub {
	return &hub{
		presence:   presence,
		sendBuf:    sendBuf,
		clients:    make(map[string]*client),
		rooms:      make(map[string]map[*client]struct{}),
		register:   make(chan *client, 256),
		unregister: make(chan *client, 256),
		requests:   make(chan request, 1024),
	}
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.nextID++
			c.id = "c" + strconv.FormatUint(h.nextID, 10)
			h.clients[c.id] = c
			h.nconns.Store(int64(len(h.clients)))
			h.deliver(c, appendObject(nil, "welcome", nil, "id", c.id))
		case c := <-h.unregister:
			if h.clients[c.id] == c {
				h.remove(c)
				close(c.send)
			}
		case r := <-h.requests:
			if h.clients[r.c.id] == r.c {
				h.handle(r)
			}
		}
	}
}

// deliver queues msg for c without blocking the hub. A client whose queue
// is full is too slow to keep up and is dropped, as in gorilla's chat
// example.
func (h *hub) deliver(c *client, msg []byte) {
	select {
	case c.send <- msg:
	default:
		h.dropped.Add(1)
		h.remove(c)
		close(c.send)
	}
}

// remove forgets c and takes it out of its rooms. The caller closes c.send.
func (h *hub) remove(c *client) {
	delete(h.clients, c.id)
	for room := range c.rooms {
		h.leave(c, room)
	}
	h.nconns.Store(int64(len(h.clients)))
}

func (h *hub) leave(c *client, room string) int {
	members := h.rooms[room]
	delete(members, c)
	delete(c.rooms, room)
	n := len(members)
	if n == 0 {
		delete(h.rooms, room)
		h.nrooms.Store(int64(len(h.rooms)))
	} else if h.presence {
		h.broadcast(room, nil, presence(room, c, "leave", n))
	}
	return n
}

// broadcast queues msg, encoded once, for every member of room but skip.
func (h *hub) broadcast(room string, skip *client, msg []byte) {
	for m := range h.rooms[room] {
		if m != skip {
			h.deliver(m, msg)
		}
	}
}

func (h *hub) handle(r request) {
	c, in := r.c, r.in
	if r.bad {
		h.deliver(c, errorReply(nil, "bad_request", "request is not a JSON object"))
		return
	}
	switch in.Type {
	case "nick":
		if in.Name == "" {
			h.deliver(c, errorReply(in.ID, "bad_request", "name is required"))
			return
		}
		c.nick = in.Name
		h.deliver(c, appendObject(nil, "ack", in.ID))
	case "join":
		if in.Room == "" {
			h.deliver(c, errorReply(in.ID, "bad_request", "room is required"))
			return
		}
		members, ok := h.rooms[in.Room]
		if !ok {
			members = make(map[*client]struct{})
			h.rooms[in.Room] = members
			h.nrooms.Store(int64(len(h.rooms)))
		}
		if _, already := members[c]; !already {
			members[c] = struct{}{}
			c.rooms[in.Room] = struct{}{}
			if h.presence {
				h.broadcast(in.Room, c, presence(in.Room, c, "join", len(members)))
			}
		}
		h.deliver(c, appendCount(appendObject(nil, "ack", in.ID, "room", in.Room), len(members)))
	case "leave":
		if _, ok := c.rooms[in.Room]; !ok {
			h.deliver(c, errorReply(in.ID, "not_joined", "not a member of this room"))
			return
		}
		n := h.leave(c, in.Room)
		h.deliver(c, appendCount(appendObject(nil, "ack", in.ID, "room", in.Room), n))
	case "send":
		h.send(c, in)
	default:
		h.deliver(c, errorReply(in.ID, "unknown_type", "unknown request type"))
	}
}

func (h *hub) send(c *client, in inbound) {
	if len(in.Data) == 0 {
		h.deliver(c, errorReply(in.ID, "bad_request", "data is required"))
		return
	}
	ts := time.Now().UnixMilli()
	switch {
	case in.To != "":
		to, ok := h.clients[in.To]
		if !ok {
			h.deliver(c, errorReply(in.ID, "no_such_client", "no connection with this id"))
			return
		}
		h.deliver(to, message("", c, in.Data, ts))
	case in.Room != "":
		if _, ok := c.rooms[in.Room]; !ok {
			h.deliver(c, errorReply(in.ID, "not_joined", "not a member of this room"))
			return
		}
		h.broadcast(in.Room, c, message(in.Room, c, in.Data, ts))
	default:
		h.deliver(c, errorReply(in.ID, "bad_request", "room or to is required"))
		return
	}
	h.deliver(c, appendObject(nil, "ack", in.ID))
}

// serveStats reports a snapshot of the server as JSON.
func (h *hub) serveStats(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"server":      "gorilla",
		"connections": h.nconns.Load(),
		"rooms":       h.nrooms.Load(),
		"goroutines":  runtime.NumGoroutine(),
		"dropped":     h.dropped.Load(),
		"heap_inuse":  ms.HeapInuse,
	})
}

// message encodes a chat message. Data is copied byte for byte, which
// json.Marshal would not guarantee (it compacts raw values).
func message(room string, from *client, data json.RawMessage, ts int64) []byte {
	b := make([]byte, 0, 96+len(room)+len(from.nick)+len(data))
	b = append(b, `{"type":"message"`...)
	if room != "" {
		b = append(b, `,"room":`...)
		b = appendString(b, room)
	}
	b = append(b, `,"from":`...)
	b = appendString(b, from.id)
	b = append(b, `,"nick":`...)
	b = appendString(b, from.nick)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}

func presence(room string, c *client, event string, count int) []byte {
	b := appendObject(nil, "presence", nil, "room", room, "event", event, "id", c.id, "nick", c.nick)
	return appendCount(b, count)
}

func errorReply(id json.RawMessage, code, msg string) []byte {
	return appendObject(nil, "error", id, "code", code, "message", msg)
}

// appendObject appends {"type":typ,"id":id,k1:v1,...} with the closing
// brace; id is omitted when empty.
func appendObject(b []byte, typ string, id json.RawMessage, kv ...string) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, typ)
	if len(id) > 0 {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, ',')
		b = appendString(b, kv[i])
		b = append(b, ':')
		b = appendString(b, kv[i+1])
	}
	return append(b, '}')
}

// appendCount adds ,"count":n before the closing brace of the object in b.
func appendCount(b []byte, n int) []byte {
	b = append(b[:len(b)-1], `,"count":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '}')
}

// appendString appends s as a JSON string. Strings here come from decoded
// JSON or from the server itself, so they are valid UTF-8.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
