package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chatgate/chatgate/bench/hist"
	"github.com/chatgate/chatgate/bench/proc"
)

// How the resume scenario's members lose their connections.
const (
	// DropClients: every member resets its TCP connection at once (no
	// WebSocket close frame), as a network that fails under them would.
	DropClients = "clients"
	// DropExternal: something else cuts the connections (a script kills
	// the gateway node); the scenario waits for the read errors.
	DropExternal = "external"
	// DropRoll: a rolling restart (scripts/rolling-restart.sh) drains the
	// nodes one after the other while the scenario publishes; every
	// member and publisher resumes by itself whenever its connection
	// ends, after a random wait within the close's reconnect hint, at the
	// next server of ResumeAddr. The scenario publishes until RollDone
	// exists, then waits for the resumes in flight.
	DropRoll = "roll"
)

// ResumeConfig configures the resume scenario. Zero values mean the
// documented defaults.
type ResumeConfig struct {
	// Drop is DropClients (default), DropExternal or DropRoll.
	Drop string
	// RollDone, with DropRoll, is a file the restarting script creates
	// when every node is back; the scenario publishes until then (at most
	// DropTimeout).
	RollDone string
	// NoHint, with DropRoll, makes the clients ignore the reconnect hint
	// and resume at once, as clients that predate it do.
	NoHint bool
	// ResumeAddr is where members resume, and where cut publishers
	// reconnect (default: Config.Addr). A comma-separated list spreads
	// them as Addr does.
	ResumeAddr string
	// Admin is the admin listener (host:port) of the gateway resumed
	// against. When set, the scenario waits after the drop until its
	// /metrics count every dropped session as kept for recovery
	// (chatgate_recoveries_total{outcome="kept"} plus
	// chatgate_cluster_remote_kept_total), and reports the gateway's own
	// count of recovered and refused resumes.
	Admin string
	// DropAfter is how long the publishers publish before the drop
	// (default 3s). With DropExternal it is how long before the scenario
	// declares itself ready to be cut (DropSignal).
	DropAfter time.Duration
	// Outage is the least time between the drop and the resume (default
	// 1s), so that messages published meanwhile must be replayed.
	Outage time.Duration
	// NoticeWait is, without Admin, how long the scenario waits after the
	// drop for the gateway to notice it before resuming: a fixed guess
	// (default 1s for DropClients, whose resets a gateway sees at once;
	// 5s for DropExternal, above a cluster's default 3s node TTL).
	NoticeWait time.Duration
	// DropTimeout bounds the wait for an external cut and, with Admin,
	// for the gateway to keep the dropped sessions (default 60s).
	DropTimeout time.Duration
	// DropSignal, with DropExternal, is a file the scenario creates when
	// it is ready to be cut, for the script that cuts it.
	DropSignal string
	// Concurrency is the resumes in flight per worker (default 0: every
	// member at once).
	Concurrency int
	// Timeout bounds the resume phase (default 60s).
	Timeout time.Duration
	// Tail is how long the publishers go on after the last member has
	// resumed (default 3s).
	Tail time.Duration
}

// resumeDefaults checks and completes the resume scenario's settings.
func (c *Config) resumeDefaults() error {
	r := &c.Resume
	if c.Conns <= 0 {
		return fmt.Errorf("%w: -n must be positive", ErrConfig)
	}
	if c.Proto != Native {
		return fmt.Errorf("%w: the resume scenario speaks the native protocol only", ErrConfig)
	}
	switch r.Drop {
	case "":
		r.Drop = DropClients
	case DropClients, DropExternal:
	case DropRoll:
		if r.RollDone == "" {
			return fmt.Errorf("%w: -drop roll needs -roll-done", ErrConfig)
		}
	default:
		return fmt.Errorf("%w: unknown drop %q (clients, external or roll)", ErrConfig, r.Drop)
	}
	if r.ResumeAddr == "" {
		r.ResumeAddr = c.Addr
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defD(&r.DropAfter, 3*time.Second)
	defD(&r.Outage, time.Second)
	if r.Drop == DropExternal {
		defD(&r.NoticeWait, 5*time.Second)
	} else {
		defD(&r.NoticeWait, time.Second)
	}
	defD(&r.DropTimeout, time.Minute)
	defD(&r.Timeout, time.Minute)
	defD(&r.Tail, 3*time.Second)
	if r.Concurrency < 0 {
		r.Concurrency = 0
	}
	return nil
}

// ResumeResult is the outcome of the resume scenario.
type ResumeResult struct {
	Drop       string `json:"drop"`
	ResumeAddr string `json:"resume_addr"`
	Rooms      int    `json:"rooms"`
	// Members connected and joined; Dropped of them lost their
	// connection.
	Members int `json:"members"`
	Dropped int `json:"dropped"`
	// NoticeS is the time from the drop until the gateway had kept every
	// dropped session (NoticeMeasured, with -admin), or the fixed wait
	// for it. AwayS is the time from the drop to the first resume.
	NoticeS        float64 `json:"notice_s"`
	NoticeMeasured bool    `json:"notice_measured"`
	AwayS          float64 `json:"away_s"`
	// Kept, ServerRecovered and ServerFailed are the gateway's own counts
	// (recoveries_total, with remote keeps) over the drop and the resume;
	// -1 without -admin.
	Kept            int64 `json:"kept"`
	ServerRecovered int64 `json:"server_recovered"`
	ServerFailed    int64 `json:"server_failed"`

	// Resumed members got a welcome: Recovered ("recovered":true, the
	// same id) or NotRecovered (a new session, which joins again);
	// RoomsNotRecovered counts recovered events with "recovered":false;
	// ResumeFailed members got no welcome; IDChanged counts recovered
	// welcomes with a different id; Lost counts connections that ended
	// after resuming.
	Resumed           int `json:"resumed"`
	Recovered         int `json:"recovered"`
	NotRecovered      int `json:"not_recovered"`
	RoomsNotRecovered int `json:"rooms_not_recovered"`
	ResumeFailed      int `json:"resume_failed"`
	IDChanged         int `json:"id_changed,omitempty"`
	Lost              int `json:"lost,omitempty"`
	// Replayed is the messages received in recovered events; Live the
	// messages received as they were published, over the whole run.
	Replayed uint64 `json:"replayed"`
	Live     uint64 `json:"live"`
	// TotalS is the time from the first member's resume to the last
	// member's recovered event; Welcome and Done are per member, from
	// the start of its resume to its welcome and to its recovered event
	// (or, for a new session, its join ack).
	TotalS  float64 `json:"total_s"`
	Welcome Latency `json:"welcome_ms"`
	Done    Latency `json:"done_ms"`
	// Handshake is per member the handshake that succeeded alone (its
	// start to the welcome); Limited counts the refusals with a
	// Retry-After (-handshake-rate) the members waited out and retried.
	Handshake Latency `json:"handshake_ms"`
	Limited   int     `json:"limited,omitempty"`

	// Published messages; Unconfirmed of them the server may not have
	// taken (a publisher was cut before the acknowledgement, or an error
	// reply); skipped turns while a publisher was cut.
	Published     uint64 `json:"published"`
	Unconfirmed   int    `json:"unconfirmed,omitempty"`
	PubErrors     uint64 `json:"pub_errors,omitempty"`
	Skipped       uint64 `json:"skipped,omitempty"`
	PubCuts       int    `json:"pub_cuts,omitempty"`
	PubReconnects int    `json:"pub_reconnects,omitempty"`

	// The check of every member's sequence (ResumeCheck): Missing counts
	// (member, message) pairs never received, not counting Excused ones
	// (unconfirmed messages that nobody may have had).
	Verified    int    `json:"verified"`
	Unverified  int    `json:"unverified,omitempty"`
	Behind      int    `json:"behind,omitempty"`
	Missing     uint64 `json:"missing"`
	Excused     uint64 `json:"excused,omitempty"`
	Duplicates  uint64 `json:"duplicates"`
	OutOfOrder  uint64 `json:"out_of_order"`
	NoOffset    uint64 `json:"no_offset,omitempty"`
	NotReplayed uint64 `json:"not_replayed,omitempty"`

	// Server samples when every member had dropped (and the gateway had
	// noticed) and when every member had resumed; ServerCPUS is the
	// server's CPU time between them.
	ServerDropped *ServerSample `json:"server_dropped,omitempty"`
	ServerResumed *ServerSample `json:"server_resumed,omitempty"`
	ServerCPUS    float64       `json:"server_cpu_s,omitempty"`
	// Over the same period: its length, the CPU time the load workers
	// spent resuming, and the CPU time the whole machine was busy (the
	// load tool shares the cores with the server and whatever else runs).
	ResumeWallS float64 `json:"resume_wall_s,omitempty"`
	ClientCPUS  float64 `json:"client_cpu_s,omitempty"`
	MachineCPUS float64 `json:"machine_cpu_s,omitempty"`

	// Roll (-drop roll): Restarts of the Dropped connection ends came
	// with close 1012 and Hinted with a reconnect hint; Waited is the
	// waits the clients chose within the hints; PeakResumes is the most
	// resumes that started within any 100 ms, and PeakResumesHint the
	// share of them a uniform spread over the hint would give.
	Restarts    int     `json:"restarts,omitempty"`
	Hinted      int     `json:"hinted,omitempty"`
	Waited      Latency `json:"waited_ms,omitzero"`
	PeakResumes int     `json:"peak_resumes_100ms,omitempty"`

	// Pass: every member resumed and recovered with the same id, and saw
	// every message once and in order.
	Pass bool   `json:"pass"`
	Why  string `json:"why,omitempty"`
}

// recoveryCounts are a gateway's recovery counters.
type recoveryCounts struct {
	kept, recovered, failed float64
}

// errNoRecoveryMetrics is returned when /metrics has no recovery counter.
var errNoRecoveryMetrics = errors.New("load: /metrics has no chatgate_recoveries_total")

// parseRecoveryMetrics reads the recovery counters from Prometheus text:
// kept is chatgate_recoveries_total{outcome="kept"} plus
// chatgate_cluster_remote_kept_total (sessions of other nodes kept here).
func parseRecoveryMetrics(r io.Reader) (recoveryCounts, error) {
	var rc recoveryCounts
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case `chatgate_recoveries_total{outcome="kept"}`, "chatgate_cluster_remote_kept_total":
			dst = &rc.kept
		case `chatgate_recoveries_total{outcome="recovered"}`:
			dst = &rc.recovered
		case `chatgate_recoveries_total{outcome="failed"}`:
			dst = &rc.failed
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		*dst += v
		found = found || strings.HasPrefix(name, "chatgate_recoveries_total")
	}
	if err := sc.Err(); err != nil {
		return rc, err
	}
	if !found {
		return rc, errNoRecoveryMetrics
	}
	return rc, nil
}

// recoveryMetrics reads the gateway's recovery counters from its admin
// listener.
func (c *coord) recoveryMetrics(ctx context.Context) (recoveryCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.cfg.Resume.Admin+"/metrics", nil)
	if err != nil {
		return recoveryCounts{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return recoveryCounts{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return recoveryCounts{}, fmt.Errorf("load: GET /metrics: HTTP %d", resp.StatusCode)
	}
	return parseRecoveryMetrics(resp.Body)
}

// enter starts phase p of the resume scenario and prints a progress line.
func (c *coord) enter(p string) {
	c.rphase = p
	if c.onSecond != nil {
		c.onSecond()
	}
	c.progress()
}

// rall reports whether every worker has sent the resume event kind.
func (c *coord) rall(kind string) bool {
	return c.all(func(w *workerState) bool { return w.rev[kind] != nil })
}

// rsum adds up a field of the workers' latest resume counters.
func (c *coord) rsum(f func(*ResumeEvent) int) int {
	n := 0
	for _, w := range c.ws {
		if w.last.R != nil {
			n += f(w.last.R)
		}
	}
	return n
}

// resume runs the resume scenario (see resume.go for the checks):
// connect and join, publish, drop, wait until the gateway noticed,
// resume everyone at once, publish on, stop, verify.
func (c *coord) resume(ctx context.Context) error {
	cfg := &c.cfg
	rc := &cfg.Resume
	rooms := (cfg.Conns + cfg.RoomSize - 1) / cfg.RoomSize
	p := &c.res.Params
	p.RoomSize, p.Rate, p.Publishers = cfg.RoomSize, cfg.Rate, rooms
	p.DurationS = 0
	rr := &ResumeResult{Drop: rc.Drop, ResumeAddr: rc.ResumeAddr, Rooms: rooms, Kept: -1, ServerRecovered: -1, ServerFailed: -1}
	c.res.Resume = rr
	defer func() { c.res.ServerAfter = c.sample(ctx) }()

	// Connect: the publisher of room r lives with the room's first member.
	c.res.ServerBefore = c.sample(ctx)
	c.phase = "connect"
	start := time.Now()
	pubRooms := make([][]int, len(c.links))
	for r := 0; r < rooms; r++ {
		for i := range c.links {
			if first, count := share(cfg.Conns, len(c.links), i); r*cfg.RoomSize >= first && r*cfg.RoomSize < first+count {
				pubRooms[i] = append(pubRooms[i], r)
			}
		}
	}
	for i := range c.links {
		first, count := share(cfg.Conns, len(c.links), i)
		src, err := cfg.sourceIP(i)
		if err != nil {
			return err
		}
		err = c.send(i, Command{Op: opROpen, R: &ResumeCmd{
			Addr: cfg.Addr, ResumeAddr: rc.ResumeAddr, Path: cfg.Path, LocalIP: src,
			First: first, Count: count, RoomSize: cfg.RoomSize,
			PubRooms: pubRooms[i], PubBase: cfg.Conns,
			Concurrency: cfg.DialConcurrency, Retries: cfg.Retries,
			DialTimeout: cfg.DialTimeout, ReadBuf: cfg.ReadBuf,
			Deadline: start.Add(cfg.Deadline + 15*time.Second),
			Roll:     rc.Drop == DropRoll, NoHint: rc.NoHint,
		}})
		if err != nil {
			return err
		}
	}
	err := c.pump(ctx, cfg.Deadline, func() bool { return c.rall(evROpened) })
	cr := &c.res.Conn
	cr.Secs = time.Since(start).Seconds()
	pubs := 0
	for _, w := range c.ws {
		if e := w.rev[evROpened]; e != nil && e.R != nil {
			cr.Opened += e.R.Members
			cr.Failed += e.R.Failed
			pubs += e.R.Pubs
		}
	}
	if cr.Secs > 0 {
		cr.Rate = float64(cr.Opened) / cr.Secs
	}
	rr.Members = cr.Opened
	if err != nil {
		return err
	}
	if cr.Opened == 0 {
		return fmt.Errorf("load: no member connected (%d failed)", cr.Failed)
	}
	if pubs < rooms {
		c.noteError(fmt.Sprintf("only %d of %d publishers connected", pubs, rooms))
	}
	c.res.ServerOpen = c.sample(ctx)

	c.onSecond = func() {
		c.phase = fmt.Sprintf("%s dropped=%d resumed=%d recovered=%d new=%d failed=%d sent=%d",
			c.rphase, c.rsum(func(e *ResumeEvent) int { return e.Dropped }),
			c.rsum(func(e *ResumeEvent) int { return e.Resumed }),
			c.rsum(func(e *ResumeEvent) int { return e.Recovered }),
			c.rsum(func(e *ResumeEvent) int { return e.NotRecovered }),
			c.rsum(func(e *ResumeEvent) int { return e.ResumeFailed }),
			c.rsum(func(e *ResumeEvent) int { return int(e.Sent) }))
	}
	defer func() { c.onSecond = nil }()

	// Publish, then drop.
	c.enter("publish")
	if err := c.broadcast(Command{Op: opRPublish, R: &ResumeCmd{Rate: cfg.Rate, Size: cfg.Size}}); err != nil {
		return err
	}
	if err := c.wait(ctx, rc.DropAfter); err != nil {
		return err
	}
	if rc.Drop == DropRoll {
		if err := c.rolling(ctx, rr); err != nil {
			return err
		}
		return c.resumeEnd(ctx, rr)
	}
	var base recoveryCounts
	haveBase := false
	if rc.Admin != "" {
		if base, err = c.recoveryMetrics(ctx); err != nil {
			c.noteError(fmt.Sprintf("admin metrics: %v", err))
		} else {
			haveBase = true
		}
	}
	limit := 30 * time.Second
	if rc.Drop == DropClients {
		c.enter("drop")
		if err := c.broadcast(Command{Op: opRDrop, R: &ResumeCmd{}}); err != nil {
			return err
		}
	} else {
		c.enter("waiting for the cut")
		limit = rc.DropTimeout
		if rc.DropSignal != "" {
			if err := os.WriteFile(rc.DropSignal, []byte("ready\n"), 0o644); err != nil {
				return err
			}
		}
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "[%s resume] waiting for the connections to be cut (at most %v)\n", cfg.Label, rc.DropTimeout)
		}
	}
	// A worker without members has nothing to drop.
	dropped := func() bool {
		return c.all(func(w *workerState) bool {
			o := w.rev[evROpened]
			return w.rev[evRDropped] != nil || (o != nil && o.R != nil && o.R.Members == 0)
		})
	}
	if err := c.pump(ctx, limit, dropped); err != nil {
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("load: the members' connections were not all cut within %v (%d of %d)",
				limit, c.rsum(func(e *ResumeEvent) int { return e.Dropped }), rr.Members)
		}
		return err
	}
	var dropAt int64
	for _, w := range c.ws {
		if e := w.rev[evRDropped]; e != nil && e.R != nil {
			rr.Dropped += e.R.Dropped
			if e.R.DropAt > 0 && (dropAt == 0 || e.R.DropAt < dropAt) {
				dropAt = e.R.DropAt
			}
		}
	}
	if dropAt == 0 {
		dropAt = Mono()
	}
	since := func() time.Duration { return time.Duration(Mono() - dropAt) }

	// Wait until the gateway has noticed: it keeps a session for resuming
	// only once it has seen the drop.
	c.enter("gateway noticing")
	if haveBase {
		deadline := time.Now().Add(rc.DropTimeout)
		for {
			m, err := c.recoveryMetrics(ctx)
			if err == nil && m.kept-base.kept >= float64(rr.Dropped) {
				rr.NoticeS, rr.NoticeMeasured = since().Seconds(), true
				break
			}
			if time.Now().After(deadline) {
				kept := 0.0
				if err == nil {
					kept = m.kept - base.kept
				}
				c.noteError(fmt.Sprintf("the gateway kept %.0f of %d dropped sessions within %v", kept, rr.Dropped, rc.DropTimeout))
				rr.NoticeS = since().Seconds()
				break
			}
			if err := c.wait(ctx, 50*time.Millisecond); err != nil {
				return err
			}
		}
	} else {
		if d := rc.NoticeWait - since(); d > 0 {
			if err := c.wait(ctx, d); err != nil {
				return err
			}
		}
		rr.NoticeS = since().Seconds()
	}
	if d := rc.Outage - since(); d > 0 {
		if err := c.wait(ctx, d); err != nil {
			return err
		}
	}
	rr.ServerDropped = c.sample(ctx)
	m0, merr0 := proc.ReadMachine("")
	wall0 := time.Now()

	// The storm.
	c.enter("resume")
	if err := c.broadcast(Command{Op: opRResume, R: &ResumeCmd{ResumeConcurrency: rc.Concurrency}}); err != nil {
		return err
	}
	if err := c.pump(ctx, rc.Timeout, func() bool { return c.rall(evRResumed) }); err != nil {
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("load: the resumes did not all end within %v", rc.Timeout)
		}
		return err
	}
	rr.ServerResumed = c.sample(ctx)
	rr.ResumeWallS = time.Since(wall0).Seconds()
	if m1, err := proc.ReadMachine(""); err == nil && merr0 == nil {
		rr.MachineCPUS = (m1.Busy - m0.Busy).Seconds()
	}
	if a, b := rr.ServerDropped, rr.ServerResumed; a != nil && b != nil && a.Err == "" && b.Err == "" && a.RSS > 0 {
		rr.ServerCPUS = (b.CPU - a.CPU).Seconds()
	}
	var welcome, done, handshake hist.Histogram
	var first, last int64
	for _, w := range c.ws {
		e := w.rev[evRResumed]
		if e == nil || e.R == nil {
			continue
		}
		if e.R.Welcome != nil {
			welcome.Merge(e.R.Welcome)
		}
		if e.R.Done != nil {
			done.Merge(e.R.Done)
		}
		if e.R.Handshake != nil {
			handshake.Merge(e.R.Handshake)
		}
		rr.ClientCPUS += e.R.ResumeCPU.Seconds()
		if e.R.First > 0 && (first == 0 || e.R.First < first) {
			first = e.R.First
		}
		last = max(last, e.R.Last)
	}
	rr.Welcome, rr.Done = LatencyOf(&welcome), LatencyOf(&done)
	rr.Handshake = LatencyOf(&handshake)
	if first > 0 {
		rr.TotalS = float64(last-first) / 1e9
		rr.AwayS = float64(first-dropAt) / 1e9
	}
	if haveBase {
		if m, err := c.recoveryMetrics(ctx); err == nil {
			rr.Kept = int64(m.kept - base.kept)
			rr.ServerRecovered = int64(m.recovered - base.recovered)
			rr.ServerFailed = int64(m.failed - base.failed)
		}
	}

	return c.resumeEnd(ctx, rr)
}

// rolling is the resume scenario's part with -drop roll: it says it is
// ready (DropSignal), publishes until RollDone exists, then waits until no
// resume is in flight.
func (c *coord) rolling(ctx context.Context, rr *ResumeResult) error {
	rc := &c.cfg.Resume
	c.enter("rolling")
	if rc.DropSignal != "" {
		if err := os.WriteFile(rc.DropSignal, []byte("ready\n"), 0o644); err != nil {
			return err
		}
	}
	if c.cfg.Progress != nil {
		fmt.Fprintf(c.cfg.Progress, "[%s resume] rolling: publishing until %s exists (at most %v)\n", c.cfg.Label, rc.RollDone, rc.DropTimeout)
	}
	for end := time.Now().Add(rc.DropTimeout); ; {
		if _, err := os.Stat(rc.RollDone); err == nil {
			break
		}
		if time.Now().After(end) {
			return fmt.Errorf("load: %s did not appear within %v", rc.RollDone, rc.DropTimeout)
		}
		if err := c.wait(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	// Every end resumed (or failed to), by the workers' latest counters
	// (a tick a second): two ticks in a row, so that an end the previous
	// tick had not counted yet is not missed.
	c.enter("settling")
	settled := func() bool {
		return c.rsum(func(e *ResumeEvent) int { return e.Dropped }) ==
			c.rsum(func(e *ResumeEvent) int { return e.Resumed + e.ResumeFailed })
	}
	for end, calm := time.Now().Add(rc.Timeout), 0; calm < 2; {
		if settled() {
			calm++
		} else {
			calm = 0
		}
		if time.Now().After(end) {
			c.noteError(fmt.Sprintf("resumes still in flight after %v", rc.Timeout))
			break
		}
		if err := c.wait(ctx, time.Second); err != nil {
			return err
		}
	}
	return nil
}

// resumeEnd publishes on for Tail, stops the publishers, verifies every
// member's sequence and judges the run.
func (c *coord) resumeEnd(ctx context.Context, rr *ResumeResult) error {
	cfg := &c.cfg
	rc := &cfg.Resume
	roll := rc.Drop == DropRoll
	var starts []int64
	var rollFirst, rollLast int64
	var welcome, done, waited, handshake hist.Histogram
	// Publish on, stop, verify.
	c.enter("tail")
	if err := c.wait(ctx, rc.Tail); err != nil {
		return err
	}
	c.enter("stop")
	if err := c.broadcast(Command{Op: opRStop, R: &ResumeCmd{}}); err != nil {
		return err
	}
	if err := c.pump(ctx, 15*time.Second, func() bool { return c.rall(evRStopped) }); err != nil {
		return err
	}
	finals := make(map[int]int64)
	unconfirmed := make(map[int]map[int64]bool)
	for _, w := range c.ws {
		e := w.rev[evRStopped]
		if e == nil || e.R == nil {
			continue
		}
		for r, q := range e.R.Finals {
			finals[r] = q
		}
		for r, qs := range e.R.Unconfirmed {
			if unconfirmed[r] == nil {
				unconfirmed[r] = make(map[int64]bool)
			}
			for _, q := range qs {
				unconfirmed[r][q] = true
			}
			rr.Unconfirmed += len(qs)
		}
	}
	c.enter("verify")
	if err := c.broadcast(Command{Op: opRVerify, R: &ResumeCmd{Finals: finals, Drain: cfg.Drain}}); err != nil {
		return err
	}
	if err := c.pump(ctx, cfg.Drain+15*time.Second, func() bool { return c.rall(evRVerified) }); err != nil {
		return err
	}
	for _, w := range c.ws {
		e := w.rev[evRVerified]
		if e == nil || e.R == nil {
			continue
		}
		r := e.R
		rr.Resumed += r.Resumed
		rr.Recovered += r.Recovered
		rr.NotRecovered += r.NotRecovered
		rr.RoomsNotRecovered += r.RoomsNotRecovered
		rr.ResumeFailed += r.ResumeFailed
		rr.Limited += r.Limited
		rr.IDChanged += r.IDChanged
		rr.Lost += r.Lost
		rr.Replayed += r.Replayed
		rr.Live += r.Live
		rr.Published += r.Sent
		rr.PubErrors += r.PubErrors
		rr.Skipped += r.Skipped
		rr.PubCuts += r.PubCuts
		rr.PubReconnects += r.PubReconnects
		if roll {
			rr.Dropped += r.Dropped
			rr.Restarts += r.Restarts
			rr.Hinted += r.Hinted
			starts = append(starts, r.Starts...)
			for _, m := range []struct{ dst, src *hist.Histogram }{{&welcome, r.Welcome}, {&done, r.Done}, {&waited, r.Waited}, {&handshake, r.Handshake}} {
				if m.src != nil {
					m.dst.Merge(m.src)
				}
			}
			if r.First > 0 && (rollFirst == 0 || r.First < rollFirst) {
				rollFirst = r.First
			}
			rollLast = max(rollLast, r.Last)
		}
		ck := r.Check
		if ck == nil {
			continue
		}
		rr.Verified += ck.Verified
		rr.Unverified += ck.Unverified
		rr.Behind += ck.Behind
		rr.Duplicates += ck.Duplicates
		rr.OutOfOrder += ck.OutOfOrder
		rr.NoOffset += ck.NoOffset
		rr.NotReplayed += ck.NotReplayed
		for room, qs := range ck.Missing {
			for q, n := range qs {
				if unconfirmed[room][q] {
					rr.Excused += uint64(n)
				} else {
					rr.Missing += uint64(n)
				}
			}
		}
	}
	if roll {
		rr.Welcome, rr.Done, rr.Waited = LatencyOf(&welcome), LatencyOf(&done), LatencyOf(&waited)
		rr.Handshake = LatencyOf(&handshake)
		rr.PeakResumes = peakPer(starts, int64(100*time.Millisecond))
		if rollFirst > 0 {
			rr.TotalS = float64(rollLast-rollFirst) / 1e9
		}
	}
	rr.judge(c.res.Conn.Failed)
	return nil
}

// peakPer returns the most of times (ns) that fall within any window of
// w ns.
func peakPer(times []int64, w int64) int {
	slices.Sort(times)
	peak := 0
	for i, j := 0, 0; j < len(times); j++ {
		for times[j]-times[i] >= w {
			i++
		}
		peak = max(peak, j-i+1)
	}
	return peak
}

// judge decides whether the run passed.
func (rr *ResumeResult) judge(connectFailed int) {
	var why []string
	add := func(n uint64, what string) {
		if n > 0 {
			why = append(why, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(uint64(connectFailed), "failed to connect")
	add(uint64(rr.ResumeFailed), "resumes failed")
	add(uint64(rr.NotRecovered), "sessions not recovered")
	add(uint64(rr.RoomsNotRecovered), "rooms not recovered")
	add(uint64(rr.IDChanged), "ids changed")
	add(uint64(rr.Lost), "connections lost after resuming")
	add(rr.Missing, "missing")
	add(rr.Duplicates, "duplicates")
	add(rr.OutOfOrder, "out of order")
	add(uint64(rr.Unverified), "members unverified")
	rr.Pass = len(why) == 0
	rr.Why = strings.Join(why, ", ")
}

// writeResume prints the resume scenario's part of the summary.
func (r *Result) writeResume(w io.Writer) {
	rr := r.Resume
	if rr == nil {
		return
	}
	fmt.Fprintf(w, "resume: %d members in %d rooms of %d, %d publishers at %.3g msgs/s each; drop=%s, resume at %s\n",
		rr.Members, rr.Rooms, r.Params.RoomSize, r.Params.Publishers, r.Params.Rate, rr.Drop, rr.ResumeAddr)
	if rr.Drop == DropRoll {
		fmt.Fprintf(w, "roll: %d connection ends, %d with close 1012, %d with a reconnect hint; waited within the hint p50 %.0f p99 %.0f max %.0f ms\n",
			rr.Dropped, rr.Restarts, rr.Hinted, rr.Waited.P50, rr.Waited.P99, rr.Waited.Max)
		fmt.Fprintf(w, "resumed: %d of %d: %d recovered, %d new sessions, %d rooms not recovered, %d failed; %d messages replayed; at most %d resumes started in 100 ms\n",
			rr.Resumed, rr.Dropped, rr.Recovered, rr.NotRecovered, rr.RoomsNotRecovered, rr.ResumeFailed, rr.Replayed, rr.PeakResumes)
		fmt.Fprintf(w, "per resume: welcome p50 %.1f p99 %.1f max %.1f ms, recovered p50 %.1f p99 %.1f max %.1f ms\n",
			rr.Welcome.P50, rr.Welcome.P99, rr.Welcome.Max, rr.Done.P50, rr.Done.P99, rr.Done.Max)
	} else {
		notice := "fixed wait"
		if rr.NoticeMeasured {
			notice = "gateway kept them all"
		}
		fmt.Fprintf(w, "drop: %d dropped; %.2fs to notice (%s); away %.2fs\n", rr.Dropped, rr.NoticeS, notice, rr.AwayS)
		fmt.Fprintf(w, "resumed: %d of %d: %d recovered, %d new sessions, %d rooms not recovered, %d failed; %d messages replayed\n",
			rr.Resumed, rr.Dropped, rr.Recovered, rr.NotRecovered, rr.RoomsNotRecovered, rr.ResumeFailed, rr.Replayed)
		fmt.Fprintf(w, "time to recovered: %.3fs from the first resume to the last; per member: welcome p50 %.1f p99 %.1f max %.1f ms, recovered p50 %.1f p99 %.1f max %.1f ms\n",
			rr.TotalS, rr.Welcome.P50, rr.Welcome.P99, rr.Welcome.Max, rr.Done.P50, rr.Done.P99, rr.Done.Max)
	}
	fmt.Fprintf(w, "handshake that succeeded: p50 %.1f p99 %.1f max %.1f ms; %d refusals with Retry-After waited out and retried\n",
		rr.Handshake.P50, rr.Handshake.P99, rr.Handshake.Max, rr.Limited)
	if rr.Kept >= 0 {
		fmt.Fprintf(w, "gateway metrics: kept %d, recovered %d, refused %d\n", rr.Kept, rr.ServerRecovered, rr.ServerFailed)
	}
	if a, b := rr.ServerDropped, rr.ServerResumed; a != nil && b != nil && b.RSS > 0 {
		fmt.Fprintf(w, "server over the resume: CPU %.2fs, RSS %s -> %s, fds %d -> %d\n", rr.ServerCPUS, mib(a.RSS), mib(b.RSS), a.FDs, b.FDs)
	}
	if rr.ResumeWallS > 0 {
		fmt.Fprintf(w, "machine over the resume (%.2fs, %d CPUs): %.2f CPU-s busy, of which the load workers %.2f\n",
			rr.ResumeWallS, r.CPUs, rr.MachineCPUS, rr.ClientCPUS)
	}
	fmt.Fprintf(w, "published %d (%d unconfirmed, %d error replies, %d publisher cuts); received %d live\n",
		rr.Published, rr.Unconfirmed, rr.PubErrors, rr.PubCuts, rr.Live)
	fmt.Fprintf(w, "check: %d members verified (%d not): missing %d, duplicates %d, out of order %d, behind %d",
		rr.Verified, rr.Unverified, rr.Missing, rr.Duplicates, rr.OutOfOrder, rr.Behind)
	if rr.Excused > 0 {
		fmt.Fprintf(w, ", unconfirmed and not received %d", rr.Excused)
	}
	if rr.NoOffset > 0 {
		fmt.Fprintf(w, ", without offset %d", rr.NoOffset)
	}
	if rr.NotReplayed > 0 {
		fmt.Fprintf(w, ", not replayed (told) %d", rr.NotReplayed)
	}
	fmt.Fprintln(w)
	if rr.Pass {
		fmt.Fprintln(w, "result: ok")
	} else {
		fmt.Fprintf(w, "result: FAIL %s\n", rr.Why)
	}
}
