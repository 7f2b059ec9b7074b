//go:build linux

package netpoll

import (
	"bytes"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/chat"
)

// sysClient is a WebSocket client made of raw system calls on fixed
// buffers, so that it allocates nothing: every allocation counted while it
// runs is the gateway's (and the runtime's).
type sysClient struct {
	tb  testing.TB
	sa  syscall.SockaddrInet4
	buf [4096]byte
	fds []int
}

func newSysClient(tb testing.TB, addr string, max int) *sysClient {
	tb.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	c := &sysClient{tb: tb, fds: make([]int, 0, max)}
	c.sa.Addr = ap.Addr().As4()
	c.sa.Port = int(ap.Port())
	tb.Cleanup(c.closeAll)
	return c
}

var welcomePrefix = []byte(`{"type":"welcome"`)

// handshake opens a connection, upgrades it at /ws and reads up to the
// end of the welcome frame that follows the 101. The connection stays
// open (closeAll), so what the gateway keeps for it is counted as well as
// its garbage.
func (c *sysClient) handshake() { c.upgrade(upgradeReq, true) }

// upgrade opens a connection, sends req (an upgrade request) and reads
// the 101 and, with welcome, the welcome frame behind it.
func (c *sysClient) upgrade(req string, welcome bool) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.fds = append(c.fds, fd)
	tv := syscall.Timeval{Sec: 5}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		c.tb.Fatal(err)
	}
	if err := syscall.Connect(fd, &c.sa); err != nil {
		c.tb.Fatal(err)
	}
	if _, err := syscall.Write(fd, c.buf[:copy(c.buf[:], req)]); err != nil {
		c.tb.Fatal(err)
	}
	n := 0
	for {
		m, err := syscall.Read(fd, c.buf[n:])
		if err != nil || m <= 0 {
			c.tb.Fatalf("reading the handshake after %d bytes: %v", n, err)
		}
		n += m
		got := c.buf[:n]
		end := bytes.Index(got, []byte("\r\n\r\n"))
		if end < 0 {
			continue
		}
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 101 ")) {
			c.tb.Fatalf("upgrade refused: %q", got)
		}
		f := got[end+4:]
		if !welcome {
			if len(f) > 0 {
				c.tb.Fatalf("bytes behind the 101: %q", f)
			}
			return
		}
		if len(f) < 2 || len(f) < 2+int(f[1]&0x7f) {
			continue
		}
		if f[1]&0x7f >= 126 || !bytes.HasPrefix(f[2:], welcomePrefix) {
			c.tb.Fatalf("not a welcome: %q", f)
		}
		return
	}
}

// send writes b (a masked client frame) on the newest connection and reads
// the one frame that answers it.
func (c *sysClient) send(b []byte) {
	fd := c.fds[len(c.fds)-1]
	if _, err := syscall.Write(fd, b); err != nil {
		c.tb.Fatal(err)
	}
	n := 0
	for n < 2 || n < 2+int(c.buf[1]&0x7f) {
		m, err := syscall.Read(fd, c.buf[n:])
		if err != nil || m <= 0 {
			c.tb.Fatalf("reading the answer after %d bytes: %v", n, err)
		}
		n += m
	}
}

func (c *sysClient) closeAll() {
	for _, fd := range c.fds {
		syscall.Close(fd)
	}
	c.fds = c.fds[:0]
}

// closeAndWait closes every connection and waits until the server has
// seen them go, so that their close work is not counted with what follows.
func (c *sysClient) closeAndWait(s *Server) {
	c.closeAll()
	deadline := time.Now().Add(10 * time.Second)
	for s.total.Load() > 0 {
		if time.Now().After(deadline) {
			c.tb.Fatalf("%d connections still open on the server", s.total.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkNativeHandshake: one op is one native handshake over loopback
// TCP — accept, the /ws upgrade, the session opened and its welcome
// read — with the connection left open. B/op and allocs/op are the
// gateway's (the client allocates nothing): what it keeps per connection
// plus the garbage each handshake leaves.
func BenchmarkNativeHandshake(b *testing.B) {
	ts := startTestServer(b, Config{Limits: limitsOff})
	const batch = 500
	cl := newSysClient(b, ts.addr, batch)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if len(cl.fds) == batch {
			b.StopTimer()
			cl.closeAndWait(ts.srv)
			b.StartTimer()
		}
		cl.handshake()
	}
}

// allocSite is one allocating stack of the heap profile: its allocating
// function's package, the objects and bytes allocated there so far, and
// the bytes of those still live.
type allocSite struct {
	pkg            string
	objects, bytes int64
	inUse          int64 // bytes allocated there and not yet freed
}

// heapSites reads the heap profile (every allocation sampled: the caller
// sets runtime.MemProfileRate to 1) after two collections, so that it
// holds every allocation made so far.
func heapSites() map[[32]uintptr]allocSite {
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+100)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	sites := make(map[[32]uintptr]allocSite, len(recs))
	for _, r := range recs {
		sites[r.Stack0] = allocSite{pkg: allocPkg(r.Stack()), objects: r.AllocObjects, bytes: r.AllocBytes, inUse: r.InUseBytes()}
	}
	return sites
}

// allocPkg names the package of the function that allocated, the first
// frame outside the runtime: "the test" (its own code, in this package),
// "netpoll", "chat", "gnet", "gobwas" or the import path's last element.
func allocPkg(stack []uintptr) string {
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		fn := f.Function
		if !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/") && fn != "" {
			switch {
			case strings.HasSuffix(f.File, "_test.go"):
				return "the test"
			case strings.HasPrefix(fn, "github.com/chatgate/chatgate/netpoll."):
				return "netpoll"
			case strings.HasPrefix(fn, "github.com/chatgate/chatgate/"):
				rest := strings.TrimPrefix(fn, "github.com/chatgate/chatgate/")
				return rest[:strings.IndexAny(rest, "./")]
			case strings.Contains(fn, "gnet"):
				return "gnet"
			case strings.Contains(fn, "gobwas"):
				return "gobwas"
			case strings.HasPrefix(fn, "golang.org/x/sys/"):
				return "x/sys (gnet's accept)"
			}
			if i := strings.LastIndex(fn, "/"); i >= 0 {
				fn = fn[i+1:]
			}
			return fn[:strings.IndexByte(fn, '.')]
		}
		if !more {
			return "runtime"
		}
	}
}

// allocsPerHandshake runs n handshakes (run) on ts's one loop, after as
// many to warm up (closed again), and returns the allocations and bytes
// per handshake, by the allocating function's package (allocPkg), from
// the heap profile, over connections that stay open. It logs them all.
func allocsPerHandshake(t *testing.T, ts *testServer, cl *sysClient, n int, run func()) map[string][2]float64 {
	t.Helper()
	batch := func() {
		for i := 0; i < n; i++ {
			run()
		}
	}
	batch() // warm up: the loop's lists and spares, gnet's tables, the room
	cl.closeAndWait(ts.srv)
	before := heapSites()
	lp := ts.srv.loops[0].Load()
	onLoop(t, lp, func() {
		// Taken, as far as the sweep knows: it keeps the spares for
		// the batch (trimMore), which takes them at once.
		lp.moreTaken = true
	})
	batch()
	after := heapSites()
	cl.closeAndWait(ts.srv)
	by := map[string][2]float64{}
	for k, a := range after {
		b := before[k]
		tt := by[a.pkg]
		tt[0] += float64(a.objects-b.objects) / float64(n)
		tt[1] += float64(a.bytes-b.bytes) / float64(n)
		by[a.pkg] = tt
	}
	pkgs := make([]string, 0, len(by))
	for pkg := range by {
		pkgs = append(pkgs, pkg)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		if tt := by[pkg]; tt[0] > 0 {
			t.Logf("%-22s %6.2f allocs %7.1f B per handshake", pkg, tt[0], tt[1])
		}
	}
	return by
}

// TestNativeHandshakeAllocations: a native handshake (accept, upgrade,
// session, welcome) and its first message (a join, which takes rate-limit
// state) allocate, in package netpoll, only the conn itself: the welcome
// is the loop's and the rate-limit state is recycled (loop.getMore).
// Counted from the heap profile, by the allocating function's package,
// over connections that stay open; the other packages' share is logged.
func TestNativeHandshakeAllocations(t *testing.T) {
	if builtWithRace() {
		t.Skip("the race detector allocates on its own: allocation counts mean nothing")
	}
	defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	ts := startTestServer(t, Config{Limits: limitsOff, Loops: 1})
	const n = 200 // within one block of the loop's list (connList), which stays
	cl := newSysClient(t, ts.addr, n)
	join := maskedText(`{"type":"join","room":"lobby"}`)
	np := allocsPerHandshake(t, ts, cl, n, func() {
		cl.handshake()
		cl.send(join)
	})["netpoll"]
	// The conn: one allocation of its size class (TestConnSize).
	if np[0] > 1.05 || np[1] > 80*1.05 {
		t.Errorf("netpoll allocates %.2f times, %.1f B per native handshake and first message, want 1 (the conn, 80 B)", np[0], np[1])
	}
}

// nopProtocol upgrades every request to a socket whose handler does
// nothing (one handler for all, so that the test allocates nothing).
type nopProtocol struct{ h nopSocket }

type nopSocket struct{}

func (nopSocket) OnMessage(ws.OpCode, []byte) error { return nil }
func (nopSocket) Sweep(int64)                       {}
func (nopSocket) Closed()                           {}
func (nopSocket) ID() string                        { return "" }

func (p *nopProtocol) ServeHTTP(x *Exchange) {
	x.Upgrade(Admission{}, func(Socket) SocketHandler { return p.h })
}
func (*nopProtocol) MaxBody() int                   { return 1 << 10 }
func (*nopProtocol) ShortestTimeout() time.Duration { return time.Minute }
func (*nopProtocol) Sweep(*Loop, int64)             {}
func (*nopProtocol) Flush(*Loop)                    {}
func (*nopProtocol) Drain(*Loop)                    {}

// TestProtocolHandshakeAllocations: a WebSocket upgrade served by a
// mounted protocol (Socket.IO's way in) allocates, in package netpoll,
// the conn and the handler's holder (protoConn) only: the Exchange handed
// to the protocol is the loop's.
func TestProtocolHandshakeAllocations(t *testing.T) {
	if builtWithRace() {
		t.Skip("the race detector allocates on its own: allocation counts mean nothing")
	}
	defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	p := &nopProtocol{}
	ts := startTestServerHub(t, Config{Limits: limitsOff, Loops: 1}, chat.Config{}, func(s *Server) { s.Mount(p, "/proto") })
	const n = 200
	cl := newSysClient(t, ts.addr, n)
	req := strings.Replace(upgradeReq, "GET /ws ", "GET /proto ", 1)
	np := allocsPerHandshake(t, ts, cl, n, func() { cl.upgrade(req, false) })["netpoll"]
	if np[0] > 2.05 || np[1] > (80+16)*1.05 {
		t.Errorf("netpoll allocates %.2f times, %.1f B per protocol handshake, want 2 (the conn, 80 B, and its protoConn, 16 B)", np[0], np[1])
	}
}
