package metrics

import "github.com/prometheus/client_golang/prometheus"

// ForwardOutcome is how a long-polling request for a session of another
// node, forwarded over the cluster (package engineio, cluster mode), ended
// on the node that received it; or, for ForwardServed and ForwardBad, how
// a node handled one forwarded to it.
type ForwardOutcome uint8

// Outcomes of forwarded polling requests, the values of the label outcome
// of chatgate_polling_forwarded_total.
const (
	ForwardAnswered    ForwardOutcome = iota // "answered": the home node answered 200
	ForwardRefused                           // "refused": the home node answered an error (unknown sid, bad request, 401)
	ForwardUnknownNode                       // "unknown_node": the sid names no live node (400 Session ID unknown)
	ForwardUnavailable                       // "unavailable": NATS down, or no answer from the home node in time (503)
	ForwardBusy                              // "busy": past -sio-max-forwarded requests in flight (503)
	ForwardServed                            // "served": a request another node forwarded here, handled
	ForwardBad                               // "bad": a malformed forwarded request, answered 400
	numForwardOutcomes
)

var forwardOutcomeNames = [numForwardOutcomes]string{
	"answered", "refused", "unknown_node", "unavailable", "busy", "served", "bad",
}

// String returns the label value of o.
func (o ForwardOutcome) String() string {
	if o < numForwardOutcomes {
		return forwardOutcomeNames[o]
	}
	return "unknown"
}

// initForward creates chatgate_polling_forwarded_total (New).
func (m *Metrics) initForward(f factory) {
	fw := f.counterVec("polling_forwarded_total",
		"Long-polling requests for sessions of other nodes, forwarded over the cluster, by outcome on the receiving node (answered, refused, unknown_node, unavailable, busy); served and bad count those forwarded to this node.",
		"outcome")
	for o := range m.forward {
		m.forward[o] = fw.WithLabelValues(forwardOutcomeNames[o])
	}
}

// Forwarded counts a forwarded polling request's outcome.
func (m *Metrics) Forwarded(o ForwardOutcome) {
	if m != nil && o < numForwardOutcomes {
		m.forward[o].Inc()
	}
}

// forwardCounters is the field of Metrics initForward fills.
type forwardCounters = [numForwardOutcomes]prometheus.Counter
