package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Register exports Stats as chatgate_cluster_* metrics on reg (e.g.
// metrics.Metrics.Registry()). Values are read at scrape time with atomic
// loads; nothing is updated per message.
func (c *Cluster) Register(reg prometheus.Registerer) error {
	counter := func(name, help string, v func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "chatgate", Subsystem: "cluster", Name: name, Help: help},
			func() float64 { return float64(v()) })
	}
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "chatgate", Subsystem: "cluster", Name: name, Help: help}, v)
	}
	cs := []prometheus.Collector{
		gauge("connected", "1 while the NATS connection is up.", func() float64 {
			if c.nc.IsConnected() {
				return 1
			}
			return 0
		}),
		counter("reconnects_total", "Reconnections to NATS.", c.stats.reconnects.Load),
		counter("published_total", "Room and direct messages handed to NATS.", c.stats.published.Load),
		counter("undelivered_total", "Room and direct messages not handed to NATS (broker down, queue full, closed); local delivery unaffected.", c.stats.undelivered.Load),
		counter("state_lost_total", "State events and heartbeats not published; peers resynchronise.", c.stats.stateLost.Load),
		counter("received_total", "Room and direct messages received from peers.", c.stats.received.Load),
		counter("dropped_total", "Inbound messages dropped because the dispatcher queue was full.", c.stats.dropped.Load),
		counter("bad_payloads_total", "Inbound payloads that did not decode (or of another wire version).", c.stats.bad.Load),
		counter("forged_total", "Inbound payloads dropped as unsigned or with a wrong HMAC (-cluster-key), node API requests and replies included.", c.stats.forged.Load),
		counter("invalid_payloads_total", "Inbound payloads dropped for breaking the limits of client input (data not JSON or too large, ids not of the origin node, names too long).", c.stats.invalid.Load),
		counter("resyncs_total", "Membership snapshots requested from peers.", c.stats.resyncs.Load),
		gauge("nodes", "Live peer nodes.", func() float64 { return float64(c.stats.nodes.Load()) }),
		gauge("remote_sessions", "Sessions on peer nodes.", func() float64 { return float64(c.stats.sessions.Load()) }),
		gauge("subscriptions", "Room subjects subscribed (rooms with local members).", func() float64 { return float64(c.stats.subs.Load()) }),
		gauge("history_sequencing", "1 when room messages go through the JetStream history stream.", func() float64 {
			if c.Sequencing() {
				return 1
			}
			return 0
		}),
		counter("history_published_total", "Room messages handed to the JetStream history stream.", c.stats.histPublished.Load),
		counter("history_failed_total", "Room messages JetStream did not take (no stream, NATS down, no acknowledgement in time), delivered without an offset.", c.stats.histFailed.Load),
		counter("history_dropped_total", "Room messages lost on this node: the queue to the JetStream publisher, or of failed publishes, was full.", c.stats.histDropped.Load),
		counter("history_received_total", "Messages read from the history stream, the replay at start included.", c.stats.histReceived.Load),
		counter("history_unsequenced_total", "Room messages delivered without an offset (failed publishes of this node and of peers).", c.stats.unsequenced.Load),
		counter("history_missing_total", "Stream sequences this node never delivered: deleted before it read them, or invalid payloads.", c.stats.histMissing.Load),
		gauge("history_offset", "The last stream sequence this node has delivered or loaded.", func() float64 { return float64(c.stats.histOffset.Load()) }),
		counter("remote_kept_total", "Sessions of other nodes kept here for recovery (a recoverable close, their node's death or goodbye).", c.stats.remoteKept.Load),
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return err
		}
	}
	return nil
}
