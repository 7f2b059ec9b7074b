// Package web serves chatgate's browser chat: a single page (index.html,
// app.js, style.css) and the JavaScript client library client.js, embedded
// in the binary with package embed and answered from the event loops as
// plain HTTP (netpoll.HandlerFunc).
//
// Wire it into a server before Run:
//
//	for path, h := range web.Routes() {
//		srv.Handle(path, h)
//	}
//
// The page talks to the gateway over the native protocol at /ws (see
// docs/protocol.md); the client library is documented in docs/client.md.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"path"

	"github.com/chatgate/chatgate/netpoll"
)

//go:embed static
var static embed.FS

// asset is one embedded file with everything its responses need, computed
// once at init so that a request costs no allocation beyond the Response
// value the handler returns.
type asset struct {
	ok          netpoll.Response // 200 with the body
	notModified netpoll.Response // 304 for a matching If-None-Match
	etag        []byte           // quoted strong validator, as sent
}

// files maps a URL path to the embedded file it serves. "/" and
// "/index.html" are the same page.
var files = map[string]string{
	"/":           "static/index.html",
	"/index.html": "static/index.html",
	"/client.js":  "static/client.js",
	"/app.js":     "static/app.js",
	"/style.css":  "static/style.css",
}

// contentTypes by file extension. JavaScript is served as text/javascript
// (RFC 9239), which browsers require for ES modules.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// pageSecurity is the Content-Security-Policy of the page: scripts, styles
// and connections only from the gateway itself, so that even a rendering
// bug could not run injected script or send data elsewhere. CSP Level 3
// lets 'self' match ws: and wss: on the page's own host.
const pageSecurity = "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var routes = build()

func build() map[string]netpoll.HandlerFunc {
	byFile := make(map[string]*asset)
	r := make(map[string]netpoll.HandlerFunc, len(files))
	for route, name := range files {
		a := byFile[name]
		if a == nil {
			a = load(name)
			byFile[name] = a
		}
		r[route] = a.serve
	}
	return r
}

func load(name string) *asset {
	body, err := static.ReadFile(name)
	if err != nil {
		// The names are constants checked by the package tests.
		panic("web: " + err.Error())
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	ct := contentTypes[path.Ext(name)]
	header := []string{"ETag: " + etag, "X-Content-Type-Options: nosniff"}
	if path.Ext(name) == ".html" {
		header = append(header, pageSecurity, "Referrer-Policy: no-referrer")
	}
	return &asset{
		ok:          netpoll.Response{Status: 200, ContentType: ct, Body: body, Header: header},
		notModified: netpoll.Response{Status: 304, ContentType: ct, Header: header[:1]},
		etag:        []byte(etag),
	}
}

// serve answers GET and HEAD (netpoll drops the body for HEAD and refuses
// other methods). A request whose If-None-Match lists the asset's ETag gets
// 304 Not Modified. The Response shares the asset's immutable slices: the
// server only reads them.
func (a *asset) serve(r *netpoll.Request) netpoll.Response {
	if r.NotModified(a.etag) {
		return a.notModified
	}
	return a.ok
}

// Routes returns the page's HTTP handlers keyed by exact URL path: "/",
// "/index.html", "/client.js", "/app.js" and "/style.css". Register each
// with netpoll.Server.Handle before Run. The handlers are safe on any event
// loop and never block. Each call returns a new map over the same handlers.
func Routes() map[string]netpoll.HandlerFunc {
	m := make(map[string]netpoll.HandlerFunc, len(routes))
	for k, v := range routes {
		m[k] = v
	}
	return m
}
