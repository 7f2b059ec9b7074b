package e2e

// End-to-end tests of chatgate behind real reverse proxies: nginx with
// scripts/nginx.conf (X-Forwarded-For, -trusted-proxies) and haproxy with
// scripts/haproxy.cfg (PROXY protocol v2, -proxy-protocol required), both
// rendered for loopback ports exactly as docs/deploy.md describes.
//
// The tests need the nginx and haproxy binaries (Debian: apt-get install
// nginx-light haproxy). Without them they skip, unless
// CHATGATE_REQUIRE_PROXIES=1, which makes a missing binary a failure.
//
// Client addresses are told apart by binding the client side of each
// connection to its own loopback address (127.0.0.5, 127.0.0.6, ...), which
// Linux routes without configuration. The gateway's debug log line
// `msg="connection open" conn=<id> client=<ip> remote=<ip:port>` shows which
// client address it resolved.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestProxyNginx: chat through nginx, the gateway sees the real client
// address from X-Forwarded-For / X-Real-IP only because nginx is trusted,
// and clients get back in after an nginx reload and a gateway restart.
func TestProxyNginx(t *testing.T) {
	bin := proxyBinary(t, "nginx")
	gwArgs := []string{"-trusted-proxies", "127.0.0.1/32", "-drain-timeout", "2s"}
	g := launchNode(t, freeAddr(t), false, gwArgs...)
	ngx := startNginx(t, bin, g.addr, g.addr)

	a := wsClient(t, ngx.addr, "127.0.0.5", nil)
	b := wsClient(t, ngx.addr, "127.0.0.6", nil)

	t.Run("chat", func(t *testing.T) {
		rebind(t, a, b)
		chat(t, a, b, "nginx")
	})
	t.Run("client address from X-Forwarded-For", func(t *testing.T) {
		expectClient(t, a.id, "127.0.0.5", g)
		expectClient(t, b.id, "127.0.0.6", g)
	})
	t.Run("client headers through nginx cannot spoof", func(t *testing.T) {
		c := wsClient(t, ngx.addr, "127.0.0.7", spoofHeaders())
		expectClient(t, c.id, "127.0.0.7", g)
	})
	t.Run("direct connection cannot spoof", func(t *testing.T) {
		// 127.0.0.9 is not a trusted proxy: its headers are ignored.
		c := wsClient(t, g.addr, "127.0.0.9", spoofHeaders())
		expectClient(t, c.id, "127.0.0.9", g)
	})
	t.Run("reload", func(t *testing.T) {
		ngx.reload(t)
		c := dialRetry(t, ngx.addr, "127.0.0.5", 15*time.Second)
		d := dialRetry(t, ngx.addr, "127.0.0.6", 15*time.Second)
		chat(t, c, d, "after-reload")
		expectClient(t, c.id, "127.0.0.5", g)
	})
	t.Run("gateway restart", func(t *testing.T) {
		rebind(t, a, b)
		stopNode(t, g)
		// The drain's close 1012 and its reconnect hint cross the proxy.
		if code, reason := a.readCloseReason(); code != 1012 || !strings.Contains(reason, "reconnect=") {
			t.Fatalf("close %d %q through nginx, want 1012 with a reconnect hint", code, reason)
		}
		g2 := launchNode(t, g.addr, false, gwArgs...)
		c := dialRetry(t, ngx.addr, "127.0.0.5", 20*time.Second)
		d := dialRetry(t, ngx.addr, "127.0.0.6", 20*time.Second)
		chat(t, c, d, "after-restart")
		expectClient(t, c.id, "127.0.0.5", g2)
	})
}

// TestProxyHAProxy: chat through haproxy with send-proxy-v2 to a gateway
// that requires the PROXY header; the header, not any HTTP header, names
// the client; connections without it are refused and do not disturb the
// others; clients get back in after a reload and a gateway restart.
func TestProxyHAProxy(t *testing.T) {
	bin := proxyBinary(t, "haproxy")
	// 127.0.0.1 (haproxy's own address) is trusted on purpose: the PROXY
	// source replaces the TCP peer, so it is the source that must be
	// trusted for forwarding headers to count, not haproxy.
	gwArgs := []string{"-proxy-protocol", "required", "-trusted-proxies", "127.0.0.1/32", "-drain-timeout", "2s"}
	g := launchNode(t, freeAddr(t), true, gwArgs...)
	started := time.Now()
	hap := startHAProxy(t, bin, g.addr, g.addr)

	a := wsClient(t, hap.addr, "127.0.0.5", nil)
	b := wsClient(t, hap.addr, "127.0.0.6", nil)

	t.Run("chat", func(t *testing.T) {
		rebind(t, a, b)
		chat(t, a, b, "haproxy")
	})
	t.Run("client address from PROXY v2", func(t *testing.T) {
		expectClient(t, a.id, "127.0.0.5", g)
		expectClient(t, b.id, "127.0.0.6", g)
	})
	t.Run("client headers through haproxy cannot spoof", func(t *testing.T) {
		c := wsClient(t, hap.addr, "127.0.0.7", spoofHeaders())
		expectClient(t, c.id, "127.0.0.7", g)
	})
	t.Run("connection without PROXY header is closed", func(t *testing.T) {
		rebind(t, a, b)
		warnsBefore := strings.Count(g.logs.String(), "level=WARN")
		r := rawDial(t, g.addr, "127.0.0.8")
		r.write([]byte(upgradeRequest))
		if line, err := r.br.ReadString('\n'); err == nil {
			t.Fatalf("gateway answered %q to a connection without PROXY header", line)
		}
		waitFor(t, 5*time.Second, "a warn log line for the refused connection", func() bool {
			return strings.Count(g.logs.String(), "level=WARN") > warnsBefore
		})
		// The others are unaffected.
		chat(t, a, b, "haproxy-after-refusal")
	})
	t.Run("direct connection with PROXY v1 header", func(t *testing.T) {
		r := rawDial(t, g.addr, "127.0.0.8")
		r.write([]byte("PROXY TCP4 203.0.113.9 127.0.0.1 40000 8080\r\n"))
		id := r.upgradeWelcome("X-Forwarded-For: 6.6.6.6\r\n")
		expectClient(t, id, "203.0.113.9", g)
	})
	t.Run("direct connection with PROXY v2 header", func(t *testing.T) {
		r := rawDial(t, g.addr, "127.0.0.8")
		r.write(proxyV2TCP4("198.51.100.7", "127.0.0.1", 40001, 8080))
		id := r.upgradeWelcome("Forwarded: for=6.6.6.6\r\n")
		expectClient(t, id, "198.51.100.7", g)
	})
	t.Run("PROXY source decides whether headers count", func(t *testing.T) {
		// A PROXY source that is itself a trusted proxy passes its
		// X-Forwarded-For on; the TCP peer does not matter.
		r := rawDial(t, g.addr, "127.0.0.8")
		r.write([]byte("PROXY TCP4 127.0.0.1 127.0.0.1 40002 8080\r\n"))
		id := r.upgradeWelcome("X-Forwarded-For: 192.0.2.44\r\n")
		expectClient(t, id, "192.0.2.44", g)
	})
	t.Run("health checks pass", func(t *testing.T) {
		// Two failed checks 2 s apart take a node down (haproxy.cfg); give
		// the checks, which carry PROXY v2 LOCAL headers, time to fail.
		if wait := 5*time.Second - time.Since(started); wait > 0 {
			time.Sleep(wait)
		}
		if logs := hap.logs.String(); strings.Contains(logs, " is DOWN") {
			t.Fatalf("haproxy marked a node down:\n%s", logs)
		}
	})
	t.Run("reload", func(t *testing.T) {
		hap.reload(t)
		c := dialRetry(t, hap.addr, "127.0.0.5", 15*time.Second)
		d := dialRetry(t, hap.addr, "127.0.0.6", 15*time.Second)
		chat(t, c, d, "after-reload")
		expectClient(t, c.id, "127.0.0.5", g)
	})
	t.Run("gateway restart", func(t *testing.T) {
		rebind(t, a, b)
		stopNode(t, g)
		if code, reason := a.readCloseReason(); code != 1012 || !strings.Contains(reason, "reconnect=") {
			t.Fatalf("close %d %q through haproxy, want 1012 with a reconnect hint", code, reason)
		}
		g2 := launchNode(t, g.addr, true, gwArgs...)
		// haproxy may have marked the node down meanwhile; it comes back
		// after two good checks (4 s).
		c := dialRetry(t, hap.addr, "127.0.0.5", 20*time.Second)
		d := dialRetry(t, hap.addr, "127.0.0.6", 20*time.Second)
		chat(t, c, d, "after-restart")
		expectClient(t, c.id, "127.0.0.5", g2)
	})
}

// TestProxyBalancing: with two nodes behind each proxy, native WebSockets
// spread over both, and every request of a Socket.IO long-polling session
// reaches the node that holds the session.
func TestProxyBalancing(t *testing.T) {
	t.Run("nginx", func(t *testing.T) {
		bin := proxyBinary(t, "nginx")
		g1 := launchNode(t, freeAddr(t), false, "-trusted-proxies", "127.0.0.1/32")
		g2 := launchNode(t, freeAddr(t), false, "-trusted-proxies", "127.0.0.1/32")
		ngx := startNginx(t, bin, g1.addr, g2.addr)
		checkBalancing(t, ngx.addr, g1, g2, false)
	})
	t.Run("haproxy", func(t *testing.T) {
		bin := proxyBinary(t, "haproxy")
		g1 := launchNode(t, freeAddr(t), true, "-proxy-protocol", "required")
		g2 := launchNode(t, freeAddr(t), true, "-proxy-protocol", "required")
		hap := startHAProxy(t, bin, g1.addr, g2.addr)
		checkBalancing(t, hap.addr, g1, g2, true)
	})
}

func checkBalancing(t *testing.T, proxy string, g1, g2 *gateway, cookies bool) {
	t.Run("websockets spread over both nodes", func(t *testing.T) {
		const n = 8
		on := map[*gateway]int{}
		for i := 0; i < n; i++ {
			c := wsClient(t, proxy, "127.0.0.5", nil)
			on[nodeOf(t, c.id, g1, g2)]++
		}
		t.Logf("node 1: %d, node 2: %d", on[g1], on[g2])
		// Least-connections over held connections alternates; allow some
		// slack for health-check connections.
		if on[g1] < n/4 || on[g2] < n/4 {
			t.Fatalf("unbalanced: node 1 has %d, node 2 has %d of %d", on[g1], on[g2], n)
		}
	})
	t.Run("socket.io polling sessions stay on their node", func(t *testing.T) {
		// With a balancer that is not sticky each request after the
		// handshake would miss its session half of the time (400).
		for i := 10; i < 16; i++ {
			if err := pollSession(proxy, fmt.Sprintf("127.0.0.%d", i), nil); err != nil {
				t.Fatalf("client 127.0.0.%d: %v", i, err)
			}
		}
		if cookies {
			jar, _ := cookiejar.New(nil)
			if err := pollSession(proxy, "127.0.0.20", jar); err != nil {
				t.Fatalf("client with cookies: %v", err)
			}
			u, err := url.Parse("http://" + proxy + "/socket.io/")
			if err != nil {
				t.Fatal(err)
			}
			if len(jar.Cookies(u)) == 0 {
				t.Fatal("haproxy set no affinity cookie")
			}
		}
	})
}

// --- proxies ---------------------------------------------------------------

// proxyBinary finds a proxy executable, also in the sbin directories that
// are often missing from an unprivileged PATH. A missing binary skips the
// test unless CHATGATE_REQUIRE_PROXIES=1.
func proxyBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CHATGATE_REQUIRE_PROXIES") == "1" {
		t.Fatalf("%s is not installed and CHATGATE_REQUIRE_PROXIES=1", name)
	}
	t.Skipf("%s is not installed (set CHATGATE_REQUIRE_PROXIES=1 to fail instead)", name)
	return ""
}

// renderConfig reads scripts/<name> and applies the replacements, each of
// which must match at least once: a config that no longer contains the
// string a replacement targets fails the test instead of silently running
// with production values.
func renderConfig(t *testing.T, name string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(s, repl[i]) {
			t.Fatalf("scripts/%s no longer contains %q; update the test and docs/deploy.md", name, repl[i])
		}
		s = strings.ReplaceAll(s, repl[i], repl[i+1])
	}
	return s
}

// proc is a proxy process started by a test, in its own process group so
// that its workers can be stopped with it.
type proc struct {
	name     string
	cmd      *exec.Cmd
	logs     *logBuffer
	done     chan error
	stopOnce sync.Once
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), logs: &logBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.logs.String())
		}
	})
	return p
}

// stop asks the process to exit (SIGTERM: nginx and the haproxy master stop
// their workers), then kills its process group, which holds only what this
// process started, if it has not exited within 5 s.
func (p *proc) stop() {
	p.stopOnce.Do(func() {
		pid := p.cmd.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
			}
		}
	})
}

// waitListening waits until addr accepts TCP connections, failing early if
// the process exits.
func (p *proc) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited: %v\n%s", p.name, err, p.logs.String())
		default:
		}
		if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			nc.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s:\n%s", p.name, addr, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type nginxProc struct {
	*proc
	bin, prefix, conf, addr string
}

// startNginx runs scripts/nginx.conf with its two example nodes replaced by
// up1 and up2, listening on a free loopback port, with every file under a
// temporary prefix.
func startNginx(t *testing.T, bin, up1, up2 string) *nginxProc {
	t.Helper()
	prefix, err := os.MkdirTemp("", "chatgate-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(prefix) })
	// Started as root, nginx runs its workers as nobody, which must be
	// able to reach the temp directories.
	if err := os.Chmod(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	conf := renderConfig(t, "nginx.conf",
		"listen 80 ", "listen "+addr+" ",
		"10.0.0.11:8080", up1,
		"10.0.0.12:8080", up2,
	)
	n := &nginxProc{bin: bin, prefix: prefix + "/", conf: filepath.Join(prefix, "nginx.conf"), addr: addr}
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.proc = startProc(t, bin, "-p", n.prefix, "-c", n.conf, "-e", "stderr")
	n.waitListening(t, addr)
	return n
}

// reload runs nginx -s reload, which signals the master through the pid
// file under the prefix, and waits for the master to start new workers.
func (n *nginxProc) reload(t *testing.T) {
	t.Helper()
	before := strings.Count(n.logs.String(), "reconfiguring")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.bin, "-p", n.prefix, "-c", n.conf, "-e", "stderr", "-s", "reload").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -s reload: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "nginx to reconfigure", func() bool {
		return strings.Count(n.logs.String(), "reconfiguring") > before
	})
}

type haproxyProc struct {
	*proc
	addr string
}

// startHAProxy runs scripts/haproxy.cfg in master-worker mode in the
// foreground, with its two example nodes replaced by up1 and up2, on a free
// loopback port, without the privileged settings (chroot, user, group) and
// with a maxconn an unprivileged descriptor limit allows.
func startHAProxy(t *testing.T, bin, up1, up2 string) *haproxyProc {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := renderConfig(t, "haproxy.cfg",
		"bind :80\n", "bind "+addr+"\n",
		"10.0.0.11:8080", up1,
		"10.0.0.12:8080", up2,
		"    chroot /var/lib/haproxy\n", "",
		"    user haproxy\n", "",
		"    group haproxy\n", "",
		"maxconn 200000\n", "maxconn 1000\n",
	)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &haproxyProc{addr: addr}
	h.proc = startProc(t, bin, "-W", "-db", "-f", path)
	h.waitListening(t, addr)
	return h
}

// reload sends SIGUSR2 to the master, which re-reads the configuration and
// starts a new worker, and waits for it to report success.
func (h *haproxyProc) reload(t *testing.T) {
	t.Helper()
	before := strings.Count(h.logs.String(), "Loading success")
	if err := h.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "haproxy to reload", func() bool {
		return strings.Count(h.logs.String(), "Loading success") > before
	})
}

// --- gateway nodes ---------------------------------------------------------

// launchNode runs the gateway on addr (a fixed address, so that a node can
// be restarted in place) with debug logs, and waits until /healthz answers.
// With proxied, the probe starts with a PROXY header, as the node refuses
// connections without one.
func launchNode(t *testing.T, addr string, proxied bool, args ...string) *gateway {
	t.Helper()
	g := &gateway{t: t, addr: addr, logs: &logBuffer{}, done: make(chan error, 1), exited: make(chan struct{})}
	g.cmd = exec.Command(binary, append([]string{"-addr", addr, "-admin-addr=", "-api-addr=", "-loops", "2", "-log-level", "debug"}, args...)...)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := g.cmd.Wait()
		close(g.exited)
		g.done <- err
	}()
	t.Cleanup(func() {
		g.kill()
		if t.Failed() {
			t.Logf("gateway %s logs:\n%s", addr, g.logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-g.done:
			g.done <- err
			t.Fatalf("gateway exited: %v\n%s", err, g.logs.String())
		default:
		}
		err := probeHealth(addr, proxied)
		if err == nil {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway on %s not healthy: %v\n%s", addr, err, g.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func probeHealth(addr string, proxied bool) error {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	req := "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
	if proxied {
		req = "PROXY TCP4 127.0.0.1 127.0.0.1 1 1\r\n" + req
	}
	if _, err := io.WriteString(nc, req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("/healthz: %s", resp.Status)
	}
	return nil
}

// stopNode drains the gateway with SIGTERM and waits for it to exit.
func stopNode(t *testing.T, g *gateway) {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g.done:
		g.done <- err // for the cleanup's kill
	case <-time.After(15 * time.Second):
		t.Fatal("gateway did not exit after SIGTERM")
	}
}

// --- clients ---------------------------------------------------------------

// dialWS opens /ws at addr from the loopback source address src and reads
// the welcome. Errors are returned, not fatal, for reconnect loops.
func dialWS(addr, src string, hdr http.Header) (*websocket.Conn, string, error) {
	d := websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, _, a string) (net.Conn, error) {
			nd := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			return nd.DialContext(ctx, "tcp4", a)
		},
	}
	ws, resp, err := d.Dial("ws://"+addr+"/ws", hdr)
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, "", err
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, "", fmt.Errorf("read welcome: %w", err)
	}
	var w struct{ Type, ID string }
	if err := json.Unmarshal(b, &w); err != nil || w.Type != "welcome" || w.ID == "" {
		ws.Close()
		return nil, "", fmt.Errorf("first message %s, want welcome", b)
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws, w.ID, nil
}

// wsClient connects or fails the test. The client is closed when t ends.
func wsClient(t *testing.T, addr, src string, hdr http.Header) *client {
	t.Helper()
	ws, id, err := dialWS(addr, src, hdr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws, id: id}
}

// dialRetry reconnects until it succeeds or within has passed, as a client
// does while a proxy reloads or a node restarts.
func dialRetry(t *testing.T, addr, src string, within time.Duration) *client {
	t.Helper()
	deadline := time.Now().Add(within)
	tries := 0
	for {
		tries++
		ws, id, err := dialWS(addr, src, nil)
		if err == nil {
			t.Cleanup(func() { ws.Close() })
			if tries > 1 {
				t.Logf("%s reconnected after %d attempts", src, tries)
			}
			return &client{t: t, ws: ws, id: id}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect through %s within %v (%d attempts): %v", addr, within, tries, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// rebind makes clients created by a parent test report failures to the
// subtest t (FailNow must run on the failing test's goroutine).
func rebind(t *testing.T, cs ...*client) {
	for _, c := range cs {
		c.t = t
	}
}

// chat runs one exchange of the native protocol (docs/protocol.md): both
// join room, a sends to the room, b receives it and answers a directly.
func chat(t *testing.T, a, b *client, room string) {
	t.Helper()
	rebind(t, a, b)
	for _, c := range []*client{a, b} {
		if r := c.request(map[string]any{"type": "join", "room": room}); r["type"] != "ack" {
			t.Fatalf("join %s: %v", room, r)
		}
	}
	text := "hello from " + a.id
	if r := a.request(map[string]any{"type": "send", "room": room, "data": map[string]any{"text": text}}); r["type"] != "ack" {
		t.Fatalf("send: %v", r)
	}
	m := b.readType("message")
	if m["from"] != a.id || m["room"] != room {
		t.Fatalf("message %v, want from %s in %s", m, a.id, room)
	}
	if d, _ := m["data"].(map[string]any); d["text"] != text {
		t.Fatalf("message data %v, want text %q", m["data"], text)
	}
	if r := b.request(map[string]any{"type": "send", "to": a.id, "data": "hi " + a.id}); r["type"] != "ack" {
		t.Fatalf("direct send: %v", r)
	}
	if m := a.readType("message"); m["from"] != b.id || m["data"] != "hi "+a.id {
		t.Fatalf("direct message %v, want from %s", m, b.id)
	}
}

// spoofHeaders claim the address 6.6.6.6 in every header the gateway reads.
func spoofHeaders() http.Header {
	return http.Header{
		"X-Forwarded-For": {"6.6.6.6"},
		"X-Real-Ip":       {"6.6.6.6"},
		"Forwarded":       {"for=6.6.6.6"},
	}
}

// rawDial opens a plain TCP connection from a chosen loopback source.
func rawDial(t *testing.T, addr, src string) *rawConn {
	t.Helper()
	nd := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	nc, err := nd.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// upgradeWelcome sends the WebSocket handshake with extra header lines,
// expects 101 and returns the connection id from the welcome message.
func (r *rawConn) upgradeWelcome(extra string) string {
	r.t.Helper()
	req := strings.Replace(upgradeRequest, "\r\n\r\n", "\r\n"+extra+"\r\n", 1)
	r.write([]byte(req))
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		r.t.Fatalf("read handshake response: %v", err)
	}
	if resp.StatusCode != 101 {
		r.t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	op, p := r.readFrame()
	var w struct{ Type, ID string }
	if op != 1 || json.Unmarshal(p, &w) != nil || w.Type != "welcome" {
		r.t.Fatalf("first frame op %d %q, want welcome", op, p)
	}
	return w.ID
}

// proxyV2TCP4 builds a PROXY protocol v2 header (command PROXY, TCP over
// IPv4) byte by byte, independently of the gateway's parser.
func proxyV2TCP4(src, dst string, sport, dport uint16) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x21, 0x11, 0, 12)
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, byte(sport>>8), byte(sport), byte(dport>>8), byte(dport))
}

// pollSession runs an Engine.IO v4 long-polling session through the proxy
// from src: handshake, CONNECT, the CONNECT reply and a close, each request
// on a new connection so that the proxy balances each one afresh.
func pollSession(proxy, src string, jar http.CookieJar) error {
	hc := &http.Client{
		Timeout: 5 * time.Second,
		Jar:     jar,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second,
				LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext,
		},
	}
	defer hc.CloseIdleConnections()
	base := "http://" + proxy + "/socket.io/?EIO=4&transport=polling"
	do := func(method, url, body string) (string, error) {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			return "", err
		}
		if method == "POST" {
			req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("%s %s: %s %s", method, url, resp.Status, b)
		}
		return string(b), nil
	}
	open, err := do("GET", base, "")
	if err != nil {
		return err
	}
	var hs struct{ SID string }
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil || hs.SID == "" {
		return fmt.Errorf("handshake answer %q", open)
	}
	url := base + "&sid=" + hs.SID
	if r, err := do("POST", url, "40"); err != nil || r != "ok" {
		return fmt.Errorf("CONNECT: %q %v", r, err)
	}
	if r, err := do("GET", url, ""); err != nil || !strings.HasPrefix(r, "40") {
		return fmt.Errorf("CONNECT reply: %q %v", r, err)
	}
	if r, err := do("POST", url, "1"); err != nil || r != "ok" {
		return fmt.Errorf("close: %q %v", r, err)
	}
	return nil
}

// --- logs --------------------------------------------------------------------

var (
	clientAttr = regexp.MustCompile(`\bclient=(\S+)`)
	remoteAttr = regexp.MustCompile(`\bremote=(\S+)`)
)

// openLine returns the "connection open" log line of connection id on g.
func openLine(g *gateway, id string) (string, bool) {
	conn := regexp.MustCompile(`\bconn=` + regexp.QuoteMeta(id) + `(\s|$)`)
	for _, line := range strings.Split(g.logs.String(), "\n") {
		if strings.Contains(line, `msg="connection open"`) && conn.MatchString(line) {
			return line, true
		}
	}
	return "", false
}

// expectClient waits for the "connection open" line of connection id on
// one of the nodes and checks the client address the gateway resolved.
func expectClient(t *testing.T, id, want string, nodes ...*gateway) {
	t.Helper()
	var line string
	waitFor(t, 5*time.Second, "the connection open log line of "+id, func() bool {
		for _, g := range nodes {
			if l, ok := openLine(g, id); ok {
				line = l
				return true
			}
		}
		return false
	})
	m := clientAttr.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("log line has no client= attribute: %s", line)
	}
	if m[1] != want {
		t.Fatalf("gateway resolved client %s, want %s: %s", m[1], want, line)
	}
	if r := remoteAttr.FindStringSubmatch(line); r == nil {
		t.Fatalf("log line has no remote= attribute: %s", line)
	}
}

// nodeOf returns the node that logged the opening of connection id.
func nodeOf(t *testing.T, id string, nodes ...*gateway) *gateway {
	t.Helper()
	var found *gateway
	waitFor(t, 5*time.Second, "the node of "+id, func() bool {
		for _, g := range nodes {
			if _, ok := openLine(g, id); ok {
				found = g
				return true
			}
		}
		return false
	})
	return found
}

// waitFor polls cond every 20 ms until it holds or within has passed.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
