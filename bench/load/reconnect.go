package load

import (
	"context"
	"errors"
	"strings"
	"time"
)

// redialer dials lost clients again (OpenCmd.Reconnect), at most cap(sem)
// handshakes at once per worker, as a browser page's reconnect would.
type redialer struct {
	ctx context.Context
	sem chan struct{}
}

// reconnectAttempts bounds the dials of one lost client.
const reconnectAttempts = 20

var errGaveUp = errors.New("load: reconnect gave up")

// reconnect dials a lost client again, when the worker reconnects, in a
// goroutine of its own: at another server of the list (reconnectAddr),
// each attempt at the next one, with a growing pause. A client closed
// with a reconnect hint (a draining gateway's 1012) first waits a random
// time within it, as /client.js does. The new client joins the same room, replaces c for publishing
// (c.latest) and keeps c's last timestamp for the duplicate check.
func (w *Worker) reconnect(c *client) {
	rd := w.redial
	if rd == nil || rd.ctx.Err() != nil {
		return
	}
	go func() {
		if d := jitter(c.hint); d > 0 && !sleepCtx(rd.ctx, d) {
			return
		}
		select {
		case rd.sem <- struct{}{}:
		case <-rd.ctx.Done():
			return
		}
		defer func() { <-rd.sem }()
		for a := 1; a <= reconnectAttempts; a++ {
			nc, _, err := dialAt(rd.ctx, &w.cfg, w, c.idx, c.room, reconnectAddr(w.cfg.addr, c.idx, a))
			if err == nil {
				nc.lastT = c.lastT
				c.next.Store(nc)
				if rd.ctx.Err() != nil {
					nc.close()
					return
				}
				w.reconnected.Add(1)
				storeMax(&w.reconnLast, Mono())
				w.startReading(nc)
				return
			}
			w.noteError(err)
			select {
			case <-rd.ctx.Done():
				return
			case <-time.After(backoff(a)):
			}
		}
		w.reconnFail.Add(1)
		w.noteError(errGaveUp)
	}()
}

// reconnectAddr returns the server of attempt a (1, 2, ...) of client idx
// to reconnect, in a comma-separated list of n: never its own server
// (idx mod n, likely down), and the first attempts of the clients of one
// server spread evenly over the n-1 others, so that they do not all land
// on one survivor (which a whole node's clients would push over its
// open-files limit). With one server, that one.
func reconnectAddr(addrs string, idx, a int) string {
	list := strings.Split(addrs, ",")
	n := len(list)
	if n == 1 {
		return list[0]
	}
	own := idx % n
	off := 1 + (idx/n+a-1)%(n-1)
	return list[(own+off)%n]
}

// backoff is the pause after failed attempt a (1, 2, ...): 50 ms growing
// by 50 ms per attempt, at most 1 s.
func backoff(a int) time.Duration {
	return min(time.Duration(a)*50*time.Millisecond, time.Second)
}

// latest returns the client that currently stands for c: c, or the one
// that replaced it after its last reconnect.
func (c *client) latest() *client {
	for {
		n := c.next.Load()
		if n == nil {
			return c
		}
		c = n
	}
}

// closeChain closes c and every client that replaced it.
func (c *client) closeChain() {
	for ; c != nil; c = c.next.Load() {
		c.close()
	}
}

// storeMax raises v to x if x is larger.
func storeMax(v interface {
	Load() int64
	CompareAndSwap(old, new int64) bool
}, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}
