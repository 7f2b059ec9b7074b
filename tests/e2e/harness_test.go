package e2e

import (
	"bufio"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// binary is the gateway under test: $CHATGATE_BIN, or one built once for
// the whole package.
var binary string

// raceBinary is set when the gateway under test was built with -race
// (CHATGATE_E2E_RACE=1); its data race reports then fail the test that
// was running (see startGateway).
var raceBinary bool

// TestMain runs the tests against $CHATGATE_BIN when it is set (the binary
// scripts/test.sh built), else against a gateway built from this module.
// With CHATGATE_E2E_RACE=1 the gateway must be a -race build: the one built
// here is, and a $CHATGATE_BIN that is not is refused rather than tested
// for races it cannot report.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	raceBinary = os.Getenv("CHATGATE_E2E_RACE") == "1"
	binary = os.Getenv("CHATGATE_BIN")
	if binary == "" {
		dir, err := os.MkdirTemp("", "chatgate-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "gateway")
		args := []string{"build", "-o", binary}
		if raceBinary {
			args = append(args, "-race")
		}
		build := exec.Command("go", append(args, "github.com/chatgate/chatgate/cmd/gateway")...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build gateway:", err)
			return 1
		}
	}
	if raceBinary {
		if err := checkRaceBuild(binary); err != nil {
			fmt.Fprintln(os.Stderr, "CHATGATE_E2E_RACE=1:", err)
			return 1
		}
	}
	return m.Run()
}

// checkRaceBuild returns an error unless the Go binary at path was built
// with -race.
func checkRaceBuild(path string) error {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read build info of %s: %w", path, err)
	}
	for _, s := range info.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return nil
		}
	}
	return fmt.Errorf("%s was not built with -race", path)
}

// gatewayFault returns the first sign in a gateway's output that it went
// wrong in a way a test's own checks may miss: a data race report (from a
// -race build), a panic or a fatal runtime error. It returns "" if there
// is none.
func gatewayFault(logs string) string {
	for _, line := range strings.Split(logs, "\n") {
		switch {
		case strings.Contains(line, "DATA RACE"),
			strings.HasPrefix(line, "panic: "),
			strings.HasPrefix(line, "fatal error: "):
			return line
		}
	}
	return ""
}

// gateway is one running gateway process.
type gateway struct {
	t     *testing.T
	cmd   *exec.Cmd
	addr  string
	admin string // admin listener (metrics, readiness)
	api   string // server API listener, "" when a test set -api-addr itself
	// exited is closed once the process has been waited for.
	exited chan struct{}
	logs   *logBuffer
	done   chan error
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr finds a free loopback port. The tiny window before the gateway
// binds it is acceptable in tests.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startGateway runs the binary with args (plus -addr) and waits until
// /healthz answers. It is stopped at the end of the test.
//
// The ports come from freeAddr, which must let go of a port before the
// gateway binds it: when another process takes it in between (packages
// run in parallel), the gateway exits with "address already in use" and
// is started again on fresh ports, at most three times.
func startGateway(t *testing.T, args ...string) *gateway {
	t.Helper()
	for attempt := 1; ; attempt++ {
		g, taken := launchGateway(t, args)
		if !taken {
			return g
		}
		if attempt == 3 {
			t.Fatalf("gateway did not start: its ports were taken three times\n%s", g.logs.String())
		}
	}
}

// openFilesArg, as an argument of startGateway, is not passed to the
// gateway but runs it under that open-files limit (withOpenFiles).
const openFilesArg = "--e2e-open-files="

// withOpenFiles is the startGateway argument that runs the gateway with
// an open-files limit of n.
func withOpenFiles(n int) string { return openFilesArg + strconv.Itoa(n) }

// launchGateway is one attempt of startGateway. It reports taken, with
// the process gone, when a port it was given was taken meanwhile.
func launchGateway(t *testing.T, args []string) (g *gateway, taken bool) {
	t.Helper()
	addr := freeAddr(t)
	g = &gateway{t: t, addr: addr, admin: freeAddr(t), logs: &logBuffer{}, done: make(chan error, 1), exited: make(chan struct{})}
	base := []string{"-addr", addr, "-admin-addr", g.admin, "-loops", "2"}
	if !hasFlag(args, "-api-addr") {
		g.api = freeAddr(t)
		base = append(base, "-api-addr", g.api)
	}
	// Tests of other features send faster than a chat user may: the rate
	// limits are off unless a test sets them.
	if !hasFlag(args, "-rate-messages") {
		base = append(base, "-rate-messages", "-1")
	}
	if !hasFlag(args, "-rate-bytes") {
		base = append(base, "-rate-bytes", "-1")
	}
	cmd := append([]string{binary}, base...)
	for _, a := range args {
		if n, ok := strings.CutPrefix(a, openFilesArg); ok {
			// prlimit sets the limit and execs the gateway: same pid.
			cmd = append([]string{"prlimit", "--nofile=" + n + ":" + n, "--"}, cmd...)
			continue
		}
		cmd = append(cmd, a)
	}
	g.cmd = exec.Command(cmd[0], cmd[1:]...)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	if raceBinary {
		// Race reports go to stderr (not to a GORACE log_path inherited
		// from the environment), and the gateway keeps running after one.
		g.cmd.Env = append(os.Environ(), "GORACE=halt_on_error=0")
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := g.cmd.Wait()
		close(g.exited)
		g.done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-g.exited:
			if strings.Contains(g.logs.String(), "address already in use") {
				return g, true
			}
			g.watch()
			t.Fatalf("gateway exited before it was ready: %v\n%s", err, g.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			g.watch()
			t.Fatalf("gateway did not start: %v\n%s", err, g.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.watch()
	return g, false
}

// watch stops g at the end of the test and fails the test on a data race
// or a panic in its output.
func (g *gateway) watch() {
	t := g.t
	t.Cleanup(func() {
		g.kill()
		// The output is complete once the process has been waited for. A
		// data race or a panic fails the test even if every check passed.
		if f := gatewayFault(g.logs.String()); f != "" {
			t.Errorf("the gateway went wrong: %s", f)
		}
		if t.Failed() {
			t.Logf("gateway logs:\n%s", g.logs.String())
		}
	})
}

func (g *gateway) kill() {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-g.exited:
	case <-time.After(5 * time.Second):
	}
}

// stats reads /stats.
func (g *gateway) stats(t *testing.T) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + g.addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (g *gateway) statInt(t *testing.T, key string) int {
	t.Helper()
	v, ok := g.stats(t)[key].(float64)
	if !ok {
		t.Fatalf("stats has no %q", key)
	}
	return int(v)
}

// client is a gorilla/websocket client speaking the native protocol.
type client struct {
	t  *testing.T
	ws *websocket.Conn
	id string
}

func dial(t *testing.T, g *gateway) *client {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+g.addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	w := c.read()
	if w["type"] != "welcome" || w["id"] == "" {
		t.Fatalf("first message %v, want welcome", w)
	}
	c.id = w["id"].(string)
	return c
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(v map[string]any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// readRaw returns the next text message.
func (c *client) readRaw() []byte {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		c.t.Fatalf("got message type %d, want text", typ)
	}
	return b
}

func (c *client) read() map[string]any {
	c.t.Helper()
	b := c.readRaw()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("bad JSON from server %q: %v", b, err)
	}
	return m
}

// readType skips messages until one of type typ arrives.
func (c *client) readType(typ string) map[string]any {
	c.t.Helper()
	for i := 0; i < 100; i++ {
		if m := c.read(); m["type"] == typ {
			return m
		}
	}
	c.t.Fatalf("no %q message", typ)
	return nil
}

// request sends v with an id and returns the reply carrying that id,
// skipping events in between.
func (c *client) request(v map[string]any) map[string]any {
	c.t.Helper()
	id := fmt.Sprintf("r%d", time.Now().UnixNano())
	v["id"] = id
	c.send(v)
	for i := 0; i < 100; i++ {
		m := c.read()
		if m["id"] == id && (m["type"] == "ack" || m["type"] == "error") {
			return m
		}
	}
	c.t.Fatalf("no reply to %v", v)
	return nil
}

// expectNothing asserts that no message arrives within d. gorilla treats
// a read timeout as fatal for the connection, so it can only be the last
// step on a client.
func (c *client) expectNothing(d time.Duration) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(d))
	_, b, err := c.ws.ReadMessage()
	if err == nil {
		c.t.Fatalf("unexpected message %s", b)
	}
	var ne net.Error
	if !(errorsAs(err, &ne) && ne.Timeout()) {
		c.t.Fatalf("connection failed instead of staying quiet: %v", err)
	}
}

// readCloseReason reads until the server's close frame and returns its
// code and reason.
func (c *client) readCloseReason() (int, string) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errorsAs(err, &ce) {
			return ce.Code, ce.Text
		}
		c.t.Fatalf("read ended without a close frame: %v", err)
	}
}

// readClose reads until the server's close frame and returns its code.
func (c *client) readClose() int {
	c.t.Helper()
	code, _ := c.readCloseReason()
	return code
}

// rawConn is a plain TCP connection for hand-made frames and HTTP.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, g *gateway) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
}

const upgradeRequest = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// upgrade performs the handshake by hand and returns after the 101 head.
func (r *rawConn) upgrade() {
	r.t.Helper()
	r.write([]byte(upgradeRequest))
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		r.t.Fatalf("read handshake response: %v", err)
	}
	if resp.StatusCode != 101 {
		r.t.Fatalf("status %d, want 101", resp.StatusCode)
	}
}

// readFrame reads one server frame (servers never mask).
func (r *rawConn) readFrame() (op byte, payload []byte) {
	r.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		r.t.Fatalf("read frame header: %v", err)
	}
	if h[1]&0x80 != 0 {
		r.t.Fatal("server frame is masked")
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		io.ReadFull(r.br, e[:])
		n = int(e[0])<<8 | int(e[1])
	case 127:
		var e [8]byte
		io.ReadFull(r.br, e[:])
		n = 0
		for _, b := range e {
			n = n<<8 | int(b)
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, payload); err != nil {
		r.t.Fatalf("read frame payload: %v", err)
	}
	return h[0] & 0x0f, payload
}

// readCloseCode reads frames until a close frame and returns its code.
func (r *rawConn) readCloseCode() int {
	r.t.Helper()
	for i := 0; i < 100; i++ {
		op, p := r.readFrame()
		if op == 8 {
			if len(p) < 2 {
				return 1005
			}
			return int(p[0])<<8 | int(p[1])
		}
	}
	r.t.Fatal("no close frame")
	return 0
}

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 1<<16:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, mask[:]...)
	for i, c := range payload {
		out = append(out, c^mask[i%4])
	}
	return out
}

// hasFlag reports whether args set the flag name (as "-name v" or "-name=v").
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// TestGatewayFault: the output check of startGateway recognises the race
// detector's report, a panic and a fatal error, and nothing in ordinary
// log lines.
func TestGatewayFault(t *testing.T) {
	for logs, want := range map[string]string{
		"time=x level=INFO msg=listening\n==================\nWARNING: DATA RACE\nWrite at 0x00c000012345 by goroutine 7:\n": "WARNING: DATA RACE",
		"time=x level=INFO msg=listening\npanic: runtime error: index out of range [3] with length 3\n":                      "panic: runtime error: index out of range [3] with length 3",
		"fatal error: concurrent map writes\n":                                       "fatal error: concurrent map writes",
		"time=x level=INFO msg=listening\ntime=y level=WARN msg=\"nick panic: x\"\n": "",
	} {
		if got := gatewayFault(logs); got != want {
			t.Errorf("gatewayFault(%q) = %q, want %q", logs, got, want)
		}
	}
}
