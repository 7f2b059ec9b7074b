package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/chatgate/chatgate/bench/hist"
	"github.com/chatgate/chatgate/bench/proc"
)

// Scenarios the load tool runs.
const (
	ScenarioIdle   = "idle"
	ScenarioFanout = "fanout"
	ScenarioRooms  = "rooms"
	ScenarioChurn  = "churn"
	ScenarioResume = "resume"
	ScenarioScale  = "scale"
)

// Publishers of the fanout scenario's messages.
const (
	// PublisherWS: members of the room send them over their WebSocket.
	PublisherWS = "ws"
	// PublisherAPI: the load tool posts them to the server API's publish
	// method (one worker does, over keep-alive HTTP connections).
	PublisherAPI = "api"
)

// DefaultAPIURL is the server API's default base URL (the gateway's
// -api-addr default).
const DefaultAPIURL = "http://127.0.0.1:9091"

// Errors of the coordinator.
var (
	ErrConfig     = errors.New("load: bad configuration")
	errWorkerDied = errors.New("load: a worker exited early")
	errTimeout    = errors.New("load: timed out waiting for workers")
)

// Config describes one run. Zero values mean the documented defaults.
type Config struct {
	// Scenario is idle, fanout, rooms, churn or resume.
	Scenario string
	// Addr is the server's host:port; Path its WebSocket path (default per
	// protocol: /ws, or /socket.io/?EIO=4&transport=websocket).
	Addr, Path string
	// Proto is the wire protocol (default native).
	Proto Protocol
	// Label names the server in the results (default: the address).
	Label string

	// Conns is the number of connections (room members for fanout).
	Conns int
	// RoomSize is the clients per room (idle, rooms; default 50).
	RoomSize int
	// Publishers is the number of publishing members (fanout; default 1).
	Publishers int
	// Publisher is who publishes fanout's messages: PublisherWS (default)
	// or PublisherAPI, through the server API at APIURL (default
	// DefaultAPIURL) with APIKey, at most APIConcurrency (default 8)
	// requests in flight. Publishers is then ignored.
	Publisher      string
	APIURL         string
	APIKey         string
	APIConcurrency int
	// Size is the size in bytes of each message's data (default 64).
	Size int
	// Rate is messages per second: all publishers together (fanout),
	// each client (rooms), or each room's publisher (resume). Default 10
	// (fanout), 1 (rooms), 2 (resume).
	Rate float64
	// Duration is the hold time (idle) or publishing time (fanout, rooms);
	// default 10s.
	Duration time.Duration

	// Ramp makes fanout step the rate up from Rate by RampFactor (default
	// 1.5) every StepDuration (default 5s) until a step fails, then try
	// RampRefine (default 2) rates between the best pass and the failure.
	// RampMax caps the rate (0: no cap).
	Ramp       bool
	RampFactor float64
	RampMax    float64
	RampRefine int
	// RampRetry is how many times a failing ramp step is repeated before
	// it counts as failed (default 1; negative: none).
	RampRetry    int
	StepDuration time.Duration
	// P99Bound is the latency a passing step's p99 must not exceed
	// (default 50ms).
	P99Bound time.Duration
	// Warmup is how long fanout and rooms publish, unmeasured, before
	// the first measured step (default 2s; negative: none).
	Warmup time.Duration
	// Drain is how long to wait for outstanding deliveries after a step's
	// last send (default 3s).
	Drain time.Duration
	// Slack is the schedule lag a publisher may have before messages are
	// stamped with their scheduled rather than actual send time (default
	// 2ms).
	Slack time.Duration

	// Cycles is the number of connect-join-send-close cycles (churn;
	// default 10000), ChurnConcurrency how many run at once per worker
	// (default 64), ChurnRooms how many rooms they spread over (default
	// 100) and Settle how long the server is watched afterwards (default
	// 5s).
	Cycles           int
	ChurnConcurrency int
	ChurnRooms       int
	Settle           time.Duration

	// Resume configures the resume scenario.
	Resume ResumeConfig
	// Scale configures the scale scenario.
	Scale ScaleConfig

	// Workers is the number of worker processes (default: enough for
	// PerWorker connections each). PerWorker defaults to 15000, leaving
	// room under a 20000 open-files limit.
	Workers   int
	PerWorker int
	// SourceBase is the first loopback source address; worker i binds
	// SourceBase+i (default 127.0.0.2). "none" lets the kernel choose.
	SourceBase string
	// DialConcurrency is handshakes in flight per worker (default 100),
	// DialTimeout the limit of one (default 10s), Retries the attempts
	// after a failure (default 2). ReadBuf is the read buffer per
	// connection (default 2048).
	DialConcurrency int
	DialTimeout     time.Duration
	Retries         int
	ReadBuf         int
	// Compression offers permessage-deflate on every connection and
	// sends each client's join compressed, so the server has inflated a
	// message on each before it holds them idle (idle scenario only: the
	// client does not inflate what it receives).
	Compression bool
	// Loops is the number of epoll loops per worker reading the
	// connections (default 1); negative gives each connection a reader
	// goroutine instead.
	Loops int

	// Deadline bounds the whole run (default 10m).
	Deadline time.Duration

	// Probe samples the server; nil samples nothing.
	Probe *Probe
	// Spawn starts workers (default: in-process goroutines).
	Spawn Spawner
	// Progress receives a status line every second (nil: none).
	Progress io.Writer
	// Command is recorded in the result as the command that ran.
	Command string
}

func (c *Config) setDefaults() error {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Proto == "" {
		c.Proto = Native
	}
	if c.Proto != Native && c.Proto != SocketIO {
		return fmt.Errorf("%w: unknown protocol %q", ErrConfig, c.Proto)
	}
	if c.Path == "" {
		c.Path = c.Proto.DefaultPath()
	}
	if c.Label == "" {
		c.Label = c.Addr
	}
	if c.Rate <= 0 {
		c.Rate = 10
		switch c.Scenario {
		case ScenarioRooms:
			c.Rate = 1
		case ScenarioResume:
			c.Rate = 2
		case ScenarioScale:
			c.Rate = 50
		}
	}
	if c.RampFactor <= 1 {
		c.RampFactor = 1.5
	}
	if c.RampRetry < 0 {
		c.RampRetry = 0
	} else if c.RampRetry == 0 {
		c.RampRetry = 1
	}
	if c.RampRefine < 0 {
		c.RampRefine = 0
	} else if c.RampRefine == 0 {
		c.RampRefine = 2
	}
	def(&c.RoomSize, 50)
	if c.Compression && c.Scenario != ScenarioIdle {
		return fmt.Errorf("%w: -compression applies to the idle scenario only", ErrConfig)
	}
	switch c.Publisher {
	case "":
		c.Publisher = PublisherWS
	case PublisherWS:
	case PublisherAPI:
		if c.Scenario != ScenarioFanout {
			return fmt.Errorf("%w: -publisher api applies to the fanout scenario only", ErrConfig)
		}
		if c.APIURL == "" {
			c.APIURL = DefaultAPIURL
		}
		def(&c.APIConcurrency, 8)
	default:
		return fmt.Errorf("%w: unknown publisher %q (ws or api)", ErrConfig, c.Publisher)
	}
	def(&c.Publishers, 1)
	def(&c.Size, 64)
	def(&c.Cycles, 10000)
	def(&c.ChurnConcurrency, 64)
	def(&c.ChurnRooms, 100)
	def(&c.PerWorker, 15000)
	def(&c.DialConcurrency, 100)
	def(&c.ReadBuf, 2048)
	if c.Loops == 0 {
		c.Loops = 1
	} else if c.Loops < 0 {
		c.Loops = 0
	}
	if c.Retries < 0 {
		c.Retries = 0
	} else if c.Retries == 0 {
		c.Retries = 2
	}
	defD(&c.Duration, 10*time.Second)
	defD(&c.StepDuration, 5*time.Second)
	defD(&c.P99Bound, 50*time.Millisecond)
	defD(&c.Drain, 3*time.Second)
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	defD(&c.Slack, 2*time.Millisecond)
	defD(&c.Settle, 5*time.Second)
	defD(&c.DialTimeout, 10*time.Second)
	defD(&c.Deadline, 10*time.Minute)
	if c.SourceBase == "" {
		c.SourceBase = "127.0.0.2"
	}
	if c.Spawn == nil {
		c.Spawn = InProcessSpawner()
	}
	switch c.Scenario {
	case ScenarioIdle, ScenarioFanout, ScenarioRooms, ScenarioScale:
		if c.Conns <= 0 {
			return fmt.Errorf("%w: -n must be positive", ErrConfig)
		}
	case ScenarioResume:
		if err := c.resumeDefaults(); err != nil {
			return err
		}
	case ScenarioChurn:
	default:
		return fmt.Errorf("%w: unknown scenario %q", ErrConfig, c.Scenario)
	}
	if c.Addr == "" {
		return fmt.Errorf("%w: no server address", ErrConfig)
	}
	if c.Workers <= 0 {
		conns := c.Conns
		if c.Scenario == ScenarioResume {
			conns += (c.Conns + c.RoomSize - 1) / c.RoomSize // the publishers
		}
		c.Workers = max(1, (conns+c.PerWorker-1)/c.PerWorker)
	}
	if c.Scenario == ScenarioFanout {
		c.RoomSize = c.Conns
		c.Publishers = min(c.Publishers, c.Conns)
	}
	return nil
}

// sourceIP returns the source address of worker i, or "" for none.
func (c *Config) sourceIP(i int) (string, error) {
	if c.SourceBase == "none" {
		return "", nil
	}
	ip := net.ParseIP(c.SourceBase).To4()
	if ip == nil || ip[0] != 127 {
		return "", fmt.Errorf("%w: source base %q is not a loopback IPv4 address", ErrConfig, c.SourceBase)
	}
	v := uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	v += uint32(i)
	if v >= 1<<24-1 {
		return "", fmt.Errorf("%w: too many workers for source base %s", ErrConfig, c.SourceBase)
	}
	return net.IPv4(127, byte(v>>16), byte(v>>8), byte(v)).String(), nil
}

// share returns the first index and count of worker i's part of n.
func share(n, workers, i int) (first, count int) {
	base, extra := n/workers, n%workers
	first = i*base + min(i, extra)
	count = base
	if i < extra {
		count++
	}
	return first, count
}

// workerState is what the coordinator knows of one worker.
type workerState struct {
	last     Event // latest counters
	opened   *Event
	prepared int
	churned  bool
	exited   bool
	// rev holds the resume scenario's phase events (r-opened...) by kind.
	rev map[string]*Event
}

type coord struct {
	cfg    Config
	links  []Link
	events chan Event
	ws     []workerState
	acc    *stepAcc
	res    *Result

	closing        bool
	stepSeq        int
	lastDelivered  uint64
	lastDeliveryAt time.Time
	flushSeq       int

	// Live progress.
	phase    string
	rphase   string // the resume scenario's phase
	interval hist.Histogram
	lastSent uint64
	onSecond func()
}

// Run executes the scenario of cfg against the server and returns its
// result. The result is returned, partly filled, even when the run fails
// or hits its deadline; Aborted then says why.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	c := &coord{
		cfg:    cfg,
		events: make(chan Event, 1024),
		ws:     make([]workerState, cfg.Workers),
		res: &Result{
			Time:     time.Now().UTC(),
			Scenario: cfg.Scenario,
			Label:    cfg.Label,
			Proto:    cfg.Proto,
			Addr:     cfg.Addr,
			Command:  cfg.Command,
			Workers:  cfg.Workers,
			Params: Params{
				Conns:     cfg.Conns,
				Size:      cfg.Size,
				DurationS: cfg.Duration.Seconds(),
			},
		},
	}
	c.res.LoadAvg = loadAvg()
	c.res.CPUs = runtime.NumCPU()
	defer c.shutdown()
	for i := 0; i < cfg.Workers; i++ {
		l, err := cfg.Spawn(i, c.events)
		if err != nil {
			return c.res, fmt.Errorf("load: starting worker %d: %w", i, err)
		}
		c.links = append(c.links, l)
	}
	var err error
	switch cfg.Scenario {
	case ScenarioIdle:
		err = c.idle(ctx)
	case ScenarioFanout:
		err = c.fanout(ctx)
	case ScenarioRooms:
		err = c.rooms(ctx)
	case ScenarioChurn:
		err = c.churn(ctx)
	case ScenarioResume:
		err = c.resume(ctx)
	case ScenarioScale:
		err = c.scale(ctx)
	}
	if err != nil {
		c.res.Aborted = err.Error()
	}
	for _, w := range c.ws {
		c.res.Conn.Lost += w.last.Lost
	}
	return c.res, nil
}

func (c *coord) send(i int, cmd Command) error {
	if err := c.links[i].Send(cmd); err != nil {
		return fmt.Errorf("load: worker %d: %w", i, err)
	}
	return nil
}

func (c *coord) broadcast(cmd Command) error {
	for i := range c.links {
		if err := c.send(i, cmd); err != nil {
			return err
		}
	}
	return nil
}

func (c *coord) all(pred func(*workerState) bool) bool {
	for i := range c.ws {
		if !pred(&c.ws[i]) {
			return false
		}
	}
	return true
}

// pump handles worker events until done reports true, limit passes, ctx
// ends, or a worker dies.
func (c *coord) pump(ctx context.Context, limit time.Duration, done func() bool) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	sec := time.NewTicker(time.Second)
	defer sec.Stop()
	for !done() {
		select {
		case ev := <-c.events:
			if err := c.handle(ev); err != nil {
				return err
			}
		case <-sec.C:
			if c.onSecond != nil {
				c.onSecond()
			}
			c.progress()
		case <-timer.C:
			return errTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// wait handles events for d, for pacing.
func (c *coord) wait(ctx context.Context, d time.Duration) error {
	err := c.pump(ctx, d, func() bool { return false })
	if errors.Is(err, errTimeout) {
		return nil
	}
	return err
}

func (c *coord) handle(ev Event) error {
	if ev.Worker < 0 || ev.Worker >= len(c.ws) {
		return nil
	}
	w := &c.ws[ev.Worker]
	for _, e := range ev.Errors {
		c.noteError(fmt.Sprintf("worker %d: %s", ev.Worker, e))
	}
	switch ev.Ev {
	case evExit:
		w.exited = true
		if !c.closing {
			return fmt.Errorf("%w (worker %d)", errWorkerDied, ev.Worker)
		}
		return nil
	case evOpened:
		e := ev
		w.opened = &e
	case evPrepared:
		w.prepared = ev.Step
	case evChurned:
		w.churned = true
	case evROpened, evRDropped, evRResumed, evRStopped, evRVerified:
		if w.rev == nil {
			w.rev = make(map[string]*Event)
		}
		e := ev
		w.rev[ev.Ev] = &e
	}
	if ev.Ev == evTick || ev.Ev == evOpened || ev.Ev == evSent || ev.Ev == evChurned || w.rev[ev.Ev] != nil {
		w.last = ev
	}
	if c.acc != nil && ev.Step == c.acc.step {
		c.acc.add(ev)
		if ev.Hist != nil {
			c.interval.Merge(ev.Hist)
		}
		if d := c.acc.hist.Count(); d > c.lastDelivered {
			c.lastDelivered = d
			c.lastDeliveryAt = time.Now()
		}
	}
	return nil
}

func (c *coord) noteError(e string) {
	for _, have := range c.res.Errors {
		if have == e {
			return
		}
	}
	if len(c.res.Errors) < 20 {
		c.res.Errors = append(c.res.Errors, e)
	}
}

// progress prints one status line.
func (c *coord) progress() {
	if c.cfg.Progress == nil {
		return
	}
	var open, failed, lost, cycles, cfailed int
	for _, w := range c.ws {
		open += w.last.Open
		failed += w.last.Failed
		lost += w.last.Lost
		cycles += w.last.Cycles
		cfailed += w.last.CycleFailed
	}
	line := fmt.Sprintf("[%s %s] %s open=%d failed=%d", c.cfg.Label, c.cfg.Scenario, c.phase, open, failed)
	if lost > 0 {
		line += fmt.Sprintf(" lost_conns=%d", lost)
	}
	if c.acc != nil {
		var sent uint64
		for _, s := range c.acc.sent {
			sent += s
		}
		line += fmt.Sprintf(" sent/s=%d deliveries/s=%d p99=%.2fms max=%.2fms",
			sent-c.lastSent, c.interval.Count(), float64(c.interval.Quantile(0.99))/1e6, float64(c.interval.Max())/1e6)
		c.lastSent = sent
	}
	if c.cfg.Scenario == ScenarioChurn {
		line += fmt.Sprintf(" cycles=%d cycle_failed=%d", cycles, cfailed)
	}
	c.interval.Reset()
	fmt.Fprintln(c.cfg.Progress, line)
}

// sample reads the server, if a probe is configured.
func (c *coord) sample(ctx context.Context) *ServerSample {
	if c.cfg.Probe == nil {
		return nil
	}
	s := c.cfg.Probe.Sample(ctx)
	return &s
}

// open connects every worker's share and waits for all of them.
func (c *coord) open(ctx context.Context, conns, roomSize int) error {
	c.phase = "connect"
	start := time.Now()
	for i := range c.links {
		first, count := share(conns, len(c.links), i)
		src, err := c.cfg.sourceIP(i)
		if err != nil {
			return err
		}
		err = c.send(i, Command{Op: opOpen, Open: &OpenCmd{
			Addr:        c.cfg.Addr,
			Path:        c.cfg.Path,
			Proto:       c.cfg.Proto,
			LocalIP:     src,
			First:       first,
			Count:       count,
			RoomSize:    roomSize,
			Concurrency: c.cfg.DialConcurrency,
			Retries:     c.cfg.Retries,
			DialTimeout: c.cfg.DialTimeout,
			ReadBuf:     c.cfg.ReadBuf,
			Compression: c.cfg.Compression,
			Loops:       c.cfg.Loops,
			// Workers outlive the coordinator's deadline a little, so
			// the coordinator normally closes them first.
			Deadline:  start.Add(c.cfg.Deadline + 15*time.Second),
			Reconnect: c.cfg.Scenario == ScenarioScale,
			Order:     c.cfg.Scenario == ScenarioScale,
		}})
		if err != nil {
			return err
		}
	}
	err := c.pump(ctx, c.cfg.Deadline, func() bool {
		return c.all(func(w *workerState) bool { return w.opened != nil })
	})
	secs := time.Since(start).Seconds()
	cr := &c.res.Conn
	for _, w := range c.ws {
		if w.opened != nil {
			cr.Opened += w.opened.Open
			cr.Failed += w.opened.Failed
		}
	}
	cr.Secs = secs
	if secs > 0 {
		cr.Rate = float64(cr.Opened) / secs
	}
	return err
}

// members returns the joined count of each room across workers.
func (c *coord) members(rooms int) []int {
	m := make([]int, rooms)
	for _, w := range c.ws {
		if w.opened == nil {
			continue
		}
		for r, n := range w.opened.Rooms {
			if r >= 0 && r < rooms {
				m[r] += n
			}
		}
	}
	return m
}

// step runs one publishing step and its drain, and returns its result.
func (c *coord) step(ctx context.Context, label string, rate float64, dur time.Duration, run RunCmd) (StepResult, error) {
	// Internal step numbers only grow, so a late delivery from any
	// earlier step, warm-up included, is never counted as current.
	c.stepSeq++
	k := c.stepSeq
	c.phase = fmt.Sprintf("%s @%.0f/s", label, rate)
	c.acc = newStepAcc(k, len(c.links))
	defer func() { c.acc = nil }()
	c.interval.Reset()
	c.lastSent = 0
	if err := c.broadcast(Command{Op: opPrepare, Step: k}); err != nil {
		return StepResult{}, err
	}
	err := c.pump(ctx, 30*time.Second, func() bool {
		return c.all(func(w *workerState) bool { return w.prepared == k })
	})
	if err != nil {
		return StepResult{}, err
	}
	lost0 := 0
	for _, w := range c.ws {
		lost0 += w.last.Lost
	}
	s0 := c.sample(ctx)
	m0, merr0 := proc.ReadMachine("")
	self0 := selfCPU()
	start := time.Now()
	c.lastDelivered, c.lastDeliveryAt = 0, start
	run.Step, run.Duration, run.Slack, run.Size = k, dur, c.cfg.Slack, c.cfg.Size
	for i := range c.links {
		wr := run
		if i > 0 {
			wr.API = nil // one API publisher: worker 0
		}
		if err := c.send(i, Command{Op: opRun, Run: &wr}); err != nil {
			return StepResult{}, err
		}
	}
	// Publishers that fall behind still send every scheduled message;
	// give them a generous margin before calling it a hang.
	if err := c.pump(ctx, 2*dur+30*time.Second, c.acc.allDone); err != nil {
		return StepResult{}, err
	}
	sendSecs := time.Since(start).Seconds()
	c.phase = fmt.Sprintf("drain %s @%.0f/s", label, rate)
	drainEnd := time.Now().Add(c.cfg.Drain)
	for {
		c.flushSeq++
		seq := c.flushSeq
		if err := c.broadcast(Command{Op: opFlush, Seq: seq}); err != nil {
			return StepResult{}, err
		}
		if err := c.pump(ctx, 5*time.Second, func() bool { return c.acc.allFlushed(seq) }); err != nil {
			return StepResult{}, err
		}
		exp := uint64(0)
		for _, e := range c.acc.expected {
			exp += e
		}
		if c.acc.hist.Count() >= exp || time.Now().After(drainEnd) {
			break
		}
		if err := c.wait(ctx, 50*time.Millisecond); err != nil {
			return StepResult{}, err
		}
	}
	s1 := c.sample(ctx)
	m1, merr1 := proc.ReadMachine("")
	wall := time.Since(start)
	var cpu time.Duration
	if s0 != nil && s1 != nil && s0.Err == "" && s1.Err == "" && s0.RSS > 0 {
		cpu = s1.CPU - s0.CPU
	}
	r := c.acc.result(rate, sendSecs, c.lastDeliveryAt.Sub(start).Seconds(), cpu)
	r.WallSecs = wall.Seconds()
	if merr0 == nil && merr1 == nil {
		busy := m1.Busy - m0.Busy
		r.MachineCPU = busy.Seconds()
		if cpu > 0 {
			// What neither the server nor the load tool used: other
			// processes competing for the cores during the step.
			// Soft interrupts are left out: they are charged to no
			// process and are mostly this step's own loopback traffic.
			soft := m1.SoftIRQ - m0.SoftIRQ
			other := busy - soft - cpu - time.Duration(r.ClientCPU*float64(time.Second)) - (selfCPU() - self0)
			r.OtherCPU = max(other, 0).Seconds()
		}
	}
	for _, w := range c.ws {
		r.LostConns += w.last.Lost
	}
	r.LostConns -= lost0
	r.judge(c.cfg.P99Bound)
	return r, nil
}

// warmup publishes at rate for Config.Warmup and discards the result, so
// that measured steps find the server's code paths compiled (Node's JIT)
// and its buffers and heap grown, as in a server that has been running.
func (c *coord) warmup(ctx context.Context, rate float64, run RunCmd) error {
	if c.cfg.Warmup <= 0 {
		return nil
	}
	if _, err := c.step(ctx, "warm-up", rate, c.cfg.Warmup, run); err != nil {
		return err
	}
	// Let the server finish whatever the warm-up left queued.
	return c.wait(ctx, 500*time.Millisecond)
}

func (c *coord) idle(ctx context.Context) error {
	c.res.Params.RoomSize = c.cfg.RoomSize
	c.res.ServerBefore = c.sample(ctx)
	if err := c.open(ctx, c.cfg.Conns, c.cfg.RoomSize); err != nil {
		return err
	}
	c.res.ServerOpen = c.sample(ctx)
	c.phase = "hold"
	start := time.Now()
	c.onSecond = func() {
		c.phase = fmt.Sprintf("hold %.0f/%.0fs", time.Since(start).Seconds(), c.cfg.Duration.Seconds())
		if s := c.sample(ctx); s != nil && s.RSS > 0 {
			c.phase += " server_rss=" + mib(s.RSS)
		}
	}
	defer func() { c.onSecond = nil }()
	if err := c.wait(ctx, c.cfg.Duration); err != nil {
		return err
	}
	c.res.ServerAfter = c.sample(ctx)
	if b, a := c.res.ServerBefore, c.res.ServerAfter; b != nil && a != nil && a.RSS > 0 && c.res.Conn.Opened > 0 {
		c.res.RSSPerConn = float64(a.RSS-b.RSS) / float64(c.res.Conn.Opened)
		if a.Anon > 0 && b.Anon > 0 {
			c.res.AnonPerConn = float64(a.Anon-b.Anon) / float64(c.res.Conn.Opened)
		}
	}
	return nil
}

func (c *coord) fanout(ctx context.Context) error {
	cfg := &c.cfg
	p := &c.res.Params
	p.RoomSize, p.Publishers, p.Rate, p.Ramp = cfg.Conns, cfg.Publishers, cfg.Rate, cfg.Ramp
	p.Publisher = cfg.Publisher
	if cfg.Ramp {
		p.P99BoundMS = float64(cfg.P99Bound) / 1e6
		p.DurationS = cfg.StepDuration.Seconds()
	}
	c.res.ServerBefore = c.sample(ctx)
	if err := c.open(ctx, cfg.Conns, cfg.Conns); err != nil {
		return err
	}
	c.res.ServerOpen = c.sample(ctx)
	defer func() { c.res.ServerAfter = c.sample(ctx) }()
	stride := max(1, cfg.Conns/cfg.Publishers)
	run := RunCmd{PubStride: stride, PubCount: cfg.Publishers, Members: c.members(1)}
	pubs := cfg.Publishers
	if cfg.Publisher == PublisherAPI {
		// No member publishes; worker 0 posts every message.
		p.Publishers, p.APIConcurrency = 0, cfg.APIConcurrency
		run.PubCount, pubs = 0, 1
		run.API = &APIRun{URL: cfg.APIURL, Key: cfg.APIKey, Concurrency: cfg.APIConcurrency, Room: 0}
	}
	at := func(k int, rate float64, dur time.Duration) (StepResult, error) {
		run.RatePerPub = rate / float64(pubs)
		r, err := c.step(ctx, fmt.Sprintf("step %d", k), rate, dur, run)
		r.Step = k
		if err == nil {
			c.res.Steps = append(c.res.Steps, r)
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "[%s fanout] step %d @%.0f/s: %.0f deliveries/s, p99 %.2fms, lost %d, pass=%v %s\n",
					cfg.Label, k, rate, r.DeliveriesPerSec, r.Latency.P99, r.Lost, r.Pass, r.Why)
			}
		}
		return r, err
	}
	// rampAt runs a ramp step and, if it fails without losing
	// connections, runs it once more (RampRetry): other processes can
	// only make a step worse, so the better of two attempts is the
	// fairer reading of what the server sustains.
	rampAt := func(k *int, rate float64) (StepResult, error) {
		var r StepResult
		var err error
		for try := 0; try <= cfg.RampRetry; try++ {
			*k++
			if r, err = at(*k, rate, cfg.StepDuration); err != nil || r.Pass || r.LostConns > 0 {
				return r, err
			}
		}
		return r, err
	}
	if err := c.warmup(ctx, cfg.Rate, run); err != nil {
		return err
	}
	if !cfg.Ramp {
		r, err := at(1, cfg.Rate, cfg.Duration)
		if err == nil {
			c.res.Best = &r
		}
		return err
	}
	// Ramp up geometrically until a step fails, then bisect between the
	// best pass and the first failure (or step down if the first failed).
	deadline, _ := ctx.Deadline()
	stepCost := cfg.StepDuration + cfg.Drain + 5*time.Second
	enough := func() bool { return time.Until(deadline) > stepCost }
	var best *StepResult
	failRate := 0.0
	k := 0
	for rate := cfg.Rate; enough(); rate *= cfg.RampFactor {
		if cfg.RampMax > 0 && rate > cfg.RampMax {
			break
		}
		r, err := rampAt(&k, rate)
		if err != nil {
			return err
		}
		if !r.Pass {
			failRate = rate
			break
		}
		best = &r
		if err := c.wait(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	// The starting rate already failed: step down, a few times at most,
	// so the run still reports a rate the server sustains.
	for down := 0; best == nil && failRate > 0 && down < 3 && enough(); down++ {
		if c.res.Steps[len(c.res.Steps)-1].LostConns > 0 {
			break
		}
		if err := c.wait(ctx, 2*time.Second); err != nil {
			return err
		}
		rate := failRate / cfg.RampFactor
		r, err := rampAt(&k, rate)
		if err != nil {
			return err
		}
		if r.Pass {
			best = &r
		} else {
			failRate = rate
		}
	}
	for i := 0; i < cfg.RampRefine && failRate > 0 && best != nil && enough(); i++ {
		if c.res.Steps[len(c.res.Steps)-1].LostConns > 0 {
			break // the room lost members: later steps would not compare
		}
		// Let a server that fell behind catch up before trying again.
		if err := c.wait(ctx, 2*time.Second); err != nil {
			return err
		}
		rate := math.Round((best.Rate + failRate) / 2)
		if rate <= best.Rate || rate >= failRate {
			break
		}
		r, err := rampAt(&k, rate)
		if err != nil {
			return err
		}
		if r.Pass {
			best = &r
		} else {
			failRate = rate
		}
	}
	if best != nil {
		b := *best
		c.res.Best = &b
	}
	return nil
}

func (c *coord) rooms(ctx context.Context) error {
	cfg := &c.cfg
	p := &c.res.Params
	p.RoomSize, p.Rate, p.Publishers = cfg.RoomSize, cfg.Rate, cfg.Conns
	c.res.ServerBefore = c.sample(ctx)
	if err := c.open(ctx, cfg.Conns, cfg.RoomSize); err != nil {
		return err
	}
	c.res.ServerOpen = c.sample(ctx)
	defer func() { c.res.ServerAfter = c.sample(ctx) }()
	nrooms := (cfg.Conns + cfg.RoomSize - 1) / cfg.RoomSize
	run := RunCmd{PubStride: 1, PubCount: cfg.Conns, RatePerPub: cfg.Rate, Members: c.members(nrooms)}
	total := cfg.Rate * float64(c.res.Conn.Opened)
	if err := c.warmup(ctx, total, run); err != nil {
		return err
	}
	r, err := c.step(ctx, "step 1", total, cfg.Duration, run)
	if err != nil {
		return err
	}
	r.Step = 1
	c.res.Steps = append(c.res.Steps, r)
	c.res.Best = &r
	return nil
}

func (c *coord) churn(ctx context.Context) error {
	cfg := &c.cfg
	c.res.Params.Cycles = cfg.Cycles
	c.res.Params.Conns = cfg.ChurnConcurrency * len(c.links)
	// An empty open configures the workers (address, source, deadline).
	if err := c.open(ctx, 0, 1); err != nil {
		return err
	}
	ch := &ChurnResult{}
	c.res.Churn = ch
	if s := c.sample(ctx); s != nil {
		ch.Before, ch.Peak = *s, *s
		c.res.ServerBefore = s
	}
	observe := func() {
		s := c.sample(ctx)
		if s == nil {
			return
		}
		ch.Series = append(ch.Series, *s)
		if s.FDs > ch.Peak.FDs {
			ch.Peak.FDs = s.FDs
		}
		if s.RSS > ch.Peak.RSS {
			ch.Peak.RSS = s.RSS
		}
		if s.Goroutines > ch.Peak.Goroutines {
			ch.Peak.Goroutines = s.Goroutines
		}
		if s.Connections > ch.Peak.Connections {
			ch.Peak.Connections = s.Connections
		}
		c.phase = fmt.Sprintf("server fds=%d rss=%s goroutines=%d", s.FDs, mib(s.RSS), s.Goroutines)
	}
	c.onSecond = observe
	defer func() { c.onSecond = nil }()
	c.phase = "churn"
	start := time.Now()
	for i := range c.links {
		first, count := share(cfg.Cycles, len(c.links), i)
		err := c.send(i, Command{Op: opChurn, Churn: &ChurnCmd{
			Cycles:      count,
			Concurrency: cfg.ChurnConcurrency,
			First:       first,
			Rooms:       cfg.ChurnRooms,
			Size:        cfg.Size,
		}})
		if err != nil {
			return err
		}
	}
	err := c.pump(ctx, cfg.Deadline, func() bool {
		return c.all(func(w *workerState) bool { return w.churned })
	})
	ch.Secs = time.Since(start).Seconds()
	for _, w := range c.ws {
		ch.Cycles += w.last.Cycles
		ch.Failed += w.last.CycleFailed
	}
	if ch.Secs > 0 {
		ch.PerSec = float64(ch.Cycles) / ch.Secs
	}
	if err != nil {
		return err
	}
	c.phase = "settle"
	if err := c.wait(ctx, cfg.Settle); err != nil {
		return err
	}
	if s := c.sample(ctx); s != nil {
		ch.After = *s
		c.res.ServerAfter = s
		ch.FDsLeak = ch.After.FDs - ch.Before.FDs
		ch.RSSDelta = ch.After.RSS - ch.Before.RSS
		if ch.After.Goroutines >= 0 && ch.Before.Goroutines >= 0 {
			ch.GorLeak = ch.After.Goroutines - ch.Before.Goroutines
		}
	}
	return nil
}

// loadAvg returns the machine's 1-minute load average, or -1.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err != nil {
		return -1
	}
	return l
}

// shutdown closes every worker and waits for them to exit.
func (c *coord) shutdown() {
	c.closing = true
	for i := range c.links {
		_ = c.send(i, Command{Op: opClose})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = c.pump(ctx, 15*time.Second, func() bool {
		return c.all(func(w *workerState) bool { return w.exited })
	})
	for _, l := range c.links {
		_ = l.Close(2 * time.Second)
	}
}
