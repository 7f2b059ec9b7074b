package load

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/bench/hist"
)

func histOf(vals ...uint64) *hist.Histogram {
	h := new(hist.Histogram)
	for _, v := range vals {
		h.Record(v)
	}
	return h
}

func TestStepAccAggregates(t *testing.T) {
	ms := uint64(time.Millisecond)
	events := []Event{
		{Ev: evPrepared, Worker: 0, Step: 2, CPU: 100 * time.Millisecond},
		{Ev: evPrepared, Worker: 1, Step: 2, CPU: 50 * time.Millisecond},
		// A late tick of the previous step is ignored.
		{Ev: evTick, Worker: 0, Step: 1, Sent: 999, Expected: 999, Hist: histOf(1000 * ms)},
		{Ev: evTick, Worker: 0, Step: 2, Sent: 10, Expected: 90, Hist: histOf(1*ms, 2*ms, 3*ms), CPU: 300 * time.Millisecond},
		{Ev: evTick, Worker: 1, Step: 2, Sent: 5, Expected: 45, Hist: histOf(4*ms, 5*ms)},
		// Cumulative counters replace, histograms add.
		{Ev: evSent, Worker: 0, Step: 2, Sent: 20, Expected: 180, LagMax: 3 * time.Millisecond, Hist: histOf(6 * ms)},
		{Ev: evSent, Worker: 1, Step: 2, Sent: 10, Expected: 90, SendErrors: 1, ServerErrs: 4, CPU: 250 * time.Millisecond},
		{Ev: evTick, Worker: 1, Step: 2, Seq: 7, Sent: 10, Expected: 90, SendErrors: 1, ServerErrs: 4, Stale: 2, Hist: histOf(7*ms, 8*ms), CPU: 250 * time.Millisecond},
		{Ev: evTick, Worker: 0, Step: 2, Seq: 7, Sent: 20, Expected: 180, CPU: 400 * time.Millisecond},
		{Ev: evTick, Worker: 9, Step: 2, Sent: 1000},
	}
	a := newStepAcc(2, 2)
	for i, ev := range events {
		if i == 7 && !a.allDone() {
			t.Fatal("both workers reported sent, but allDone is false")
		}
		a.add(ev)
	}
	if !a.allFlushed(7) || a.allFlushed(8) {
		t.Fatal("allFlushed wrong")
	}
	r := a.result(30, 1.0, 2.0, 500*time.Millisecond)
	want := StepResult{
		Step: 2, Rate: 30, SendSecs: 1, Sent: 30, Expected: 270, Delivered: 8, Lost: 262,
		Stale: 2, SendErrors: 1, ServerErrors: 4, LagMaxMS: 3, MsgsPerSec: 30, DeliveriesPerSec: 4,
		ServerCPU: 0.5, DeliveriesPerCPU: 16, ClientCPU: 0.5,
	}
	want.Latency = r.Latency
	if r != want {
		t.Fatalf("got  %+v\nwant %+v", r, want)
	}
	if r.Latency.P50 < 4 || r.Latency.P50 > 4.04 || r.Latency.Max != 8 || r.Latency.P99 != 8 {
		t.Fatalf("latency %+v", r.Latency)
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name string
		r    StepResult
		pass bool
		why  string
	}{
		{"clean", StepResult{Rate: 100, SendSecs: 1, MsgsPerSec: 100, Latency: Latency{P99: 10}}, true, ""},
		{"lost", StepResult{Rate: 100, SendSecs: 1, MsgsPerSec: 100, Lost: 3}, false, "lost 3"},
		{"slow", StepResult{Rate: 100, SendSecs: 1, MsgsPerSec: 100, Latency: Latency{P99: 60}}, false, "p99 60.00ms > 50ms"},
		{"publisher behind", StepResult{Rate: 100, SendSecs: 1, MsgsPerSec: 90}, false, "published 90/s of 100/s"},
		{"connections lost", StepResult{Rate: 100, SendSecs: 1, MsgsPerSec: 100, LostConns: 2}, false, "2 connections lost"},
		{"error replies", StepResult{Rate: 100, SendSecs: 1, MsgsPerSec: 100, ServerErrors: 5}, false, "5 error replies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.judge(50 * time.Millisecond)
			if r.Pass != tt.pass || r.Why != tt.why {
				t.Fatalf("pass=%v why=%q", r.Pass, r.Why)
			}
		})
	}
}

func TestShare(t *testing.T) {
	tests := []struct {
		n, workers int
		want       [][2]int
	}{
		{10, 1, [][2]int{{0, 10}}},
		{10, 3, [][2]int{{0, 4}, {4, 3}, {7, 3}}},
		{18000, 2, [][2]int{{0, 9000}, {9000, 9000}}},
		{2, 3, [][2]int{{0, 1}, {1, 1}, {2, 0}}},
	}
	for _, tt := range tests {
		for i, w := range tt.want {
			if f, c := share(tt.n, tt.workers, i); f != w[0] || c != w[1] {
				t.Errorf("share(%d,%d,%d) = %d,%d want %d,%d", tt.n, tt.workers, i, f, c, w[0], w[1])
			}
		}
	}
}

func TestSourceIP(t *testing.T) {
	tests := []struct {
		base string
		i    int
		want string
		err  bool
	}{
		{"127.0.0.2", 0, "127.0.0.2", false},
		{"127.0.0.2", 3, "127.0.0.5", false},
		{"127.0.0.255", 1, "127.0.1.0", false},
		{"none", 5, "", false},
		{"10.0.0.1", 0, "", true},
		{"bogus", 0, "", true},
	}
	for _, tt := range tests {
		c := Config{SourceBase: tt.base}
		got, err := c.sourceIP(tt.i)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("sourceIP(%s,%d) = %q, %v", tt.base, tt.i, got, err)
		}
	}
}

func TestResultJSONLRoundTrip(t *testing.T) {
	in := []Result{
		{Scenario: ScenarioIdle, Label: "a", Conn: ConnResult{Opened: 5}, RSSPerConn: 1234},
		{Scenario: ScenarioFanout, Label: "b", Steps: []StepResult{{Step: 1, Delivered: 9, Pass: true}}},
	}
	var buf bytes.Buffer
	for i := range in {
		if err := in[i].WriteJSONL(&buf); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Count(buf.String(), "\n") != 2 {
		t.Fatalf("want one line per result: %q", buf.String())
	}
	out, err := ReadJSONL(&buf)
	if err != nil || len(out) != 2 || out[0].RSSPerConn != 1234 || out[1].Steps[0].Delivered != 9 {
		t.Fatalf("got %+v, %v", out, err)
	}
}

func TestSummaryMentionsFailures(t *testing.T) {
	r := Result{Scenario: ScenarioFanout, Params: Params{Ramp: true},
		Steps: []StepResult{{Step: 1, Rate: 10, Why: "lost 3"}}}
	var b bytes.Buffer
	r.WriteSummary(&b)
	if !strings.Contains(b.String(), "FAIL lost 3") || !strings.Contains(b.String(), "no step passed") {
		t.Fatal(b.String())
	}
}
