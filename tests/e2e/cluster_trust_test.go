package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	bin "encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The cluster's wire format, built by hand from docs/cluster.md ("Wire
// format") rather than with package cluster: what a client of the NATS
// server without the gateway's code can send.

const (
	wireKindRoom   = 1
	wireKindDirect = 2
	wireKindState  = 3
	wireKindHB     = 4
	wireOpJoin     = 4
)

func wireStr(b []byte, s string) []byte {
	b = bin.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// wireMessage is a version-1 room (kind 1, dest = room) or direct (kind 2,
// dest = connection id) message without attachments.
func wireMessage(kind byte, origin, dest, from, nick, data string) []byte {
	b := wireStr([]byte{1, kind}, origin)
	b = wireStr(b, dest)
	b = wireStr(b, from)
	b = wireStr(b, nick)
	b = wireStr(b, "") // user
	b = bin.AppendVarint(b, time.Now().UnixMilli())
	b = wireStr(b, data)
	return bin.AppendUvarint(b, 0) // attachments
}

// wireState is a version-1 membership event.
func wireState(origin string, epoch, seq uint64, op byte, id, nick, room string) []byte {
	b := wireStr([]byte{1, wireKindState}, origin)
	b = bin.LittleEndian.AppendUint64(b, epoch)
	b = bin.AppendUvarint(b, seq)
	b = append(b, op)
	b = wireStr(b, id)
	b = wireStr(b, nick)
	b = wireStr(b, "") // user
	return wireStr(b, room)
}

// wireHB is a version-1 heartbeat.
func wireHB(origin string, epoch, seq uint64) []byte {
	b := wireStr([]byte{1, wireKindHB}, origin)
	b = bin.LittleEndian.AppendUint64(b, epoch)
	b = bin.AppendUvarint(b, seq)
	return append(b, 0)
}

// wireSign makes a version-1 payload version 2: the HMAC-SHA256 with key
// over every byte (the version byte, now 2, included) appended.
func wireSign(key string, p []byte) []byte {
	p = append([]byte{2}, p[1:]...)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(p)
	return mac.Sum(p)
}

func roomSubject(room string) string {
	return "chatgate.room." + base64.RawURLEncoding.EncodeToString([]byte(room))
}

// natsClient connects to url as a client that is not a gateway node.
func natsClient(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// metricReaches waits until g's metric reaches want, and fails if it is
// missing or passes want.
func metricReaches(t *testing.T, g *gateway, name string, want float64) {
	t.Helper()
	var got float64
	var ok bool
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, ok = scrape(t, g)[name]
		if ok && got >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
	if got != want {
		t.Fatalf("%s = %v, want %v", name, got, want)
	}
}

// trustCluster starts two gateway nodes (tags tagA, tagB) with extra args
// on a real NATS server, and a native client on each in room "global";
// it returns the NATS URL, the nodes and the clients.
func trustCluster(t *testing.T, tagA, tagB string, args ...string) (string, [2]*gateway, [2]*client) {
	t.Helper()
	_, url := startNATS(t, 0)
	var gs [2]*gateway
	var cs [2]*client
	for i, tag := range []string{tagA, tagB} {
		gs[i] = startGateway(t, append([]string{"-nats", url, "-node", tag, "-presence=false"}, args...)...)
		cs[i] = dial(t, gs[i])
		cs[i].request(map[string]any{"type": "nick", "name": "user-" + tag})
		cs[i].request(map[string]any{"type": "join", "room": "global"})
	}
	for _, c := range cs {
		eventually(t, 5*time.Second, "both members seen from each node", func() bool { return memberCount(c, "global") == 2 })
	}
	return url, gs, cs
}

// checkLists asserts that c's room list holds "global" alone, with the
// two real members.
func checkLists(t *testing.T, c *client, ids []string) {
	t.Helper()
	r := c.request(map[string]any{"type": "rooms"})
	rooms, _ := r["rooms"].([]any)
	if len(rooms) != 1 || rooms[0].(map[string]any)["room"] != "global" || rooms[0].(map[string]any)["count"] != 2.0 {
		t.Fatalf("rooms: %v", r)
	}
	r = c.request(map[string]any{"type": "members", "room": "global"})
	ms, _ := r["members"].([]any)
	var got []string
	for _, m := range ms {
		got = append(got, m.(map[string]any)["id"].(string))
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) {
		t.Fatalf("members of global: %v, want %v", got, want)
	}
}

// expectMarker asserts that the next message c receives is the marker:
// whatever was dropped before it never reached c.
func expectMarker(t *testing.T, c *client, marker string) {
	t.Helper()
	m := c.read()
	d, _ := json.Marshal(m["data"])
	if m["type"] != "message" || string(d) != marker {
		t.Fatalf("got %v before the marker %s: a forgery reached the client", m, marker)
	}
}

// TestClusterTrustForgeries: with -cluster-key, a NATS client without the
// key cannot forge room or direct messages from a real connection, add
// members or rooms, or send data that is not JSON: nothing reaches the
// native clients, the lists keep only the real members, and every forgery
// is counted in chatgate_cluster_forged_total. A payload signed with the
// key the way docs/cluster.md describes is delivered.
func TestClusterTrustForgeries(t *testing.T) {
	const key = "e2e-cluster-key-0123456789abcdef-0123456789"
	url, gs, cs := trustCluster(t, "ka", "kb", "-cluster-key", key)
	a, b := cs[0], cs[1]
	nc := natsClient(t, url)

	forged := [][2]any{
		{roomSubject("global"), wireMessage(wireKindRoom, "ka", "global", a.id, "user-ka", `{"forged":"room"}`)},
		{roomSubject("global"), wireMessage(wireKindRoom, "ka", "global", a.id, "user-ka", `not json","from":"admin`)},
		{"chatgate.node.kb", wireMessage(wireKindDirect, "ka", b.id, a.id, "user-ka", `{"forged":"dm"}`)},
		{"chatgate.state", wireState("ka", 1, 1, wireOpJoin, "kazzzzzz", "fake", "global")},
		{"chatgate.state", wireState("ka", 1, 2, wireOpJoin, "kazzzzzz", "fake", "fake-room")},
		{"chatgate.hb", wireHB("zz", 7, 1)},
		{"chatgate.state", wireState("zz", 7, 1, wireOpJoin, "zz000001", "fake", "fake-room")},
		// Signed, but with another key.
		{roomSubject("global"), wireSign("not the cluster's key, but as long as it", wireMessage(wireKindRoom, "ka", "global", a.id, "user-ka", `{"forged":"key"}`))},
	}
	for _, f := range forged {
		if err := nc.Publish(f[0].(string), f[1].([]byte)); err != nil {
			t.Fatal(err)
		}
	}
	// Node kb subscribes to all of these subjects; ka to all but its
	// own node subject.
	metricReaches(t, gs[1], "chatgate_cluster_forged_total", float64(len(forged)))
	metricReaches(t, gs[0], "chatgate_cluster_forged_total", float64(len(forged)-1))

	// A message of the server signed with the key by hand, from a node
	// that does not exist: it is believed, and it is the first message
	// either client gets.
	const marker = `{"signed":true}`
	if err := nc.Publish(roomSubject("global"), wireSign(key, wireMessage(wireKindRoom, "kx", "global", "", "", marker))); err != nil {
		t.Fatal(err)
	}
	expectMarker(t, b, marker)
	expectMarker(t, a, marker)
	for _, c := range cs {
		checkLists(t, c, []string{a.id, b.id})
	}
	if s := scrape(t, gs[1]); s["chatgate_cluster_invalid_payloads_total"] != 0 || s["chatgate_cluster_bad_payloads_total"] != 0 {
		t.Fatalf("forgeries counted as invalid or bad: %v", s)
	}
}

// TestClusterTrustValidation: without -cluster-key, payloads are still
// checked like client input: data that is not JSON, and ids that do not
// belong to the payload's origin node, are dropped and counted in
// chatgate_cluster_invalid_payloads_total.
func TestClusterTrustValidation(t *testing.T) {
	url, gs, cs := trustCluster(t, "va", "vb")
	a, b := cs[0], cs[1]
	nc := natsClient(t, url)

	invalid := [][2]any{
		{roomSubject("global"), wireMessage(wireKindRoom, "va", "global", a.id, "user-va", `not json`)},
		{roomSubject("global"), wireMessage(wireKindRoom, "va", "global", a.id, "user-va", `1,"from":"admin"`)},
		// a's id sent in the name of node vb.
		{roomSubject("global"), wireMessage(wireKindRoom, "vb", "global", a.id, "user-va", `{"spoofed":true}`)},
		{"chatgate.node.vb", wireMessage(wireKindDirect, "va", b.id, a.id, "user-va", `{"x":1}}`)},
		// A member with b's id in the name of node va.
		{"chatgate.state", wireState("va", 1, 1, wireOpJoin, b.id, "fake", "fake-room")},
	}
	for _, f := range invalid {
		if err := nc.Publish(f[0].(string), f[1].([]byte)); err != nil {
			t.Fatal(err)
		}
	}
	metricReaches(t, gs[1], "chatgate_cluster_invalid_payloads_total", float64(len(invalid)))
	// va gets the room messages and the state event.
	metricReaches(t, gs[0], "chatgate_cluster_invalid_payloads_total", float64(len(invalid)-1))

	// Without a key, a well-formed unsigned message is believed (NATS
	// permissions are the only protection): it is the first message b
	// gets.
	const marker = `{"unsigned":true}`
	if err := nc.Publish(roomSubject("global"), wireMessage(wireKindRoom, "vx", "global", "", "", marker)); err != nil {
		t.Fatal(err)
	}
	expectMarker(t, b, marker)
	expectMarker(t, a, marker)
	for _, c := range cs {
		checkLists(t, c, []string{a.id, b.id})
	}
	if !strings.HasPrefix(a.id, "va") || !strings.HasPrefix(b.id, "vb") {
		t.Fatalf("ids %s, %s do not start with their node tags", a.id, b.id)
	}
}
