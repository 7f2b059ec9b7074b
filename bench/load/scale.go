package load

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/chatgate/chatgate/bench/proc"
)

// ScaleConfig configures the scale scenario: Conns clients in rooms of
// RoomSize spread round-robin over the servers of Addr (cluster nodes),
// one publisher per room, Rate room messages/s in all for Duration; then
// a failover step in which node KillNode is killed and its clients
// reconnect to the others; then a check step.
type ScaleConfig struct {
	// NodePIDs are the process ids of the nodes, in the order of Addr's
	// list: their RSS is read from /proc, and KillNode's is killed.
	NodePIDs []int
	// NATSMonitor is the nats-server's monitoring host:port ("" for
	// none): /varz's in_msgs and out_msgs over the steady step give the
	// NATS messages per room message.
	NATSMonitor string
	// KillNode is the 1-based node to kill with SIGKILL (0: no failover).
	KillNode int
	// KillAfter is when, into the Failover step (default 20s), the node
	// is killed (default 3s). ReconnectTimeout (default 60s) bounds the
	// wait from the kill until every client of the node is back. After
	// (default 10s) is the publishing step that follows, which must
	// deliver everything.
	KillAfter        time.Duration
	Failover         time.Duration
	ReconnectTimeout time.Duration
	After            time.Duration
	// IdleHold is how long the connected clients are held without
	// publishing before the warm-up, for the nodes' idle CPU (default
	// 5s; negative: none).
	IdleHold time.Duration
}

// NodeSample is one node's memory in the scale scenario.
type NodeSample struct {
	PID int `json:"pid"`
	// Clients is the number of clients assigned to the node.
	Clients int `json:"clients"`
	// RSS before the clients connected, once connected, and after the
	// steady step, in bytes.
	RSSBefore int64 `json:"rss_before"`
	RSSOpen   int64 `json:"rss_open"`
	RSSSteady int64 `json:"rss_steady"`
	// RSSPerConn is (RSSOpen-RSSBefore)/Clients.
	RSSPerConn float64 `json:"rss_per_conn"`
	// CPUSteady is the node's CPU seconds over the steady step.
	CPUSteady float64 `json:"cpu_steady_s"`
	// IdleCPU is the node's CPU seconds per second with every client
	// connected and nothing published (pings, timers, the cluster's
	// heartbeats).
	IdleCPU float64 `json:"idle_cpu"`
}

// ScaleResult is the scale scenario's outcome. The steps are in
// Result.Steps: 1 steady, 2 failover, 3 after.
type ScaleResult struct {
	Nodes []NodeSample `json:"nodes"`
	Rooms int          `json:"rooms"`
	// NATS counters over the steady step and per room message sent.
	NATSIn         int64   `json:"nats_in_msgs"`
	NATSOut        int64   `json:"nats_out_msgs"`
	NATSInPerMsg   float64 `json:"nats_in_per_msg"`
	NATSOutPerMsg  float64 `json:"nats_out_per_msg"`
	NATSErr        string  `json:"nats_err,omitempty"`
	ServerCPUSteps float64 `json:"server_cpu_s"` // all nodes, steady step

	// Failover: the node killed, its clients, how many reconnected (and
	// gave up), and the time from the kill to the last reconnect.
	Killed        int     `json:"killed_pid,omitempty"`
	Dropped       int     `json:"dropped"`
	Reconnected   int     `json:"reconnected"`
	ReconnFail    int     `json:"reconnect_failed"`
	ReconnectSecs float64 `json:"reconnect_secs"`
	// FailoverLost is the failover step's deliveries lost (members away
	// during the reconnect miss messages: no recovery) and send errors.
	FailoverLost       uint64 `json:"failover_lost"`
	FailoverSendErrors uint64 `json:"failover_send_errors"`

	// Fail lists the goals missed; empty when all were met.
	Fail []string `json:"fail,omitempty"`
}

func (c *ScaleConfig) defaults() {
	if c.KillAfter <= 0 {
		c.KillAfter = 3 * time.Second
	}
	if c.Failover <= 0 {
		c.Failover = 20 * time.Second
	}
	if c.ReconnectTimeout <= 0 {
		c.ReconnectTimeout = time.Minute
	}
	if c.After <= 0 {
		c.After = 10 * time.Second
	}
	if c.IdleHold == 0 {
		c.IdleHold = 5 * time.Second
	}
}

// nodeOf returns the node (0-based) that client idx dials first among n.
func nodeOf(idx, n int) int { return idx % n }

// assigned returns how many of conns clients dial node j first among n.
func assigned(conns, n, j int) int {
	if n <= 0 || j < 0 || j >= n {
		return 0
	}
	k := conns / n
	if j < conns%n {
		k++
	}
	return k
}

func (c *coord) scale(ctx context.Context) error {
	cfg := &c.cfg
	sc := &cfg.Scale
	sc.defaults()
	nodes := len(strings.Split(cfg.Addr, ","))
	nrooms := (cfg.Conns + cfg.RoomSize - 1) / cfg.RoomSize
	p := &c.res.Params
	p.RoomSize, p.Rate, p.Publishers = cfg.RoomSize, cfg.Rate, nrooms
	res := &ScaleResult{Rooms: nrooms}
	c.res.Scale = res
	if len(sc.NodePIDs) > 0 && len(sc.NodePIDs) != nodes {
		return fmt.Errorf("%w: %d node pids for %d addresses", ErrConfig, len(sc.NodePIDs), nodes)
	}
	if sc.KillNode > nodes || (sc.KillNode > 0 && len(sc.NodePIDs) == 0) {
		return fmt.Errorf("%w: -kill-node %d needs that node's pid", ErrConfig, sc.KillNode)
	}
	readNodes := func(set func(n *NodeSample, s proc.Sample)) {
		for i := range res.Nodes {
			if s, err := proc.Read("", res.Nodes[i].PID); err == nil {
				set(&res.Nodes[i], s)
			}
		}
	}
	for i, pid := range sc.NodePIDs {
		res.Nodes = append(res.Nodes, NodeSample{PID: pid, Clients: assigned(cfg.Conns, nodes, i)})
	}
	readNodes(func(n *NodeSample, s proc.Sample) { n.RSSBefore = s.RSS })
	c.res.ServerBefore = c.sample(ctx)
	if err := c.open(ctx, cfg.Conns, cfg.RoomSize); err != nil {
		return err
	}
	if f := c.res.Conn.Failed; f > 0 || c.res.Conn.Opened < cfg.Conns {
		res.Fail = append(res.Fail, fmt.Sprintf("%d of %d clients connected", c.res.Conn.Opened, cfg.Conns))
	}
	c.res.ServerOpen = c.sample(ctx)
	readNodes(func(n *NodeSample, s proc.Sample) {
		n.RSSOpen = s.RSS
		if n.Clients > 0 {
			n.RSSPerConn = float64(n.RSSOpen-n.RSSBefore) / float64(n.Clients)
		}
	})
	defer func() { c.res.ServerAfter = c.sample(ctx) }()
	if sc.IdleHold > 0 && len(res.Nodes) > 0 {
		c.phase = "idle hold"
		idle0 := make([]time.Duration, len(res.Nodes))
		readNodes(func(n *NodeSample, s proc.Sample) { idle0[indexOf(res.Nodes, n)] = s.CPU })
		t0 := time.Now()
		if err := c.wait(ctx, sc.IdleHold); err != nil {
			return err
		}
		secs := time.Since(t0).Seconds()
		readNodes(func(n *NodeSample, s proc.Sample) {
			n.IdleCPU = (s.CPU - idle0[indexOf(res.Nodes, n)]).Seconds() / secs
		})
	}
	run := RunCmd{PubStride: cfg.RoomSize, PubCount: nrooms, RatePerPub: cfg.Rate / float64(nrooms), Members: c.members(nrooms)}
	if err := c.warmup(ctx, cfg.Rate, run); err != nil {
		return err
	}

	// Steady: the fixed rate for Duration, with the NATS counters and
	// the nodes' CPU around it.
	in0, out0, nerr := natsVarz(ctx, sc.NATSMonitor)
	cpu0 := make([]time.Duration, len(res.Nodes))
	readNodes(func(n *NodeSample, s proc.Sample) { cpu0[indexOf(res.Nodes, n)] = s.CPU })
	steady, err := c.step(ctx, "steady", cfg.Rate, cfg.Duration, run)
	if err != nil {
		return err
	}
	in1, out1, nerr1 := natsVarz(ctx, sc.NATSMonitor)
	readNodes(func(n *NodeSample, s proc.Sample) {
		n.RSSSteady = s.RSS
		n.CPUSteady = (s.CPU - cpu0[indexOf(res.Nodes, n)]).Seconds()
		res.ServerCPUSteps += n.CPUSteady
	})
	switch {
	case sc.NATSMonitor == "":
	case nerr != nil || nerr1 != nil:
		res.NATSErr = fmt.Sprint(nerr, nerr1)
	default:
		res.NATSIn, res.NATSOut = in1-in0, out1-out0
		if steady.Sent > 0 {
			res.NATSInPerMsg = float64(res.NATSIn) / float64(steady.Sent)
			res.NATSOutPerMsg = float64(res.NATSOut) / float64(steady.Sent)
		}
	}
	if res.ServerCPUSteps > 0 {
		steady.ServerCPU = res.ServerCPUSteps
		steady.DeliveriesPerCPU = float64(steady.Delivered) / res.ServerCPUSteps
	}
	steady.Step = 1
	steady.judge(0)
	c.res.Steps = append(c.res.Steps, steady)
	c.res.Best = &c.res.Steps[0]
	if !steady.Pass {
		res.Fail = append(res.Fail, "steady step: "+steady.Why)
	}
	c.stepLine(steady, "steady")
	if sc.KillNode == 0 {
		return nil
	}

	// Failover: kill the node KillAfter into a publishing step; its
	// clients reconnect to the next node of their list.
	reconnected := func() (n, failed int, last int64) {
		for _, w := range c.ws {
			n += w.last.Reconnected
			failed += w.last.ReconnFail
			last = max(last, w.last.ReconnLast)
		}
		return n, failed, last
	}
	res.Dropped = assigned(cfg.Conns, nodes, sc.KillNode-1)
	r0, f0, _ := reconnected()
	pid := sc.NodePIDs[sc.KillNode-1]
	res.Killed = pid
	killAt := time.Now().Add(sc.KillAfter)
	var killMono int64
	var killErr error
	c.onSecond = func() {
		if killMono == 0 && !time.Now().Before(killAt) {
			killMono = Mono()
			killErr = syscall.Kill(pid, syscall.SIGKILL)
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "[%s scale] killed node %d (pid %d): %v\n", cfg.Label, sc.KillNode, pid, killErr)
			}
		}
	}
	fo, err := c.step(ctx, "failover", cfg.Rate, sc.Failover, run)
	c.onSecond = nil
	if err != nil {
		return err
	}
	if killMono == 0 || killErr != nil {
		return fmt.Errorf("load: killing node %d (pid %d) failed: %v", sc.KillNode, pid, killErr)
	}
	// Wait (bounded) until every client of the killed node is back.
	back := func() bool {
		n, f, _ := reconnected()
		return n-r0+f-f0 >= res.Dropped
	}
	limit := time.Until(time.Now().Add(sc.ReconnectTimeout - time.Duration(Mono()-killMono)))
	if err := c.pump(ctx, max(limit, 0), back); err != nil && err != errTimeout {
		return err
	}
	n, f, last := reconnected()
	res.Reconnected, res.ReconnFail = n-r0, f-f0
	if last > killMono {
		res.ReconnectSecs = float64(last-killMono) / 1e9
	}
	fo.Step = 2
	fo.judge(0)
	res.FailoverLost, res.FailoverSendErrors = fo.Lost, fo.SendErrors
	c.res.Steps = append(c.res.Steps, fo)
	c.stepLine(fo, "failover")
	if res.Reconnected < res.Dropped {
		res.Fail = append(res.Fail, fmt.Sprintf("%d of %d clients of the killed node reconnected within %v", res.Reconnected, res.Dropped, sc.ReconnectTimeout))
	}
	if fo.Duplicates > 0 {
		res.Fail = append(res.Fail, fmt.Sprintf("failover step: %d duplicates", fo.Duplicates))
	}

	// After: everything delivered again, on the remaining nodes.
	after, err := c.step(ctx, "after", cfg.Rate, sc.After, run)
	if err != nil {
		return err
	}
	after.Step = 3
	after.judge(0)
	c.res.Steps = append(c.res.Steps, after)
	c.stepLine(after, "after")
	if !after.Pass {
		res.Fail = append(res.Fail, "after the failover: "+after.Why)
	}
	return nil
}

func indexOf(nodes []NodeSample, n *NodeSample) int {
	for i := range nodes {
		if &nodes[i] == n {
			return i
		}
	}
	return 0
}

// stepLine prints a finished step on the progress output.
func (c *coord) stepLine(r StepResult, name string) {
	if c.cfg.Progress == nil {
		return
	}
	fmt.Fprintf(c.cfg.Progress, "[%s scale] %s: %.0f msgs/s, %.0f deliveries/s, p50 %.2fms p99 %.2fms p999 %.2fms, lost %d, duplicates %d, send errors %d, lost conns %d\n",
		c.cfg.Label, name, r.MsgsPerSec, r.DeliveriesPerSec, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Lost, r.Duplicates, r.SendErrors, r.LostConns)
}

// natsVarz reads in_msgs and out_msgs from a nats-server's monitoring
// endpoint at host:port ("" reads nothing).
func natsVarz(ctx context.Context, mon string) (in, out int64, err error) {
	if mon == "" {
		return 0, 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+mon+"/varz", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var v struct {
		In  int64 `json:"in_msgs"`
		Out int64 `json:"out_msgs"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil {
		return 0, 0, err
	}
	return v.In, v.Out, nil
}

// writeScale prints the scale scenario's outcome.
func (r *ScaleResult) write(w io.Writer, steps []StepResult) {
	fmt.Fprintf(w, "rooms: %d\n", r.Rooms)
	for i, n := range r.Nodes {
		fmt.Fprintf(w, "node %d (pid %d): %d clients, RSS %s -> %s (%.0f B per connection), %s after the steady step, %.3f CPU-s/s idle, %.2f CPU-s in the steady step\n",
			i+1, n.PID, n.Clients, mib(n.RSSBefore), mib(n.RSSOpen), n.RSSPerConn, mib(n.RSSSteady), n.IdleCPU, n.CPUSteady)
	}
	names := []string{"steady", "failover", "after"}
	for i, s := range steps {
		name := fmt.Sprint(i + 1)
		if i < len(names) {
			name = names[i]
		}
		fmt.Fprintf(w, "%s: %.0f room msgs/s, %.0f deliveries/s, p50 %.2f ms, p99 %.2f ms, p999 %.2f ms, max %.2f ms, sent %d, expected %d, delivered %d, lost %d, duplicates %d, send errors %d, lost conns %d\n",
			name, s.MsgsPerSec, s.DeliveriesPerSec, s.Latency.P50, s.Latency.P99, s.Latency.P999, s.Latency.Max, s.Sent, s.Expected, s.Delivered, s.Lost, s.Duplicates, s.SendErrors, s.LostConns)
	}
	if r.NATSErr != "" {
		fmt.Fprintf(w, "nats: %s\n", r.NATSErr)
	} else if r.NATSIn > 0 {
		fmt.Fprintf(w, "nats (steady step): %d in, %d out: %.2f in and %.2f out per room message\n", r.NATSIn, r.NATSOut, r.NATSInPerMsg, r.NATSOutPerMsg)
	}
	if r.ServerCPUSteps > 0 && len(steps) > 0 {
		fmt.Fprintf(w, "nodes' CPU (steady step): %.2f CPU-s, %.0f deliveries per CPU-s\n", r.ServerCPUSteps, float64(steps[0].Delivered)/r.ServerCPUSteps)
	}
	if r.Killed > 0 {
		fmt.Fprintf(w, "failover: killed pid %d; %d of %d clients reconnected (%d gave up) %.2f s after the kill; %d deliveries lost, %d send errors in the failover step\n",
			r.Killed, r.Reconnected, r.Dropped, r.ReconnFail, r.ReconnectSecs, r.FailoverLost, r.FailoverSendErrors)
	}
	if len(r.Fail) == 0 {
		fmt.Fprintln(w, "scale: all goals met")
	} else {
		fmt.Fprintf(w, "scale: FAILED: %s\n", strings.Join(r.Fail, "; "))
	}
}
