package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/bench/sio"
)

const (
	opText = ws.OpText
	// writeTimeout bounds one write to a server that stopped reading.
	writeTimeout = 5 * time.Second
)

// Errors of the client handshake.
var (
	errNoWelcome = errors.New("load: server did not send welcome first")
	errNoOpen    = errors.New("load: server did not send an engine.io open packet")
	errRejected  = errors.New("load: server rejected the request")
)

// dialConfig says how a worker reaches the server.
type dialConfig struct {
	addr    string // host:port of the server
	path    string // request path and query of the WebSocket endpoint
	proto   Protocol
	local   net.IP // source address to bind, or nil
	timeout time.Duration
	readBuf int
	deflate bool // offer permessage-deflate; fail unless it is accepted
}

// client is one load connection. After the handshake, either its reader
// goroutine owns fr, or the connection is handed off to a poller, which
// then owns fd, pend and frag. Writes from any goroutine go through write.
type client struct {
	w    *Worker
	idx  int // global index across all workers
	room int
	fr   frameReader
	left *bytes.Reader // handshake leftovers not yet read through fr

	// wmu serialises writes (the reader answers pings too) and guards nc
	// and fd: exactly one is in use, nc before a handoff, fd after.
	wmu sync.Mutex
	nc  net.Conn
	fd  int

	rmu    sync.Mutex // held by the poller while it reads pend and frag
	pend   []byte     // bytes of an incomplete frame (poller mode)
	frag   []byte     // a fragmented message being assembled (poller mode)
	inFrag bool

	// seq numbers the requests the client sends with an id. Only the
	// goroutine that sends messages (the scheduler) touches it.
	seq uint64

	closing atomic.Bool

	// deflate: permessage-deflate was negotiated; the join is sent
	// compressed.
	deflate bool

	// lastT is the timestamp of the last message delivered (OpenCmd.Order);
	// only the reader touches it. next is the client that replaced this
	// one after a reconnect (OpenCmd.Reconnect).
	lastT int64
	next  atomic.Pointer[client]
	// hint is the reconnect hint of the server's close frame (a drain's
	// 1012 "…; reconnect=<ms>"), set by the reader before it calls
	// reconnect.
	hint time.Duration
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT so that binding a source address
// does not pick the source port at bind time. The kernel then picks it at
// connect time per destination, and can reuse ports of connections in
// TIME_WAIT, which churn produces by the tens of thousands.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// dial connects, upgrades to WebSocket and completes the chat handshake:
// welcome (native) or engine.io open and namespace connect (Socket.IO),
// then nick and join. It returns the client and the member count the join
// acknowledgement reported. The reader goroutine is not started.
func dial(ctx context.Context, cfg *dialConfig, w *Worker, idx, room int) (*client, int, error) {
	// With several servers (cluster nodes), client idx goes to server
	// idx mod n: members and publishers of one room land on every node.
	return dialAt(ctx, cfg, w, idx, room, pickAddr(cfg.addr, idx))
}

// dialAt is dial to the server at addr.
func dialAt(ctx context.Context, cfg *dialConfig, w *Worker, idx, room int, addr string) (*client, int, error) {
	c, err := connect(ctx, cfg, w, idx, room, addr, cfg.path)
	if err != nil {
		return nil, 0, err
	}
	count, err := c.handshake(cfg.proto)
	if err != nil {
		c.nc.Close()
		return nil, 0, err
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c, count, nil
}

// pickAddr returns the server of client idx in a comma-separated list of
// addresses: idx mod n.
func pickAddr(addrs string, idx int) string {
	if !strings.Contains(addrs, ",") {
		return addrs
	}
	list := strings.Split(addrs, ",")
	return list[idx%len(list)]
}

// connect opens the TCP connection to addr and upgrades it to WebSocket
// at path (which may carry a query). The returned client has a deadline
// of cfg.timeout set for the chat handshake that follows; the caller
// clears it.
func connect(ctx context.Context, cfg *dialConfig, w *Worker, idx, room int, addr, path string) (*client, error) {
	nd := &net.Dialer{KeepAlive: -1}
	if cfg.local != nil {
		nd.LocalAddr = &net.TCPAddr{IP: cfg.local}
		nd.Control = bindNoPort
	}
	var retryAfter time.Duration
	d := ws.Dialer{
		Timeout: cfg.timeout,
		NetDial: nd.DialContext,
		// A refusal's Retry-After (a gateway over -handshake-rate), so
		// that a caller can honour it (RefusedError).
		OnStatusError: func(status int, _ []byte, resp io.Reader) {
			if r, err := http.ReadResponse(bufio.NewReader(resp), nil); err == nil {
				if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err == nil && s >= 0 {
					retryAfter = time.Duration(s) * time.Second
				}
			}
		},
	}
	if cfg.deflate {
		d.Extensions = []httphead.Option{deflateOffer}
	}
	nc, hbr, hs, err := d.Dial(ctx, "ws://"+addr+path)
	if err != nil {
		if se, ok := err.(ws.StatusError); ok && retryAfter > 0 {
			return nil, &RefusedError{Status: int(se), RetryAfter: retryAfter}
		}
		return nil, err
	}
	if cfg.deflate && !acceptedDeflate(hs.Extensions) {
		nc.Close()
		return nil, errNoDeflate
	}
	// Frames the server sent right behind the handshake response sit in
	// the dialer's pooled reader: carry them over, then give it back.
	c := &client{w: w, idx: idx, room: room, nc: nc, fd: -1, deflate: cfg.deflate}
	var src io.Reader = nc
	if hbr != nil {
		left, _ := hbr.Peek(hbr.Buffered())
		c.left = bytes.NewReader(bytes.Clone(left))
		src = io.MultiReader(c.left, nc)
		ws.PutReader(hbr)
	}
	c.fr.br = bufio.NewReaderSize(src, cfg.readBuf)
	_ = nc.SetDeadline(time.Now().Add(cfg.timeout))
	return c, nil
}

// reply is the part of a native ack or error the load client reads.
type reply struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id"`
	Count   int             `json:"count"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
}

func (c *client) handshake(p Protocol) (int, error) {
	nick := "u" + strconv.Itoa(c.idx)
	if p == SocketIO {
		return c.handshakeSIO(nick)
	}
	op, b, err := c.fr.next()
	if err != nil {
		return 0, err
	}
	var r reply
	if op != opText || json.Unmarshal(b, &r) != nil || r.Type != "welcome" {
		return 0, errNoWelcome
	}
	join := appendJoin(nil, Native, nick, c.room)
	if c.deflate {
		join = appendJoinFramed(nil, Native, nick, c.room, appendDeflatedFrame)
	}
	if err := c.write(join); err != nil {
		return 0, err
	}
	for {
		op, b, err := c.fr.next()
		if err != nil {
			return 0, err
		}
		if err := c.control(op, b); err != nil {
			return 0, err
		}
		if op != opText || !bytes.Contains(b, []byte(`"id":`)) {
			continue
		}
		r = reply{}
		if err := json.Unmarshal(b, &r); err != nil {
			continue
		}
		if r.Type == "error" {
			return 0, fmt.Errorf("%w: %s %s", errRejected, r.Code, r.Message)
		}
		if r.Type == "ack" && string(r.ID) == "2" {
			return r.Count, nil
		}
	}
}

func (c *client) handshakeSIO(nick string) (int, error) {
	op, b, err := c.fr.next()
	if err != nil {
		return 0, err
	}
	if op != opText || len(b) == 0 || sio.EngineType(b[0]) != sio.EngineOpen {
		return 0, errNoOpen
	}
	if _, err := sio.ParseOpen(b[1:]); err != nil {
		return 0, errNoOpen
	}
	if err := c.write(appendFrame(nil, opText, sio.ConnectFrame)); err != nil {
		return 0, err
	}
	joined := false
	for {
		op, b, err := c.fr.next()
		if err != nil {
			return 0, err
		}
		if err := c.control(op, b); err != nil || op != opText {
			if err != nil {
				return 0, err
			}
			continue
		}
		t, payload, err := sio.ParseEngine(b)
		if err != nil || t != sio.EngineMessage {
			continue
		}
		pkt, err := sio.ParsePacket(payload)
		if err != nil {
			continue
		}
		switch {
		case pkt.Type == sio.ConnectError:
			return 0, fmt.Errorf("%w: %s", errRejected, pkt.Data)
		case pkt.Type == sio.Connect && !joined:
			joined = true
			if err := c.write(appendJoin(nil, SocketIO, nick, c.room)); err != nil {
				return 0, err
			}
		case pkt.Type == sio.Ack && pkt.HasID && pkt.ID == 1:
			var args []reply
			if err := json.Unmarshal(pkt.Data, &args); err != nil || len(args) == 0 {
				return 0, fmt.Errorf("%w: join ack %s", errRejected, pkt.Data)
			}
			return args[0].Count, nil
		}
	}
}

// control answers a ping, and a Socket.IO ping, during a handshake, and
// turns a close frame into an error.
func (c *client) control(op ws.OpCode, b []byte) error {
	switch {
	case op == ws.OpPing:
		return c.writeControl(ws.OpPong, b)
	case op == ws.OpClose:
		return io.ErrUnexpectedEOF
	case op == opText && len(b) == 1 && sio.EngineType(b[0]) == sio.EnginePing:
		return c.write(appendFrame(nil, opText, sio.PongFrame))
	}
	return nil
}

// write sends one or more complete frames. Safe for concurrent use.
func (c *client) write(frames []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.nc != nil {
		_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := c.nc.Write(frames)
		return err
	}
	if c.fd < 0 {
		return errClosed
	}
	return writeFD(c.fd, frames, writeTimeout)
}

var (
	errClosed     = errors.New("load: connection closed")
	errPeerClosed = errors.New("load: server closed the connection")
)

// writeControl sends a control frame built on the stack (a payload of at
// most 125 bytes, RFC 6455 section 5.5).
func (c *client) writeControl(op ws.OpCode, payload []byte) error {
	var buf [2 + 4 + 125]byte
	return c.write(appendFrame(buf[:0], op, payload))
}

// readLoop reads until the connection ends, answering pings and handing
// chat messages to the worker. It runs in the client's own goroutine.
func (c *client) readLoop(p Protocol) {
	defer c.nc.Close()
	for {
		op, b, err := c.fr.next()
		if err != nil {
			if !c.closing.Load() {
				c.w.lostConn(err)
				c.w.reconnect(c)
			}
			return
		}
		switch op {
		case opText:
			switch {
			case isMessage(p, b):
				c.w.deliver(c, b)
			case isErrorReply(p, b):
				c.w.serverError(b)
			case p == SocketIO && len(b) == 1 && sio.EngineType(b[0]) == sio.EnginePing:
				_ = c.write(appendFrame(nil, opText, sio.PongFrame))
			}
		case ws.OpPing:
			_ = c.writeControl(ws.OpPong, b)
		case ws.OpClose:
			if !c.closing.Load() {
				_, c.hint = closeInfo(b)
				c.w.lostConn(errServerClosed)
				c.w.reconnect(c)
			}
			_ = c.writeControl(ws.OpClose, b[:min(len(b), 2)])
			return
		}
	}
}

var errServerClosed = errors.New("load: server sent a close frame")

// close ends the connection without counting it as lost. A handed-off
// socket is only shut down here; its poller sees the end and closes it.
func (c *client) close() {
	c.closing.Store(true)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.nc != nil {
		_ = c.nc.Close()
	} else if c.fd >= 0 {
		shutdownFD(c.fd)
	}
}

// RefusedError is a handshake refused with a Retry-After (HTTP 503 from a
// gateway over its -handshake-rate): the client may come back after it.
type RefusedError struct {
	Status     int
	RetryAfter time.Duration
}

func (e *RefusedError) Error() string {
	return "load: handshake refused with " + strconv.Itoa(e.Status) + ", Retry-After " + e.RetryAfter.String()
}
