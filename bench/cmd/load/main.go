// Command load is the chatgate load generator. It opens many WebSocket
// connections to a chat server speaking chatgate's native protocol or
// Socket.IO, runs one scenario, samples the server's memory, CPU and file
// descriptors from /proc, and reports latency percentiles, deliveries per
// second and losses.
//
// Connections are spread over worker processes (this same binary, started
// with the hidden "worker" subcommand), each binding its own loopback
// source address, so one run can exceed a single process's open-files
// limit and the ~28,000 ephemeral ports of one source address.
//
// Run "load -help" for the flags and examples.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chatgate/chatgate/bench/load"
	"github.com/chatgate/chatgate/bench/proc"
)

const usage = `usage: load -scenario NAME -addr HOST:PORT [flags]

Scenarios:
  idle    open -n connections, each joining a room of -room-size, hold them
          for -duration; report connect rate, failures and the server's RSS
          per connection.
  fanout  -n members in one room, -publishers of them publishing -rate
          messages/s in total, each -size bytes, for -duration; or with
          -ramp, step the rate up from -rate until a step loses a message or
          its p99 exceeds -p99, and report the best rate. With -publisher
          api the messages are posted to the server API's publish method
          (-api-url) instead, and every member receives them.
  rooms   -n clients in rooms of -room-size, each client publishing -rate
          messages/s for -duration.
  churn   -cycles of connect, join, send one message, close, with
          -churn-concurrency in flight per worker; report the server's open
          files, goroutines and RSS over time and after -settle.
  resume  connection state recovery under a reconnect storm (chatgate's
          native protocol, recovery on): -n members in rooms of -room-size
          and one publisher per room sending -rate messages/s, each
          numbered; after -drop-after every member drops (-drop clients:
          a TCP reset, no close frame; -drop external: something else,
          such as a killed node, cuts them), then, once the gateway has
          noticed (-admin's /metrics, else -notice-wait) and -outage has
          passed, all resume at once at -resume-addr with their session
          token and last offset. Reports the time to recovered (total and
          per member), recovered true/false, messages replayed, and checks
          that every member saw every message once, in order.
  scale   -n clients in rooms of -room-size spread round-robin over the
          servers of -addr (cluster nodes), one publisher per room, -rate
          room messages/s in all for -duration; reports deliveries/s,
          latency, loss, duplicates, each node's RSS (-node-pids) and NATS
          messages per room message (-nats-monitor). With -kill-node K it
          then kills node K (SIGKILL) -kill-after into a -failover step;
          its clients reconnect to the next node and join again; it reports
          the time to all reconnected and the deliveries lost, then checks
          an -after step delivers everything. Exits 1 if a goal is missed.

Latency is measured from a CLOCK_MONOTONIC timestamp inside each message's
data to its arrival at each receiver. Results: a summary on stdout, progress
on stderr every second, and one JSON line per run appended to -out.

Examples:
  load -scenario idle   -addr 127.0.0.1:8080 -n 18000 -server-pid $PID -label chatgate
  load -scenario fanout -addr 127.0.0.1:8080 -n 1000 -size 64 -ramp -rate 20 -server-pid $PID
  load -scenario fanout -addr 127.0.0.1:8080 -n 10000 -rate 10 -duration 10s
  load -scenario rooms  -addr 127.0.0.1:8080 -n 5000 -room-size 50 -rate 1
  load -scenario churn  -addr 127.0.0.1:8080 -cycles 20000
  load -scenario resume -addr 127.0.0.1:8080 -n 10000 -admin 127.0.0.1:9090 -server-pid $PID
  load -scenario resume -addr 127.0.0.1:18081 -drop external -drop-signal /tmp/cut \
       -resume-addr 127.0.0.1:18082 -admin 127.0.0.1:19092 -n 1000
  load -scenario scale  -addr 127.0.0.1:18081,127.0.0.1:18082 -n 10000 -room-size 1000 \
       -rate 20 -duration 60s -node-pids $P1,$P2 -nats-monitor 127.0.0.1:18222 -kill-node 1
  load -scenario fanout -proto socketio -addr 127.0.0.1:3000 -n 1000 -rate 50
  load -scenario fanout -addr 127.0.0.1:8080 -n 1000 -rate 100 -publisher api -api-url http://127.0.0.1:9091

Flags:
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := load.RunWorker(ctx); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "load worker:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run())
}

func run() int {
	var cfg load.Config
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	proto := fs.String("proto", "native", "wire protocol: native or socketio")
	fs.StringVar(&cfg.Scenario, "scenario", "", "scenario: idle, fanout, rooms, churn, resume or scale")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "server host:port (loopback only); a comma-separated list spreads the clients over several servers (cluster nodes) round-robin")
	fs.StringVar(&cfg.Path, "path", "", "WebSocket request path (default /ws, or /socket.io/?EIO=4&transport=websocket)")
	fs.StringVar(&cfg.Label, "label", "", "name of the server under test in the results (default: -addr)")
	fs.IntVar(&cfg.Conns, "n", 1000, "connections (fanout: room members)")
	fs.IntVar(&cfg.RoomSize, "room-size", 50, "clients per room (idle, rooms, resume)")
	fs.IntVar(&cfg.Publishers, "publishers", 1, "publishing members (fanout, -publisher ws)")
	fs.StringVar(&cfg.Publisher, "publisher", load.PublisherWS, "fanout: who publishes: ws (members over their WebSocket) or api (POST /api/publish to the server API)")
	fs.StringVar(&cfg.APIURL, "api-url", load.DefaultAPIURL, "-publisher api: the server API's base URL (loopback only)")
	fs.StringVar(&cfg.APIKey, "api-key", "", `-publisher api: key sent as "Authorization: apikey <key>" (env CHATGATE_API_KEY when empty)`)
	fs.IntVar(&cfg.APIConcurrency, "api-concurrency", 8, "-publisher api: publish requests in flight at most (keep-alive connections)")
	fs.IntVar(&cfg.Size, "size", 64, "bytes of each message's data (at least 44 are used for the timestamp)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages/s: all publishers together (fanout; default 10), per client (rooms; default 1) or per room (resume; default 2); the starting rate with -ramp")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "hold (idle) or publishing (fanout, rooms) time")
	fs.BoolVar(&cfg.Ramp, "ramp", false, "fanout: step the rate up to find the highest rate delivered in full within -p99")
	fs.Float64Var(&cfg.RampFactor, "ramp-factor", 1.5, "rate multiplier between ramp steps")
	fs.Float64Var(&cfg.RampMax, "ramp-max", 0, "highest rate to try (0: no limit)")
	fs.IntVar(&cfg.RampRefine, "ramp-refine", 2, "bisection steps between the best pass and the first failure (-1: none)")
	fs.IntVar(&cfg.RampRetry, "ramp-retry", 1, "repeat a failing ramp step this many times before it counts as failed (-1: none)")
	fs.DurationVar(&cfg.StepDuration, "step", 5*time.Second, "publishing time of each ramp step")
	fs.DurationVar(&cfg.P99Bound, "p99", 50*time.Millisecond, "p99 latency bound of a passing ramp step")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured publishing before the first step (fanout, rooms; negative: none)")
	fs.DurationVar(&cfg.Drain, "drain", 3*time.Second, "wait for outstanding deliveries after each step")
	fs.DurationVar(&cfg.Slack, "slack", 2*time.Millisecond, "publisher schedule lag not charged to the server")
	fs.IntVar(&cfg.Cycles, "cycles", 10000, "churn: connect-join-send-close cycles")
	fs.IntVar(&cfg.ChurnConcurrency, "churn-concurrency", 64, "churn: cycles in flight per worker")
	fs.IntVar(&cfg.ChurnRooms, "churn-rooms", 100, "churn: rooms the cycles spread over")
	fs.DurationVar(&cfg.Settle, "settle", 5*time.Second, "churn: how long to watch the server after the last cycle")
	fs.StringVar(&cfg.Resume.Drop, "drop", load.DropClients, "resume: clients (every member resets its connection at once), external (wait until something cuts them) or roll (a rolling restart: every client resumes by itself, honouring the close's reconnect hint)")
	fs.StringVar(&cfg.Resume.ResumeAddr, "resume-addr", "", "resume: where members resume and cut publishers reconnect (default -addr; loopback only)")
	fs.StringVar(&cfg.Resume.Admin, "admin", "", `resume: the resumed gateway's admin listener (host:port): wait until its /metrics count every drop as kept, and report its recovery counters`)
	fs.DurationVar(&cfg.Resume.DropAfter, "drop-after", 3*time.Second, "resume: publishing before the drop (external: before -drop-signal)")
	fs.DurationVar(&cfg.Resume.Outage, "outage", time.Second, "resume: least time from the drop to the resume")
	fs.DurationVar(&cfg.Resume.NoticeWait, "notice-wait", 0, "resume without -admin: fixed wait after the drop for the gateway to notice it (default 1s; 5s with -drop external)")
	fs.DurationVar(&cfg.Resume.DropTimeout, "drop-timeout", time.Minute, "resume: limit of the wait for an external cut, and for -admin to count the drops")
	fs.StringVar(&cfg.Resume.DropSignal, "drop-signal", "", "resume -drop external or roll: create this file when ready to be cut")
	fs.StringVar(&cfg.Resume.RollDone, "roll-done", "", "resume -drop roll: publish until this file exists (at most -drop-timeout), then settle, verify")
	fs.BoolVar(&cfg.Resume.NoHint, "no-hint", false, "resume -drop roll: ignore the close's reconnect=<ms> hint and resume at once")
	fs.IntVar(&cfg.Resume.Concurrency, "resume-concurrency", 0, "resume: resumes in flight per worker (0: every member at once)")
	fs.DurationVar(&cfg.Resume.Timeout, "resume-timeout", time.Minute, "resume: limit of the resume phase")
	fs.DurationVar(&cfg.Resume.Tail, "tail", 3*time.Second, "resume: publishing after the last member resumed")
	nodePIDs := fs.String("node-pids", "", "scale: comma-separated process ids of the servers of -addr, in order (RSS per node; -kill-node)")
	fs.StringVar(&cfg.Scale.NATSMonitor, "nats-monitor", "", "scale: the nats-server's monitoring host:port (/varz), for NATS messages per room message")
	fs.IntVar(&cfg.Scale.KillNode, "kill-node", 0, "scale: kill this node (1-based, SIGKILL) during the failover step (0: no failover)")
	fs.DurationVar(&cfg.Scale.KillAfter, "kill-after", 3*time.Second, "scale: when the node is killed, into the failover step")
	fs.DurationVar(&cfg.Scale.Failover, "failover", 20*time.Second, "scale: publishing time of the failover step")
	fs.DurationVar(&cfg.Scale.ReconnectTimeout, "reconnect-timeout", time.Minute, "scale: limit from the kill until every client of the node reconnected")
	fs.DurationVar(&cfg.Scale.After, "after", 10*time.Second, "scale: publishing time of the step after the failover, which must lose nothing")
	fs.DurationVar(&cfg.Scale.IdleHold, "idle-hold", 5*time.Second, "scale: hold the connected clients this long without publishing first, for the nodes' idle CPU (negative: none)")
	fs.IntVar(&cfg.Workers, "workers", 0, "worker processes (default: one per -per-worker connections)")
	fs.IntVar(&cfg.PerWorker, "per-worker", 15000, "most connections per worker process")
	fs.StringVar(&cfg.SourceBase, "src", "127.0.0.2", `first loopback source address; worker i binds src+i ("none": let the kernel choose)`)
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 100, "handshakes in flight per worker")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", 10*time.Second, "limit of one connect and handshake")
	fs.IntVar(&cfg.Retries, "retries", 2, "retries of a failed connection (-1: none)")
	fs.BoolVar(&cfg.Compression, "compression", false, "idle: offer permessage-deflate and send each client's join compressed (fails unless the server accepts it)")
	fs.IntVar(&cfg.ReadBuf, "read-buf", 2048, "read buffer bytes per connection during the handshake (and after it with -loops -1)")
	fs.IntVar(&cfg.Loops, "loops", 1, "epoll loops per worker reading the connections (-1: a goroutine per connection)")
	fs.DurationVar(&cfg.Deadline, "deadline", 10*time.Minute, "hard limit of the whole run")
	pid := fs.Int("server-pid", 0, "server process id, to read its RSS, CPU and open files from /proc (resume: the server resumed against)")
	pidfile := fs.String("server-pidfile", "", "file holding the server process id")
	stats := fs.String("stats", "", `server stats URL (default http://ADDR/stats; "none" to skip)`)
	out := fs.String("out", "", "append the result as one JSON line to this file")
	wait := fs.Duration("wait", 10*time.Second, "wait this long for the server to accept connections")
	inproc := fs.Bool("inproc", false, "run workers as goroutines of this process (small runs only)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of this process (with -inproc: of the workers too)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Proto = load.Protocol(*proto)
	if *nodePIDs != "" {
		for _, f := range strings.Split(*nodePIDs, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				fmt.Fprintf(os.Stderr, "load: -node-pids: bad pid %q\n", f)
				return 2
			}
			cfg.Scale.NodePIDs = append(cfg.Scale.NodePIDs, n)
		}
	}
	if cfg.Scale.NATSMonitor != "" {
		if err := checkLoopback(cfg.Scale.NATSMonitor); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			return 2
		}
	}
	if cfg.Scenario == "" {
		fs.Usage()
		return 2
	}
	if err := checkLoopback(cfg.Addr); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 2
	}
	if cfg.Publisher == load.PublisherAPI {
		if err := checkLoopbackURL(cfg.APIURL); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			return 2
		}
		if cfg.APIKey == "" {
			cfg.APIKey = os.Getenv("CHATGATE_API_KEY")
		}
	}
	if *pidfile != "" {
		p, err := proc.ReadPIDFile(*pidfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			return 2
		}
		*pid = p
	}
	statsAddr := cfg.Addr
	if cfg.Scenario == load.ScenarioResume {
		for _, a := range []string{cfg.Resume.ResumeAddr, cfg.Resume.Admin} {
			if a == "" {
				continue
			}
			if err := checkLoopback(a); err != nil {
				fmt.Fprintln(os.Stderr, "load:", err)
				return 2
			}
		}
		if cfg.Resume.ResumeAddr != "" {
			// The server that is measured is the one resumed against.
			statsAddr = cfg.Resume.ResumeAddr
		}
	}
	statsAddr, _, _ = strings.Cut(statsAddr, ",")
	probe := &load.Probe{PID: *pid, StatsURL: "http://" + statsAddr + "/stats"}
	switch *stats {
	case "none":
		probe.StatsURL = ""
	case "":
	default:
		probe.StatsURL = *stats
	}
	cfg.Probe = probe
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	cfg.Command = "load " + strings.Join(redactKey(os.Args[1:]), " ")
	if *inproc {
		cfg.Spawn = load.InProcessSpawner()
	} else {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			return 1
		}
		cfg.Spawn = load.ExecSpawner(exe, []string{"worker"}, os.Stderr)
	}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, addr := range strings.Split(cfg.Addr, ",") {
		if err := load.WaitListening(ctx, addr, *wait); err != nil {
			fmt.Fprintf(os.Stderr, "load: server at %s is not accepting connections: %v\n", addr, err)
			return 1
		}
	}
	if cfg.Publisher == load.PublisherAPI {
		host, _ := apiHostPort(cfg.APIURL)
		if err := load.WaitListening(ctx, host, *wait); err != nil {
			fmt.Fprintf(os.Stderr, "load: server API at %s is not accepting connections: %v\n", host, err)
			return 1
		}
	}
	res, err := load.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		if res == nil {
			return 2
		}
	}
	res.WriteSummary(os.Stdout)
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			return 1
		}
		defer f.Close()
		if err := res.WriteJSONL(f); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			return 1
		}
	}
	if res.Aborted != "" || (res.Scale != nil && len(res.Scale.Fail) > 0) {
		return 1
	}
	return 0
}

// checkLoopback refuses targets outside 127.0.0.0/8 and ::1: the load tool
// is for servers on this machine only.
func checkLoopback(addrs string) error {
	for _, addr := range strings.Split(addrs, ",") {
		if err := checkLoopbackOne(addr); err != nil {
			return err
		}
	}
	return nil
}

// redactKey hides the value of -api-key in the command recorded with the
// results.
func redactKey(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		name, _, eq := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "api-key" || !strings.HasPrefix(a, "-") {
			continue
		}
		if eq {
			out[i] = a[:strings.Index(a, "=")+1] + "REDACTED"
		} else if i+1 < len(out) {
			out[i+1] = "REDACTED"
		}
	}
	return out
}

// checkLoopbackURL refuses an API URL that is not http:// to a loopback
// address.
func checkLoopbackURL(raw string) error {
	host, err := apiHostPort(raw)
	if err != nil {
		return err
	}
	return checkLoopbackOne(host)
}

// apiHostPort returns the host:port an http:// URL points at.
func apiHostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("-api-url %q: want http://HOST:PORT", raw)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "80"), nil
	}
	return u.Host, nil
}

func checkLoopbackOne(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address; the load tool only targets this machine", addr)
	}
	return nil
}
