//go:build linux

package load

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/chatgate/chatgate/bench/sio"
)

// A poller reads many client connections from one epoll loop instead of a
// goroutine each. A goroutine blocked in Read costs, per delivered
// message, a wake-up through the runtime's poller and a second read that
// only returns EAGAIN; with level-triggered epoll a ready socket costs one
// read, and one epoll_wait serves many sockets. The load generator shares
// the machine with the server it measures, so this is CPU handed back to
// the server.
//
// Connections are dialed and handshaken on ordinary net.Conns, then their
// socket is duplicated into the poller (handoff) and the net.Conn closed.
// Only the loop goroutine reads or closes a handed-off socket; writers
// hold the client's write lock and find fd < 0 once it is closed, so a
// reused descriptor number is never written by mistake.
type poller struct {
	epfd  int
	w     *Worker
	proto Protocol
	byFD  []atomic.Pointer[client]
	buf   []byte
	stop  atomic.Bool
	done  chan struct{}
	count atomic.Int64
}

// pollerBuf is the loop's read buffer, shared by every connection it
// serves: a socket is read only when the kernel has data, and unparsed
// bytes (a frame split across reads) move to the client's pend.
const pollerBuf = 256 << 10

func newPoller(w *Worker, proto Protocol) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var lim syscall.Rlimit
	n := 1 << 16
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < 1<<24 {
		n = int(lim.Cur) + 16
	}
	p := &poller{
		epfd:  epfd,
		w:     w,
		proto: proto,
		byFD:  make([]atomic.Pointer[client], n),
		buf:   make([]byte, pollerBuf),
		done:  make(chan struct{}),
	}
	go p.loop()
	return p, nil
}

// errHandoff is returned when a connection cannot move to the poller.
var errHandoff = errors.New("load: cannot hand the connection to the poller")

// add moves c, whose handshake is complete, from its net.Conn to p.
func (p *poller) add(c *client) error {
	tc, ok := c.nc.(*net.TCPConn)
	if !ok {
		return errHandoff
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.Dup(int(s)) }); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	// O_NONBLOCK belongs to the open file, which the duplicate shares;
	// set it anyway in case the runtime ever stops using it.
	if err := unix.SetNonblock(fd, true); err != nil || fd >= len(p.byFD) {
		unix.Close(fd)
		return errHandoff
	}
	// Bytes already read during the handshake come first.
	if r := c.fr.pending; r > 0 {
		_, _ = c.fr.br.Discard(r)
	}
	if n := c.fr.br.Buffered(); n > 0 {
		b, _ := c.fr.br.Peek(n)
		c.pend = append(c.pend, b...)
	}
	if c.left != nil && c.left.Len() > 0 {
		rest := make([]byte, c.left.Len())
		_, _ = c.left.Read(rest)
		c.pend = append(c.pend, rest...)
	}
	c.fr = frameReader{}
	c.left = nil
	c.wmu.Lock()
	c.fd = fd
	old := c.nc
	c.nc = nil
	c.wmu.Unlock()
	old.Close() // closes the runtime's descriptor; ours stays open
	p.byFD[fd].Store(c)
	p.count.Add(1)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.closeConn(c, err)
		return err
	}
	// Frames that came with the handshake; the loop would only see them
	// on the next arrival otherwise. The loop may already be reading c
	// (messages arrive at once on a busy room), so pend is read under rmu.
	c.rmu.Lock()
	if len(c.pend) > 0 {
		p.read(c, false)
	}
	c.rmu.Unlock()
	return nil
}

func (p *poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 512)
	for {
		// A timeout, so a stop request is seen without a wake-up fd.
		n, err := unix.EpollWait(p.epfd, events, 50)
		if p.stop.Load() {
			break
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			break
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			c := p.byFD[fd].Load()
			if c == nil {
				continue
			}
			c.rmu.Lock()
			p.read(c, true)
			c.rmu.Unlock()
		}
	}
	for i := range p.byFD {
		if c := p.byFD[i].Load(); c != nil {
			p.closeConn(c, nil)
		}
	}
	unix.Close(p.epfd)
}

// read reads c once (if fromSocket) and handles every complete frame.
// rmu is held.
func (p *poller) read(c *client, fromSocket bool) {
	if c.fd < 0 {
		return
	}
	var data []byte
	if !fromSocket {
		data = c.pend
	} else if len(c.pend) > len(p.buf)/2 {
		// A large partial message: read onto its own buffer.
		if cap(c.pend)-len(c.pend) < 64<<10 {
			c.pend = append(make([]byte, 0, 2*cap(c.pend)+64<<10), c.pend...)
		}
		n, err := unix.Read(c.fd, c.pend[len(c.pend):cap(c.pend)])
		if n <= 0 {
			p.readErr(c, err)
			return
		}
		data = c.pend[:len(c.pend)+n]
	} else {
		off := copy(p.buf, c.pend)
		n, err := unix.Read(c.fd, p.buf[off:])
		if n <= 0 {
			p.readErr(c, err)
			return
		}
		data = p.buf[:off+n]
	}
	used, err := p.frames(c, data)
	if err != nil {
		p.closeConn(c, err)
		return
	}
	// rest may alias c.pend itself; append copies with memmove semantics.
	rest := data[used:]
	c.pend = append(c.pend[:0], rest...)
	if len(rest) == 0 && cap(c.pend) > 4096 {
		c.pend = nil // do not keep a large buffer per idle connection
	}
}

func (p *poller) readErr(c *client, err error) {
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	if err == nil {
		err = errPeerClosed
	}
	p.closeConn(c, err)
}

// frames handles the complete frames at the start of b and returns how
// many bytes they took.
func (p *poller) frames(c *client, b []byte) (int, error) {
	used := 0
	for {
		op, fin, payload, n, err := parseFrame(b[used:])
		if err != nil {
			return used, err
		}
		if n == 0 {
			return used, nil
		}
		used += n
		switch {
		case op == ws.OpPing:
			_ = c.writeControl(ws.OpPong, payload)
		case op == ws.OpClose:
			_, c.hint = closeInfo(payload)
			_ = c.writeControl(ws.OpClose, payload[:min(len(payload), 2)])
			return used, errServerClosed
		case op.IsControl():
		case op == ws.OpContinuation || !fin:
			// Fragmented message (RFC 6455 section 5.4): rare for chat
			// traffic, so assemble it in its own buffer.
			if op != ws.OpContinuation {
				c.frag = append(c.frag[:0], payload...)
				c.inFrag = true
				continue
			}
			if !c.inFrag {
				return used, errUnexpectedOp
			}
			c.frag = append(c.frag, payload...)
			if fin {
				c.inFrag = false
				p.message(c, c.frag)
				c.frag = nil
			}
		case op == ws.OpText:
			p.message(c, payload)
		}
	}
}

func (p *poller) message(c *client, b []byte) {
	switch {
	case isMessage(p.proto, b):
		p.w.deliver(c, b)
	case isErrorReply(p.proto, b):
		p.w.serverError(b)
	case p.proto == SocketIO && len(b) == 1 && sio.EngineType(b[0]) == sio.EnginePing:
		_ = c.write(pongFrameSIO)
	}
}

// pongFrameSIO is the masked frame answering an Engine.IO ping. The mask
// of a pre-built frame is fixed, which RFC 6455 section 5.3 discourages
// but servers accept; it carries no data worth hiding.
var pongFrameSIO = appendFrame(nil, opText, sio.PongFrame)

// parseFrame parses one frame at the start of b. It returns n == 0 when b
// holds no complete frame yet. A masked payload is unmasked in place.
func parseFrame(b []byte) (op ws.OpCode, fin bool, payload []byte, n int, err error) {
	if len(b) < 2 {
		return 0, false, nil, 0, nil
	}
	fin = b[0]&0x80 != 0
	op = ws.OpCode(b[0] & 0x0f)
	masked := b[1]&0x80 != 0
	hlen := 2
	var length uint64
	switch l := b[1] & 0x7f; l {
	case 126:
		hlen += 2
		if len(b) < hlen {
			return 0, false, nil, 0, nil
		}
		length = uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		hlen += 8
		if len(b) < hlen {
			return 0, false, nil, 0, nil
		}
		length = binary.BigEndian.Uint64(b[2:10])
	default:
		length = uint64(l)
	}
	if op.IsControl() && (length > 125 || !fin) {
		return 0, false, nil, 0, errControlTooBig
	}
	if length > maxMessage {
		return 0, false, nil, 0, errFrameTooBig
	}
	var mask [4]byte
	if masked {
		if len(b) < hlen+4 {
			return 0, false, nil, 0, nil
		}
		copy(mask[:], b[hlen:hlen+4])
		hlen += 4
	}
	if uint64(len(b)-hlen) < length {
		return 0, false, nil, 0, nil
	}
	payload = b[hlen : hlen+int(length)]
	if masked {
		ws.Cipher(payload, mask, 0)
	}
	return op, fin, payload, hlen + int(length), nil
}

// closeConn closes a handed-off connection. Called by the loop, or by add
// before the loop knows the connection.
func (p *poller) closeConn(c *client, err error) {
	c.wmu.Lock()
	fd := c.fd
	c.fd = -1
	c.wmu.Unlock()
	if fd < 0 {
		return
	}
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	p.byFD[fd].Store(nil)
	unix.Close(fd)
	p.count.Add(-1)
	if err != nil && !c.closing.Load() {
		p.w.lostConn(err)
		p.w.reconnect(c)
	}
}

// shutdown asks the loop to close every connection and stop, and waits.
func (p *poller) shutdown() {
	p.stop.Store(true)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// pollerSet spreads connections over a few pollers.
type pollerSet struct {
	mu   sync.Mutex
	ps   []*poller
	next int
}

func (s *pollerSet) add(w *Worker, proto Protocol, loops int, c *client) error {
	s.mu.Lock()
	if len(s.ps) < loops {
		p, err := newPoller(w, proto)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.ps = append(s.ps, p)
	}
	p := s.ps[s.next%len(s.ps)]
	s.next++
	s.mu.Unlock()
	return p.add(c)
}

func (s *pollerSet) shutdown() {
	s.mu.Lock()
	ps := s.ps
	s.ps = nil
	s.mu.Unlock()
	for _, p := range ps {
		p.shutdown()
	}
}

// pollerSupported reports whether this build has the epoll client.
const pollerSupported = true

// writeFD writes all of b to a non-blocking socket, waiting for room when
// the socket buffer is full, for at most timeout.
func writeFD(fd int, b []byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if n > 0 {
			b = b[n:]
			continue
		}
		switch {
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			wait := time.Until(deadline)
			if wait <= 0 {
				return errWriteTimeout
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			_, _ = unix.Poll(pfd, int(wait/time.Millisecond)+1)
		default:
			return err
		}
	}
	return nil
}

var errWriteTimeout = errors.New("load: write timed out: the server is not reading")

// shutdownFD ends both directions of a socket without closing it.
func shutdownFD(fd int) { _ = unix.Shutdown(fd, unix.SHUT_RDWR) }
