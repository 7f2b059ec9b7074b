package e2e

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scrape reads the admin listener's /metrics as name{labels} → value.
func scrape(t *testing.T, g *gateway) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetricsMoveWhenClientsChat: the admin listener's Prometheus metrics
// follow what clients do, and /readyz turns unready as soon as a drain
// starts.
func TestMetricsMoveWhenClientsChat(t *testing.T) {
	g := startGateway(t, "-drain-timeout", "3s")
	if s := httpStatus(t, "http://"+g.admin+"/readyz"); s != 200 {
		t.Fatalf("/readyz = %d before drain", s)
	}
	before := scrape(t, g)
	a, b := dial(t, g), dial(t, g)
	a.request(map[string]any{"type": "join", "room": "m"})
	b.request(map[string]any{"type": "join", "room": "m"})
	a.readType("presence")
	for i := 0; i < 10; i++ {
		a.request(map[string]any{"type": "send", "room": "m", "data": i})
	}
	for i := 0; i < 10; i++ {
		b.readType("message")
	}
	a.request(map[string]any{"type": "send", "room": "nowhere", "data": 1}) // not_member
	after := scrape(t, g)

	grew := func(name string, min float64) {
		t.Helper()
		if d := after[name] - before[name]; d < min {
			t.Errorf("%s grew by %v, want at least %v", name, d, min)
		}
	}
	grew("chatgate_connections_opened_total", 2)
	grew(`chatgate_handshakes_total{transport="websocket"}`, 2)
	grew("chatgate_messages_received_total", 13)
	grew("chatgate_messages_delivered_total", 11) // 10 messages + 1 presence to a
	grew("chatgate_received_bytes_total", 100)
	grew("chatgate_sent_bytes_total", 100)
	grew(`chatgate_errors_total{code="not_member"}`, 1)
	grew("chatgate_broadcast_fanout_size_count", 10)
	if after["chatgate_rooms"] != 1 || after["chatgate_room_members"] != 2 {
		t.Errorf("rooms %v members %v, want 1 and 2", after["chatgate_rooms"], after["chatgate_room_members"])
	}
	if after["chatgate_sessions"] != 2 {
		t.Errorf("sessions %v, want 2", after["chatgate_sessions"])
	}

	// A protocol violation is counted under its close code.
	r := dialRaw(t, g)
	r.upgrade()
	r.readFrame()
	r.write(clientFrame(true, 1, []byte{'"', 0xff, '"'}))
	r.readCloseCode()
	deadline := time.Now().Add(5 * time.Second)
	for scrape(t, g)[`chatgate_connections_closed_total{reason="1007"}`] < 1 {
		if time.Now().After(deadline) {
			t.Fatal("close 1007 not counted")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Drain: clients that do not read keep the drain going, and /readyz
	// says 503 meanwhile.
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for httpStatus(t, "http://"+g.admin+"/readyz") != 503 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still ready during the drain")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
