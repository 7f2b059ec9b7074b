package admin

// The admin page: GET / serves a small single-page app embedded in the
// binary (static/), which polls GET /admin/state and, once the operator
// has entered the API key, calls POST /admin/disconnect.
//
// Reads are served without a key: the admin listener is private (loopback
// by default) and already serves /metrics and pprof, which tell as much.
// Actions need the server API's key (-api-key) in an
// "Authorization: apikey <key>" header, compared in constant time; with no
// key configured they are refused (403), so the page stays read-only. A
// cross-site page cannot call them either: the Authorization header and the
// JSON body need a CORS preflight, which this listener never grants.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/chatgate/chatgate/api"
)

// API is what the admin page needs of the server API: *api.Server.
type API interface {
	// Do runs one API method with its JSON params (api.Server.Do).
	Do(ctx context.Context, method string, params []byte) (any, *api.Error)
}

// apiSource is the API and its key, swapped as one by SetAPI.
type apiSource struct {
	api API
	key [sha256.Size]byte // SHA-256 of the key, so the comparison does not leak its length
	set bool              // a key is configured: actions are allowed
}

// SetAPI connects the admin page to the server API. key is the API's key
// (-api-key): the page's actions require it, and an empty key refuses them
// all (the page is read-only). Until SetAPI is called, or with a nil s,
// the page loads but reports the API as unavailable. It may be called at
// any time, before or after Start.
func (a *Admin) SetAPI(s API, key string) {
	if a == nil {
		return
	}
	if s == nil {
		a.api.Store(nil)
		return
	}
	src := &apiSource{api: s, set: key != ""}
	if src.set {
		src.key = sha256.Sum256([]byte(key))
	}
	a.api.Store(src)
}

// Page limits.
const (
	// maxListed bounds the connections and rooms in one state answer: the
	// page lists the first ones and shows the totals.
	maxListed = 1000
	// apiTimeout bounds the API calls of one request, the cluster's
	// fan-out included.
	apiTimeout = 5 * time.Second
	// maxActionBody bounds an action's JSON body.
	maxActionBody = 4 << 10
	// maxFilter bounds the ?q= filter of /admin/state.
	maxFilter = 256
)

//go:embed static
var static embed.FS

// pageCSP is the page's Content-Security-Policy: script, style and fetches
// from this listener only, nothing inline, so that even a rendering bug
// could not run injected script or send data elsewhere.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageFile is one embedded file of the page.
type pageFile struct {
	body        []byte
	contentType string
}

func loadPage(name, contentType string) pageFile {
	b, err := static.ReadFile("static/" + name)
	if err != nil {
		panic("admin: embedded page file missing: " + err.Error())
	}
	return pageFile{b, contentType}
}

var (
	pageHTML = loadPage("index.html", "text/html; charset=utf-8")
	pageJS   = loadPage("admin.js", "text/javascript; charset=utf-8")
	pageCSS  = loadPage("admin.css", "text/css; charset=utf-8")
)

// secure sets the headers of every page response.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func (f pageFile) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	secure(h)
	h.Set("Content-Type", f.contentType)
	_, _ = w.Write(f.body)
}

// ---- GET /admin/state ----

// Mirrors of the API's results (api/methods.go), decoded from its JSON.
type (
	connInfo struct {
		Client     string   `json:"client"`
		User       string   `json:"user"`
		Nick       string   `json:"nick"`
		Rooms      []string `json:"rooms"`
		Transport  string   `json:"transport"`
		RemoteAddr string   `json:"remote_addr"`
		Node       string   `json:"node"`
	}
	roomInfo struct {
		Room  string `json:"room"`
		Count int    `json:"count"`
	}
	nodeInfo struct {
		Node        string  `json:"node"`
		Version     string  `json:"version"`
		Uptime      float64 `json:"uptime"`
		Connections int     `json:"connections"`
		Rooms       int     `json:"rooms"`
	}
)

// state is the answer of GET /admin/state.
type state struct {
	// Time is the server's clock (Unix milliseconds) when the counters
	// were read: the page divides counter deltas by its deltas.
	Time int64 `json:"time"`
	// API is false when no server API is connected (SetAPI).
	API bool `json:"api"`
	// Actions is true when a key is configured, so actions may be allowed.
	Actions bool `json:"actions"`
	// Errors lists the API calls that failed; their lists are empty.
	Errors []string `json:"errors"`

	Nodes []nodeInfo `json:"nodes"`
	// Rooms are the busiest rooms first, at most maxListed of RoomsTotal.
	Rooms      []roomInfo `json:"rooms"`
	RoomsTotal int        `json:"rooms_total"`
	// Connections are those matching the filter, sorted by id, at most
	// maxListed of ConnectionsMatched; ConnectionsTotal counts all.
	Connections        []connInfo `json:"connections"`
	ConnectionsMatched int        `json:"connections_matched"`
	ConnectionsTotal   int        `json:"connections_total"`

	// Counters are this node's cumulative counters (see counterNames),
	// absent without metrics.
	Counters map[string]float64 `json:"counters,omitempty"`
}

// counterNames maps the counters the page turns into rates to their keys
// in state.Counters.
var counterNames = map[string]string{
	"chatgate_messages_received_total":  "messages_received",
	"chatgate_messages_delivered_total": "messages_delivered",
	"chatgate_received_bytes_total":     "received_bytes",
	"chatgate_sent_bytes_total":         "sent_bytes",
	"chatgate_connections_opened_total": "connections_opened",
}

func (a *Admin) state(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if len(q) > maxFilter {
		q = q[:maxFilter]
	}
	st := state{
		Errors:      []string{},
		Nodes:       []nodeInfo{},
		Rooms:       []roomInfo{},
		Connections: []connInfo{},
		Counters:    a.counters(),
	}
	st.Time = time.Now().UnixMilli()
	if src := a.api.Load(); src != nil {
		st.API, st.Actions = true, src.set
		ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
		defer cancel()
		var info struct {
			Nodes []nodeInfo `json:"nodes"`
		}
		var rooms struct {
			Rooms []roomInfo `json:"rooms"`
		}
		var conns struct {
			Connections []connInfo `json:"connections"`
		}
		for _, c := range []struct {
			method string
			params string
			out    any
		}{{"info", "{}", &info}, {"rooms", `{"limit":1000}`, &rooms}, {"connections", "{}", &conns}} {
			if err := read(ctx, src.api, c.method, c.params, c.out); err != nil {
				st.Errors = append(st.Errors, c.method+": "+err.Error())
			}
		}
		if info.Nodes != nil {
			st.Nodes = info.Nodes
		}
		st.RoomsTotal = len(rooms.Rooms)
		slices.SortFunc(rooms.Rooms, func(x, y roomInfo) int {
			if x.Count != y.Count {
				return y.Count - x.Count
			}
			return strings.Compare(x.Room, y.Room)
		})
		st.Rooms = append(st.Rooms, rooms.Rooms[:min(len(rooms.Rooms), maxListed)]...)
		st.ConnectionsTotal = len(conns.Connections)
		slices.SortFunc(conns.Connections, func(x, y connInfo) int { return strings.Compare(x.Client, y.Client) })
		for _, c := range conns.Connections {
			if !c.matches(q) {
				continue
			}
			st.ConnectionsMatched++
			if len(st.Connections) < maxListed {
				if c.Rooms == nil {
					c.Rooms = []string{}
				}
				st.Connections = append(st.Connections, c)
			}
		}
	}
	writeJSON(w, http.StatusOK, st)
}

// read runs a read-only API method with params and decodes its result
// into out. Rooms come in pages; the page asks for the largest one (1000),
// which is what it shows.
func read(ctx context.Context, s API, method, params string, out any) error {
	if !api.ReadOnly(method) {
		return errors.New("not a read-only method") // the page reads without a key
	}
	res, apiErr := s.Do(ctx, method, []byte(params))
	if apiErr != nil {
		return apiErr
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// matches reports whether q is a case-insensitive substring of the
// connection's id, user, nickname or one of its rooms. An empty q matches.
func (c *connInfo) matches(q string) bool {
	if q == "" {
		return true
	}
	q = strings.ToLower(q)
	for _, s := range append([]string{c.Client, c.User, c.Nick}, c.Rooms...) {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// counters reads counterNames from the metrics registry, or returns nil
// without metrics. Gathering the registry is what a scrape does; the page
// asks every few seconds, far less often than it matters.
func (a *Admin) counters() map[string]float64 {
	reg := a.m.Registry()
	if reg == nil {
		return nil
	}
	fams, err := reg.Gather()
	if err != nil {
		a.log.Debug("admin: gathering metrics", "err", err) // partial: use what came back
	}
	out := make(map[string]float64, len(counterNames))
	for _, mf := range fams {
		key, ok := counterNames[mf.GetName()]
		if !ok {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		out[key] = sum
	}
	return out
}

// ---- actions ----

// actionError is an action's error answer, shaped as the API's.
type actionError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

var (
	errNoAPI       = &actionError{http.StatusServiceUnavailable, "unavailable", "API unavailable: start the gateway with -api-addr"}
	errNoKey       = &actionError{http.StatusForbidden, "forbidden", "set -api-key to enable actions"}
	errBadKey      = &actionError{http.StatusUnauthorized, api.CodeUnauthorized, "missing or invalid API key"}
	errContentType = &actionError{http.StatusUnsupportedMediaType, api.CodeBadRequest, "Content-Type must be application/json"}
)

// authorize returns the API for an action whose request carries the
// configured key, or the error to answer.
func (a *Admin) authorize(r *http.Request) (API, *actionError) {
	src := a.api.Load()
	switch {
	case src == nil:
		return nil, errNoAPI
	case !src.set:
		return nil, errNoKey
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "apikey ")
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], src.key[:]) != 1 || !ok {
		a.log.Info("admin: action refused: wrong API key", "path", r.URL.Path, "remote", r.RemoteAddr)
		return nil, errBadKey
	}
	return src.api, nil
}

// authCheck answers POST /admin/auth: 204 when the request's key would
// allow actions, so that the page can check a key as it is entered.
func (a *Admin) authCheck(w http.ResponseWriter, r *http.Request) {
	if _, e := a.authorize(r); e != nil {
		writeActionError(w, e)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// disconnect answers POST /admin/disconnect {"client":"<id>"}: the API's
// disconnect (close 4000, "disconnected by server"), on whichever node
// holds the connection. Its answer is the API's result.
func (a *Admin) disconnect(w http.ResponseWriter, r *http.Request) {
	s, e := a.authorize(r)
	if e != nil {
		writeActionError(w, e)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !strings.HasPrefix(ct, "application/json;") {
		writeActionError(w, errContentType)
		return
	}
	var p struct {
		Client string `json:"client"`
	}
	d := json.NewDecoder(io.LimitReader(r.Body, maxActionBody))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil || p.Client == "" {
		writeActionError(w, &actionError{http.StatusBadRequest, api.CodeBadRequest, `the body must be {"client":"<connection id>"}`})
		return
	}
	params, _ := json.Marshal(p)
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	res, apiErr := s.Do(ctx, "disconnect", params)
	if apiErr != nil {
		status := apiErr.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		writeActionError(w, &actionError{status, apiErr.Code, apiErr.Message})
		return
	}
	a.log.Info("admin: disconnect", "client", p.Client, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, struct {
		Result any `json:"result"`
	}{res})
}

func writeActionError(w http.ResponseWriter, e *actionError) {
	writeJSON(w, e.Status, struct {
		Error *actionError `json:"error"`
	}{e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the answer failed"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
