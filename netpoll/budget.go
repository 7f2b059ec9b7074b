package netpoll

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// The node-wide outbound budget (Config.MaxPendingTotal,
// -max-pending-total). MaxPending bounds one connection's unsent bytes;
// a thousand stalled clients under it still hold a thousand times that.
// The budget bounds their sum: past it, the connections with the largest
// backlogs are reset as slow consumers, largest first, until the node is
// under it again. Nobody else loses anything: a connection that reads
// keeps a small backlog and is never the largest.
//
// Accounting stays off the per-delivery path:
//
//   - Each loop keeps a list of its backlogged connections: those that
//     still had unsent bytes (gnet's outbound buffer) after a write
//     (conn.backlogged marks a member). A connection that reads drains
//     its buffer within a pass and leaves the list at the next count.
//   - count walks that list (not every connection), drops the ones with
//     nothing left, and publishes the loop's sum into the node's atomic
//     total (Server.pending) as a difference, with its largest backlog
//     (loop.maxBacklog). It runs at the end of every mailbox pass that
//     left a backlog, in every sweep, and mid-pass when the bytes a pass
//     has left unsent could take the node over the budget (loop.grown),
//     so one pass of big broadcasts cannot overshoot by more than a
//     write.
//   - enforce, when the total is over the budget, resets the loop's own
//     largest backlog, unless another loop published a larger one: then
//     that loop is asked (one queued task) to do it, so the order is
//     largest first across the node, not per loop.
//
// Bytes gnet writes out between counts are seen at the next count, so the
// total may lag a drain by up to one sweep period; that only errs on the
// side of a loop re-counting (a count runs before every decision).

// budgetShare and budgetFallback define the default budget: a share of
// the memory the process may use, or the fallback when that is unknown.
const (
	budgetShare    = 8 // 1/8 of memory
	budgetFallback = 512 << 20
)

// DefaultMaxPendingTotal returns the default node-wide budget: an eighth
// of the machine's memory (MemTotal), or of the cgroup's memory limit when
// that is lower; 512 MiB when neither can be read.
func DefaultMaxPendingTotal() int64 {
	m := memoryLimit()
	if m <= 0 {
		return budgetFallback
	}
	return m / budgetShare
}

// memoryLimit is the memory the process may use: the lower of MemTotal
// and the cgroup's limit (v2 memory.max, v1 memory.limit_in_bytes), or 0
// when unknown.
func memoryLimit() int64 {
	var limit int64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if rest, ok := bytes.CutPrefix(s.Bytes(), []byte("MemTotal:")); ok {
				rest = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))
				if kb, err := strconv.ParseInt(string(rest), 10, 64); err == nil {
					limit = kb << 10
				}
				break
			}
		}
		f.Close()
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) mean no limit.
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil && n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	return limit
}

// budget returns the node-wide outbound budget in bytes, 0 when off.
func (s *Server) budget() int64 { return s.cfg.MaxPendingTotal }

// MaxPendingTotal is the node-wide outbound budget in effect, with the
// default resolved: 0 when it is off.
func (s *Server) MaxPendingTotal() int64 { return max(s.cfg.MaxPendingTotal, 0) }

// PendingBytes is the node's unsent outbound bytes as last counted by the
// loops (chatgate_pending_bytes). Safe from any goroutine.
func (s *Server) PendingBytes() int64 { return s.pending.Load() }

// noteWrite records that n bytes were just written to c: c joins the
// loop's backlogged list when gnet holds some of its bytes unsent, and
// when the node may be over the budget the loop enforces it at once. On
// c's loop only.
func (lp *loop) noteWrite(c *conn, n int) {
	left := lp.markBacklog(c)
	if left == 0 {
		return
	}
	b := lp.srv.budget()
	if b <= 0 || lp.deferred {
		return
	}
	lp.grown += int64(min(n, left))
	if lp.srv.pending.Load()+lp.grown > b {
		lp.enforce()
	}
}

// markBacklog adds c to the loop's backlogged list when gnet holds some
// of its bytes unsent, and returns how many.
func (lp *loop) markBacklog(c *conn) int {
	left := c.gc.OutboundBuffered()
	if left > 0 && !c.backlogged {
		c.backlogged = true
		lp.backlog = append(lp.backlog, c)
	}
	return left
}

// count recounts the loop's backlogged connections, drops those with
// nothing left unsent, and publishes the loop's sum and its largest. It
// returns the index in lp.backlog of the largest, -1 when empty.
func (lp *loop) count() int {
	var sum, largest int64
	top := -1
	list := lp.backlog
	n := 0
	for _, c := range list {
		var left int
		if c.state != stateClosed {
			left = c.gc.OutboundBuffered()
		}
		if left == 0 {
			c.backlogged = false
			continue
		}
		list[n] = c
		if int64(left) > largest {
			largest, top = int64(left), n
		}
		n++
		sum += int64(left)
	}
	clear(list[n:])
	lp.backlog = list[:n]
	lp.srv.pending.Add(sum - lp.counted)
	lp.counted = sum
	lp.grown = 0
	lp.maxBacklog.Store(largest)
	return top
}

// settle ends a pass or a sweep: the loop's backlog is recounted when it
// has one (or had one at the last count), and the budget enforced.
func (lp *loop) settle() {
	lp.deferred = false
	if len(lp.backlog) == 0 && lp.counted == 0 {
		return
	}
	if b := lp.srv.budget(); b > 0 {
		lp.enforce()
		return
	}
	lp.count()
}

// enforce brings the node under the budget by resetting this loop's
// largest backlogs, as long as no other loop has a larger one (then that
// loop is asked to continue, and this one waits for its next pass).
func (lp *loop) enforce() {
	srv := lp.srv
	b := srv.budget()
	top := lp.count()
	for top >= 0 && srv.pending.Load() > b {
		c := lp.backlog[top]
		left := int64(c.gc.OutboundBuffered())
		if other := lp.largestElsewhere(); other != nil && other.maxBacklog.Load() > left {
			lp.deferred = true
			if other.budgetQueued.CompareAndSwap(false, true) {
				other.post(task{kind: taskRun, run: other.budgetFn})
			}
			return
		}
		srv.m.NodeBudgetClosed()
		c.slowConsumer("node_budget")
		// c is gone (or goes at the end of its traffic pass): its bytes
		// leave the total now.
		c.backlogged = false
		last := len(lp.backlog) - 1
		lp.backlog[top] = lp.backlog[last]
		lp.backlog[last] = nil
		lp.backlog = lp.backlog[:last]
		srv.pending.Add(-left)
		lp.counted -= left
		top = -1
		var largest int64
		for i, c := range lp.backlog {
			if c.state == stateClosed {
				continue // dropped at the next count
			}
			if v := int64(c.gc.OutboundBuffered()); v > largest {
				largest, top = v, i
			}
		}
		lp.maxBacklog.Store(largest)
	}
}

// largestElsewhere returns the other loop that published the largest
// backlog, or nil.
func (lp *loop) largestElsewhere() *loop {
	var best *loop
	var most int64
	for i := range lp.srv.loops {
		o := lp.srv.loops[i].Load()
		if o == nil || o == lp {
			continue
		}
		if v := o.maxBacklog.Load(); v > most {
			best, most = o, v
		}
	}
	return best
}

// budgetCheck runs on the loop when another loop over the budget found
// this one holding the largest backlog.
func (lp *loop) budgetCheck() {
	lp.budgetQueued.Store(false)
	lp.deferred = false
	if lp.srv.budget() > 0 {
		lp.enforce()
	}
}
