// Command gorilla is a baseline chat server for the chatgate benchmarks,
// written the way the gorilla/websocket ecosystem writes one: a goroutine
// per connection for reading, another for writing, and a hub goroutine that
// owns the rooms (the hub / readPump / writePump pattern of gorilla's chat
// example).
//
// It speaks the subset of chatgate's native protocol that the load tool
// uses: welcome, nick, join, leave, send to a room, send to a connection,
// and presence events behind -presence. It serves the WebSocket endpoint on
// /ws and a JSON snapshot on /stats.
//
//	go run ./bench/baseline/gorilla -addr 127.0.0.1:8080 -presence=false
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	presence := flag.Bool("presence", true, "send presence events to room members on joins and leaves")
	sendBuf := flag.Int("send-buffer", 256, "outbound messages queued per client before it is dropped as too slow")
	pidfile := flag.String("pidfile", "", "write the process id to this file once listening")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	hub := newHub(*presence, *sendBuf)
	go hub.run()

	mux := http.NewServeMux()
	mux.HandleFunc("/ws", hub.serveWS)
	mux.HandleFunc("/stats", hub.serveStats)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("listen", "addr", *addr, "err", err)
		os.Exit(1)
	}
	if *pidfile != "" {
		if err := os.WriteFile(*pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Error("pidfile", "err", err)
			os.Exit(1)
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", ln.Addr().String(), "presence", *presence)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// Shutdown does not wait for hijacked WebSocket connections; they
		// end with the process.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}
