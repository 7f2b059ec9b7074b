package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	type msg struct {
		off uint64 // 0: no offset
		q   int64
	}
	tests := []struct {
		name     string
		start    uint64 // join offset
		msgs     []msg
		lostAt   int // call lost() before msgs[lostAt]; -1: never
		lastQ    int64
		lastOff  uint64
		gaps     []qRange
		dups     uint64
		order    uint64
		noOffset uint64
		told     uint64
	}{
		{name: "in order", start: 10, msgs: []msg{{11, 1}, {15, 2}, {16, 3}}, lostAt: -1,
			lastQ: 3, lastOff: 16},
		{name: "gap", start: 10, msgs: []msg{{11, 1}, {14, 4}}, lostAt: -1,
			lastQ: 4, lastOff: 14, gaps: []qRange{{2, 3}}},
		{name: "gap filled late", start: 10, msgs: []msg{{11, 1}, {14, 4}, {12, 2}}, lostAt: -1,
			lastQ: 4, lastOff: 14, gaps: []qRange{{3, 3}}, order: 1},
		{name: "gap filled in the middle", msgs: []msg{{1, 1}, {9, 5}, {3, 3}}, lostAt: -1,
			lastQ: 5, lastOff: 9, gaps: []qRange{{2, 2}, {4, 4}}, order: 1},
		{name: "duplicate (replay overlaps live)", start: 10, msgs: []msg{{11, 1}, {12, 2}, {12, 2}, {13, 3}}, lostAt: -1,
			lastQ: 3, lastOff: 13, dups: 1},
		{name: "offset not increasing", start: 10, msgs: []msg{{11, 1}, {11, 2}}, lostAt: -1,
			lastQ: 2, lastOff: 11, order: 1},
		{name: "offset at the join position", start: 10, msgs: []msg{{10, 1}}, lostAt: -1,
			lastQ: 1, lastOff: 10, order: 1},
		{name: "no offset", start: 10, msgs: []msg{{11, 1}, {0, 2}, {13, 3}}, lostAt: -1,
			lastQ: 3, lastOff: 13, noOffset: 1},
		{name: "told it lost messages: a new run on a new log", start: 500, msgs: []msg{{501, 1}, {502, 2}, {7, 6}, {8, 7}}, lostAt: 2,
			lastQ: 7, lastOff: 8, told: 3},
		{name: "a duplicate after a new run is still one", start: 500, msgs: []msg{{501, 1}, {7, 4}, {7, 4}}, lostAt: 1,
			lastQ: 4, lastOff: 7, told: 2, dups: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := tracker{lastOff: tt.start}
			for i, m := range tt.msgs {
				if i == tt.lostAt {
					tr.lost()
				}
				tr.add(m.off, m.off != 0, m.q)
			}
			if tr.lastQ != tt.lastQ || tr.lastOff != tt.lastOff {
				t.Errorf("lastQ %d lastOff %d, want %d %d", tr.lastQ, tr.lastOff, tt.lastQ, tt.lastOff)
			}
			if len(tr.gaps) != len(tt.gaps) || (len(tt.gaps) > 0 && !reflect.DeepEqual(tr.gaps, tt.gaps)) {
				t.Errorf("gaps %v, want %v", tr.gaps, tt.gaps)
			}
			if tr.dups != tt.dups || tr.outOfOrder != tt.order || tr.noOffset != tt.noOffset || tr.notReplayed != tt.told {
				t.Errorf("dups %d out of order %d no offset %d not replayed %d, want %d %d %d %d",
					tr.dups, tr.outOfOrder, tr.noOffset, tr.notReplayed, tt.dups, tt.order, tt.noOffset, tt.told)
			}
		})
	}
}

func TestResumeDataAndOffsets(t *testing.T) {
	d := appendResumeData(nil, 123456789, 42, 64)
	if len(d) != 64 || !json.Valid(d) {
		t.Fatalf("data %q (%d bytes)", d, len(d))
	}
	live := `{"type":"message","room":"r3","from":"k1","nick":"p3","data":` + string(d) + `,"ts":17,"offset":9001}`
	rec := `{"type":"recovered","room":"r3","recovered":true,"messages":[` + live + `],"offset":9005,"epoch":"e"}`
	if tt, k, ok := parseData([]byte(live)); !ok || tt != 123456789 || k != 0 {
		t.Fatalf("parseData = %d %d %v", tt, k, ok)
	}
	if q, ok := parseQ([]byte(live)); !ok || q != 42 {
		t.Fatalf("parseQ = %d %v", q, ok)
	}
	if off, ok := parseOffset([]byte(live)); !ok || off != 9001 {
		t.Fatalf("parseOffset = %d %v", off, ok)
	}
	if _, ok := parseOffset([]byte(`{"type":"message","data":` + string(d) + `,"ts":17}`)); ok {
		t.Fatal("parseOffset found an offset in a message without one")
	}
	// A recovered event is not taken for a message, however short its
	// room name.
	if !bytes.HasPrefix([]byte(rec), recoveredPrefix) {
		t.Fatal("recovered event not recognised")
	}
	var ev recoveredEvent
	if err := json.Unmarshal([]byte(rec), &ev); err != nil || !ev.Recovered || len(ev.Messages) != 1 {
		t.Fatalf("recovered event: %+v %v", ev, err)
	}
	if off, ok := parseOffset(ev.Messages[0]); !ok || off != 9001 {
		t.Fatalf("offset of a replayed message = %d %v", off, ok)
	}
}

func TestParseRecoveryMetrics(t *testing.T) {
	text := `# HELP chatgate_recoveries_total Connection state recovery
# TYPE chatgate_recoveries_total counter
chatgate_recoveries_total{outcome="failed"} 3
chatgate_recoveries_total{outcome="kept"} 1.2e+06
chatgate_recoveries_total{outcome="recovered"} 997
chatgate_cluster_remote_kept_total 20
chatgate_connections 5
`
	rc, err := parseRecoveryMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if rc.kept != 1_200_020 || rc.recovered != 997 || rc.failed != 3 {
		t.Fatalf("%+v", rc)
	}
	if _, err := parseRecoveryMetrics(strings.NewReader("chatgate_connections 5\n")); !errors.Is(err, errNoRecoveryMetrics) {
		t.Fatalf("without the counter: %v", err)
	}
}

func TestResumeConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"unknown drop":   {Scenario: ScenarioResume, Addr: "127.0.0.1:1", Conns: 10, Resume: ResumeConfig{Drop: "nodes"}},
		"socket.io":      {Scenario: ScenarioResume, Addr: "127.0.0.1:1", Conns: 10, Proto: SocketIO},
		"no connections": {Scenario: ScenarioResume, Addr: "127.0.0.1:1"},
	} {
		if err := cfg.setDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	cfg := Config{Scenario: ScenarioResume, Addr: "127.0.0.1:1", Conns: 20000, PerWorker: 10000}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	r := cfg.Resume
	// 20,000 members and 400 publishers need three workers of 10,000.
	if r.Drop != DropClients || r.ResumeAddr != cfg.Addr || cfg.Rate != 2 || cfg.Workers != 3 || r.NoticeWait != time.Second {
		t.Fatalf("defaults: %+v, rate %v, workers %d", r, cfg.Rate, cfg.Workers)
	}
}

// startRecoveryGateway runs the gateway with recovery on and its admin
// listener; extra flags are appended. It returns the WebSocket and admin
// addresses and the process, which is killed at cleanup.
func startRecoveryGateway(t *testing.T, extra ...string) (string, string, *exec.Cmd) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a server")
	}
	addr, admin := freeAddr(t), freeAddr(t)
	args := append([]string{"-addr", addr, "-admin-addr", admin, "-api-addr=", "-presence=false",
		"-rate-messages", "-1", "-rate-bytes", "-1", "-max-connections-per-ip", "-1"}, extra...)
	srv := exec.Command(buildGateway(t), args...)
	var logs bytes.Buffer // shown if the test fails
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("gateway %s log:\n%s", addr, logs.String())
		}
	})
	for _, a := range []string{addr, admin} {
		if err := WaitListening(t.Context(), a, 10*time.Second); err != nil {
			t.Fatalf("gateway at %s: %v", a, err)
		}
	}
	return addr, admin, srv
}

// resumeConfig is a small, quick resume run: 50 members in 5 rooms, 5
// messages/s per room.
func resumeConfig(addr string) Config {
	return Config{
		Scenario: ScenarioResume,
		Addr:     addr,
		Label:    "chatgate",
		Conns:    50,
		RoomSize: 10,
		Rate:     5,
		Workers:  2,
		Drain:    5 * time.Second,
		Deadline: time.Minute,
		Resume: ResumeConfig{
			DropAfter: 500 * time.Millisecond,
			Outage:    500 * time.Millisecond,
			Tail:      500 * time.Millisecond,
			Timeout:   20 * time.Second,
		},
	}
}

func TestResumeClientsDrop(t *testing.T) {
	addr, admin, srv := startRecoveryGateway(t)
	cfg := resumeConfig(addr)
	cfg.Resume.Admin = admin
	cfg.Probe = &Probe{PID: srv.Process.Pid}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rr := res.Resume
	if res.Aborted != "" || rr == nil {
		t.Fatalf("aborted: %s; errors %v", res.Aborted, res.Errors)
	}
	if !rr.Pass {
		t.Fatalf("failed: %s; %+v; errors %v", rr.Why, rr, res.Errors)
	}
	if rr.Members != 50 || rr.Dropped != 50 || rr.Resumed != 50 || rr.Recovered != 50 || rr.Verified != 50 {
		t.Fatalf("members %d dropped %d resumed %d recovered %d verified %d",
			rr.Members, rr.Dropped, rr.Resumed, rr.Recovered, rr.Verified)
	}
	// The gateway counted what the clients saw.
	if !rr.NoticeMeasured || rr.Kept != 50 || rr.ServerRecovered != 50 || rr.ServerFailed != 0 {
		t.Fatalf("gateway: noticed %v, kept %d, recovered %d, refused %d", rr.NoticeMeasured, rr.Kept, rr.ServerRecovered, rr.ServerFailed)
	}
	// Messages published while the members were away (500 ms at 5/s in
	// each room) came back in the recovered events.
	if rr.Replayed < 50 || rr.Published == 0 || rr.Live == 0 {
		t.Fatalf("replayed %d, published %d, live %d", rr.Replayed, rr.Published, rr.Live)
	}
	if rr.Missing != 0 || rr.Duplicates != 0 || rr.OutOfOrder != 0 || rr.Unconfirmed != 0 || rr.NoOffset != 0 {
		t.Fatalf("check: %+v", rr)
	}
	if rr.TotalS <= 0 || rr.Done.Max <= 0 || rr.Welcome.P50 > rr.Done.Max {
		t.Fatalf("timings: total %v welcome %+v done %+v", rr.TotalS, rr.Welcome, rr.Done)
	}
	if rr.ServerDropped == nil || rr.ServerDropped.RSS <= 0 {
		t.Fatalf("server sample: %+v", rr.ServerDropped)
	}
	var out bytes.Buffer
	res.WriteSummary(&out)
	if !strings.Contains(out.String(), "result: ok") {
		t.Fatalf("summary:\n%s", out.String())
	}
}

// TestResumeExternalDrop kills the gateway the members are on once the
// scenario says it is ready, and resumes them on another, independent
// gateway: their tokens are unknown there, so every member gets a new
// session and joins again, cut publishers reconnect, and the check still
// finds nothing missing or doubled after the new start.
func TestResumeExternalDrop(t *testing.T) {
	addr1, _, gw1 := startRecoveryGateway(t)
	addr2, _, _ := startRecoveryGateway(t)
	signal := filepath.Join(t.TempDir(), "ready")
	cfg := resumeConfig(addr1)
	cfg.Resume.Drop = DropExternal
	cfg.Resume.ResumeAddr = addr2
	cfg.Resume.DropSignal = signal
	cfg.Resume.DropTimeout = 20 * time.Second
	cfg.Resume.NoticeWait = 200 * time.Millisecond
	killed := make(chan error, 1)
	go func() {
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(signal); err == nil {
				killed <- gw1.Process.Kill()
				return
			}
		}
		killed <- errors.New("no drop signal")
	}()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-killed; err != nil {
		t.Fatal(err)
	}
	rr := res.Resume
	if res.Aborted != "" || rr == nil {
		t.Fatalf("aborted: %s; errors %v", res.Aborted, res.Errors)
	}
	if rr.Dropped != 50 || rr.Resumed != 50 || rr.NotRecovered != 50 || rr.Recovered != 0 || rr.Verified != 50 {
		t.Fatalf("dropped %d resumed %d not recovered %d recovered %d verified %d; errors %v",
			rr.Dropped, rr.Resumed, rr.NotRecovered, rr.Recovered, rr.Verified, res.Errors)
	}
	if rr.PubCuts != 5 || rr.PubReconnects != 5 {
		t.Fatalf("publishers: %d cuts, %d reconnections", rr.PubCuts, rr.PubReconnects)
	}
	if rr.Missing != 0 || rr.Duplicates != 0 || rr.OutOfOrder != 0 || rr.Behind != 0 {
		t.Fatalf("check: %+v", rr)
	}
	if rr.Pass || !strings.Contains(rr.Why, "50 sessions not recovered") {
		t.Fatalf("pass %v: %s", rr.Pass, rr.Why)
	}
}

func TestResumeNeedsRecovery(t *testing.T) {
	addr, _, _ := startRecoveryGateway(t, "-recovery-window", "0")
	cfg := resumeConfig(addr)
	cfg.Conns, cfg.Retries = 5, -1
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Aborted, "no member connected") || !strings.Contains(strings.Join(res.Errors, " "), `no "session"`) {
		t.Fatalf("aborted %q, errors %v", res.Aborted, res.Errors)
	}
}

// TestResumeRoll drains the gateway the members are on (SIGTERM, close
// 1012 with a 300 ms reconnect hint) and lets them resume by themselves
// (-drop roll) at the next server of the list, an independent gateway:
// every member and publisher waits within the hint and comes back (with a
// new session, since the second gateway does not know the tokens), and
// nothing is missing or doubled.
func TestResumeRoll(t *testing.T) {
	addr1, _, gw1 := startRecoveryGateway(t, "-drain-spread", "300ms", "-drain-timeout", "3s")
	addr2, _, _ := startRecoveryGateway(t)
	dir := t.TempDir()
	ready, done := filepath.Join(dir, "ready"), filepath.Join(dir, "done")
	cfg := resumeConfig(addr1)
	cfg.Resume.Drop = DropRoll
	cfg.Resume.ResumeAddr = addr1 + "," + addr2
	cfg.Resume.DropSignal = ready
	cfg.Resume.RollDone = done
	cfg.Resume.DropTimeout = 30 * time.Second
	drained := make(chan error, 1)
	go func() {
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(ready); err == nil {
				if err := gw1.Process.Signal(syscall.SIGTERM); err != nil {
					drained <- err
					return
				}
				// The drain ends once every client has closed.
				err := gw1.Wait()
				if err == nil {
					err = os.WriteFile(done, nil, 0o644)
				}
				drained <- err
				return
			}
		}
		drained <- errors.New("no ready signal")
	}()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	rr := res.Resume
	if res.Aborted != "" || rr == nil {
		t.Fatalf("aborted: %s; errors %v", res.Aborted, res.Errors)
	}
	if rr.Dropped != 50 || rr.Restarts != 50 || rr.Hinted != 50 {
		t.Fatalf("ends %d, with 1012 %d, with a hint %d", rr.Dropped, rr.Restarts, rr.Hinted)
	}
	if rr.Waited.Max > 300 || rr.Waited.Max < 30 {
		t.Fatalf("waits within a 300 ms hint: %+v", rr.Waited)
	}
	if rr.Resumed != 50 || rr.NotRecovered != 50 || rr.ResumeFailed != 0 || rr.Verified != 50 {
		t.Fatalf("resumed %d not recovered %d failed %d verified %d; errors %v",
			rr.Resumed, rr.NotRecovered, rr.ResumeFailed, rr.Verified, res.Errors)
	}
	if rr.PubCuts != 5 || rr.PubReconnects != 5 {
		t.Fatalf("publishers: %d cuts, %d reconnections", rr.PubCuts, rr.PubReconnects)
	}
	if rr.Missing != 0 || rr.Duplicates != 0 || rr.OutOfOrder != 0 || rr.Behind != 0 {
		t.Fatalf("check: %+v", rr)
	}
	if rr.PeakResumes < 1 || rr.PeakResumes > 50 {
		t.Fatalf("peak resumes per 100 ms: %d", rr.PeakResumes)
	}
}
