package sioclient

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/netpoll"
)

// fakePackage writes a socket.io-client package layout (package.json and
// dist/ with every file of Files) under a temporary directory and returns
// the dist directory. Each file's content names it.
func fakePackage(t *testing.T, pkgJSON string) string {
	t.Helper()
	root := t.TempDir()
	dist := filepath.Join(root, "dist")
	if err := os.Mkdir(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	if pkgJSON != "" {
		if err := os.WriteFile(filepath.Join(root, "package.json"), []byte(pkgJSON), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range Files {
		body := strings.Repeat("/* "+name+" */\n", 200)
		if err := os.WriteFile(filepath.Join(dist, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dist
}

// request builds a parsed request head with the given header lines.
func request(headers ...string) *netpoll.Request {
	head := "GET /socket.io/socket.io.js HTTP/1.1\r\nHost: x\r\n"
	for _, h := range headers {
		head += h + "\r\n"
	}
	head += "\r\n"
	return &netpoll.Request{Method: []byte("GET"), Path: []byte("/socket.io/socket.io.js"), Head: []byte(head)}
}

func header(resp netpoll.Response, name string) string {
	for _, h := range resp.Header {
		if k, v, ok := strings.Cut(h, ": "); ok && strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// waitReady waits, bounded, for the background gzip bodies.
func waitReady(t *testing.T, b *Bundle) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !b.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the gzip bodies were not made within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServeFiles(t *testing.T) {
	dist := fakePackage(t, `{"name":"socket.io-client","version":"4.8.4"}`)
	b, err := Load(dist)
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != "4.8.4" {
		t.Fatalf("Version %q, want 4.8.4", b.Version)
	}
	routes := b.Routes()
	if len(routes) != len(Files) {
		t.Fatalf("%d routes, want %d", len(routes), len(Files))
	}
	for _, name := range Files {
		h := routes["/socket.io/"+name]
		if h == nil {
			t.Fatalf("no route for %s", name)
		}
		want, _ := os.ReadFile(filepath.Join(dist, name))
		resp := h(request())
		if resp.Status != 200 || !bytes.Equal(resp.Body, want) {
			t.Fatalf("%s: status %d, body of %d bytes; want 200 with the file", name, resp.Status, len(resp.Body))
		}
		ct := "application/javascript; charset=utf-8"
		if strings.HasSuffix(name, ".map") {
			ct = "application/json; charset=utf-8"
		}
		if resp.ContentType != ct {
			t.Errorf("%s: Content-Type %q, want %q", name, resp.ContentType, ct)
		}
		if got := header(resp, "ETag"); got != `"4.8.4"` {
			t.Errorf("%s: ETag %q, want the quoted version", name, got)
		}
		if got := header(resp, "Cache-Control"); got != "public, max-age=0" {
			t.Errorf("%s: Cache-Control %q", name, got)
		}
	}
	for _, p := range []string{"/socket.io/socket.io.cjs", "/socket.io/", "/socket.io/package.json", "/socket.io/dist/socket.io.js"} {
		if routes[p] != nil {
			t.Errorf("a route for %s", p)
		}
	}
}

func TestNotModified(t *testing.T) {
	b, err := Load(fakePackage(t, `{"name":"socket.io-client","version":"4.8.4"}`))
	if err != nil {
		t.Fatal(err)
	}
	h := b.Routes()["/socket.io/socket.io.min.js"]
	for _, tt := range []struct {
		inm  string
		want int
	}{
		{`"4.8.4"`, 304},
		{`W/"4.8.4"`, 304},
		{`"1.0.0", W/"4.8.4"`, 304},
		{`*`, 304},
		{`"4.8.3"`, 200},
		{`4.8.4`, 200}, // unquoted: not an entity tag
		{`"4.8.4`, 200},
	} {
		resp := h(request("If-None-Match: " + tt.inm))
		if resp.Status != tt.want {
			t.Errorf("If-None-Match %s: status %d, want %d", tt.inm, resp.Status, tt.want)
		}
		if tt.want == 304 && (len(resp.Body) != 0 || header(resp, "ETag") != `"4.8.4"`) {
			t.Errorf("If-None-Match %s: 304 with %d body bytes, ETag %q", tt.inm, len(resp.Body), header(resp, "ETag"))
		}
	}
}

func TestGzip(t *testing.T) {
	dist := fakePackage(t, `{"name":"socket.io-client","version":"4.8.4"}`)
	b, err := Load(dist)
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, b)
	want, _ := os.ReadFile(filepath.Join(dist, "socket.io.js.map"))
	h := b.Routes()["/socket.io/socket.io.js.map"]
	for _, tt := range []struct {
		ae   string
		gzip bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br, zstd", true},
		{"br;q=1.0, gzip;q=0.8, *;q=0.1", true},
		{"*", true},
		{"deflate, br", false},
		{"gzip;q=0", false},
		{"gzip;q=0, *", false},
		{"*;q=0", false},
		{"GZIP", true},
		{"gzip;q=bad", false},
		{"identity", false},
	} {
		var resp netpoll.Response
		if tt.ae == "" {
			resp = h(request())
		} else {
			resp = h(request("Accept-Encoding: " + tt.ae))
		}
		if got := header(resp, "Content-Encoding") == "gzip"; got != tt.gzip {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", tt.ae, got, tt.gzip)
			continue
		}
		if header(resp, "Vary") != "Accept-Encoding" || header(resp, "ETag") != `"4.8.4"` {
			t.Errorf("Accept-Encoding %q: headers %v", tt.ae, resp.Header)
		}
		body := resp.Body
		if tt.gzip {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
			if len(resp.Body) >= len(want) {
				t.Errorf("gzip body %d bytes, not smaller than the file's %d", len(resp.Body), len(want))
			}
		}
		if !bytes.Equal(body, want) {
			t.Errorf("Accept-Encoding %q: the body is not the file", tt.ae)
		}
	}
}

// With CORS set, a request with an Origin gets what CORS adds, and the
// file's shared header lines stay as they were.
func TestCORS(t *testing.T) {
	b, err := Load(fakePackage(t, `{"name":"socket.io-client","version":"4.8.4"}`))
	if err != nil {
		t.Fatal(err)
	}
	b.CORS = func(origin []byte, h []string) []string {
		if string(origin) != "https://app.example" {
			return h
		}
		return append(h, "Access-Control-Allow-Origin: "+string(origin))
	}
	h := b.Routes()["/socket.io/socket.io.esm.min.js"]
	for _, tt := range []struct{ origin, want string }{
		{"https://app.example", "https://app.example"},
		{"https://other.example", ""},
		{"", ""},
		{"https://app.example", "https://app.example"},
	} {
		var resp netpoll.Response
		if tt.origin == "" {
			resp = h(request())
		} else {
			resp = h(request("Origin: " + tt.origin))
		}
		if got := header(resp, "Access-Control-Allow-Origin"); got != tt.want || resp.Status != 200 {
			t.Errorf("Origin %q: status %d, Access-Control-Allow-Origin %q, want 200, %q", tt.origin, resp.Status, got, tt.want)
		}
		if len(resp.Header) != 3+btoi(tt.want != "") {
			t.Errorf("Origin %q: header lines %q", tt.origin, resp.Header)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestMissingDirectory(t *testing.T) {
	b, err := Load(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, ErrNotInstalled) || b == nil {
		t.Fatalf("Load of a missing dir: %v, %v; want ErrNotInstalled and a Bundle", b, err)
	}
	routes := b.Routes()
	if len(routes) != len(Files) {
		t.Fatalf("%d routes, want %d", len(routes), len(Files))
	}
	for p, h := range routes {
		resp := h(request())
		if resp.Status != 404 || !strings.Contains(string(resp.Body), InstallHint) {
			t.Errorf("%s: status %d, body %q; want 404 saying %q", p, resp.Status, resp.Body, InstallHint)
		}
	}
}

func TestLoadRefusesBadDirectories(t *testing.T) {
	t.Run("a file missing", func(t *testing.T) {
		dist := fakePackage(t, `{"name":"socket.io-client","version":"4.8.4"}`)
		if err := os.Remove(filepath.Join(dist, "socket.io.esm.min.js")); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dist); err == nil || errors.Is(err, ErrNotInstalled) {
			t.Fatalf("Load: %v, want an error naming the file", err)
		}
	})
	t.Run("a file too large", func(t *testing.T) {
		dist := fakePackage(t, `{"name":"socket.io-client","version":"4.8.4"}`)
		if err := os.Truncate(filepath.Join(dist, "socket.io.js"), MaxFileSize+1); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dist); err == nil || !strings.Contains(err.Error(), "more than") {
			t.Fatalf("Load: %v, want a size error", err)
		}
	})
	t.Run("too much in all", func(t *testing.T) {
		dist := fakePackage(t, `{"name":"socket.io-client","version":"4.8.4"}`)
		for _, name := range Files[:5] {
			if err := os.Truncate(filepath.Join(dist, name), MaxFileSize); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Load(dist); err == nil || !strings.Contains(err.Error(), "in all") {
			t.Fatalf("Load: %v, want a total size error", err)
		}
	})
	t.Run("a file, not a directory", func(t *testing.T) {
		dist := fakePackage(t, "")
		if _, err := Load(filepath.Join(dist, "socket.io.js")); !errors.Is(err, ErrNotInstalled) {
			t.Fatalf("Load: %v, want ErrNotInstalled", err)
		}
	})
}

// Without the npm package's package.json (or with another package's, or
// a version that cannot be an entity tag) the ETag comes from the
// contents, so caches still revalidate.
func TestETagWithoutVersion(t *testing.T) {
	for _, pkg := range []string{"", `{"name":"other","version":"1.0.0"}`, `{"name":"socket.io-client","version":"4.8\"4"}`, `not json`} {
		b, err := Load(fakePackage(t, pkg))
		if err != nil {
			t.Fatal(err)
		}
		if b.Version != "" {
			t.Errorf("package.json %q: Version %q, want none", pkg, b.Version)
		}
		h := b.Routes()["/socket.io/socket.io.js"]
		etag := header(h(request()), "ETag")
		if len(etag) != 26 || etag[0] != '"' || etag[25] != '"' {
			t.Errorf("package.json %q: ETag %q, want a quoted content hash", pkg, etag)
		}
		if h(request("If-None-Match: "+etag)).Status != 304 {
			t.Errorf("package.json %q: the content ETag does not revalidate", pkg)
		}
	}
}
