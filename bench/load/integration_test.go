package load

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

// workerEnv makes the test binary act as a load worker, so the subprocess
// worker path is tested with the real ExecSpawner.
const workerEnv = "CHATGATE_BENCH_LOAD_WORKER"

var buildDir string

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := RunWorker(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "loadtest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce  sync.Once
	gorillaBin string
	buildErr   error
)

// buildGorilla builds the gorilla baseline once per test run.
func buildGorilla(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		// go test puts its own GOROOT/bin first on the test's PATH.
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("building the gorilla baseline: %v", err)
			return
		}
		gorillaBin = filepath.Join(buildDir, "gorilla")
		out, err := exec.Command(goBin, "build", "-o", gorillaBin, "github.com/chatgate/chatgate/bench/baseline/gorilla").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building the gorilla baseline: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return gorillaBin
}

var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startGorilla runs the gorilla baseline on a free loopback port and
// returns its address and process id. The server is killed at cleanup.
func startGorilla(t *testing.T) (string, int) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := exec.Command(buildGorilla(t), "-addr", "127.0.0.1:0", "-presence=false")
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return a, srv.Process.Pid
	case <-time.After(10 * time.Second):
		t.Fatal("gorilla baseline did not report its address")
		return "", 0
	}
}

func runOrFail(t *testing.T, cfg Config) *Result {
	t.Helper()
	// Drains end as soon as every delivery is in; the long limit only
	// matters on a machine too busy to deliver 1,000 messages in time.
	cfg.Drain = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Aborted != "" {
		t.Fatalf("aborted: %s; errors: %v", res.Aborted, res.Errors)
	}
	return res
}

func checkStep(t *testing.T, res *Result, sent, perMsg uint64) {
	t.Helper()
	if len(res.Steps) != 1 {
		t.Fatalf("%d steps", len(res.Steps))
	}
	s := res.Steps[0]
	if s.Sent != sent || s.Expected != sent*perMsg || s.Delivered != s.Expected || s.Lost != 0 {
		t.Fatalf("sent %d expected %d delivered %d lost %d; want %d sent, %d deliveries each, none lost",
			s.Sent, s.Expected, s.Delivered, s.Lost, sent, perMsg)
	}
	if s.Stale != 0 || s.SendErrors != 0 || s.LostConns != 0 {
		t.Fatalf("stale %d, send errors %d, lost connections %d", s.Stale, s.SendErrors, s.LostConns)
	}
	if s.Latency.Max <= 0 || s.Latency.P50 > s.Latency.Max {
		t.Fatalf("implausible latency %+v", s.Latency)
	}
}

func TestFanoutAgainstGorilla(t *testing.T) {
	addr, pid := startGorilla(t)
	res := runOrFail(t, Config{
		Scenario:   ScenarioFanout,
		Addr:       addr,
		Label:      "gorilla",
		Conns:      20,
		Publishers: 5,
		Rate:       50,
		Duration:   time.Second,
		Warmup:     300 * time.Millisecond,
		Workers:    2,
		Probe:      &Probe{PID: pid, StatsURL: "http://" + addr + "/stats"},
	})
	if res.Conn.Opened != 20 || res.Conn.Failed != 0 {
		t.Fatalf("connections: %+v", res.Conn)
	}
	// 5 publishers at 10 msgs/s each for 1s; 19 other members each.
	checkStep(t, res, 50, 19)
	if res.ServerOpen == nil || res.ServerOpen.Connections != 20 || res.ServerOpen.RSS <= 0 {
		t.Fatalf("server sample after connecting: %+v", res.ServerOpen)
	}
}

func TestSubprocessWorkers(t *testing.T) {
	addr, _ := startGorilla(t)
	t.Setenv(workerEnv, "1")
	res := runOrFail(t, Config{
		Scenario:   ScenarioFanout,
		Addr:       addr,
		Conns:      10,
		Publishers: 2,
		Rate:       20,
		Duration:   time.Second,
		Warmup:     -1,
		Workers:    2,
		Loops:      -1, // reader goroutines rather than epoll
		Spawn:      ExecSpawner(os.Args[0], []string{"-test.run=^$"}, os.Stderr),
	})
	checkStep(t, res, 20, 9)
}

func TestRoomsAgainstGorilla(t *testing.T) {
	addr, _ := startGorilla(t)
	res := runOrFail(t, Config{
		Scenario: ScenarioRooms,
		Addr:     addr,
		Conns:    30,
		RoomSize: 10,
		Rate:     2,
		Duration: time.Second,
		Warmup:   -1,
		Workers:  2,
	})
	// 30 clients at 2 msgs/s for 1s, 9 other members in each room.
	checkStep(t, res, 60, 9)
}

func TestIdleAndChurnAgainstGorilla(t *testing.T) {
	addr, pid := startGorilla(t)
	probe := &Probe{PID: pid, StatsURL: "http://" + addr + "/stats"}
	res := runOrFail(t, Config{
		Scenario: ScenarioIdle,
		Addr:     addr,
		Conns:    60,
		RoomSize: 7,
		Duration: time.Second,
		Workers:  2,
		Probe:    probe,
	})
	if res.Conn.Opened != 60 || res.ServerAfter == nil || res.ServerAfter.Connections != 60 || res.ServerAfter.Rooms != 9 {
		t.Fatalf("idle: %+v, server %+v", res.Conn, res.ServerAfter)
	}
	res = runOrFail(t, Config{
		Scenario:         ScenarioChurn,
		Addr:             addr,
		Cycles:           40,
		ChurnConcurrency: 4,
		Settle:           500 * time.Millisecond,
		Workers:          2,
		Probe:            probe,
	})
	ch := res.Churn
	if ch == nil || ch.Cycles != 40 || ch.Failed != 0 {
		t.Fatalf("churn: %+v, errors %v", ch, res.Errors)
	}
}
