package load

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	gatewayOnce sync.Once
	gatewayBin  string
	gatewayErr  error
)

// buildGateway builds chatgate's gateway (the workspace's other module)
// once per test run; it skips the test outside the workspace.
func buildGateway(t *testing.T) string {
	t.Helper()
	gatewayOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			gatewayErr = err
			return
		}
		gatewayBin = filepath.Join(buildDir, "gateway")
		out, err := exec.Command(goBin, "build", "-o", gatewayBin, "github.com/chatgate/chatgate/cmd/gateway").CombinedOutput()
		if err != nil {
			gatewayErr = fmt.Errorf("building the gateway: %v\n%s", err, out)
		}
	})
	if gatewayErr != nil {
		if strings.Contains(gatewayErr.Error(), "is not in std") || strings.Contains(gatewayErr.Error(), "no required module") {
			t.Skip("the gateway's module is not in the workspace:", gatewayErr)
		}
		t.Fatal(gatewayErr)
	}
	return gatewayBin
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGateway runs the gateway with its server API (and extra flags) and
// returns the WebSocket and API addresses. The gateway is killed at
// cleanup.
func startGateway(t *testing.T, key string, extra ...string) (string, string, int) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a server")
	}
	addr, apiAddr := freeAddr(t), freeAddr(t)
	args := append([]string{"-addr", addr, "-admin-addr=", "-api-addr", apiAddr, "-api-key", key,
		"-rate-messages", "-1", "-rate-bytes", "-1", "-presence=false", "-max-connections-per-ip", "-1"}, extra...)
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
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	ctx := t.Context()
	for _, a := range []string{addr, apiAddr} {
		if err := WaitListening(ctx, a, 10*time.Second); err != nil {
			t.Fatalf("gateway at %s: %v", a, err)
		}
	}
	return addr, apiAddr, srv.Process.Pid
}

func TestFanoutThroughGatewayAPI(t *testing.T) {
	addr, apiAddr, pid := startGateway(t, "test-key")
	res := runOrFail(t, Config{
		Scenario:       ScenarioFanout,
		Addr:           addr,
		Label:          "chatgate",
		Conns:          20,
		Rate:           50,
		Duration:       time.Second,
		Warmup:         300 * time.Millisecond,
		Workers:        2,
		Publisher:      PublisherAPI,
		APIURL:         "http://" + apiAddr,
		APIKey:         "test-key",
		APIConcurrency: 4,
		Probe:          &Probe{PID: pid},
	})
	if res.Params.Publisher != PublisherAPI || res.Params.APIConcurrency != 4 || res.Params.Publishers != 0 {
		t.Fatalf("params %+v", res.Params)
	}
	// 50 publishes in 1 s, each delivered to all 20 members.
	checkStep(t, res, 50, 20)
	if s := res.Steps[0]; s.ServerErrors != 0 || s.ServerCPU <= 0 {
		t.Fatalf("step %+v", s)
	}

	// A wrong key: every publish is refused, counted, and fails the step.
	res2, err := Run(t.Context(), Config{
		Scenario: ScenarioFanout, Addr: addr, Conns: 4, Rate: 20, Duration: 300 * time.Millisecond,
		Warmup: -1, Drain: 200 * time.Millisecond, Publisher: PublisherAPI, APIURL: "http://" + apiAddr, APIKey: "wrong",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := res2.Steps[0]
	if s.Pass || s.Sent != 0 || s.ServerErrors == 0 || !strings.Contains(strings.Join(res2.Errors, " "), "HTTP 401") {
		t.Fatalf("wrong key: step %+v, errors %v", s, res2.Errors)
	}
}

// TestIdleCompressionThroughGateway: with -compression the idle clients
// negotiate permessage-deflate and their compressed joins are inflated
// and acknowledged; against a gateway without it they fail rather than
// measure plain connections.
func TestIdleCompressionThroughGateway(t *testing.T) {
	addr, _, pid := startGateway(t, "k", "-compression")
	res := runOrFail(t, Config{
		Scenario: ScenarioIdle, Addr: addr, Conns: 20, RoomSize: 5, Duration: 300 * time.Millisecond,
		Workers: 2, Compression: true, Probe: &Probe{PID: pid},
	})
	if res.Conn.Opened != 20 {
		t.Fatalf("compressing idle clients: %+v, errors %v", res.Conn, res.Errors)
	}
	plain, _, _ := startGateway(t, "k")
	res, err := Run(t.Context(), Config{
		Scenario: ScenarioIdle, Addr: plain, Conns: 4, RoomSize: 2, Duration: 100 * time.Millisecond,
		Workers: 1, Retries: -1, Compression: true,
	})
	if err == nil && res.Conn.Opened != 0 {
		t.Fatalf("%d clients opened without permessage-deflate", res.Conn.Opened)
	}
	if err == nil && !strings.Contains(strings.Join(res.Errors, " "), "permessage-deflate") {
		t.Fatalf("errors %v, want one naming permessage-deflate", res.Errors)
	}
}
