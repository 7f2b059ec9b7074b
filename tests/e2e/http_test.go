package e2e

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHTTPEndpoints(t *testing.T) {
	g := startGateway(t)
	tests := []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"healthz", "GET", "/healthz", 200, "ok\n"},
		{"not found", "GET", "/nope", 404, ""},
		{"ws without upgrade", "GET", "/ws", 426, ""},
		{"post healthz", "POST", "/healthz", 405, ""},
		{"echo off by default", "GET", "/echo", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+g.addr+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.body != "" && string(body) != tt.body {
				t.Fatalf("body %q, want %q", body, tt.body)
			}
		})
	}
	st := g.stats(t)
	for _, k := range []string{"connections", "rooms", "goroutines"} {
		if _, ok := st[k]; !ok {
			t.Fatalf("stats lacks %q: %v", k, st)
		}
	}
}

func TestMalformedAndOversizeHeads(t *testing.T) {
	g := startGateway(t)
	tests := []struct {
		name, req string
		status    int
	}{
		{"garbage", "HELLO\r\n\r\n", 400},
		{"bad header line", "GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", 400},
		{"http 2 version", "GET /healthz HTTP/2.0\r\n\r\n", 505},
		{"huge head", "GET /healthz HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 9000) + "\r\n\r\n", 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dialRaw(t, g)
			r.write([]byte(tt.req))
			resp, err := http.ReadResponse(bufio.NewReader(r.nc), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

// TestHandshakeInPieces sends the upgrade request a few bytes at a time.
func TestHandshakeInPieces(t *testing.T) {
	g := startGateway(t)
	r := dialRaw(t, g)
	req := []byte(upgradeRequest)
	for i := 0; i < len(req); i += 7 {
		end := min(i+7, len(req))
		r.write(req[i:end])
		time.Sleep(time.Millisecond)
	}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	if op, p := r.readFrame(); op != 1 || !strings.Contains(string(p), "welcome") {
		t.Fatalf("welcome: %d %q", op, p)
	}
}

func TestSlowHandshakeTimesOut(t *testing.T) {
	g := startGateway(t, "-handshake-timeout", "500ms")
	r := dialRaw(t, g)
	r.write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\n"))
	start := time.Now()
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		t.Fatalf("want a 408 response, got %v", err)
	}
	if resp.StatusCode != 408 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("timed out after %v", el)
	}
}
