// Package chart turns load-tool results (results.jsonl) into SVG charts,
// drawn with gonum.org/v1/plot, and into markdown tables.
//
// Every chart has one series per server (the result's label). When a
// results file holds several runs of the same scenario, server and size,
// the last one wins, so re-running a scenario replaces its point.
package chart

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/chatgate/chatgate/bench/load"
)

// ErrNoData is returned by a chart that has nothing to draw.
var ErrNoData = errors.New("chart: no results for this chart")

const (
	width  = 7 * vg.Inch
	height = 4.5 * vg.Inch
)

// Kind selects fanout results by how they were run.
type kind int

const (
	fixedRate kind = iota // one step at a set rate
	ramp                  // the best step of a ramp
)

// point is one server's figure at one room size.
type point struct {
	members int
	step    load.StepResult
}

// fanoutSeries returns, per server label, the fanout results of kind k
// ordered by room size, the last result winning for a repeated size.
func fanoutSeries(rs []load.Result, k kind) (labels []string, series map[string][]point) {
	series = make(map[string][]point)
	idx := make(map[string]map[int]int)
	for _, r := range rs {
		if r.Scenario != load.ScenarioFanout || r.Best == nil || r.Params.Ramp != (k == ramp) {
			continue
		}
		if _, ok := series[r.Label]; !ok {
			labels = append(labels, r.Label)
			idx[r.Label] = make(map[int]int)
		}
		p := point{members: r.Conn.Opened, step: *r.Best}
		if i, ok := idx[r.Label][p.members]; ok {
			series[r.Label][i] = p
			continue
		}
		idx[r.Label][p.members] = len(series[r.Label])
		series[r.Label] = append(series[r.Label], p)
	}
	for _, l := range labels {
		slices.SortFunc(series[l], func(a, b point) int { return cmp.Compare(a.members, b.members) })
	}
	return labels, series
}

func xys(ps []point, y func(load.StepResult) float64) plotter.XYs {
	out := make(plotter.XYs, 0, len(ps))
	for _, p := range ps {
		if p.members > 0 {
			out = append(out, plotter.XY{X: float64(p.members), Y: y(p.step)})
		}
	}
	return out
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.YOffs = -vg.Points(4)
	p.Add(plotter.NewGrid())
	return p
}

// logX gives the room-size axis a log scale when sizes span a decade.
func logX(p *plot.Plot, series map[string][]point) {
	lo, hi := 0, 0
	for _, ps := range series {
		for _, pt := range ps {
			if lo == 0 || pt.members < lo {
				lo = pt.members
			}
			hi = max(hi, pt.members)
		}
	}
	if lo > 0 && hi >= 10*lo {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
}

// FanoutLatency draws one percentile (0.5 for p50, 0.99 for p99, ...) of
// the latency against room size for fixed-rate fanout runs, one series per
// server, on a log scale.
func FanoutLatency(rs []load.Result, q float64, file string) error {
	labels, series := fanoutSeries(rs, fixedRate)
	if len(labels) == 0 {
		return ErrNoData
	}
	var pick func(load.Latency) float64
	switch q {
	case 0.5:
		pick = func(l load.Latency) float64 { return l.P50 }
	case 0.9:
		pick = func(l load.Latency) float64 { return l.P90 }
	case 0.99:
		pick = func(l load.Latency) float64 { return l.P99 }
	case 0.999:
		pick = func(l load.Latency) float64 { return l.P999 }
	default:
		return fmt.Errorf("chart: no percentile %v in the results", q)
	}
	name := "p" + strings.TrimPrefix(strconv.FormatFloat(q*100, 'f', -1, 64), "0")
	p := newPlot(fmt.Sprintf("Fan-out %s latency by room size (fixed rate)", name), "room members", "latency (ms, log scale)")
	logX(p, series)
	// Latencies span orders of magnitude between servers and sizes.
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var args []any
	top := 0.0
	for _, l := range labels {
		// A log axis cannot show 0: floor at 1 µs.
		pts := xys(series[l], func(s load.StepResult) float64 { return max(pick(s.Latency), 0.001) })
		for _, pt := range pts {
			top = max(top, pt.Y)
		}
		args = append(args, l, pts)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	// Head room above the data for the legend.
	p.Y.Max = top * 20
	return p.Save(width, height, file)
}

// FanoutThroughput draws the highest deliveries/s a ramp sustained in full
// within its p99 bound, against room size (as bars when the results hold
// a single room size).
func FanoutThroughput(rs []load.Result, file string) error {
	labels, series := fanoutSeries(rs, ramp)
	if len(labels) == 0 {
		return ErrNoData
	}
	const title = "Fan-out: highest deliveries/s with no loss and p99 within its bound"
	y := func(s load.StepResult) float64 { return s.DeliveriesPerSec }
	if sizes := distinctSizes(series); len(sizes) == 1 {
		return bars(labels, series, title+fmt.Sprintf(" (%d members)", sizes[0]), "deliveries per second", y, file)
	}
	p := newPlot(title, "room members", "deliveries per second (log scale)")
	logX(p, series)
	// Servers differ by orders of magnitude here.
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = relabel(plot.LogTicks{Prec: -1})
	var args []any
	top := 0.0
	for _, l := range labels {
		pts := xys(series[l], func(s load.StepResult) float64 { return max(y(s), 1) })
		for _, pt := range pts {
			top = max(top, pt.Y)
		}
		args = append(args, l, pts)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	p.Y.Max = top * 20 // head room for the legend
	return p.Save(width, height, file)
}

// headroom returns a top for a linear axis that leaves the upper part of
// the plot, where the legend sits, clear of the series in args.
func headroom(args []any) float64 {
	top := 0.0
	for _, a := range args {
		if pts, ok := a.(plotter.XYs); ok {
			for _, pt := range pts {
				top = max(top, pt.Y)
			}
		}
	}
	return top * 1.45
}

// countTicks labels a count axis with plain numbers: 250k, 1.5M.
var countTicks = relabel(plot.DefaultTicks{})

// relabel wraps a ticker so its labels read as counts: 250k, 1.5M.
func relabel(t plot.Ticker) plot.Ticker {
	return plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		return countLabels(t.Ticks(lo, hi))
	})
}

func countLabels(ticks []plot.Tick) []plot.Tick {
	for i := range ticks {
		if ticks[i].Label == "" {
			continue
		}
		v := ticks[i].Value
		switch {
		case v >= 1e6:
			ticks[i].Label = strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
		case v >= 1e3:
			ticks[i].Label = strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
		default:
			ticks[i].Label = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return ticks
}

// distinctSizes returns the room sizes present in series, ascending.
func distinctSizes(series map[string][]point) []int {
	var sizes []int
	for _, ps := range series {
		for _, pt := range ps {
			if !slices.Contains(sizes, pt.members) {
				sizes = append(sizes, pt.members)
			}
		}
	}
	slices.Sort(sizes)
	return sizes
}

// bars draws one bar per server, for results at a single room size.
func bars(labels []string, series map[string][]point, title, ylabel string, y func(load.StepResult) float64, file string) error {
	var vals plotter.Values
	for _, l := range labels {
		vals = append(vals, y(series[l][0].step))
	}
	p := newPlot(title, "", ylabel)
	b, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return err
	}
	b.Color = plotutil.Color(0)
	p.Add(b)
	p.NominalX(labels...)
	p.Y.Min = 0
	p.Y.Tick.Marker = countTicks
	return p.Save(width, height, file)
}

// FanoutEfficiency draws deliveries per server CPU-second against room
// size, from the fixed-rate runs.
func FanoutEfficiency(rs []load.Result, file string) error {
	labels, series := fanoutSeries(rs, fixedRate)
	var args []any
	for _, l := range labels {
		pts := xys(series[l], func(s load.StepResult) float64 { return s.DeliveriesPerCPU })
		if len(pts) > 0 && pts[0].Y > 0 {
			args = append(args, l, pts)
		}
	}
	if len(args) == 0 {
		return ErrNoData
	}
	const title = "Fan-out efficiency (fixed rate)"
	const ylabel = "deliveries per server CPU-second"
	if sizes := distinctSizes(series); len(sizes) == 1 {
		return bars(labels, series, title+fmt.Sprintf(" (%d members)", sizes[0]), ylabel,
			func(s load.StepResult) float64 { return s.DeliveriesPerCPU }, file)
	}
	p := newPlot(title, "room members", ylabel)
	logX(p, series)
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	p.Y.Min = 0
	p.Y.Max = headroom(args)
	p.Y.Tick.Marker = countTicks
	return p.Save(width, height, file)
}

// lastBy returns the last result of the scenario per label, in order of
// first appearance.
func lastBy(rs []load.Result, scenario string) (labels []string, last map[string]load.Result) {
	last = make(map[string]load.Result)
	for _, r := range rs {
		if r.Scenario != scenario {
			continue
		}
		if _, ok := last[r.Label]; !ok {
			labels = append(labels, r.Label)
		}
		last[r.Label] = r
	}
	return labels, last
}

// IdleMemory draws the server's resident memory per idle connection.
func IdleMemory(rs []load.Result, file string) error {
	labels, last := lastBy(rs, load.ScenarioIdle)
	var names []string
	var vals plotter.Values
	for _, l := range labels {
		if r := last[l]; r.RSSPerConn > 0 {
			names = append(names, fmt.Sprintf("%s\n(%d conns)", l, r.Conn.Opened))
			vals = append(vals, r.RSSPerConn/1024)
		}
	}
	if len(vals) == 0 {
		return ErrNoData
	}
	p := newPlot("Server memory per idle connection (RSS growth / connections)", "", "KiB per connection")
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return err
	}
	bars.Color = plotutil.Color(0)
	p.Add(bars)
	p.NominalX(names...)
	p.Y.Min = 0
	return p.Save(width, height, file)
}

// Chart names and the functions that draw them.
var all = []struct {
	name string
	draw func([]load.Result, string) error
}{
	{"fanout-p50.svg", func(rs []load.Result, f string) error { return FanoutLatency(rs, 0.5, f) }},
	{"fanout-p99.svg", func(rs []load.Result, f string) error { return FanoutLatency(rs, 0.99, f) }},
	{"fanout-throughput.svg", FanoutThroughput},
	{"fanout-efficiency.svg", FanoutEfficiency},
	{"idle-memory.svg", IdleMemory},
}

// WriteAll draws every chart that has data into dir and returns the file
// names written.
func WriteAll(rs []load.Result, dir string) ([]string, error) {
	var written []string
	for _, c := range all {
		err := c.draw(rs, filepath.Join(dir, c.name))
		if errors.Is(err, ErrNoData) {
			continue
		}
		if err != nil {
			return written, fmt.Errorf("chart: %s: %w", c.name, err)
		}
		written = append(written, c.name)
	}
	return written, nil
}
