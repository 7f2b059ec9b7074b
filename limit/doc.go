/*
Package limit holds chatgate's resource limits: per-connection token
buckets for messages and bytes, the strike counter that turns sustained
rate-limit violations into a close, connection counters (total and per
client address), and the Config that gathers these limits with their
defaults. The client address itself comes from package clientip.

It is pure and built for the event loop: no goroutines, no timers and no
time.Now on the hot path. Callers pass the time as now, Unix nanoseconds
(netpoll passes its coarse clock, which OnTick advances). Bucket, Strikes
and Conn are plain values embedded in the per-connection state and touched
only on the connection's own loop; PerIP and Total are shared by all loops
and safe for concurrent use. Nothing here allocates per message or per
connection (see the benchmarks).

Per message, on the connection's loop:

	switch c.lim.Message(now, len(payload), &cfg) {
	case limit.Pass:
		// handle it
	case limit.Limited:
		// drop it, reply with the error "rate_limited"
	case limit.Abuse:
		// close with 1008 (policy violation)
	}

Per connection:

	if !total.Acquire(cfg.MaxConnections) {
		// refuse with 503
	}
	if !perIP.Acquire(ip, cfg.MaxConnectionsPerIP) {
		// refuse with 429 (and total.Release())
	}
	// when the connection closes: perIP.Release(ip); total.Release()

# Why token buckets with debt

A bucket stores how many tokens are missing ("debt") rather than how many
are left, so its zero value is a full bucket and needs no initialisation
when a connection opens. A message costing more than the whole burst is let
through when the bucket is full and leaves the bucket in debt beyond the
burst: a large message is never refused forever (the message size limit is
-max-message's job), it only has to wait until the bucket has refilled,
and the long-run rate still holds.
*/
package limit
