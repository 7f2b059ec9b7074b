package load

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"time"

	"github.com/chatgate/chatgate/bench/proc"
)

// Probe samples the server under test: its process through /proc when the
// pid is known, and its GET /stats endpoint when it answers.
type Probe struct {
	// PID of the server process; 0 skips the /proc figures.
	PID int
	// StatsURL is the server's stats endpoint; "" skips it.
	StatsURL string
	// ProcRoot is the /proc mount; "" means /proc.
	ProcRoot string

	client http.Client
}

// ServerSample is one reading of the server. Fields it could not read are
// zero (or nil for Stats).
type ServerSample struct {
	At      time.Time     `json:"at"`
	RSS     int64         `json:"rss,omitempty"`
	Anon    int64         `json:"rss_anon,omitempty"` // anonymous RSS (proc.Sample.Anon)
	CPU     time.Duration `json:"cpu,omitempty"`
	FDs     int           `json:"fds,omitempty"`
	Threads int           `json:"threads,omitempty"`
	// Connections, Rooms and Goroutines come from /stats; -1 when absent.
	Connections int64  `json:"connections"`
	Rooms       int64  `json:"rooms"`
	Goroutines  int64  `json:"goroutines"`
	Err         string `json:"err,omitempty"`
}

// Sample reads the server now. It takes at most about a second.
func (p *Probe) Sample(ctx context.Context) ServerSample {
	s := ServerSample{At: time.Now(), Connections: -1, Rooms: -1, Goroutines: -1}
	if p.PID > 0 {
		ps, err := proc.Read(p.ProcRoot, p.PID)
		if err != nil {
			s.Err = err.Error()
		}
		s.RSS, s.Anon, s.CPU, s.FDs, s.Threads = ps.RSS, ps.Anon, ps.CPU, ps.FDs, ps.Threads
	}
	if p.StatsURL != "" {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if st, err := p.stats(ctx); err == nil {
			s.Connections = num(st, "connections")
			s.Rooms = num(st, "rooms")
			s.Goroutines = num(st, "goroutines")
		}
	}
	return s
}

func (p *Probe) stats(ctx context.Context) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.StatsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	err = json.NewDecoder(resp.Body).Decode(&m)
	return m, err
}

func num(m map[string]any, k string) int64 {
	if f, ok := m[k].(float64); ok {
		return int64(f)
	}
	return -1
}

// WaitListening dials addr until it accepts a TCP connection or timeout
// passes.
func WaitListening(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
