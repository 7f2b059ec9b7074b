package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chatgate/chatgate/apiclient"
)

// The server API's send with "ack" (socket.timeout(t).emitWithAck() in
// Socket.IO) against the real binary: a hand-driven Socket.IO client
// (sioClient) gets the event with an ack id and answers it, or does not,
// or goes away, and the API call returns the client's arguments or the
// documented error code. The Node test with the real socket.io-client is
// in tests/node/api.test.mjs.

// ackCall is one SendWithAck running in the background.
type ackCall struct {
	args  json.RawMessage
	err   error
	took  time.Duration
	ended chan struct{}
}

// goAck starts SendWithAck(client, data, timeout, event) on api.
func goAck(t *testing.T, api *apiclient.Client, client string, data any, timeout time.Duration, event string) *ackCall {
	c := &ackCall{ended: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(c.ended)
		var opts []apiclient.MessageOption
		if event != "" {
			opts = append(opts, apiclient.WithEvent(event))
		}
		c.args, c.err = api.SendWithAck(apiCtx(t), client, data, timeout, opts...)
		c.took = time.Since(start)
	}()
	return c
}

// wait waits (bounded) for the call to end.
func (c *ackCall) wait(t *testing.T, within time.Duration) *ackCall {
	t.Helper()
	select {
	case <-c.ended:
	case <-time.After(within):
		t.Fatalf("the send with ack did not end within %v", within)
	}
	return c
}

// answered fails unless the call returned exactly the arguments want.
func (c *ackCall) answered(t *testing.T, want string) {
	t.Helper()
	c.wait(t, apiWait)
	if c.err != nil || string(c.args) != want {
		t.Fatalf("send with ack: %s, %v; want %s", c.args, c.err, want)
	}
}

// ackEvent matches an event the server asks to be acknowledged: its ack
// id and its arguments.
var ackEvent = regexp.MustCompile(`^42([0-9]+)\["([^"]*)",(.*)\]$`)

// expectAckEvent reads c's next packet, which must be the event name with
// args (raw JSON) and an ack id, and returns the id.
func expectAckEvent(c *sioClient, name, args string) string {
	c.t.Helper()
	got := c.nextText()
	m := ackEvent.FindStringSubmatch(got)
	if m == nil || m[2] != name || m[3] != args {
		c.t.Fatalf("got %q, want 42<ack id>[%q,%s]", got, name, args)
	}
	return m[1]
}

// ackMetric reads chatgate_server_acks_total{outcome}.
func ackMetric(t *testing.T, g *gateway, outcome string) float64 {
	t.Helper()
	return scrape(t, g)[`chatgate_server_acks_total{outcome="`+outcome+`"}`]
}

// TestAPISendAck: the client's ACK (and BINARY_ACK, attachments inlined
// as base64) comes back as the call's result; a client that does not
// answer gets ack_timeout within the bound, and its late ACK is ignored; an
// ACK with an unknown id, or the id of an answered one, is ignored and
// counted, and completes no other waiter; bad targets and parameters get
// their codes.
func TestAPISendAck(t *testing.T) {
	g := startGateway(t)
	api, ctx := apiClientFor(g, ""), apiCtx(t)
	sc := sioDial(t, g, true)
	id := sc.connect("40", "/")

	var firstID string
	apiStep(t, "answered", func(t *testing.T) {
		call := goAck(t, api, id, map[string]int{"q": 1}, 3*time.Second, "ask")
		firstID = expectAckEvent(sc, "ask", `{"q":1}`)
		sc.send("43" + firstID + `["yes",{"n":2}]`)
		call.answered(t, `["yes",{"n":2}]`)
	})
	apiStep(t, "a reused or unknown ack id completes nobody", func(t *testing.T) {
		before := ackMetric(t, g, "ignored")
		call := goAck(t, api, id, "again", 3*time.Second, "ask")
		ackID := expectAckEvent(sc, "ask", `"again"`)
		if ackID == firstID {
			t.Fatalf("ack id %s used twice", ackID)
		}
		sc.send("43" + firstID + `["stale"]`) // the first call's id, answered already
		sc.send(`43999999["unknown"]`)
		sc.send("43" + ackID + `["fresh"]`)
		call.answered(t, `["fresh"]`)
		sc.send("43" + ackID + `["twice"]`)
		eventually(t, apiWait, "3 ignored ACKs counted", func() bool { return ackMetric(t, g, "ignored") == before+3 })
	})
	apiStep(t, "binary ack", func(t *testing.T) {
		call := goAck(t, api, id, 1, 3*time.Second, "bin")
		ackID := expectAckEvent(sc, "bin", `1`)
		sc.send("461-" + ackID + `["b",{"_placeholder":true,"num":0}]`)
		sc.sendBinary([]byte{1, 2, 3, 4})
		call.answered(t, `["b",{"_binary":"AQIDBA=="}]`)
	})
	apiStep(t, "the message event", func(t *testing.T) {
		call := goAck(t, api, id, json.RawMessage(`{"k":1}`), 3*time.Second, "")
		got := sc.nextText()
		m := regexp.MustCompile(`^42([0-9]+)\["message",\{"from":"","nick":"","data":\{"k":1\},"ts":[0-9]+\}\]$`).FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("got %q, want a message event with an ack id", got)
		}
		sc.send("43" + m[1] + `[]`)
		call.answered(t, `[]`)
	})
	apiStep(t, "timeout", func(t *testing.T) {
		before := ackMetric(t, g, "timeout")
		call := goAck(t, api, id, "late", 300*time.Millisecond, "ask")
		ackID := expectAckEvent(sc, "ask", `"late"`)
		call.wait(t, apiWait)
		apiWantErr(t, "unanswered", call.err, http.StatusGatewayTimeout, apiclient.CodeAckTimeout)
		if call.took < 300*time.Millisecond || call.took > 300*time.Millisecond+sioSlack {
			t.Fatalf("ack_timeout after %v, want 300ms to %v", call.took, 300*time.Millisecond+sioSlack)
		}
		if got := ackMetric(t, g, "timeout"); got != before+1 {
			t.Fatalf("timeouts counted %v, want %v", got, before+1)
		}
		ignored := ackMetric(t, g, "ignored")
		sc.send("43" + ackID + `["too late"]`)
		eventually(t, apiWait, "the late ACK ignored", func() bool { return ackMetric(t, g, "ignored") == ignored+1 })
	})
	apiStep(t, "bad targets and parameters", func(t *testing.T) {
		native := dial(t, g)
		_, err := api.SendWithAck(ctx, native.id, 1, time.Second)
		apiWantErr(t, "native client", err, http.StatusUnprocessableEntity, apiclient.CodeAckUnsupported)
		_, err = api.SendWithAck(ctx, "zz-nobody", 1, time.Second)
		apiWantErr(t, "missing client", err, http.StatusNotFound, apiclient.CodeNotFound)
		for name, p := range map[string]apiclient.SendParams{
			"user target":     {Target: apiclient.UserTarget("u"), Data: 1, Ack: true},
			"timeout 25001":   {Target: apiclient.ClientTarget(id), Data: 1, Ack: true, Timeout: 25001},
			"negative":        {Target: apiclient.ClientTarget(id), Data: 1, Ack: true, Timeout: -1},
			"timeout, no ack": {Target: apiclient.ClientTarget(id), Data: 1, Timeout: 30000},
		} {
			apiWantErr(t, name, api.Call(ctx, "send", p, nil), http.StatusBadRequest, apiclient.CodeBadRequest)
		}
		var res struct {
			Replies []struct {
				Error *apiclient.Error `json:"error"`
			} `json:"replies"`
		}
		batch := map[string]any{"commands": []any{map[string]any{"method": "send",
			"params": apiclient.SendParams{Target: apiclient.ClientTarget(id), Data: 1, Ack: true}}}}
		if err := api.Call(ctx, "batch", batch, &res); err != nil || len(res.Replies) != 1 ||
			res.Replies[0].Error == nil || res.Replies[0].Error.Code != apiclient.CodeBadRequest {
			t.Fatalf("send with ack in a batch: %+v, %v; want bad_request", res, err)
		}
	})
	// Nothing reached the client but what each step read.
	sc.expectOpen(200 * time.Millisecond)
}

// TestAPISendAckDisconnect: a client that goes away while the server
// waits fails every waiter at once with ack_disconnected, long before
// their timeout: when it leaves "/" (41, the Engine.IO session stays)
// and when its connection closes; at most 64 acknowledgements wait per
// client, the next is too_many_acks.
func TestAPISendAckDisconnect(t *testing.T) {
	g := startGateway(t)
	api := apiClientFor(g, "")

	apiStep(t, "leaving the main namespace", func(t *testing.T) {
		sc := sioDial(t, g, true)
		id := sc.connect("40", "/")
		call := goAck(t, api, id, 1, 20*time.Second, "ask")
		expectAckEvent(sc, "ask", "1")
		sc.send("41")
		call.wait(t, apiWait)
		apiWantErr(t, "left /", call.err, http.StatusGone, apiclient.CodeAckDisconnect)
	})
	apiStep(t, "64 outstanding, then the connection closes", func(t *testing.T) {
		before := ackMetric(t, g, "disconnected")
		sc := sioDial(t, g, true)
		id := sc.connect("40", "/")
		calls := make([]*ackCall, 64)
		for i := range calls {
			calls[i] = goAck(t, api, id, i, 20*time.Second, "ask")
		}
		seen := map[string]bool{}
		for range calls {
			m := ackEvent.FindStringSubmatch(sc.nextText())
			if m == nil || seen[m[1]] {
				t.Fatalf("want 64 events with distinct ack ids, got %v after %d", m, len(seen))
			}
			seen[m[1]] = true
		}
		_, err := api.SendWithAck(apiCtx(t), id, "one more", 20*time.Second)
		apiWantErr(t, "65th", err, http.StatusTooManyRequests, apiclient.CodeTooManyAcks)
		sc.ws.Close()
		for _, c := range calls {
			c.wait(t, apiWait)
			apiWantErr(t, "closed", c.err, http.StatusGone, apiclient.CodeAckDisconnect)
		}
		if got := ackMetric(t, g, "disconnected"); got != before+64 {
			t.Fatalf("disconnected counted %v, want %v", got, before+64)
		}
	})
}

// TestAPISendAckCluster: on a 3-node cluster over a real NATS server
// (signed node calls), the API of node 1 gets the acknowledgement of a
// client on node 2, and its ack_timeout; while node 2 waits for a client,
// its other API requests are answered at once.
func TestAPISendAckCluster(t *testing.T) {
	url := startNATSServer(t, false)
	var nodes []*gateway
	for _, tag := range []string{"na", "nb", "nc"} {
		nodes = append(nodes, startGateway(t, "-nats", url, "-node", tag, "-cluster-key", chKey))
	}
	api := apiClientFor(nodes[0], "")
	sc := sioDial(t, nodes[1], true)
	id := sc.connect("40", "/")
	other := dial(t, nodes[1])
	// Node 1 learns of the connections of node 2 through the cluster.
	eventually(t, 10*time.Second, "node 1 sees node 2's connections", func() bool {
		conns, err := api.Connections(apiCtx(t), "")
		n := 0
		for _, c := range conns {
			if c.Client == id || c.Client == other.id {
				n++
			}
		}
		return err == nil && n == 2
	})

	apiStep(t, "answered across nodes", func(t *testing.T) {
		call := goAck(t, api, id, map[string]string{"from": "na"}, 5*time.Second, "ask")
		ackID := expectAckEvent(sc, "ask", `{"from":"na"}`)
		// Node 2 waits for the client: its other requests go on.
		start := time.Now()
		n, err := api.Send(apiCtx(t), apiclient.ClientTarget(other.id), "meanwhile")
		if err != nil || n != 1 || time.Since(start) > time.Second {
			t.Fatalf("send to node 2 while it waits for an ack: %d, %v after %v; want 1 at once", n, err, time.Since(start))
		}
		if got := other.read(); got["data"] != "meanwhile" {
			t.Fatalf("other got %v", got)
		}
		sc.send("43" + ackID + `["ok from nb",` + strconv.Itoa(2) + `]`)
		call.answered(t, `["ok from nb",2]`)
	})
	apiStep(t, "answered later than a node call's usual bound", func(t *testing.T) {
		// The client answers after the 2 s that bound other node calls
		// (api.DefaultCallTimeout): the call to node 2 waits as long as
		// the ack's timeout. The delay is the slow client's, not a
		// synchronisation.
		call := goAck(t, api, id, "slow", 5*time.Second, "ask")
		ackID := expectAckEvent(sc, "ask", `"slow"`)
		time.Sleep(2500 * time.Millisecond)
		sc.send("43" + ackID + `["slow but in time"]`)
		call.answered(t, `["slow but in time"]`)
	})
	apiStep(t, "timeout across nodes", func(t *testing.T) {
		call := goAck(t, api, id, 0, 400*time.Millisecond, "ask")
		expectAckEvent(sc, "ask", "0")
		call.wait(t, apiWait)
		apiWantErr(t, "unanswered", call.err, http.StatusGatewayTimeout, apiclient.CodeAckTimeout)
		if call.took > 400*time.Millisecond+sioSlack {
			t.Fatalf("ack_timeout after %v", call.took)
		}
	})
	apiStep(t, "many at once across nodes", func(t *testing.T) {
		calls := make([]*ackCall, 8)
		for i := range calls {
			calls[i] = goAck(t, api, id, i, 5*time.Second, "ask")
		}
		for range calls {
			m := ackEvent.FindStringSubmatch(sc.nextText())
			if m == nil {
				t.Fatal("want an event with an ack id")
			}
			sc.send("43" + m[1] + `[` + m[3] + `]`)
		}
		for i, c := range calls {
			c.wait(t, apiWait)
			if c.err != nil || string(c.args) != "["+strconv.Itoa(i)+"]" {
				t.Fatalf("call %d: %s, %v; want [%d]", i, c.args, c.err, i)
			}
		}
	})
}

// TestAPISendAckNamespace: a socket of another namespace ("/admin") is
// asked on its namespace (42/admin,<id>[…]) and answers there; an ACK with
// that id on "/" completes nothing; leaving "/admin" fails its waiters
// with ack_disconnected while "/" goes on.
func TestAPISendAckNamespace(t *testing.T) {
	g := startGateway(t, "-sio-namespaces", "/admin")
	api := apiClientFor(g, "")
	sc := sioDial(t, g, true)
	rootID := sc.connect("40", "/")
	adminID := sc.connect("40/admin,", "/admin")
	nspAck := regexp.MustCompile(`^42/admin,([0-9]+)\["ask",(.*)\]$`)

	apiStep(t, "answered on its namespace", func(t *testing.T) {
		call := goAck(t, api, adminID, "q", 3*time.Second, "ask")
		m := nspAck.FindStringSubmatch(sc.nextText())
		if m == nil || m[2] != `"q"` {
			t.Fatalf("want 42/admin,<id>[\"ask\",\"q\"], got %v", m)
		}
		before := ackMetric(t, g, "ignored")
		sc.send("43" + m[1] + `["wrong namespace"]`) // on "/": not the asker
		eventually(t, apiWait, "the ACK on / ignored", func() bool { return ackMetric(t, g, "ignored") == before+1 })
		sc.send("43/admin," + m[1] + `["admin says yes"]`)
		call.answered(t, `["admin says yes"]`)
	})
	apiStep(t, "leaving the namespace fails its waiters only", func(t *testing.T) {
		adminCall := goAck(t, api, adminID, "q2", 10*time.Second, "ask")
		if m := nspAck.FindStringSubmatch(sc.nextText()); m == nil {
			t.Fatal("no ack event on /admin")
		}
		rootCall := goAck(t, api, rootID, "r", 10*time.Second, "ask")
		rid := expectAckEvent(sc, "ask", `"r"`)
		sc.send("41/admin,")
		adminCall.wait(t, apiWait)
		if !apiclient.HasCode(adminCall.err, apiclient.CodeAckDisconnect) {
			t.Fatalf("waiter of the left namespace: %s, %v; want ack_disconnected", adminCall.args, adminCall.err)
		}
		sc.send("43" + rid + `["root"]`)
		rootCall.answered(t, `["root"]`)
	})
}
