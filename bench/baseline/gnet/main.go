// Command gnet is the naive gnet hub baseline for the chatgate benchmarks:
// gnet v2 event loops and gobwas/ws frames, as a Go engineer would first
// write a broadcast hub on gnet. It holds no chat state beyond what the
// load tool needs (a connection id, a nick, one room set): no sessions,
// no resume, no limits, no outbound policy. It shows what gnet itself
// costs per connection, so chatgate's extra bytes can be told apart.
//
// It speaks the subset of chatgate's native protocol the load tool uses:
// welcome, nick, join, leave, send to a room or to a connection; and
// serves /stats. Room sends are written to every other member with
// AsyncWrite (members live on any loop), under one hub lock.
//
//	go run ./bench/baseline/gnet -addr 127.0.0.1:8080
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
)

// maxMessage is the largest frame accepted.
const maxMessage = 64 * 1024

// wsConn is one connection's state, kept in gnet's Context.
type wsConn struct {
	upgraded bool
	id       string
	nick     string
	rooms    map[string]struct{}
}

// hub is the naive shared state: one lock over every map.
type hub struct {
	gnet.BuiltinEventEngine
	mu      sync.Mutex
	clients map[string]gnet.Conn
	rooms   map[string]map[gnet.Conn]struct{}
	nextID  uint64
}

// inbound is a request from a client.
type inbound struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Name string          `json:"name,omitempty"`
	Room string          `json:"room,omitempty"`
	To   string          `json:"to,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

func (h *hub) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&wsConn{})
	return nil, gnet.None
}

func (h *hub) OnClose(c gnet.Conn, _ error) gnet.Action {
	w, _ := c.Context().(*wsConn)
	if w == nil || w.id == "" {
		return gnet.None
	}
	h.mu.Lock()
	delete(h.clients, w.id)
	for r := range w.rooms {
		h.leave(c, r)
	}
	h.mu.Unlock()
	return gnet.None
}

func (h *hub) leave(c gnet.Conn, room string) int {
	m := h.rooms[room]
	delete(m, c)
	if len(m) == 0 {
		delete(h.rooms, room)
	}
	return len(m)
}

func (h *hub) OnTraffic(c gnet.Conn) gnet.Action {
	w := c.Context().(*wsConn)
	if !w.upgraded {
		return h.onHTTP(c, w)
	}
	for {
		buf, _ := c.Peek(-1)
		if len(buf) < 2 {
			return gnet.None
		}
		r := bytes.NewReader(buf)
		hd, err := ws.ReadHeader(r)
		if err != nil {
			return gnet.None // header cut across reads
		}
		if hd.Length > maxMessage {
			return gnet.Close
		}
		hl := len(buf) - r.Len()
		total := hl + int(hd.Length)
		if len(buf) < total {
			return gnet.None
		}
		p := buf[hl:total]
		if hd.Masked {
			ws.Cipher(p, hd.Mask, 0)
		}
		switch hd.OpCode {
		case ws.OpClose:
			_, _ = c.Write(ws.MustCompileFrame(ws.NewCloseFrame(nil)))
			return gnet.Close
		case ws.OpPing:
			_, _ = c.Write(ws.MustCompileFrame(ws.NewPongFrame(p)))
		case ws.OpText:
			h.handle(c, w, p)
		}
		_, _ = c.Discard(total)
	}
}

func (h *hub) onHTTP(c gnet.Conn, w *wsConn) gnet.Action {
	buf, _ := c.Peek(-1)
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > 8192 {
			return gnet.Close
		}
		return gnet.None
	}
	head := buf[:end+4]
	if bytes.HasPrefix(head, []byte("GET /stats ")) {
		_, _ = c.Write(h.stats())
		return gnet.Close
	}
	var out bytes.Buffer
	if _, err := ws.Upgrade(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(head), &out}); err != nil {
		_, _ = c.Write(out.Bytes())
		return gnet.Close
	}
	_, _ = c.Discard(len(head))
	w.upgraded = true
	h.mu.Lock()
	h.nextID++
	w.id = "c" + strconv.FormatUint(h.nextID, 10)
	h.clients[w.id] = c
	h.mu.Unlock()
	_, _ = c.Write(out.Bytes())
	_, _ = c.Write(text(`{"type":"welcome","id":"` + w.id + `"}`))
	return gnet.None
}

func (h *hub) handle(c gnet.Conn, w *wsConn, p []byte) {
	var in inbound
	if json.Unmarshal(p, &in) != nil {
		_, _ = c.Write(text(`{"type":"error","code":"bad_request","message":"not JSON"}`))
		return
	}
	ack := func(extra string) {
		_, _ = c.Write(text(`{"type":"ack","id":` + string(in.ID) + extra + `}`))
	}
	switch in.Type {
	case "nick":
		w.nick = in.Name
		ack("")
	case "join":
		h.mu.Lock()
		m := h.rooms[in.Room]
		if m == nil {
			m = make(map[gnet.Conn]struct{})
			h.rooms[in.Room] = m
		}
		m[c] = struct{}{}
		n := len(m)
		h.mu.Unlock()
		if w.rooms == nil {
			w.rooms = make(map[string]struct{})
		}
		w.rooms[in.Room] = struct{}{}
		ack(`,"room":` + strconv.Quote(in.Room) + `,"count":` + strconv.Itoa(n))
	case "leave":
		h.mu.Lock()
		n := h.leave(c, in.Room)
		h.mu.Unlock()
		delete(w.rooms, in.Room)
		ack(`,"room":` + strconv.Quote(in.Room) + `,"count":` + strconv.Itoa(n))
	case "send":
		msg := fmt.Appendf(nil, `{"type":"message","room":%q,"from":%q,"nick":%q,"data":%s,"ts":%d}`,
			in.Room, w.id, w.nick, in.Data, time.Now().UnixMilli())
		f := text(string(msg))
		h.mu.Lock()
		if in.To != "" {
			if to := h.clients[in.To]; to != nil {
				_ = to.AsyncWrite(f, nil)
			}
		} else {
			for m := range h.rooms[in.Room] {
				if m != c {
					_ = m.AsyncWrite(f, nil)
				}
			}
		}
		h.mu.Unlock()
		ack("")
	default:
		_, _ = c.Write(text(`{"type":"error","id":` + string(in.ID) + `,"code":"unknown_type","message":"unknown request type"}`))
	}
}

// text frames s as one unmasked text frame.
func text(s string) []byte {
	return ws.MustCompileFrame(ws.NewTextFrame([]byte(s)))
}

func (h *hub) stats() []byte {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.mu.Lock()
	body, _ := json.Marshal(map[string]any{"server": "gnet", "connections": len(h.clients),
		"rooms": len(h.rooms), "goroutines": runtime.NumGoroutine(), "heap_inuse": ms.HeapInuse})
	h.mu.Unlock()
	return fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	h := &hub{clients: make(map[string]gnet.Conn), rooms: make(map[string]map[gnet.Conn]struct{})}
	if err := gnet.Run(h, "tcp://"+*addr, gnet.WithMulticore(true), gnet.WithReuseAddr(true)); err != nil {
		slog.Error("serve", "addr", *addr, "err", err)
		os.Exit(1)
	}
}
