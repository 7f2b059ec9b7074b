package web

import (
	"bytes"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/netpoll"
)

func get(t *testing.T, h netpoll.HandlerFunc, path string, header ...string) netpoll.Response {
	t.Helper()
	head := "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n"
	for _, l := range header {
		head += l + "\r\n"
	}
	head += "\r\n"
	return h(&netpoll.Request{Method: []byte("GET"), Path: []byte(path), Head: []byte(head)})
}

func headerValue(resp netpoll.Response, name string) string {
	for _, l := range resp.Header {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestRoutes(t *testing.T) {
	routes := Routes()
	tests := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", "<!doctype html>"},
		{"/index.html", "text/html; charset=utf-8", "<!doctype html>"},
		{"/client.js", "text/javascript; charset=utf-8", "export function connect("},
		{"/app.js", "text/javascript; charset=utf-8", "from './client.js'"},
		{"/style.css", "text/css; charset=utf-8", ":root"},
	}
	if len(routes) != len(tests) {
		t.Errorf("Routes() has %d paths, want %d", len(routes), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			h := routes[tt.path]
			if h == nil {
				t.Fatalf("no route for %s", tt.path)
			}
			resp := get(t, h, tt.path)
			if resp.Status != 200 {
				t.Errorf("status %d, want 200", resp.Status)
			}
			if resp.ContentType != tt.contentType {
				t.Errorf("Content-Type %q, want %q", resp.ContentType, tt.contentType)
			}
			if !bytes.Contains(resp.Body, []byte(tt.contains)) {
				t.Errorf("body does not contain %q", tt.contains)
			}
			etag := headerValue(resp, "ETag")
			if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) {
				t.Errorf("ETag %q is not a quoted strong validator", etag)
			}
			if got := headerValue(resp, "X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}

			// Conditional requests: a matching If-None-Match gets 304.
			for _, inm := range []string{etag, `"nope", ` + etag, "W/" + etag, "*"} {
				nm := get(t, h, tt.path, "If-None-Match: "+inm)
				if nm.Status != 304 || len(nm.Body) != 0 || headerValue(nm, "ETag") != etag {
					t.Errorf("If-None-Match %s: status %d, body %d bytes", inm, nm.Status, len(nm.Body))
				}
			}
			if other := get(t, h, tt.path, `If-None-Match: "0000"`); other.Status != 200 {
				t.Errorf("stale If-None-Match: status %d, want 200", other.Status)
			}
		})
	}
}

// TestIndexReferencesAssets checks that the page loads exactly the assets
// the package serves, so a renamed file cannot leave a broken page.
func TestIndexReferencesAssets(t *testing.T) {
	routes := Routes()
	page := get(t, routes["/"], "/")
	refs := regexp.MustCompile(`(?:src|href)="(/[^"]*)"`).FindAllSubmatch(page.Body, -1)
	seen := map[string]bool{}
	for _, m := range refs {
		p := string(m[1])
		seen[p] = true
		if routes[p] == nil {
			t.Errorf("index.html references %s, which is not served", p)
		}
	}
	for _, want := range []string{"/style.css", "/app.js"} {
		if !seen[want] {
			t.Errorf("index.html does not reference %s", want)
		}
	}
	if !bytes.Contains(page.Body, []byte(`<script type="module" src="/app.js">`)) {
		t.Error("app.js is not loaded as an ES module")
	}
	// app.js reaches client.js through its import.
	app := get(t, routes["/app.js"], "/app.js")
	if !bytes.Contains(app.Body, []byte(`from './client.js'`)) {
		t.Error("app.js does not import ./client.js")
	}
	csp := headerValue(page, "Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

// TestEveryFileServed keeps the embedded directory and the route table in
// step.
func TestEveryFileServed(t *testing.T) {
	served := map[string]bool{}
	for _, name := range files {
		served[name] = true
	}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !served[p] {
			t.Errorf("%s is embedded but not served", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoUnsafeHTML guards the rule that text from other users reaches the
// DOM only as text: the page's scripts never assign HTML.
func TestNoUnsafeHTML(t *testing.T) {
	unsafe := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function`)
	for _, name := range []string{"static/app.js", "static/client.js"} {
		b, err := static.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if m := unsafe.Find(b); m != nil {
			t.Errorf("%s uses %s", name, m)
		}
	}
}

func TestServeAllocs(t *testing.T) {
	h := Routes()["/client.js"]
	req := &netpoll.Request{Method: []byte("GET"), Path: []byte("/client.js"),
		Head: []byte("GET /client.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"x\"\r\n\r\n")}
	allocs := testing.AllocsPerRun(100, func() { _ = h(req) })
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
}
