package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The socket.io-client bundle the gateway serves at /socket.io/*.js comes
// from the npm package that sioclient/package.json pins, installed by
// scripts/test.sh (npm ci --prefix sioclient). These tests compare every
// served byte with the package's files on disk, so they need it installed:
// without it they fail, saying how to install it.

// bundleFiles are the names socket.io's server serves (CLIENT_FILES).
var bundleFiles = []string{
	"socket.io.js", "socket.io.js.map",
	"socket.io.min.js", "socket.io.min.js.map",
	"socket.io.esm.min.js", "socket.io.esm.min.js.map",
	"socket.io.msgpack.min.js", "socket.io.msgpack.min.js.map",
}

// bundleDir returns the absolute path of the installed bundle and its
// package version, failing the test if it is not installed.
func bundleDir(t *testing.T) (dir, version string) {
	t.Helper()
	pkg, err := filepath.Abs(filepath.Join("..", "..", "sioclient", "node_modules", "socket.io-client"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err != nil {
		t.Fatalf("the socket.io-client bundle is not installed (run npm ci --prefix sioclient at the repository root): %v", err)
	}
	var meta struct{ Version string }
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Version == "" {
		t.Fatalf("sioclient's socket.io-client package.json: %v", err)
	}
	return filepath.Join(pkg, "dist"), meta.Version
}

// bundleGet sends one request with its own transport, without Go's
// transparent gzip, so the test sees the encoding the gateway chose.
func bundleGet(t *testing.T, method, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, body
}

func TestSocketIOClientBundleServed(t *testing.T) {
	dir, version := bundleDir(t)
	g := startGateway(t, "-sio-client-dir", dir)
	etag := `"` + version + `"`
	// The gzip bodies are made in the background at startup: one bound
	// for all the files.
	gzipDeadline := time.Now().Add(10 * time.Second)
	for _, name := range bundleFiles {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			ct := "application/javascript; charset=utf-8"
			if strings.HasSuffix(name, ".map") {
				ct = "application/json; charset=utf-8"
			}
			url := "http://" + g.addr + "/socket.io/" + name
			resp, body := bundleGet(t, "GET", url, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
			}
			if !bytes.Equal(body, want) {
				t.Fatalf("served %d bytes that differ from the npm package's %s (%d bytes)", len(body), name, len(want))
			}
			for k, v := range map[string]string{"Content-Type": ct, "ETag": etag, "Cache-Control": "public, max-age=0", "Content-Encoding": ""} {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}

			// Revalidation: the version as ETag, strong or weak, gets 304.
			for _, inm := range []string{etag, "W/" + etag, `"0.0.0", ` + etag} {
				resp, body = bundleGet(t, "GET", url, map[string]string{"If-None-Match": inm})
				if resp.StatusCode != 304 || len(body) != 0 {
					t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 without a body", inm, resp.StatusCode, len(body))
				}
				// RFC 9110, 8.6: a 304's Content-Length could only be the 200's.
				if cl := resp.Header.Get("Content-Length"); cl != "" {
					t.Errorf("If-None-Match %s: 304 with Content-Length %s", inm, cl)
				}
			}
			resp, body = bundleGet(t, "GET", url, map[string]string{"If-None-Match": `"0.0.0"`})
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Errorf("If-None-Match of another version: status %d, want 200 with the file", resp.StatusCode)
			}

			// gzip for a client that accepts it, once the gateway has
			// compressed the files (in the background, at startup).
			for {
				resp, body = bundleGet(t, "GET", url, map[string]string{"Accept-Encoding": "gzip, deflate, br"})
				if resp.Header.Get("Content-Encoding") == "gzip" || time.Now().After(gzipDeadline) {
					break
				}
				if !bytes.Equal(body, want) {
					t.Fatalf("identity body before gzip is ready differs from the file")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Accept-Encoding: gzip got Content-Encoding %q", resp.Header.Get("Content-Encoding"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(plain, want) {
				t.Fatalf("gzip body does not decode to the file (%v)", err)
			}
			if resp.Header.Get("ETag") != etag || resp.Header.Get("Content-Type") != ct {
				t.Errorf("gzip answer headers: %v", resp.Header)
			}
			resp, body = bundleGet(t, "GET", url, map[string]string{"Accept-Encoding": "gzip;q=0, identity"})
			if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, want) {
				t.Errorf("gzip;q=0 got Content-Encoding %q", resp.Header.Get("Content-Encoding"))
			}

			// HEAD: the headers of the GET, no body.
			resp, body = bundleGet(t, "HEAD", url, nil)
			if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(want)) {
				t.Errorf("HEAD: status %d, Content-Length %d, %d body bytes; want 200, %d, 0", resp.StatusCode, resp.ContentLength, len(body), len(want))
			}
			resp, _ = bundleGet(t, "POST", url, nil)
			if resp.StatusCode != 405 {
				t.Errorf("POST: status %d, want 405", resp.StatusCode)
			}
		})
	}
	// Names socket.io does not serve stay unknown, and Engine.IO still
	// answers at the same prefix.
	for _, p := range []string{"/socket.io/socket.io.cjs", "/socket.io/../go.mod", "/socket.io/dist/socket.io.js"} {
		if resp, _ := bundleGet(t, "GET", "http://"+g.addr+p, nil); resp.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
	}
	resp, body := bundleGet(t, "GET", "http://"+g.addr+"/socket.io/?EIO=4&transport=polling", nil)
	if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte(`0{"sid":`)) {
		t.Fatalf("Engine.IO handshake beside the bundle: status %d, body %q", resp.StatusCode, body)
	}
	// No CORS without -sio-cors-origins.
	resp, _ = bundleGet(t, "GET", "http://"+g.addr+"/socket.io/socket.io.esm.min.js", map[string]string{"Origin": "https://app.example"})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != 200 || got != "" {
		t.Errorf("without -sio-cors-origins: status %d, Access-Control-Allow-Origin %q", resp.StatusCode, got)
	}
}

// -sio-cors-origins applies to the bundle as to Engine.IO's answers (as
// socket.io's cors option does), so a page elsewhere may import the ESM
// build.
func TestSocketIOClientBundleCORS(t *testing.T) {
	dir, _ := bundleDir(t)
	g := startGateway(t, "-sio-client-dir", dir, "-sio-cors-origins", "https://app.example")
	url := "http://" + g.addr + "/socket.io/socket.io.esm.min.js"
	for origin, want := range map[string]string{"https://app.example": "https://app.example", "https://other.example": "", "": ""} {
		h := map[string]string{}
		if origin != "" {
			h["Origin"] = origin
		}
		resp, _ := bundleGet(t, "GET", url, h)
		if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != 200 || got != want {
			t.Errorf("Origin %q: status %d, Access-Control-Allow-Origin %q, want 200, %q", origin, resp.StatusCode, got, want)
		}
		if want != "" && resp.Header.Get("ETag") == "" {
			t.Errorf("Origin %q: the file's headers are gone: %v", origin, resp.Header)
		}
	}
}

// TestSocketIOClientBundleSlowReader: a response bigger than the socket
// takes at once, to a client that asked to close the connection after it
// and reads slowly (a tiny receive buffer), arrives whole. gnet's close
// writes only what the socket takes at that moment: netpoll must keep the
// connection until the response is out.
func TestSocketIOClientBundleSlowReader(t *testing.T) {
	dir, _ := bundleDir(t)
	want, err := os.ReadFile(filepath.Join(dir, "socket.io.js.map"))
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "-sio-client-dir", dir)
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// Before connect, so that the gateway sees a small window and
			// a small MSS: Linux sizes a new connection's send buffer
			// from its MSS, which on loopback would take the whole file.
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			if serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /socket.io/socket.io.js.map HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", g.addr)
	br := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(want)) {
		t.Fatalf("status %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, len(want))
	}
	// Read slowly: a small piece at a time.
	var got bytes.Buffer
	buf := make([]byte, 2048)
	for {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", got.Len(), len(want), err)
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("got %d bytes, want the file's %d", got.Len(), len(want))
	}
}

func TestSocketIOClientBundleOff(t *testing.T) {
	dir, _ := bundleDir(t)
	g := startGateway(t, "-sio-client-dir", dir, "-sio-serve-client=false")
	for _, name := range bundleFiles {
		resp, body := bundleGet(t, "GET", "http://"+g.addr+"/socket.io/"+name, nil)
		if resp.StatusCode != 404 || string(body) != "not found\n" {
			t.Errorf("%s with -sio-serve-client=false: status %d, %d body bytes; want the plain 404", name, resp.StatusCode, len(body))
		}
	}
}

func TestSocketIOClientBundleMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dist")
	g := startGateway(t, "-sio-client-dir", missing)
	for _, name := range bundleFiles {
		resp, body := bundleGet(t, "GET", "http://"+g.addr+"/socket.io/"+name, nil)
		if resp.StatusCode != 404 || !strings.Contains(string(body), "npm ci --prefix sioclient") {
			t.Errorf("%s without the bundle: status %d, body %q; want 404 saying how to install it", name, resp.StatusCode, body)
		}
	}
	if n := strings.Count(g.logs.String(), "socket.io client bundle not installed"); n != 1 {
		t.Errorf("%d warnings about the missing bundle, want 1:\n%s", n, g.logs.String())
	}
	// The gateway works without it: Socket.IO and native clients chat.
	s := sioDial(t, g, true)
	s.connect("40", "/")
	c := dial(t, g)
	if r := c.request(map[string]any{"type": "join", "room": "lobby"}); r["type"] != "ack" {
		t.Fatalf("native join without the bundle: %v", r)
	}
	resp, _ := bundleGet(t, "GET", "http://"+g.addr+"/socket.io/?EIO=4&transport=polling", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("Engine.IO polling handshake: %d", resp.StatusCode)
	}
}
