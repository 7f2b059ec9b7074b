package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
)

// Requests between nodes: the server API runs a command on the node that
// owns a connection, or on every node, and gathers the answers. A request
// goes to one node's API subject with NATS request/reply; the node serves
// it on a NATS callback goroutine, never on the dispatcher or an event
// loop, and the number waiting on one node is bounded by the
// subscription's pending limits.

// Bounds of the API subscription's backlog on each node: requests past
// them are dropped by NATS (and time out at the caller).
const (
	apiPendingMsgs  = 1024
	apiPendingBytes = 64 << 20
)

// ErrNoNode is returned by Call for a node that is not in the cluster.
var ErrNoNode = errors.New("cluster: no such node")

// ErrForgedReply is returned by Call, with a key, for an answer that is not
// signed with it.
var ErrForgedReply = errors.New("cluster: unsigned or forged node API reply")

// Serve answers other nodes' requests with fn, called once per request on
// a NATS goroutine (one at a time); what fn returns is the answer. Call it
// once, after New. With a key, requests must be signed (others are dropped
// unanswered and counted in Stats.Forged) and answers are.
func (c *Cluster) Serve(fn func(req []byte) []byte) error {
	return c.ServeAsync(func(req []byte, respond func([]byte)) { respond(fn(req)) })
}

// ServeAsync is Serve for requests whose answer may come later: fn, called
// on the NATS goroutine one request at a time, must not block; it calls
// respond once, from any goroutine, with the answer (a request that waits
// for a client's acknowledgement answers from its own goroutine, so that
// it does not hold up the node's other requests).
func (c *Cluster) ServeAsync(fn func(req []byte, respond func([]byte))) error {
	return c.serveOn(c.apiSubject(c.cfg.Node), "API requests", fn)
}

// serveOn serves node-addressed requests on subject with fn (ServeAsync).
func (c *Cluster) serveOn(subject, what string, fn func(req []byte, respond func([]byte))) error {
	sub, err := c.nc.Subscribe(subject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		if !c.sign.on() {
			fn(m.Data, func(res []byte) { _ = m.Respond(res) })
			return
		}
		req, ok := c.openAPI(m.Data, kindAPIReq)
		if !ok {
			return
		}
		fn(req, func(res []byte) { _ = m.Respond(c.sign.seal(appendAPI(nil, kindAPIRes, c.cfg.Node, res))) })
	})
	if err != nil {
		return fmt.Errorf("cluster: serve %s: %w", what, err)
	}
	if err := sub.SetPendingLimits(apiPendingMsgs, apiPendingBytes); err != nil {
		return err
	}
	// Make sure the server knows the subscription before the node is
	// reachable; during an outage it registers on reconnect.
	_ = c.nc.FlushTimeout(2 * time.Second)
	return nil
}

// Call sends req to node's Serve function and returns its answer, or an
// error when the node does not answer before ctx ends.
func (c *Cluster) Call(ctx context.Context, node string, req []byte) ([]byte, error) {
	if !validToken(node) {
		return nil, ErrNoNode
	}
	return c.callOn(ctx, c.apiSubject(node), node, req)
}

// callOn sends req to node's handler on subject and returns its answer
// (Call).
func (c *Cluster) callOn(ctx context.Context, subject, node string, req []byte) ([]byte, error) {
	if c.sign.on() {
		req = c.sign.seal(appendAPI(nil, kindAPIReq, c.cfg.Node, req))
	}
	m, err := c.nc.RequestWithContext(ctx, subject, req)
	if err != nil {
		return nil, fmt.Errorf("cluster: request to node %s: %w", node, err)
	}
	if !c.sign.on() {
		return m.Data, nil
	}
	res, ok := c.openAPI(m.Data, kindAPIRes)
	if !ok {
		return nil, fmt.Errorf("cluster: request to node %s: %w", node, ErrForgedReply)
	}
	return res, nil
}

// openAPI checks a signed node API payload of kind k and returns its body.
// It reports false, counted, for one that is forged or malformed.
func (c *Cluster) openAPI(b []byte, k kind) ([]byte, bool) {
	var w wireMsg
	body, err := c.sign.open(b)
	if err == nil {
		err = decodeBody(body, &w)
	}
	switch {
	case err == nil && w.kind == k && validToken(str(w.origin)):
		return w.data, true
	case errors.Is(err, errForged):
		c.stats.forged.Add(1)
		c.warn("cluster: dropped an unsigned or forged node API payload")
	default:
		c.stats.bad.Add(1)
		c.warn("cluster: bad node API payload", "err", err)
	}
	return nil, false
}

func (c *Cluster) apiSubject(node string) string { return c.cfg.Prefix + ".api." + node }

// Long-polling requests forwarded to a session's home node (package
// engineio, forward.go) travel as node requests of their own, on a subject
// apart from the API's: a node serves them whether or not its API is on,
// and a flood of one never queues behind the other.

// ServePolling answers polling requests other nodes forward to this node
// with fn, as ServeAsync does for API requests. Call it once, after New.
func (c *Cluster) ServePolling(fn func(req []byte, respond func([]byte))) error {
	return c.serveOn(c.pollSubject(c.cfg.Node), "forwarded polling requests", fn)
}

// CallPolling forwards a polling request to node's ServePolling and
// returns its answer, as Call does. It fails at once, without waiting for
// ctx, while NATS is disconnected, and with ErrNoNode for a tag that
// cannot name a node.
func (c *Cluster) CallPolling(ctx context.Context, node string, req []byte) ([]byte, error) {
	if !validToken(node) {
		return nil, ErrNoNode
	}
	if !c.nc.IsConnected() {
		return nil, ErrDisconnected
	}
	return c.callOn(ctx, c.pollSubject(node), node, req)
}

// ErrDisconnected is returned by CallPolling while NATS is unreachable.
var ErrDisconnected = errors.New("cluster: NATS disconnected")

// Connected reports whether the connection to NATS is up. Safe from any
// goroutine.
func (c *Cluster) Connected() bool { return c.nc.IsConnected() }

func (c *Cluster) pollSubject(node string) string { return c.cfg.Prefix + ".poll." + node }

// Nodes returns the tags of the other nodes this node knows to be alive,
// sorted. Safe from any goroutine.
func (c *Cluster) Nodes() []string {
	if p := c.nodes.Load(); p != nil {
		return *p
	}
	return nil
}

// publishNodes refreshes the node list Nodes returns. Dispatcher only.
func (c *Cluster) publishNodes() {
	list := make([]string, 0, len(c.peers))
	for tag := range c.peers {
		list = append(list, tag)
	}
	slices.Sort(list)
	c.nodes.Store(&list)
}
