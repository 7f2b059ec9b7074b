package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// apiTimeout bounds one publish request, answer included.
const apiTimeout = 10 * time.Second

// appendPublish appends the body of a server API publish to room: the
// same data object a client's send carries, so receivers measure latency
// and count deliveries the same way.
func appendPublish(dst []byte, room int, t int64, k, size int) []byte {
	dst = append(dst, `{"room":"`...)
	dst = roomName(dst, room)
	dst = append(dst, `","data":`...)
	dst = appendData(dst, t, k, size)
	return append(dst, '}')
}

// publishURL is the publish method's address under the API's base URL.
func publishURL(base string) string {
	base = strings.TrimRight(base, "/")
	if strings.HasSuffix(base, "/api/publish") {
		return base
	}
	return base + "/api/publish"
}

// apiClient publishes through the server API over keep-alive connections,
// at most as many as requests may be in flight.
type apiClient struct {
	cfg  APIRun
	url  string
	http *http.Client
}

func newAPIClient(cfg APIRun) *apiClient {
	conc := max(cfg.Concurrency, 1)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conc,
		MaxIdleConnsPerHost: conc,
		MaxConnsPerHost:     conc,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &apiClient{cfg: cfg, url: publishURL(cfg.URL), http: &http.Client{Transport: tr, Timeout: apiTimeout}}
}

// publish posts one body and returns the answer's status, and the start
// of its body when the status is not 200.
func (a *apiClient) publish(ctx context.Context, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.cfg.Key != "" {
		req.Header.Set("Authorization", "apikey "+a.cfg.Key)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var msg []byte
	if resp.StatusCode != http.StatusOK {
		msg, _ = io.ReadAll(io.LimitReader(resp.Body, 200))
	}
	// Read to the end so the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, bytes.TrimSpace(msg), nil
}

func (a *apiClient) close() { a.http.CloseIdleConnections() }

// runAPI publishes one step through the server API on the open-loop
// schedule of run: each message, once due, waits for one of the
// Concurrency request slots, is stamped, and is posted. A 200 answer
// counts the message as sent and owing a delivery to every member of the
// room (the API is not a member); any other answer is an error reply, a
// failed request a send error. Publishing stops at the end of the step's
// duration; the requests still in flight are waited for.
func (w *Worker) runAPI(ctx context.Context, r RunCmd) {
	cfg := *r.API
	if w.api == nil || w.api.cfg != cfg {
		if w.api != nil {
			w.api.close()
		}
		w.api = newAPIClient(cfg)
	}
	api := w.api
	var owed uint64
	if cfg.Room < len(r.Members) && r.Members[cfg.Room] > 0 {
		owed = uint64(r.Members[cfg.Room])
	}
	slots := make(chan struct{}, max(cfg.Concurrency, 1))
	var wg sync.WaitGroup
	w.pace(ctx, r.RatePerPub, r.Duration, func(_ int, due int64) {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		body := appendPublish(nil, cfg.Room, w.stamp(due, r.Slack), r.Step, r.Size)
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			status, msg, err := api.publish(ctx, body)
			switch {
			case err != nil:
				w.sendErrors.Add(1)
				w.noteError(fmt.Errorf("api publish: %w", err))
			case status != http.StatusOK:
				w.srvErrors.Add(1)
				w.noteError(fmt.Errorf("api publish: HTTP %d %s", status, msg))
			default:
				w.sent.Add(1)
				w.expected.Add(owed)
			}
		}()
	})
	wg.Wait()
	w.reportSent()
}
