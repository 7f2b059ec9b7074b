package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/bench/load"
)

func fanout(label string, members int, ramp bool, p99, dps float64) load.Result {
	s := load.StepResult{Step: 1, Rate: 10, MsgsPerSec: 10, DeliveriesPerSec: dps, DeliveriesPerCPU: dps * 2,
		Latency: load.Latency{P50: p99 / 3, P90: p99 / 2, P99: p99, Max: p99 * 2}, Pass: true}
	return load.Result{Scenario: load.ScenarioFanout, Label: label, Conn: load.ConnResult{Opened: members},
		Params: load.Params{Conns: members, Ramp: ramp, Publishers: 1, Size: 64}, Steps: []load.StepResult{s}, Best: &s}
}

func sample() []load.Result {
	return []load.Result{
		{Scenario: load.ScenarioIdle, Label: "gorilla", Conn: load.ConnResult{Opened: 100, Rate: 50}, RSSPerConn: 20480,
			ServerBefore: &load.ServerSample{RSS: 1 << 20}, ServerAfter: &load.ServerSample{RSS: 3 << 20, FDs: 110}},
		{Scenario: load.ScenarioIdle, Label: "socketio", Conn: load.ConnResult{Opened: 100}, RSSPerConn: 40960},
		fanout("gorilla", 100, false, 1, 1000),
		fanout("gorilla", 1000, false, 5, 1000),
		fanout("gorilla", 1000, false, 4, 1000), // re-run: replaces the previous point
		fanout("socketio", 100, false, 2, 1000),
		fanout("socketio", 1000, false, 9, 1000),
		fanout("gorilla", 1000, true, 20, 30000),
		fanout("socketio", 1000, true, 40, 25000),
		{Scenario: load.ScenarioChurn, Label: "gorilla", Churn: &load.ChurnResult{Cycles: 10, PerSec: 5,
			Before: load.ServerSample{FDs: 10, Goroutines: 4}, Peak: load.ServerSample{FDs: 30, Goroutines: 60},
			After: load.ServerSample{FDs: 10, Goroutines: 4}}},
		{Scenario: load.ScenarioRooms, Label: "gorilla", Aborted: "deadline", Errors: []string{"worker 0: boom"}},
	}
}

func TestFanoutSeriesLastWins(t *testing.T) {
	labels, series := fanoutSeries(sample(), fixedRate)
	if strings.Join(labels, ",") != "gorilla,socketio" {
		t.Fatalf("labels %v", labels)
	}
	g := series["gorilla"]
	if len(g) != 2 || g[0].members != 100 || g[1].members != 1000 || g[1].step.Latency.P99 != 4 {
		t.Fatalf("gorilla series %+v", g)
	}
	_, rampSeries := fanoutSeries(sample(), ramp)
	if len(rampSeries["socketio"]) != 1 || rampSeries["socketio"][0].step.DeliveriesPerSec != 25000 {
		t.Fatalf("ramp series %+v", rampSeries)
	}
}

func TestWriteAll(t *testing.T) {
	tests := []struct {
		name    string
		results []load.Result
		want    []string
	}{
		{"everything", sample(), []string{"fanout-p50.svg", "fanout-p99.svg", "fanout-throughput.svg", "fanout-efficiency.svg", "idle-memory.svg"}},
		{"idle only", sample()[:2], []string{"idle-memory.svg"}},
		{"nothing", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			got, err := WriteAll(tt.results, dir)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("wrote %v, want %v", got, tt.want)
			}
			for _, name := range got {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(b[:min(len(b), 300)], []byte("<svg")) {
					t.Fatalf("%s is not SVG: %.100s", name, b)
				}
			}
		})
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	WriteMarkdown(&b, sample())
	out := b.String()
	for _, want := range []string{
		"### Idle connections",
		"| gorilla | 100 | 0 | 0 | 50 | 1.0 | 3.0 | 20.0 | 110 |",
		"### Fan-out ramp",
		"| socketio | 1000 | 1 | 64 | 0 | 1 | 10 | 25000 |",
		"### Fan-out at a fixed rate",
		"### Connection churn",
		"| gorilla | 10 | 0 | 5 | 10 → 30 → 10 | 4 → 60 → 4 |",
		"- gorilla rooms: aborted: deadline",
		"- gorilla rooms: worker 0: boom",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(out, "### Many rooms") {
		t.Error("rooms table without a rooms result")
	}
}
