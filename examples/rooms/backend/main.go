// Command backend is the application backend of the rooms example: the
// Socket.IO rooms-chat tutorial ("Zoom clone") moved over to chatgate.
//
// The tutorial's server is a Node.js program holding every socket; here
// chatgate holds the sockets and this program only answers what the
// gateway asks (docs/backend.md):
//
//   - POST /chatgate/event (the gateway's -proxy-event-url): the
//     tutorial's io.on("connection") handlers, enter_room, new_message and
//     nickname, each answered with commands for the gateway and the
//     acknowledgement (the tutorial's done()).
//   - POST /chatgate/disconnect (-proxy-disconnect-url): the tutorial's
//     "disconnecting"/"disconnect" handlers: "bye" to each room the closed
//     connection was in and "room_change" to everyone, through the
//     gateway's server API (package apiclient).
//
// It also serves the browser front end (examples/rooms/public) and
// /config.js, which tells the page the gateway's URL. The page loads
// socket.io-client as the tutorial's does, <script
// src="/socket.io/socket.io.js">, from its own origin: the backend forwards
// GET and HEAD of the bundle's files (/socket.io/socket.io.js, .min.js,
// .esm.min.js, .msgpack.min.js and their maps) to the gateway, which
// serves the official bundle (docs/socketio.md, "The client bundle"), as
// an app behind one nginx origin would. The backend keeps no copy.
//
// Run it with scripts/example-rooms.sh, or by hand:
//
//	go run ./examples/rooms/backend -root examples/rooms \
//	    -gateway-url http://127.0.0.1:8080 -api-url http://127.0.0.1:9091
//
// with a gateway started from the repository root after
// `npm ci --prefix sioclient`, so that its default -sio-client-dir finds
// the bundle.
//
// Secrets come from the environment: CHATGATE_API_KEY (the gateway's
// -api-key) and CHATGATE_PROXY_SECRET (the gateway's -proxy-secret; when
// set, every request from the gateway must carry a valid
// X-Chatgate-Signature).
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/chatgate/chatgate/apiclient"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "listen address of the backend (the page and the gateway's -proxy-*-url)")
	gatewayURL := fs.String("gateway-url", "http://127.0.0.1:8080", "the gateway's public URL, as the browser reaches it (the page's io(url)); the backend fetches /socket.io/socket.io.js from its origin too")
	apiURL := fs.String("api-url", "http://127.0.0.1:9091", "the gateway's server API (-api-addr)")
	root := fs.String("root", "", "directory holding public/ (default: . or examples/rooms, whichever has public/index.html)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	dir, err := findRoot(*root)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	a := newApp(apiclient.New(*apiURL, os.Getenv("CHATGATE_API_KEY")), os.Getenv("CHATGATE_PROXY_SECRET"), log)
	defer a.close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	h, err := a.routes(dir, *gatewayURL)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	// The line scripts and tests wait for: the address actually bound.
	log.Info("backend listening", "url", "http://"+ln.Addr().String()+"/", "gateway", *gatewayURL,
		"api", *apiURL, "signed", a.secret != nil)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// findRoot returns the directory holding public/index.html.
func findRoot(root string) (string, error) {
	candidates := []string{root}
	if root == "" {
		candidates = []string{".", filepath.Join("examples", "rooms")}
	}
	for _, dir := range candidates {
		if _, err := os.Stat(filepath.Join(dir, "public", "index.html")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no public/index.html in %s: give -root (the examples/rooms directory)", strings.Join(candidates, " or "))
}

// clientFiles are the names the gateway serves the socket.io-client bundle
// under, below /socket.io/ (package sioclient's Files; a test keeps the
// two lists equal). The backend forwards exactly these to the gateway.
var clientFiles = []string{
	"socket.io.js",
	"socket.io.js.map",
	"socket.io.min.js",
	"socket.io.min.js.map",
	"socket.io.esm.min.js",
	"socket.io.esm.min.js.map",
	"socket.io.msgpack.min.js",
	"socket.io.msgpack.min.js.map",
}

// The gateway's limits a command must respect (docs/backend.md): a room
// name is 1 to 128 bytes of UTF-8, a nickname 1 to 32 characters.
const (
	maxRoom = 128
	maxNick = 32
	// anon is the tutorial's nickname of a socket that set none.
	anon = "Anon"
	// callTimeout bounds the API calls of one request; it is shorter than
	// the gateway's -proxy-timeout (5 s by default).
	callTimeout = 4 * time.Second
	// maxBody bounds a request from the gateway.
	maxBody = 1 << 20
)

// app is the backend's state: the API client and the nicknames of the
// connections (the gateway's disconnect report carries no nickname, and
// the tutorial's "bye" names who left).
type app struct {
	api    *apiclient.Client
	secret []byte
	log    *slog.Logger

	mu    sync.Mutex
	nicks map[string]string // connection id → nickname, until it closes

	disc     chan []closed // disconnect batches, handled in order by one goroutine
	wg       sync.WaitGroup
	closeOne sync.Once
}

func newApp(api *apiclient.Client, secret string, log *slog.Logger) *app {
	a := &app{api: api, log: log, nicks: map[string]string{}, disc: make(chan []closed, 1024)}
	if secret != "" {
		a.secret = []byte(secret)
	}
	a.wg.Add(1)
	go a.disconnects()
	return a
}

// close stops the disconnect worker once the batches queued are handled.
func (a *app) close() {
	a.closeOne.Do(func() { close(a.disc) })
	a.wg.Wait()
}

// routes returns the backend's handler. gatewayURL is the -gateway-url
// flag: given to the page as is, and the origin the client bundle is
// fetched from.
func (a *app) routes(dir, gatewayURL string) (http.Handler, error) {
	bundle, err := a.bundleProxy(gatewayURL)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /chatgate/event", a.verified(a.event))
	mux.HandleFunc("POST /chatgate/disconnect", a.verified(a.disconnect))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /config.js", func(w http.ResponseWriter, _ *http.Request) {
		u, _ := json.Marshal(gatewayURL)
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "// Written by the example backend (-gateway-url).\nwindow.CHATGATE_URL = %s;\n", u)
	})
	// The page's <script src="/socket.io/socket.io.js">, as in the
	// tutorial: the gateway's bundle, through this origin. ("GET" patterns
	// match HEAD too; other methods get 405, other names under /socket.io/
	// 404 from the file server's root, which has no such directory.)
	for _, name := range clientFiles {
		mux.Handle("GET /socket.io/"+name, bundle)
	}
	mux.Handle("GET /", http.FileServer(http.Dir(filepath.Join(dir, "public"))))
	return mux, nil
}

// bundleProxy returns the reverse proxy that forwards a request for the
// client bundle to the gateway's origin (scheme and host of gatewayURL).
// The path stays the request's: a path in gatewayURL is the page's
// Socket.IO namespace (io(url)), not a prefix, and the gateway serves the
// bundle at /socket.io/ in any case. Request and answer headers pass
// through, so the browser revalidates against the gateway's ETag
// (If-None-Match, 304) and gets its gzip body; the hop-by-hop ones are
// dropped and X-Forwarded-For/-Host/-Proto added, as nginx's usual
// proxy_set_header lines do.
func (a *app) bundleProxy(gatewayURL string) (http.Handler, error) {
	u, err := url.Parse(gatewayURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-gateway-url %q: want http://host:port or https://host[:port]", gatewayURL)
	}
	origin := &url.URL{Scheme: u.Scheme, Host: u.Host}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Bounded, as every other call to the gateway is: a hung gateway
	// costs the page a 502, not a stuck script.
	transport.ResponseHeaderTimeout = callTimeout
	// The browser's Accept-Encoding decides, as through nginx: without
	// this the transport would ask for gzip itself and unpack it here.
	transport.DisableCompression = true
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(origin)
			r.SetXForwarded()
		},
		Transport: transport,
		ErrorLog:  slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			a.log.Warn("the gateway did not answer for the client bundle", "path", r.URL.Path, "gateway", origin.String(), "err", err)
			http.Error(w, "the chat gateway is unreachable", http.StatusBadGateway)
		},
	}, nil
}

// verified reads the request body and, when the backend has a secret,
// refuses it (401) unless X-Chatgate-Signature is the HMAC-SHA256 of the
// body under the secret, as the gateway computes it (proxy.Sign).
func (a *app) verified(h func(w http.ResponseWriter, r *http.Request, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		if a.secret != nil && !validSignature(a.secret, body, r.Header.Get("X-Chatgate-Signature")) {
			a.log.Warn("request with a bad signature refused", "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		h(w, r, body)
	}
}

// validSignature reports whether header is "sha256=<hex HMAC-SHA256 of
// body under secret>". The comparison is in constant time.
func validSignature(secret, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sum, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(sum, m.Sum(nil))
}

// ---- application events (-proxy-event-url) ----

// eventRequest is what the gateway POSTs for an application event.
type eventRequest struct {
	Client    string            `json:"client"`
	User      string            `json:"user"`
	Nick      string            `json:"nick"`
	Data      json.RawMessage   `json:"data"`
	Rooms     []string          `json:"rooms"`
	Namespace string            `json:"namespace"`
	Event     string            `json:"event"`
	Args      []json.RawMessage `json:"args"`
}

// command is one command of an answer; exactly one field is set.
type command struct {
	Join string   `json:"join,omitempty"`
	Emit *emit    `json:"emit,omitempty"`
	Set  *setNick `json:"set,omitempty"`
}

type emit struct {
	Event      string `json:"event"`
	Args       []any  `json:"args"`
	To         target `json:"to"`
	ExceptSelf bool   `json:"except_self,omitempty"`
}

type target struct {
	Room string `json:"room,omitempty"`
	All  bool   `json:"all,omitempty"`
}

type setNick struct {
	Nick string `json:"nick"`
}

// answer is the envelope of an answer to the gateway.
type answer struct {
	Result *result   `json:"result,omitempty"`
	Error  *apiError `json:"error,omitempty"`
}

type result struct {
	Ack      []any     `json:"ack"`
	Commands []command `json:"commands,omitempty"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// refusal is an error the client gets in its acknowledgement,
// {error: {code, message}}, passed through by the gateway unchanged.
type refusal struct{ code, message string }

func (r *refusal) Error() string { return r.code + ": " + r.message }

func refuse(code, format string, args ...any) *refusal {
	return &refusal{code, fmt.Sprintf(format, args...)}
}

func (a *app) event(w http.ResponseWriter, r *http.Request, body []byte) {
	var req eventRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Client == "" || req.Event == "" {
		http.Error(w, "not an event request", http.StatusBadRequest)
		return
	}
	a.remember(req.Client, req.Nick)
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	var (
		res *result
		err error
	)
	switch req.Event {
	case "enter_room":
		res, err = a.enterRoom(ctx, &req)
	case "new_message":
		res, err = a.newMessage(&req)
	case "nickname":
		res, err = a.nickname(&req)
	default:
		err = refuse("unknown_event", "no handler for the event %q", req.Event)
	}
	var out answer
	var rf *refusal
	switch {
	case err == nil:
		out.Result = res
	case errors.As(err, &rf):
		out.Error = &apiError{rf.code, rf.message}
	default:
		a.log.Error("event failed", "event", req.Event, "client", req.Client, "err", err)
		out.Error = &apiError{"unavailable", "the chat service is unavailable, try again"}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// enterRoom is the tutorial's
//
//	socket.on("enter_room", (roomName, done) => {
//	  socket.join(roomName);
//	  done();
//	  socket.to(roomName).emit("welcome", socket.nickname, countRoom(roomName));
//	  wsServer.sockets.emit("room_change", publicRooms());
//	});
//
// The gateway runs the commands in order and then acknowledges, so the
// caller gets its room_change just before its done() runs.
func (a *app) enterRoom(ctx context.Context, req *eventRequest) (*result, error) {
	name, ok := stringArg(req.Args, 0)
	if !ok || name == "" || len(name) > maxRoom || !utf8.ValidString(name) {
		return nil, refuse("invalid_room", "a room name is 1 to %d bytes of text", maxRoom)
	}
	// countRoom: the members now, plus the caller, whom the join command
	// adds before the welcome goes out.
	members, err := a.api.Members(ctx, name)
	if err != nil {
		return nil, err
	}
	count := 0
	for _, m := range members {
		if m.Client != req.Client {
			count++
		}
	}
	count++
	rooms, err := a.publicRooms(ctx, name, nil)
	if err != nil {
		return nil, err
	}
	return &result{Ack: []any{}, Commands: []command{
		{Join: name},
		{Emit: &emit{Event: "welcome", Args: []any{nickOf(req.Nick), count}, To: target{Room: name}, ExceptSelf: true}},
		{Emit: &emit{Event: "room_change", Args: []any{rooms}, To: target{All: true}}},
	}}, nil
}

// newMessage is the tutorial's
//
//	socket.on("new_message", (msg, room, done) => {
//	  socket.to(room).emit("new_message", `${socket.nickname}: ${msg}`);
//	  done();
//	});
//
// with one check the tutorial leaves out: the sender must be in the room.
func (a *app) newMessage(req *eventRequest) (*result, error) {
	msg, ok1 := stringArg(req.Args, 0)
	room, ok2 := stringArg(req.Args, 1)
	if !ok1 || !ok2 {
		return nil, refuse("bad_request", "new_message takes a message and a room, both strings")
	}
	if !slices.Contains(req.Rooms, room) {
		return nil, refuse("not_member", "not a member of this room")
	}
	return &result{Ack: []any{}, Commands: []command{
		{Emit: &emit{Event: "new_message", Args: []any{nickOf(req.Nick) + ": " + msg}, To: target{Room: room}, ExceptSelf: true}},
	}}, nil
}

// nickname is the tutorial's
//
//	socket.on("nickname", (nickname) => (socket["nickname"] = nickname));
//
// The nickname is kept by the gateway (the "nick" of the following
// requests, and of the server API's member lists) and here, for "bye".
func (a *app) nickname(req *eventRequest) (*result, error) {
	nick, ok := stringArg(req.Args, 0)
	if n := utf8.RuneCountInString(nick); !ok || n < 1 || n > maxNick || !utf8.ValidString(nick) {
		return nil, refuse("invalid_nick", "a nickname is 1 to %d characters", maxNick)
	}
	a.remember(req.Client, nick)
	return &result{Ack: []any{}, Commands: []command{{Set: &setNick{Nick: nick}}}}, nil
}

// stringArg returns args[i] if it is a JSON string.
func stringArg(args []json.RawMessage, i int) (string, bool) {
	if i >= len(args) {
		return "", false
	}
	var s string
	if err := json.Unmarshal(args[i], &s); err != nil {
		return "", false
	}
	return s, true
}

func nickOf(nick string) string {
	if nick == "" {
		return anon
	}
	return nick
}

// remember keeps the nickname of a connection for its "bye".
func (a *app) remember(client, nick string) {
	if nick == "" {
		return
	}
	a.mu.Lock()
	a.nicks[client] = nick
	a.mu.Unlock()
}

// publicRooms is the tutorial's publicRooms(): the names of the rooms
// with members, sorted, from the server API. with is a room about to be
// joined (listed even if it has no member yet); empty lists rooms known
// to have none left (the gateway's answer may predate a leave).
func (a *app) publicRooms(ctx context.Context, with string, empty map[string]bool) ([]string, error) {
	list, err := a.api.Rooms(ctx, "")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(list)+1)
	for _, r := range list {
		if !empty[r.Room] {
			names = append(names, r.Room)
		}
	}
	if with != "" && !slices.Contains(names, with) {
		names = append(names, with)
		slices.Sort(names)
	}
	return names, nil
}

// ---- closed connections (-proxy-disconnect-url) ----

// closed is one connection of the gateway's disconnect report.
type closed struct {
	Client string   `json:"client"`
	User   string   `json:"user"`
	Rooms  []string `json:"rooms"`
	Reason string   `json:"reason"`
}

// disconnect takes a batch of closed connections and answers at once: the
// report is fire and forget, and the gateway sends the next batch only
// after this answer. The batch is handled by one goroutine, in order.
func (a *app) disconnect(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req struct {
		Disconnects []closed `json:"disconnects"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, "not a disconnect report", http.StatusBadRequest)
		return
	}
	select {
	case a.disc <- req.Disconnects:
	default:
		a.log.Error("disconnect queue full: batch dropped", "connections", len(req.Disconnects))
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"result":{}}`)
}

func (a *app) disconnects() {
	defer a.wg.Done()
	for batch := range a.disc {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.goodbye(ctx, batch); err != nil {
			a.log.Error("disconnect report", "connections", len(batch), "err", err)
		}
		cancel()
	}
}

// goodbye is the tutorial's
//
//	socket.on("disconnecting", () => {
//	  socket.rooms.forEach((room) => socket.to(room).emit("bye", socket.nickname, countRoom(room) - 1));
//	});
//	socket.on("disconnect", () => wsServer.sockets.emit("room_change", publicRooms()));
//
// for a batch of closed connections, through the server API:
//
//   - "bye" is an API publish to each room with the event "bye". An
//     event sent through the API has exactly one argument, so "bye"
//     carries the nickname only, not the tutorial's count.
//   - "room_change" to everyone: the API has no "every connection"
//     target and a broadcast reaches only the members of rooms, not the
//     connections on the room list, so it lists the connections and
//     sends each one the event, in batches of 1000. That costs one API
//     call per 1000 connections, so it is done only when a closed
//     connection was in a room (otherwise the list did not change).
func (a *app) goodbye(ctx context.Context, batch []closed) error {
	gone := map[string]bool{}
	touched := map[string]bool{}
	for _, c := range batch {
		gone[c.Client] = true
		for _, room := range c.Rooms {
			touched[room] = true
		}
	}
	var errs []error
	for _, c := range batch {
		a.mu.Lock()
		nick := nickOf(a.nicks[c.Client])
		delete(a.nicks, c.Client)
		a.mu.Unlock()
		for _, room := range c.Rooms {
			if err := a.api.Publish(ctx, room, nick, apiclient.WithEvent("bye")); err != nil {
				errs = append(errs, fmt.Errorf("bye to %q: %w", room, err))
			}
		}
	}
	if len(touched) == 0 {
		return errors.Join(errs...)
	}
	// The rooms the closed connections left empty. The gateway reports a
	// close before it has taken the connection out of its rooms, so the
	// API's counts could in principle still include it: the members are
	// counted without the closed connections.
	empty := map[string]bool{}
	for room := range touched {
		members, err := a.api.Members(ctx, room)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		if !slices.ContainsFunc(members, func(m apiclient.Member) bool { return !gone[m.Client] }) {
			empty[room] = true
		}
	}
	rooms, err := a.publicRooms(ctx, "", empty)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	conns, err := a.api.Connections(ctx, "")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var cmds []apiclient.Command
	flush := func() {
		if len(cmds) == 0 {
			return
		}
		replies, err := a.api.Batch(ctx, cmds...)
		if err != nil {
			errs = append(errs, fmt.Errorf("room_change: %w", err))
		}
		for _, r := range replies {
			if r.Error != nil {
				errs = append(errs, fmt.Errorf("room_change: %w", r.Error))
			}
		}
		cmds = cmds[:0]
	}
	for _, c := range conns {
		if gone[c.Client] {
			continue
		}
		cmds = append(cmds, apiclient.Command{Method: "send", Params: apiclient.SendParams{
			Target: apiclient.ClientTarget(c.Client), Data: rooms, Event: "room_change"}})
		if len(cmds) == 1000 {
			flush()
		}
	}
	flush()
	return errors.Join(errs...)
}
