package sioclient

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/chatgate/chatgate/netpoll"
)

// Prefix is the path the files are served under: Socket.IO's default path,
// where the Engine.IO endpoint lives too (engineio.Paths).
const Prefix = "/socket.io/"

// DefaultDir is where `npm ci --prefix sioclient` puts the bundle,
// relative to the gateway's working directory (the repository root).
const DefaultDir = "sioclient/node_modules/socket.io-client/dist"

// InstallHint says how to install the bundle, for logs and the 404 body.
const InstallHint = "npm ci --prefix sioclient"

// Files are the names served, socket.io's CLIENT_FILES: every one must be
// in the directory Load reads.
var Files = []string{
	"socket.io.js",
	"socket.io.js.map",
	"socket.io.min.js",
	"socket.io.min.js.map",
	"socket.io.esm.min.js",
	"socket.io.esm.min.js.map",
	"socket.io.msgpack.min.js",
	"socket.io.msgpack.min.js.map",
}

// Size bounds: the 4.8 files are 40 KB to 310 KB, 1.2 MB in all. A
// directory holding far more is not the bundle, and the gateway refuses
// to hold it in memory.
const (
	MaxFileSize  = 8 << 20
	MaxTotalSize = 32 << 20
)

// ErrNotInstalled is Load's error when the directory does not exist: the
// npm install step has not run. The gateway still starts.
var ErrNotInstalled = errors.New("sioclient: socket.io-client bundle not installed")

// Bundle is the loaded files, or, when they are missing, the 404 that says
// how to install them. Its handlers are safe on any event loop.
type Bundle struct {
	// Version is the socket.io-client version the files come from (its
	// package.json); empty when they are missing or the version is unknown.
	Version string
	// CORS, when set before Routes, returns the headers h with the CORS
	// headers for a request from origin added when that origin is
	// allowed (engineio.Config.CORSHeaders): a page elsewhere may then
	// import the ESM build, as with socket.io's cors option. h is the
	// handler's own copy.
	CORS    func(origin []byte, h []string) []string
	files   map[string]*file
	missing netpoll.Response
}

// file is one served file with its answers, built once: a request costs
// no allocation beyond the Response value its handler returns.
type file struct {
	ok          netpoll.Response // 200, identity body
	notModified netpoll.Response // 304 for a matching If-None-Match
	etag        []byte           // quoted, as sent
	// gz is the 200 with the gzip body, nil until the background
	// compression has finished (until then every client gets identity).
	gz atomic.Pointer[netpoll.Response]
}

// Load reads the files from dir (the dist/ folder of the socket.io-client
// package) and the version from the package.json beside it. A missing dir
// gives ErrNotInstalled and a Bundle whose routes answer 404 with how to
// install it; any other problem (a file missing or too large) is an error
// and no Bundle. The gzip bodies are made by a background goroutine, so
// startup does not wait for them.
func Load(dir string) (*Bundle, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return Missing(), fmt.Errorf("%w: no directory %s (run %s)", ErrNotInstalled, dir, InstallHint)
		}
		return nil, fmt.Errorf("sioclient: %w", err)
	}
	bodies := make(map[string][]byte, len(Files))
	total := 0
	for _, name := range Files {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("sioclient: %w (reinstall with %s)", err, InstallHint)
		}
		if st.Size() > MaxFileSize {
			return nil, fmt.Errorf("sioclient: %s is %d bytes, more than %d", p, st.Size(), MaxFileSize)
		}
		if total += int(st.Size()); total > MaxTotalSize {
			return nil, fmt.Errorf("sioclient: the files in %s are more than %d bytes in all", dir, MaxTotalSize)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("sioclient: %w", err)
		}
		if len(b) > MaxFileSize {
			return nil, fmt.Errorf("sioclient: %s grew past %d bytes while read", p, MaxFileSize)
		}
		bodies[name] = b
	}
	version := packageVersion(filepath.Join(dir, "..", "package.json"))
	etag := `"` + version + `"`
	if version == "" {
		// Not the npm package's layout: a validator from the contents,
		// so that a cache still revalidates correctly.
		h := sha256.New()
		for _, name := range Files {
			h.Write(bodies[name])
		}
		etag = `"` + hex.EncodeToString(h.Sum(nil)[:12]) + `"`
	}
	b := &Bundle{Version: version, files: make(map[string]*file, len(Files))}
	for _, name := range Files {
		b.files[name] = newFile(name, bodies[name], etag)
	}
	go b.compress()
	return b, nil
}

// Missing returns the Bundle of a gateway without the files: every route
// answers 404 with how to install them.
func Missing() *Bundle {
	return &Bundle{missing: netpoll.Response{Status: 404, ContentType: "text/plain; charset=utf-8",
		Body: []byte("the socket.io client bundle is not installed on this gateway: run " + InstallHint + "\n")}}
}

// packageVersion returns the version in the socket.io-client package.json
// at path, or "" when there is none (or it is some other package's).
func packageVersion(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil || len(raw) > 1<<20 {
		return ""
	}
	var pkg struct{ Name, Version string }
	if json.Unmarshal(raw, &pkg) != nil || pkg.Name != "socket.io-client" || !validVersion(pkg.Version) {
		return ""
	}
	return pkg.Version
}

// validVersion reports whether v can go between the quotes of an ETag
// (RFC 9110 etagc) and is of a sane length.
func validVersion(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == '"' || c >= 0x7f {
			return false
		}
	}
	return true
}

func newFile(name string, body []byte, etag string) *file {
	ct := "application/javascript; charset=utf-8"
	if strings.HasSuffix(name, ".map") {
		ct = "application/json; charset=utf-8"
	}
	// Vary: the body depends on Accept-Encoding (socket.io's server omits
	// it; a shared cache needs it to keep gzip from clients without it).
	header := []string{"ETag: " + etag, "Cache-Control: public, max-age=0", "Vary: Accept-Encoding"}
	return &file{
		ok:          netpoll.Response{Status: 200, ContentType: ct, Body: body, Header: header},
		notModified: netpoll.Response{Status: 304, ContentType: ct, Header: header},
		etag:        []byte(etag),
	}
}

// compress makes each file's gzip answer, off the event loops.
func (b *Bundle) compress() {
	for _, name := range Files {
		f := b.files[name]
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
		_, _ = zw.Write(f.ok.Body)                               // a bytes.Buffer does not fail
		_ = zw.Close()
		gz := f.ok
		gz.Body = buf.Bytes()
		gz.Header = append(append([]string(nil), f.ok.Header...), "Content-Encoding: gzip")
		f.gz.Store(&gz)
	}
}

// Ready reports whether every gzip body has been made (for tests).
func (b *Bundle) Ready() bool {
	for _, f := range b.files {
		if f.gz.Load() == nil {
			return false
		}
	}
	return true
}

// Routes returns the handlers keyed by exact URL path, Prefix + each of
// Files. Register each with netpoll.Server.Handle before Run (netpoll
// answers GET and HEAD, 405 to other methods).
func (b *Bundle) Routes() map[string]netpoll.HandlerFunc {
	m := make(map[string]netpoll.HandlerFunc, len(Files))
	for _, name := range Files {
		if b.files == nil {
			m[Prefix+name] = b.serveMissing
			continue
		}
		f := b.files[name]
		if b.CORS == nil {
			m[Prefix+name] = f.serve
			continue
		}
		m[Prefix+name] = func(r *netpoll.Request) netpoll.Response {
			resp := f.serve(r)
			if origin := r.Header("Origin"); len(origin) > 0 {
				// A copy: the file's header lines are shared.
				resp.Header = b.CORS(origin, append([]string(nil), resp.Header...))
			}
			return resp
		}
	}
	return m
}

func (b *Bundle) serveMissing(*netpoll.Request) netpoll.Response { return b.missing }

// serve answers one request: 304 when If-None-Match names the ETag (weak
// comparison, as socket.io's server accepts W/"version"), else the file,
// gzip-encoded when the client accepts gzip and it is ready.
// The Response shares the file's immutable slices: netpoll only reads them.
func (f *file) serve(r *netpoll.Request) netpoll.Response {
	if r.NotModified(f.etag) {
		return f.notModified
	}
	if gz := f.gz.Load(); gz != nil && acceptsGzip(r.Header("Accept-Encoding")) {
		return *gz
	}
	return f.ok
}

// acceptsGzip reports whether an Accept-Encoding value (RFC 9110 section
// 12.5.3) accepts gzip: listed, or covered by "*", with a q above 0.
func acceptsGzip(v []byte) bool {
	ok := false
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		coding, params, _ := bytes.Cut(item, []byte(";"))
		coding = bytes.TrimSpace(coding)
		exact := bytes.EqualFold(coding, []byte("gzip")) || bytes.EqualFold(coding, []byte("x-gzip"))
		if !exact && !(len(coding) == 1 && coding[0] == '*') {
			continue
		}
		q := qValue(params)
		if exact {
			return q > 0 // an explicit gzip entry decides
		}
		ok = q > 0
	}
	return ok
}

// qValue returns the weight in the parameters of one Accept-Encoding item
// (1 without one; 0 for a malformed one).
func qValue(params []byte) float64 {
	for _, p := range bytes.Split(params, []byte(";")) {
		k, val, found := bytes.Cut(bytes.TrimSpace(p), []byte("="))
		if !found || !bytes.EqualFold(bytes.TrimSpace(k), []byte("q")) {
			continue
		}
		q, err := strconv.ParseFloat(string(bytes.TrimSpace(val)), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}
