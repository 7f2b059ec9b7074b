package chart

import (
	"fmt"
	"io"
	"strings"

	"github.com/chatgate/chatgate/bench/load"
)

// WriteMarkdown writes one markdown table per scenario present in rs, in
// the order the runs happened.
//
// The "other CPU" column is the share of the machine's CPU capacity used
// during a step by processes other than the server and the load tool: a
// row with a high figure was measured on a busy machine.
func WriteMarkdown(w io.Writer, rs []load.Result) {
	idle(w, rs)
	fanoutTable(w, rs, true)
	fanoutTable(w, rs, false)
	roomsTable(w, rs)
	churnTable(w, rs)
	failures(w, rs)
}

func table(w io.Writer, title string, head []string, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "### %s\n\n", title)
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	seps := make([]string, len(head))
	for i := range seps {
		seps[i] = "---"
		if i > 0 {
			seps[i] = "---:"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func mb(b int64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}
func cnt(v int64) string {
	if v < 0 {
		return "–"
	}
	return fmt.Sprint(v)
}

// other is the share of the machine used by other processes in step s.
func other(r load.Result, s load.StepResult) string {
	if s.WallSecs <= 0 || r.CPUs <= 0 || s.MachineCPU <= 0 || s.ServerCPU <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*s.OtherCPU/(s.WallSecs*float64(r.CPUs)))
}

// perCPU is deliveries per server CPU-second, or a dash when unknown.
func perCPU(s load.StepResult) string {
	if s.DeliveriesPerCPU <= 0 {
		return "–"
	}
	return f0(s.DeliveriesPerCPU)
}

func idle(w io.Writer, rs []load.Result) {
	var rows [][]string
	for _, r := range rs {
		if r.Scenario != load.ScenarioIdle {
			continue
		}
		var before, after int64
		fds := "–"
		if r.ServerBefore != nil && r.ServerAfter != nil {
			before, after = r.ServerBefore.RSS, r.ServerAfter.RSS
			fds = fmt.Sprint(r.ServerAfter.FDs)
		}
		per := "–"
		if r.RSSPerConn > 0 {
			per = f1(r.RSSPerConn / 1024)
		}
		rows = append(rows, []string{r.Label, fmt.Sprint(r.Conn.Opened), fmt.Sprint(r.Conn.Failed),
			fmt.Sprint(r.Workers), f0(r.Conn.Rate), mb(before), mb(after), per, fds})
	}
	table(w, "Idle connections", []string{"server", "opened", "failed", "workers", "connects/s",
		"RSS before (MiB)", "RSS held (MiB)", "KiB per conn", "server fds"}, rows)
}

func fanoutTable(w io.Writer, rs []load.Result, ramp bool) {
	var rows [][]string
	for _, r := range rs {
		if r.Scenario != load.ScenarioFanout || r.Params.Ramp != ramp {
			continue
		}
		if ramp {
			row := []string{r.Label, fmt.Sprint(r.Conn.Opened), fmt.Sprint(r.Params.Publishers), fmt.Sprint(r.Params.Size),
				f0(r.Params.P99BoundMS), fmt.Sprint(len(r.Steps))}
			if b := r.Best; b != nil {
				row = append(row, f0(b.MsgsPerSec), f0(b.DeliveriesPerSec), f2(b.Latency.P50), f2(b.Latency.P99), f2(b.Latency.Max), perCPU(*b), other(r, *b))
			} else {
				row = append(row, "none passed", "–", "–", "–", "–", "–", "–")
			}
			rows = append(rows, row)
			continue
		}
		for _, s := range r.Steps {
			rows = append(rows, []string{r.Label, fmt.Sprint(r.Conn.Opened), fmt.Sprint(r.Params.Publishers), fmt.Sprint(r.Params.Size),
				f0(s.Rate), f0(s.DeliveriesPerSec), fmt.Sprint(s.Lost), f2(s.Latency.P50), f2(s.Latency.P90),
				f2(s.Latency.P99), f2(s.Latency.Max), f2(s.ServerCPU), perCPU(s), other(r, s)})
		}
	}
	if ramp {
		table(w, "Fan-out ramp: highest rate delivered in full within the p99 bound",
			[]string{"server", "members", "publishers", "bytes", "p99 bound (ms)", "steps", "msgs/s", "deliveries/s",
				"p50 ms", "p99 ms", "max ms", "deliveries per CPU-s", "other CPU"}, rows)
		return
	}
	table(w, "Fan-out at a fixed rate",
		[]string{"server", "members", "publishers", "bytes", "msgs/s", "deliveries/s", "lost", "p50 ms", "p90 ms",
			"p99 ms", "max ms", "server CPU-s", "deliveries per CPU-s", "other CPU"}, rows)
}

func roomsTable(w io.Writer, rs []load.Result) {
	var rows [][]string
	for _, r := range rs {
		if r.Scenario != load.ScenarioRooms || r.Best == nil {
			continue
		}
		s := r.Best
		rows = append(rows, []string{r.Label, fmt.Sprint(r.Conn.Opened), fmt.Sprint(r.Params.RoomSize), f0(s.MsgsPerSec),
			f0(s.DeliveriesPerSec), fmt.Sprint(s.Lost), f2(s.Latency.P50), f2(s.Latency.P99), f2(s.Latency.Max), perCPU(*s), other(r, *s)})
	}
	table(w, "Many rooms", []string{"server", "clients", "room size", "msgs/s", "deliveries/s", "lost",
		"p50 ms", "p99 ms", "max ms", "deliveries per CPU-s", "other CPU"}, rows)
}

func churnTable(w io.Writer, rs []load.Result) {
	var rows [][]string
	for _, r := range rs {
		ch := r.Churn
		if r.Scenario != load.ScenarioChurn || ch == nil {
			continue
		}
		rows = append(rows, []string{r.Label, fmt.Sprint(ch.Cycles), fmt.Sprint(ch.Failed), f0(ch.PerSec),
			fmt.Sprintf("%d → %d → %d", ch.Before.FDs, ch.Peak.FDs, ch.After.FDs),
			fmt.Sprintf("%s → %s → %s", cnt(ch.Before.Goroutines), cnt(ch.Peak.Goroutines), cnt(ch.After.Goroutines)),
			fmt.Sprintf("%s → %s → %s", mb(ch.Before.RSS), mb(ch.Peak.RSS), mb(ch.After.RSS))})
	}
	table(w, "Connection churn (server before → peak → after settling)",
		[]string{"server", "cycles", "failed", "cycles/s", "open fds", "goroutines", "RSS MiB"}, rows)
}

func failures(w io.Writer, rs []load.Result) {
	var lines []string
	for _, r := range rs {
		if r.Aborted != "" {
			lines = append(lines, fmt.Sprintf("- %s %s: aborted: %s", r.Label, r.Scenario, r.Aborted))
		}
		for _, e := range r.Errors {
			lines = append(lines, fmt.Sprintf("- %s %s: %s", r.Label, r.Scenario, e))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "### Errors reported by the load tool\n\n%s\n\n", strings.Join(lines, "\n"))
}
