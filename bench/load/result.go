package load

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chatgate/chatgate/bench/hist"
)

// Result is the outcome of one run of a scenario: one line of the results
// file. Figures that do not apply to the scenario are left out.
type Result struct {
	Time     time.Time `json:"time"`
	Scenario string    `json:"scenario"`
	// Label names the server under test (chatgate, gorilla, socketio...).
	Label   string   `json:"label"`
	Proto   Protocol `json:"proto"`
	Addr    string   `json:"addr"`
	Command string   `json:"command,omitempty"`
	Params  Params   `json:"params"`
	Workers int      `json:"workers"`
	// LoadAvg is the machine's 1-minute load average when the run began.
	LoadAvg float64 `json:"loadavg"`
	// CPUs is the number of CPUs the machine has.
	CPUs int `json:"cpus"`

	Conn ConnResult `json:"conn"`

	// Server samples: before connecting, once connected, at the end.
	ServerBefore *ServerSample `json:"server_before,omitempty"`
	ServerOpen   *ServerSample `json:"server_open,omitempty"`
	ServerAfter  *ServerSample `json:"server_after,omitempty"`
	// RSSPerConn is (RSS at the end of the hold - RSS before) / open
	// connections, in bytes (idle scenario).
	RSSPerConn float64 `json:"rss_per_conn,omitempty"`
	// AnonPerConn is the same for anonymous RSS (RssAnon): without the
	// executable's code pages that the first handshakes touch once.
	AnonPerConn float64 `json:"anon_per_conn,omitempty"`

	Steps []StepResult `json:"steps,omitempty"`
	// Best is the highest-rate step that passed (ramp), or the only step.
	Best *StepResult `json:"best,omitempty"`

	Churn *ChurnResult `json:"churn,omitempty"`

	// Resume is the resume scenario's outcome.
	Resume *ResumeResult `json:"resume,omitempty"`

	// Scale is the scale scenario's outcome.
	Scale *ScaleResult `json:"scale,omitempty"`

	Errors []string `json:"errors,omitempty"`
	// Aborted tells why the run stopped early, if it did.
	Aborted string `json:"aborted,omitempty"`
}

// Params are the scenario's inputs.
type Params struct {
	Conns      int `json:"conns"`
	RoomSize   int `json:"room_size,omitempty"`
	Publishers int `json:"publishers,omitempty"`
	// Publisher is "ws" (members publish) or "api" (the server API does,
	// with APIConcurrency requests in flight at most).
	Publisher      string  `json:"publisher,omitempty"`
	APIConcurrency int     `json:"api_concurrency,omitempty"`
	Size           int     `json:"size,omitempty"`
	Rate           float64 `json:"rate,omitempty"`
	DurationS      float64 `json:"duration_s,omitempty"`
	Ramp           bool    `json:"ramp,omitempty"`
	P99BoundMS     float64 `json:"p99_bound_ms,omitempty"`
	Cycles         int     `json:"cycles,omitempty"`
}

// ConnResult describes the connection phase.
type ConnResult struct {
	Opened int     `json:"opened"`
	Failed int     `json:"failed"`
	Lost   int     `json:"lost"`
	Secs   float64 `json:"secs"`
	// Rate is connections opened (with handshake and join) per second.
	Rate float64 `json:"rate"`
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// LatencyOf summarises a histogram of nanoseconds.
func LatencyOf(h *hist.Histogram) Latency {
	ms := func(v uint64) float64 { return float64(v) / 1e6 }
	return Latency{
		P50:  ms(h.Quantile(0.50)),
		P90:  ms(h.Quantile(0.90)),
		P99:  ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)),
		Max:  ms(h.Max()),
		Mean: h.Mean() / 1e6,
	}
}

// StepResult is one publishing period at one rate.
type StepResult struct {
	Step int `json:"step"`
	// Rate is the target publish rate in messages per second (all
	// publishers together).
	Rate      float64 `json:"rate"`
	SendSecs  float64 `json:"send_secs"`
	Sent      uint64  `json:"sent"`
	Expected  uint64  `json:"expected"`
	Delivered uint64  `json:"delivered"`
	Lost      uint64  `json:"lost"`
	// Stale counts deliveries of earlier steps that arrived too late.
	Stale uint64 `json:"stale,omitempty"`
	// Duplicates counts deliveries whose timestamp was not above the
	// previous one of the same receiver (scale: one publisher per room).
	Duplicates uint64 `json:"duplicates,omitempty"`
	SendErrors uint64 `json:"send_errors,omitempty"`
	// ServerErrors counts error replies from the server (rate limits,
	// refusals); the summary's errors show the first few.
	ServerErrors uint64 `json:"server_errors,omitempty"`
	// LostConns counts connections that ended during the run.
	LostConns int `json:"lost_conns,omitempty"`
	// LagMaxMS is how far the publishers fell behind their schedule.
	LagMaxMS float64 `json:"lag_max_ms,omitempty"`
	// MsgsPerSec is messages actually published per second.
	MsgsPerSec float64 `json:"msgs_per_sec"`
	// DeliveriesPerSec is deliveries over the time from the first send to
	// the last delivery.
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	Latency          Latency `json:"latency_ms"`
	// ServerCPU is the server's CPU seconds over the step and its drain.
	ServerCPU float64 `json:"server_cpu_s,omitempty"`
	// DeliveriesPerCPU is deliveries per server CPU-second.
	DeliveriesPerCPU float64 `json:"deliveries_per_cpu_s,omitempty"`
	// ClientCPU is the load workers' CPU seconds over the same period.
	ClientCPU float64 `json:"client_cpu_s,omitempty"`
	// WallSecs is the step's length from the first send to the end of
	// its drain; MachineCPU the CPU seconds the whole machine was busy in
	// it, and OtherCPU the part used by neither the server nor the load
	// tool nor soft interrupts (other processes competing for the cores).
	WallSecs   float64 `json:"wall_s,omitempty"`
	MachineCPU float64 `json:"machine_cpu_s,omitempty"`
	OtherCPU   float64 `json:"other_cpu_s,omitempty"`
	Pass       bool    `json:"pass"`
	Why        string  `json:"why,omitempty"`
}

// ChurnResult describes a churn run and the server over its course.
type ChurnResult struct {
	Cycles   int            `json:"cycles"`
	Failed   int            `json:"failed"`
	Secs     float64        `json:"secs"`
	PerSec   float64        `json:"per_sec"`
	Before   ServerSample   `json:"before"`
	Peak     ServerSample   `json:"peak"`
	After    ServerSample   `json:"after"`
	Series   []ServerSample `json:"series,omitempty"`
	FDsLeak  int            `json:"fds_leak"`
	GorLeak  int64          `json:"goroutines_leak,omitempty"`
	RSSDelta int64          `json:"rss_delta"`
}

// stepAcc aggregates the workers' reports of one step. Workers report
// cumulative counters and, per report, the deliveries since their last
// report, so the step's latency histogram is the sum of every histogram
// reported for the step.
type stepAcc struct {
	step     int
	hist     hist.Histogram
	sent     []uint64
	expected []uint64
	stale    []uint64
	dups     []uint64
	sendErr  []uint64
	srvErr   []uint64
	lagMax   []time.Duration
	done     []bool
	cpu0     []time.Duration
	cpu      []time.Duration
	flushed  []int // highest flush sequence answered per worker
}

func newStepAcc(step, workers int) *stepAcc {
	return &stepAcc{
		step:     step,
		sent:     make([]uint64, workers),
		expected: make([]uint64, workers),
		stale:    make([]uint64, workers),
		dups:     make([]uint64, workers),
		sendErr:  make([]uint64, workers),
		srvErr:   make([]uint64, workers),
		lagMax:   make([]time.Duration, workers),
		done:     make([]bool, workers),
		cpu0:     make([]time.Duration, workers),
		cpu:      make([]time.Duration, workers),
		flushed:  make([]int, workers),
	}
}

// add folds one worker event into the step. Events of other steps are
// ignored: they were reported after the coordinator moved on.
func (a *stepAcc) add(ev Event) {
	w := ev.Worker
	if ev.Step != a.step || w < 0 || w >= len(a.sent) {
		return
	}
	if ev.Hist != nil {
		a.hist.Merge(ev.Hist)
	}
	switch ev.Ev {
	case evTick, evSent:
		a.sent[w] = ev.Sent
		a.expected[w] = ev.Expected
		a.stale[w] = ev.Stale
		a.dups[w] = ev.Dups
		a.sendErr[w] = ev.SendErrors
		a.srvErr[w] = ev.ServerErrs
		a.lagMax[w] = max(a.lagMax[w], ev.LagMax)
	}
	if ev.Ev == evSent {
		a.done[w] = true
	}
	if ev.Ev == evTick && ev.Seq > a.flushed[w] {
		a.flushed[w] = ev.Seq
	}
	if a.cpu0[w] == 0 {
		a.cpu0[w] = ev.CPU
	}
	a.cpu[w] = ev.CPU
}

func (a *stepAcc) allDone() bool {
	for _, d := range a.done {
		if !d {
			return false
		}
	}
	return true
}

func (a *stepAcc) allFlushed(seq int) bool {
	for _, f := range a.flushed {
		if f < seq {
			return false
		}
	}
	return true
}

func sum[T uint64 | time.Duration](v []T) T {
	var s T
	for _, x := range v {
		s += x
	}
	return s
}

// result summarises the step. sendSecs is the publishing period, active
// the time from the first send to the last delivery seen, serverCPU the
// server's CPU time over the step (0 if unknown).
func (a *stepAcc) result(rate, sendSecs, active float64, serverCPU time.Duration) StepResult {
	r := StepResult{
		Step:         a.step,
		Rate:         rate,
		SendSecs:     sendSecs,
		Sent:         sum(a.sent),
		Expected:     sum(a.expected),
		Delivered:    a.hist.Count(),
		Stale:        sum(a.stale),
		Duplicates:   sum(a.dups),
		SendErrors:   sum(a.sendErr),
		ServerErrors: sum(a.srvErr),
		Latency:      LatencyOf(&a.hist),
		ServerCPU:    serverCPU.Seconds(),
		ClientCPU:    (sum(a.cpu) - sum(a.cpu0)).Seconds(),
	}
	for _, l := range a.lagMax {
		r.LagMaxMS = max(r.LagMaxMS, float64(l)/1e6)
	}
	if r.Expected > r.Delivered {
		r.Lost = r.Expected - r.Delivered
	}
	if sendSecs > 0 {
		r.MsgsPerSec = float64(r.Sent) / sendSecs
	}
	if active = max(active, sendSecs); active > 0 {
		r.DeliveriesPerSec = float64(r.Delivered) / active
	}
	if r.ServerCPU > 0 {
		r.DeliveriesPerCPU = float64(r.Delivered) / r.ServerCPU
	}
	return r
}

// judge decides whether a step passed: everything delivered, p99 within
// bound, the publishers kept to at least 95% of the target, and no
// connection lost.
func (r *StepResult) judge(bound time.Duration) {
	var why []string
	if r.Lost > 0 {
		why = append(why, fmt.Sprintf("lost %d", r.Lost))
	}
	if r.Duplicates > 0 {
		why = append(why, fmt.Sprintf("duplicates %d", r.Duplicates))
	}
	if bound > 0 && r.Latency.P99 > float64(bound)/1e6 {
		why = append(why, fmt.Sprintf("p99 %.2fms > %v", r.Latency.P99, bound))
	}
	if r.SendSecs > 0 && r.MsgsPerSec < 0.95*r.Rate {
		why = append(why, fmt.Sprintf("published %.0f/s of %.0f/s", r.MsgsPerSec, r.Rate))
	}
	if r.SendErrors > 0 {
		why = append(why, fmt.Sprintf("%d send errors", r.SendErrors))
	}
	if r.ServerErrors > 0 {
		why = append(why, fmt.Sprintf("%d error replies", r.ServerErrors))
	}
	if r.LostConns > 0 {
		why = append(why, fmt.Sprintf("%d connections lost", r.LostConns))
	}
	r.Pass = len(why) == 0
	r.Why = strings.Join(why, ", ")
}

// WriteJSONL appends r as one JSON line.
func (r *Result) WriteJSONL(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadJSONL reads every result line of r, skipping blank lines.
func ReadJSONL(r io.Reader) ([]Result, error) {
	dec := json.NewDecoder(r)
	var out []Result
	for {
		var res Result
		if err := dec.Decode(&res); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, res)
	}
}

// WriteSummary prints a readable account of r.
func (r *Result) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "== %s  server=%s  proto=%s  addr=%s  workers=%d  loadavg=%.2f", r.Scenario, r.Label, r.Proto, r.Addr, r.Workers, r.LoadAvg)
	switch r.Params.Publisher {
	case PublisherAPI:
		fmt.Fprintf(w, "  publisher=api (%d in flight)", r.Params.APIConcurrency)
	case PublisherWS:
		fmt.Fprintf(w, "  publisher=ws (%d clients)", r.Params.Publishers)
	}
	fmt.Fprintln(w)
	c := r.Conn
	fmt.Fprintf(w, "connections: %d opened, %d failed, %d lost; %.1fs to connect (%.0f/s)\n", c.Opened, c.Failed, c.Lost, c.Secs, c.Rate)
	if b, a := r.ServerBefore, r.ServerAfter; b != nil && a != nil && a.RSS > 0 {
		fmt.Fprintf(w, "server: RSS %s -> %s", mib(b.RSS), mib(a.RSS))
		if r.RSSPerConn > 0 {
			fmt.Fprintf(w, " (%.0f B per connection", r.RSSPerConn)
			if r.AnonPerConn > 0 {
				fmt.Fprintf(w, "; anonymous %s -> %s, %.0f B per connection", mib(b.Anon), mib(a.Anon), r.AnonPerConn)
			}
			fmt.Fprint(w, ")")
		}
		fmt.Fprintf(w, ", fds %d -> %d", b.FDs, a.FDs)
		if a.Goroutines >= 0 {
			fmt.Fprintf(w, ", goroutines %d -> %d", b.Goroutines, a.Goroutines)
		}
		fmt.Fprintln(w)
	}
	if len(r.Steps) > 0 {
		fmt.Fprintf(w, "%4s %9s %9s %12s %10s %8s %8s %8s %8s %8s %12s %s\n",
			"step", "rate/s", "sent/s", "deliveries/s", "lost", "p50ms", "p90ms", "p99ms", "maxms", "srvCPU", "deliv/CPU-s", "result")
		for _, s := range r.Steps {
			res := "ok"
			if !s.Pass {
				res = "FAIL " + s.Why
			}
			fmt.Fprintf(w, "%4d %9.0f %9.0f %12.0f %10d %8.2f %8.2f %8.2f %8.2f %8.2f %12.0f %s\n",
				s.Step, s.Rate, s.MsgsPerSec, s.DeliveriesPerSec, s.Lost, s.Latency.P50, s.Latency.P90,
				s.Latency.P99, s.Latency.Max, s.ServerCPU, s.DeliveriesPerCPU, res)
		}
		if r.Best != nil && r.Scale == nil {
			fmt.Fprintf(w, "best: %.0f msgs/s -> %.0f deliveries/s, p99 %.2f ms\n", r.Best.MsgsPerSec, r.Best.DeliveriesPerSec, r.Best.Latency.P99)
		} else if r.Params.Ramp {
			fmt.Fprintln(w, "best: no step passed")
		}
	}
	if ch := r.Churn; ch != nil {
		fmt.Fprintf(w, "churn: %d cycles (%d failed) in %.1fs, %.0f/s\n", ch.Cycles, ch.Failed, ch.Secs, ch.PerSec)
		fmt.Fprintf(w, "server fds %d -> peak %d -> %d after settling; RSS %s -> peak %s -> %s",
			ch.Before.FDs, ch.Peak.FDs, ch.After.FDs, mib(ch.Before.RSS), mib(ch.Peak.RSS), mib(ch.After.RSS))
		if ch.After.Goroutines >= 0 {
			fmt.Fprintf(w, "; goroutines %d -> peak %d -> %d", ch.Before.Goroutines, ch.Peak.Goroutines, ch.After.Goroutines)
		}
		fmt.Fprintln(w)
	}
	r.writeResume(w)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if r.Aborted != "" {
		fmt.Fprintf(w, "aborted: %s\n", r.Aborted)
	}
	if r.Scale != nil {
		r.Scale.write(w, r.Steps)
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
