package main

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// writeWait is the time allowed to write one message to the peer.
	writeWait = 10 * time.Second
	// pongWait is the time allowed to read the next pong from the peer.
	pongWait = 60 * time.Second
	// pingPeriod must be less than pongWait.
	pingPeriod = pongWait * 9 / 10
	// maxMessageSize is the largest message accepted from a peer.
	maxMessageSize = 64 * 1024
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	// A pool lets idle connections hold no write buffer, which is how
	// gorilla recommends serving many mostly idle clients.
	WriteBufferPool: &sync.Pool{},
	// The benchmark clients send no Origin header worth checking.
	CheckOrigin: func(*http.Request) bool { return true },
}

// client is one WebSocket connection. The hub goroutine owns nick and
// rooms; send is written by the hub and closed only by the hub.
type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan []byte
	id   string

	nick  string
	rooms map[string]struct{}
}

// inbound is a request from a client. ID and Data are kept raw so they
// travel back byte for byte.
type inbound struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Name string          `json:"name,omitempty"`
	Room string          `json:"room,omitempty"`
	To   string          `json:"to,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// readPump reads requests from the connection and hands them to the hub.
// It runs in its own goroutine, one per connection.
func (c *client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		_, message, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		var in inbound
		r := request{c: c}
		if err := json.Unmarshal(message, &in); err != nil {
			r.bad = true
		}
		r.in = in
		c.hub.requests <- r
	}
}

// writePump writes queued messages and pings to the connection. It runs in
// its own goroutine, one per connection, and is the only writer.
func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case message, ok := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				// The hub closed the channel.
				_ = c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, message); err != nil {
				return
			}
		case <-ticker.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// serveWS upgrades the request and starts the client's pumps.
func (h *hub) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{
		hub:   h,
		conn:  conn,
		send:  make(chan []byte, h.sendBuf),
		rooms: make(map[string]struct{}),
	}
	h.register <- c
	go c.writePump()
	go c.readPump()
}
