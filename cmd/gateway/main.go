// Command gateway runs chatgate: a WebSocket chat gateway on gnet event
// loops. See README.md and docs/protocol.md.
//
// Every flag has an environment fallback, CHATGATE_ followed by the flag's
// name in upper case with dashes as underscores (-max-message →
// CHATGATE_MAX_MESSAGE). A flag given on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/chatgate/chatgate/admin"
	"github.com/chatgate/chatgate/api"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/native"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/clientip"
	"github.com/chatgate/chatgate/cluster"
	"github.com/chatgate/chatgate/engineio"
	"github.com/chatgate/chatgate/history"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/metrics"
	"github.com/chatgate/chatgate/netpoll"
	"github.com/chatgate/chatgate/proxy"
	"github.com/chatgate/chatgate/rooms"
	"github.com/chatgate/chatgate/sioclient"
	"github.com/chatgate/chatgate/web"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// version is the gateway's version, reported by the server API's info.
var version = "0.2.0-dev"

type options struct {
	net            netpoll.Config
	eio            engineio.Config
	trustedProxies string
	proxyProtocol  string
	presence       bool
	node           string
	drainTimeout   time.Duration
	drainDelay     time.Duration
	adminAddr      string
	natsURL        string
	natsAuth       cluster.Config // -nats-* credentials and TLS
	clusterKey     string
	maxRooms       int
	jwtSecret      string
	jwtPublicKey   string
	allowedOrigins string
	logLevel       string
	logFormat      string
	apiAddr        string
	apiKey         string
	proxy          proxy.Config
	proxyHeaders   string
	maxPerUser     int
	roomNFC        bool
	maxJSONDepth   int
	roomsList      chat.RoomsList
	history        history.Config
	recoveryWindow time.Duration
	serveClient    bool   // -sio-serve-client
	clientDir      string // -sio-client-dir
	sioNamespaces  string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.net.Addr, "addr", netpoll.DefaultAddr, "listen address (host:port)")
	fs.IntVar(&o.net.Loops, "loops", 0, "event loops (0 = one per CPU core)")
	fs.IntVar(&o.net.MaxMessage, "max-message", netpoll.DefaultMaxMessage, "largest WebSocket message accepted, in bytes (close 1009 above)")
	fs.DurationVar(&o.net.PingInterval, "ping-interval", netpoll.DefaultPingInterval, "ping a connection after it has been silent this long")
	fs.DurationVar(&o.net.PingTimeout, "ping-timeout", netpoll.DefaultPingTimeout, "close a pinged connection still silent after this long")
	fs.DurationVar(&o.net.HandshakeTimeout, "handshake-timeout", netpoll.DefaultHandshakeTimeout, "time allowed from accept to a complete HTTP request head")
	fs.IntVar(&o.net.MaxPending, "max-pending", netpoll.DefaultMaxPending, "unsent bytes allowed per connection before it is closed as a slow consumer (1008)")
	fs.Int64Var(&o.net.MaxPendingTotal, "max-pending-total", 0, "unsent bytes allowed over all connections of the node; past it the largest backlogs are closed as slow consumers first (0 = an eighth of memory or of the cgroup limit; -1 = off)")
	fs.BoolVar(&o.net.Echo, "echo", false, "serve /echo, which sends every message back (conformance tests)")
	fs.BoolVar(&o.net.Compression, "compression", false, "accept WebSocket permessage-deflate (RFC 7692, no context takeover) from clients that offer it; a broadcast is compressed once for all such members")
	fs.DurationVar(&o.eio.PingInterval, "sio-ping-interval", engineio.DefaultPingInterval, "Socket.IO: interval of the server's Engine.IO pings")
	fs.DurationVar(&o.eio.PingTimeout, "sio-ping-timeout", engineio.DefaultPingTimeout, "Socket.IO: close a client whose pong is this late")
	fs.DurationVar(&o.eio.ConnectTimeout, "sio-connect-timeout", engineio.DefaultConnectTimeout, "Socket.IO: close a client that has not connected a namespace by then")
	fs.IntVar(&o.eio.MaxForwarded, "sio-max-forwarded", engineio.DefaultMaxForwarded, "Socket.IO long-polling in cluster mode: requests for other nodes' sessions forwarded at once, held GETs included (503 past it)")
	fs.IntVar(&o.eio.MaxSessionsPerConnection, "max-sessions-per-connection", engineio.DefaultMaxSessionsPerConnection, "Socket.IO long-polling: sessions one keep-alive connection may have opened and still open (429 above; a trusted proxy's connections are not bounded; -1 = unlimited)")
	fs.StringVar(&o.eio.CORSOrigins, "sio-cors-origins", "", "Socket.IO long-polling: browser origins allowed cross-site, comma-separated (\"*\" = any; empty = same-origin only)")
	fs.BoolVar(&o.serveClient, "sio-serve-client", true, "Socket.IO: serve the socket.io-client browser bundle at /socket.io/socket.io.js (and .min.js, .esm.min.js, .msgpack.min.js, .map)")
	fs.StringVar(&o.clientDir, "sio-client-dir", sioclient.DefaultDir, "Socket.IO: directory of the bundle's files, the dist/ folder of the pinned socket.io-client npm package (install: npm ci --prefix sioclient)")
	fs.StringVar(&o.sioNamespaces, "sio-namespaces", "/", "Socket.IO: namespaces served in chat mode, comma-separated (\"/\" is always served; with -proxy-connect-url the backend decides any namespace)")
	fs.BoolVar(&o.eio.Conformance, "sio-conformance", false, "Socket.IO: behave as the official protocol test suites expect instead of serving chat (testing only)")
	fs.BoolVar(&o.eio.AllowEIO3, "sio-allow-eio3", false, "Socket.IO: also serve socket.io-client 2.x (Engine.IO v3, EIO=3), as socket.io's allowEIO3")
	fs.StringVar(&o.trustedProxies, "trusted-proxies", "", "CIDRs or IPs of reverse proxies whose Forwarded / X-Forwarded-For / X-Real-IP headers are believed (default: none)")
	fs.StringVar(&o.proxyProtocol, "proxy-protocol", "off", "PROXY protocol v1/v2 header on incoming connections: off, optional or required")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "", "HS256 secret for JWT authentication (at least 32 bytes; prefer CHATGATE_JWT_SECRET over the command line)")
	fs.StringVar(&o.jwtPublicKey, "jwt-public-key", "", "PEM file with the RSA or ECDSA P-256 public key for RS256/ES256 JWT authentication")
	fs.BoolVar(&o.net.AuthRequired, "auth-required", false, "refuse clients without a valid token (HTTP 401 / Socket.IO CONNECT_ERROR); needs -jwt-secret or -jwt-public-key")
	fs.StringVar(&o.allowedOrigins, "allowed-origins", "", "browser origins allowed to connect, comma-separated (exact, or https://*.example.com); empty = any")
	fs.IntVar(&o.net.Limits.MaxConnections, "max-connections", limit.DefaultMaxConnections, "open connections allowed in all (503 above; -1 = unlimited)")
	fs.IntVar(&o.net.Limits.MaxConnectionsPerIP, "max-connections-per-ip", limit.DefaultMaxConnectionsPerIP, "sessions allowed per client address (429 above; loopback is not counted; -1 = unlimited)")
	fs.Float64Var(&o.net.Limits.MessagesPerSecond, "rate-messages", limit.DefaultMessagesPerSecond, "messages per second per connection (rate_limited above; -1 = unlimited)")
	fs.IntVar(&o.net.Limits.MessageBurst, "rate-burst", 0, "messages allowed at once above -rate-messages (0 = twice the rate)")
	fs.IntVar(&o.net.Limits.BytesPerSecond, "rate-bytes", limit.DefaultBytesPerSecond, "inbound bytes per second per connection (-1 = unlimited)")
	fs.Float64Var(&o.net.Limits.HandshakeRate, "handshake-rate", 0, "new sessions per second on this node: WebSocket upgrades and Engine.IO handshakes (503 with Retry-After above; 0 = unlimited)")
	fs.IntVar(&o.net.Limits.HandshakeBurst, "handshake-burst", 0, "handshakes allowed at once above -handshake-rate (0 = one second's worth)")
	fs.IntVar(&o.maxRooms, "max-rooms", limit.DefaultMaxRoomsPerConnection, "rooms one connection may be in at once (too_many_rooms above; -1 = unlimited)")
	fs.Var(&o.roomsList, "rooms-list", "`mode` of a client's rooms list: permitted (default: the rooms its token's rooms claim allows, and its own), all, or none (always empty); the server API lists all")
	fs.IntVar(&o.net.MaxHeaderBytes, "max-header-bytes", netpoll.DefaultMaxHeaderBytes, "largest HTTP request head accepted (431 above)")
	fs.BoolVar(&o.presence, "presence", true, "send join/leave presence events to room members")
	fs.BoolVar(&o.roomNFC, "room-nfc", false, "normalise room names to Unicode NFC, so that composed and decomposed spellings name one room")
	fs.IntVar(&o.maxJSONDepth, "max-json-depth", chat.DefaultMaxJSONDepth, "nesting of arrays and objects allowed in a client's data and event arguments (bad_json deeper; -1 = unlimited)")
	fs.StringVar(&o.natsURL, "nats", "", "NATS server URL (e.g. nats://127.0.0.1:4222) turning cluster mode on; env CHATGATE_NATS_URL")
	fs.StringVar(&o.clusterKey, "cluster-key", "", "shared key (at least 32 bytes) signing every message between cluster nodes with HMAC-SHA256; nodes drop unsigned or forged ones (prefer CHATGATE_CLUSTER_KEY)")
	fs.StringVar(&o.natsAuth.User, "nats-user", "", "NATS user name (with -nats-password)")
	fs.StringVar(&o.natsAuth.Password, "nats-password", "", "NATS password (prefer CHATGATE_NATS_PASSWORD)")
	fs.StringVar(&o.natsAuth.Token, "nats-token", "", "NATS authentication token (prefer CHATGATE_NATS_TOKEN)")
	fs.StringVar(&o.natsAuth.NKeySeedFile, "nats-nkey", "", "file holding the NATS NKey user seed")
	fs.StringVar(&o.natsAuth.CredsFile, "nats-creds", "", "NATS credentials file (user JWT and seed)")
	fs.StringVar(&o.natsAuth.TLSCAFile, "nats-tls-ca", "", "PEM file of the CAs verifying the NATS server (turns TLS on)")
	fs.StringVar(&o.natsAuth.TLSCertFile, "nats-tls-cert", "", "PEM client certificate for NATS (with -nats-tls-key; turns TLS on)")
	fs.StringVar(&o.natsAuth.TLSKeyFile, "nats-tls-key", "", "PEM key of -nats-tls-cert")
	fs.StringVar(&o.node, "node", "", "node tag prefixed to connection ids (default: random)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long to wait for clients to close after close 1012")
	fs.DurationVar(&o.drainDelay, "drain-delay", 0, "on SIGINT/SIGTERM, how long /healthz and /readyz answer 503 while clients are still served, before they are closed (above the load balancer's check interval × fall)")
	fs.DurationVar(&o.net.DrainSpread, "drain-spread", 5*time.Second, "reconnect hint of the drain's close 1012: clients wait a random time up to this before reconnecting (0 = no hint)")
	fs.StringVar(&o.adminAddr, "admin-addr", admin.DefaultAddr, "admin listener for /metrics, /healthz, /readyz and /debug/pprof (empty = off); keep it private")
	fs.StringVar(&o.apiAddr, "api-addr", api.DefaultAddr, "server API listener (POST /api/<method>; empty = off); a non-loopback address needs -api-key")
	fs.StringVar(&o.apiKey, "api-key", "", "key the server API requires as \"Authorization: apikey <key>\" (prefer CHATGATE_API_KEY over the command line)")
	fs.IntVar(&o.maxPerUser, "max-connections-per-user", 0, "open connections allowed per user (token sub) across the cluster (429 / CONNECT_ERROR above; 0 = unlimited)")
	fs.StringVar(&o.proxy.ConnectURL, "proxy-connect-url", "", "backend URL asked before a client is welcomed (native: before the upgrade, 401 if refused; Socket.IO: before the CONNECT ack)")
	fs.StringVar(&o.proxyHeaders, "proxy-headers", "", "request headers passed to the connect call, comma-separated (e.g. Cookie,User-Agent)")
	fs.StringVar(&o.proxy.EventURL, "proxy-event-url", "", "backend URL for application events (Socket.IO events outside the built-in set, native rpc); empty = unknown_type")
	fs.StringVar(&o.proxy.PublishURL, "proxy-publish-url", "", "backend URL asked before a client's room message is delivered (allow, rewrite or refuse)")
	fs.StringVar(&o.proxy.JoinURL, "proxy-join-url", "", "backend URL asked before a client joins a room")
	fs.StringVar(&o.proxy.DisconnectURL, "proxy-disconnect-url", "", "backend URL told of closed connections, in batches (fire and forget)")
	fs.StringVar(&o.proxy.RefreshURL, "proxy-refresh-url", "", "backend URL asked when a connection's token expires, instead of closing it (answer expire_at to extend)")
	fs.IntVar(&o.proxy.Concurrency, "proxy-concurrency", proxy.DefaultConcurrency, "backend calls in flight at most")
	fs.DurationVar(&o.proxy.Timeout, "proxy-timeout", proxy.DefaultTimeout, "time a backend call may take (backend_timeout after)")
	fs.StringVar(&o.proxy.Secret, "proxy-secret", "", "HMAC-SHA256 key signing every backend request body (X-Chatgate-Signature; prefer CHATGATE_PROXY_SECRET)")
	fs.IntVar(&o.history.Size, "history-size", DefaultHistorySize, "room messages kept per room for history requests and recovery (0 = history off)")
	fs.DurationVar(&o.history.TTL, "history-ttl", DefaultHistoryTTL, "how long a room message is kept in the history (0 = until -history-size or -history-memory push it out)")
	fs.Int64Var(&o.history.Memory, "history-memory", DefaultHistoryMemory, "bytes of room messages kept in all, all rooms together; the oldest go first (0 = no total cap)")
	fs.DurationVar(&o.recoveryWindow, "recovery-window", DefaultRecoveryWindow, "how long a dropped client may resume its session (id, nick, rooms and missed messages) with its session token (0 = recovery off)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gateway [flags]\n\nchatgate WebSocket chat gateway. Every flag can also be set as CHATGATE_<FLAG>\n(upper case, dashes as underscores), e.g. CHATGATE_ADDR=:9000.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "CHATGATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if f.Name == "nats" {
			key = "CHATGATE_NATS_URL"
		}
		if v, ok := os.LookupEnv(key); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", key, v, err)
			}
		}
	})
	if envErr != nil {
		return o, envErr
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var err error
	if o.net.TrustedProxies, err = clientip.ParseTrusted(o.trustedProxies); err != nil {
		return o, fmt.Errorf("-trusted-proxies: %w", err)
	}
	if o.net.ProxyProtocol, err = netpoll.ParseProxyMode(o.proxyProtocol); err != nil {
		return o, fmt.Errorf("-proxy-protocol: %w", err)
	}
	if o.allowedOrigins != "" {
		if o.net.Origins, err = auth.ParseOrigins(o.allowedOrigins); err != nil {
			return o, fmt.Errorf("-allowed-origins: %w", err)
		}
	}
	if o.jwtSecret != "" || o.jwtPublicKey != "" {
		cfg := auth.Config{HS256Secret: []byte(o.jwtSecret)}
		if o.jwtPublicKey != "" {
			if o.jwtSecret != "" {
				return o, errors.New("give -jwt-secret or -jwt-public-key, not both")
			}
			pem, err := os.ReadFile(o.jwtPublicKey)
			if err != nil {
				return o, fmt.Errorf("-jwt-public-key: %w", err)
			}
			cfg = auth.Config{PublicKeyPEM: pem}
		}
		if o.net.Verifier, err = auth.NewVerifier(cfg); err != nil {
			return o, fmt.Errorf("JWT: %w", err)
		}
	}
	if o.net.AuthRequired && o.net.Verifier == nil {
		return o, errors.New("-auth-required needs -jwt-secret or -jwt-public-key")
	}
	if o.history.Size < 0 || o.history.TTL < 0 || o.history.Memory < 0 || o.recoveryWindow < 0 {
		return o, errors.New("-history-size, -history-ttl, -history-memory and -recovery-window must not be negative")
	}
	if o.history.Size > 0 && o.history.TTL > 0 && o.recoveryWindow > o.history.TTL {
		return o, fmt.Errorf("-recovery-window %v is longer than -history-ttl %v: messages a client missed could expire before it may resume", o.recoveryWindow, o.history.TTL)
	}
	if err := api.CheckAddr(o.apiAddr, o.apiKey); err != nil {
		return o, err
	}
	if o.eio.Namespaces, err = parseNamespaces(o.sioNamespaces); err != nil {
		return o, fmt.Errorf("-sio-namespaces: %w", err)
	}
	for _, h := range strings.Split(o.proxyHeaders, ",") {
		if h = strings.TrimSpace(h); h != "" {
			o.net.ProxyHeaders = append(o.net.ProxyHeaders, h)
		}
	}
	return o, nil
}

// parseNamespaces reads -sio-namespaces: the namespaces other than "/",
// each checked (chat.CheckNamespace), without duplicates.
func parseNamespaces(list string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" || n == chat.RootNamespace || slices.Contains(out, n) {
			continue
		}
		if err := chat.CheckNamespace(n); err != nil {
			return nil, fmt.Errorf("%q: %w", n, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// codecs returns the wire codecs in member-kind order, for
// chat.Config.Codecs: each transport's sessions are encoded by theirs.
// Socket.IO room events carry their history offset when recovery is on
// (offsets), as socket.io does; not for socket.io-client 2.x (Engine.IO
// v3), which cannot recover.
func codecs(offsets bool) []chat.Codec {
	return []chat.Codec{netpoll.KindNative: native.Codec{}, engineio.KindSocketIO: socketio.Codec{Offsets: offsets},
		engineio.KindSocketIOMsgpack: socketio.MsgpackCodec{JSON: socketio.Codec{Offsets: offsets}},
		engineio.KindSocketIOv3:      socketio.Codec{}}
}

// Defaults of the history and recovery flags.
const (
	DefaultHistorySize    = 100
	DefaultHistoryTTL     = 5 * time.Minute
	DefaultHistoryMemory  = 256 << 20
	DefaultRecoveryWindow = 2 * time.Minute
)

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

func run(args []string, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(o.logLevel, o.logFormat, stderr)
	if err != nil {
		return err
	}
	o.net.Logger = log
	if v := o.net.Verifier; v != nil {
		log.Info("authentication on", "algorithm", v.Algorithm(), "required", o.net.AuthRequired)
	}

	table := rooms.New(netpoll.Loops(o.net))
	node := o.node
	if node == "" {
		node = chat.RandomNodeTag()
	}
	var srv *netpoll.Server
	m := metrics.New(metrics.Options{
		Connections:  func() int { return srv.Stats().Connections },
		Sessions:     func() int { return srv.Stats().Sessions },
		Rooms:        table.Len,
		PendingBytes: func() int { return int(srv.PendingBytes()) },
		Logger:       log,
	})
	o.net.Metrics = m
	historyOn := o.history.Size > 0
	var recoveryKey []byte
	if o.clusterKey != "" {
		recoveryKey = []byte(o.clusterKey) // any node checks any node's session tokens
	}
	hub := chat.NewHub(chat.Config{
		Metrics:  m,
		MaxRooms: o.maxRooms,
		Codecs:   codecs(historyOn && o.recoveryWindow > 0),
		// History is set below (SetHistory): shared through the cluster's
		// JetStream stream, or this node's own.

		RecoveryWindow: o.recoveryWindow,
		RecoveryKey:    recoveryKey,
		MaxReplay:      o.net.MaxPending / 2,
		Presence:       o.presence,
		Node:           node,

		MaxConnectionsPerUser: o.maxPerUser,
		RoomNFC:               o.roomNFC,
		MaxJSONDepth:          o.maxJSONDepth,
		RoomsList:             o.roomsList,
		InlineAttachments:     socketio.InlineAttachments,
		Verifier:              o.net.Verifier,
		MaxData:               o.net.MaxMessage,
	}, table)
	if o.proxy.ConnectURL != "" || o.proxy.EventURL != "" || o.proxy.PublishURL != "" || o.proxy.JoinURL != "" || o.proxy.DisconnectURL != "" || o.proxy.RefreshURL != "" {
		o.proxy.Registry, o.proxy.Logger = m.Registry(), log
		backend, err := proxy.New(o.proxy)
		if err != nil {
			return err
		}
		defer backend.Close()
		hub.SetBackend(backend)
		log.Info("backend proxy on", "connect", o.proxy.ConnectURL != "", "event", o.proxy.EventURL != "", "publish", o.proxy.PublishURL != "",
			"join", o.proxy.JoinURL != "", "disconnect", o.proxy.DisconnectURL != "")
	}
	if nofile, ok := limit.OpenFiles(); ok {
		// Past the open-files limit accept fails and gnet stops the node:
		// refuse connections (503) a little before it instead.
		if n, capped := limit.CapByOpenFiles(o.net.Limits.MaxConnections, nofile); capped {
			log.Info("max-connections lowered to fit the open-files limit", "max_connections", n,
				"configured", o.net.Limits.MaxConnections, "open_files", nofile)
			o.net.Limits.MaxConnections = n
		}
	}
	srv = netpoll.New(o.net, hub)
	// The node-wide outbound budget, resolved (0 = off).
	log.Info("outbound budget", "max_pending_total", srv.MaxPendingTotal(), "max_pending", o.net.MaxPending)
	o.eio.MaxMessage = o.net.MaxMessage
	o.eio.Verifier, o.eio.AuthRequired = o.net.Verifier, o.net.AuthRequired
	o.eio.Limits, o.eio.Metrics, o.eio.Logger = o.net.Limits, m, log
	o.eio.ProxyHeaders = o.net.ProxyHeaders
	eio := engineio.New(o.eio, srv) // Socket.IO at /socket.io/
	var cl *cluster.Cluster
	na := o.natsAuth
	if o.natsURL == "" && (o.clusterKey != "" || na.User+na.Password+na.Token+na.NKeySeedFile+na.CredsFile+na.TLSCAFile+na.TLSCertFile+na.TLSKeyFile != "") {
		return errors.New("-cluster-key and the -nats-* flags need -nats")
	}
	if o.natsURL != "" {
		na.URL, na.Node, na.Logger, na.MaxMessage = o.natsURL, node, log, o.net.MaxMessage
		if o.clusterKey != "" {
			na.Key = []byte(o.clusterKey)
		} else if o.recoveryWindow > 0 {
			log.Warn("cluster mode without -cluster-key: session tokens are signed with a key of this process, so a client resumes only on the node that issued its token")
		}
		// With history on, the cluster keeps it in a JetStream stream
		// when the NATS server has JetStream, and installs this node's
		// copy in the hub (Hub.SetHistory) before returning.
		na.History = o.history
		cl, err = cluster.New(na, cluster.HubHandler(hub))
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		defer cl.Close() // idempotent; the drain below closes it first
		if err := cl.Register(m.Registry()); err != nil {
			return fmt.Errorf("cluster metrics: %w", err)
		}
		// Polling requests for sessions of other nodes are forwarded to
		// them: no sticky sessions needed (docs/deploy.md).
		if err := eio.SetForwarder(cl); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		log.Info("cluster mode", "nats", o.natsURL, "node", node, "signed", na.Key != nil, "shared_history", cl.Sequencing())
	}
	if historyOn && (cl == nil || !cl.Sequencing()) {
		// This node's own log: a new epoch at each start.
		mem := history.NewMemory(o.history)
		hctx, hstop := context.WithCancel(context.Background())
		defer hstop()
		go mem.Run(hctx, time.Second) // drops expired messages of idle rooms
		hub.SetHistory(mem)
	}
	if cl != nil {
		// After the history: a sequencing broker takes over room
		// messages only with a history to put them in.
		hub.SetBroker(cluster.HubBroker(cl))
	}
	var apiSrv *api.Server // also the admin page's source of lists and actions
	if o.apiAddr != "" {
		var clAPI api.Cluster
		if cl != nil {
			clAPI = cl
		}
		apiSrv = api.New(api.Config{Addr: o.apiAddr, Key: o.apiKey, Version: version, Logger: log,
			Stats: func() api.Stats {
				st := srv.Stats()
				return api.Stats{Connections: st.Sessions, Rooms: st.Rooms}
			}}, hub, clAPI)
		if cl != nil {
			if err := cl.ServeAsync(apiSrv.ServeRemoteAsync); err != nil {
				return err
			}
		}
		if err := apiSrv.Start(); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = apiSrv.Shutdown(sctx)
		}()
	}
	for path, h := range web.Routes() {
		srv.Handle(path, h) // the browser chat page and client.js
	}
	if o.serveClient {
		bundle, err := sioclient.Load(o.clientDir)
		switch {
		case errors.Is(err, sioclient.ErrNotInstalled):
			// A fresh checkout still runs; pages that load the bundle
			// get a 404 saying what this says.
			log.Warn("socket.io client bundle not installed: /socket.io/socket.io.js answers 404",
				"dir", o.clientDir, "install", sioclient.InstallHint)
		case err != nil:
			return fmt.Errorf("-sio-client-dir: %w", err)
		default:
			log.Info("serving the socket.io client bundle", "version", bundle.Version, "dir", o.clientDir)
		}
		bundle.CORS = o.eio.CORSHeaders // -sio-cors-origins, as for Engine.IO's answers
		for path, h := range bundle.Routes() {
			srv.Handle(path, h)
		}
	}

	adm := admin.New(o.adminAddr, m, log)
	if apiSrv != nil {
		adm.SetAPI(apiSrv, o.apiKey) // the page's actions need the same key
	}
	if err := adm.Start(); err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = adm.Shutdown(sctx)
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Run() }()

	select {
	case err := <-done:
		return err
	case <-srv.Ready():
		adm.SetReady(true)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	stop()
	// Unready first, so proxies stop sending new clients before the
	// connections are closed: -drain-delay gives their health checks time
	// to notice while the clients are still served.
	adm.SetDraining(true)
	srv.Leave()
	log.Info("draining", "delay", o.drainDelay, "spread", o.net.DrainSpread, "timeout", o.drainTimeout, "connections", srv.Stats().Connections)
	if o.drainDelay > 0 {
		select {
		case err := <-done:
			return err
		case <-time.After(o.drainDelay):
		}
	}
	dctx, cancel := context.WithTimeout(context.Background(), o.drainTimeout)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		log.Error("shutdown", "err", err)
	}
	if cl != nil {
		_ = cl.Close() // goodbye: other nodes drop this node's members at once
	}
	select {
	case err := <-done:
		log.Info("stopped")
		return err
	case <-time.After(5 * time.Second):
		return errors.New("engine did not stop in time")
	}
}
