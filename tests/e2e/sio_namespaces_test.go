package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/apiclient"
)

// Socket.IO namespaces in chat mode (-sio-namespaces, docs/socketio.md
// "Namespaces"), against the real binary: rooms are per namespace, one
// Engine.IO connection carries several namespaces, each its own chat
// session, a backend decides dynamic namespaces, the server API names a
// room's namespace, and bad CONNECTs get CONNECT_ERRORs within bounds.

// sioAck reads the next packet, which must start with prefix (an ack on
// its namespace), and returns its one argument decoded.
func sioAck(c *sioClient, prefix string) map[string]any {
	c.t.Helper()
	got := c.nextText()
	if !strings.HasPrefix(got, prefix+"[") {
		c.t.Fatalf("got %q, want an ack %s[…]", got, prefix)
	}
	var args []map[string]any
	if err := json.Unmarshal([]byte(got[len(prefix):]), &args); err != nil || len(args) != 1 {
		c.t.Fatalf("ack %q: %v", got, err)
	}
	return args[0]
}

// expectPrefix reads the next packet and checks that it starts with
// prefix and contains each of parts.
func expectPrefix(c *sioClient, prefix string, parts ...string) string {
	c.t.Helper()
	got := c.nextText()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got %q, want prefix %q", got, prefix)
	}
	for _, p := range parts {
		if !strings.Contains(got, p) {
			c.t.Fatalf("got %q, want it to contain %q", got, p)
		}
	}
	if strings.Contains(got, "\x1f") || strings.Contains(got, `\u001f`) {
		c.t.Fatalf("got %q: a room key leaked to the wire", got)
	}
	return got
}

// memberIDs returns the ids of a members ack's list.
func memberIDs(ack map[string]any) []string {
	var ids []string
	for _, m := range ack["members"].([]any) {
		ids = append(ids, m.(map[string]any)["id"].(string))
	}
	return ids
}

// TestSocketIONamespaceRooms: a client of "/admin" and a client of "/" in
// rooms of the same name do not see each other's messages, presence or
// members, and each namespace lists only its own rooms.
func TestSocketIONamespaceRooms(t *testing.T) {
	g := startGateway(t, "-sio-namespaces", "/admin, /chat")
	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "lobby"})

	root := sioDial(t, g, true)
	rootSid := root.connect("40", "/")
	root.send(`421["join","lobby"]`)
	root.expect(`431[{"room":"lobby","count":2}]`)
	native.readType("presence")

	admin := sioDial(t, g, true)
	adminSid := admin.connect("40/admin,", "/admin")
	admin.send(`42/admin,1["join","lobby"]`)
	admin.expect(`43/admin,1[{"room":"lobby","count":1}]`) // not "/"'s lobby
	admin2 := sioDial(t, g, true)
	admin2Sid := admin2.connect("40/admin,", "/admin")
	admin2.send(`42/admin,1["nick","adm2"]`)
	admin2.expect(`43/admin,1[{"ok":true,"name":"adm2"}]`)
	admin2.send(`42/admin,2["join","lobby"]`)
	admin2.expect(`43/admin,2[{"room":"lobby","count":2}]`)
	// Presence on the namespace, with the plain room name.
	expectPrefix(admin, `42/admin,["presence",{"room":"lobby","event":"join","id":"`+admin2Sid+`","nick":"adm2","count":2}]`)

	// A message in /admin's lobby reaches /admin's members only.
	admin.send(`42/admin,3["message",{"room":"lobby","data":"secret"}]`)
	admin.expect(`43/admin,3[{"ok":true}]`)
	expectPrefix(admin2, `42/admin,["message",{"room":"lobby","from":"`+adminSid+`","nick":"","data":"secret","ts":`)
	native.request(map[string]any{"type": "send", "room": "lobby", "data": "marker"})
	expectPrefix(root, `42["message",{"room":"lobby","from":"`+native.id+`"`, `"data":"marker"`)

	// And one in "/"'s lobby reaches "/"'s members only.
	root.send(`422["message",{"room":"lobby","data":"public"}]`)
	root.expect(`432[{"ok":true}]`)
	if m := native.readType("message"); m["data"] != "public" || m["from"] != rootSid {
		t.Fatalf("native got %v, want the public message", m)
	}
	admin2.send(`42/admin,3["message",{"room":"lobby","data":"marker2"}]`)
	admin2.expect(`43/admin,3[{"ok":true}]`)
	expectPrefix(admin, `42/admin,["message",{"room":"lobby","from":"`+admin2Sid+`"`, `"data":"marker2"`)

	// Member lists.
	admin.send(`42/admin,4["members","lobby"]`)
	ids := memberIDs(sioAck(admin, "43/admin,4"))
	if len(ids) != 2 || !strings.Contains(strings.Join(ids, " "), adminSid) || !strings.Contains(strings.Join(ids, " "), admin2Sid) {
		t.Fatalf("/admin members %v, want %s and %s", ids, adminSid, admin2Sid)
	}
	root.send(`423["members","lobby"]`)
	ids = memberIDs(sioAck(root, "433"))
	if len(ids) != 2 || !strings.Contains(strings.Join(ids, " "), rootSid) || !strings.Contains(strings.Join(ids, " "), native.id) {
		t.Fatalf("/ members %v, want %s and %s", ids, rootSid, native.id)
	}

	// Room lists: each namespace its own.
	admin2.send(`42/admin,5["join","ops"]`)
	admin2.expect(`43/admin,5[{"room":"ops","count":1}]`)
	admin.send(`42/admin,5["rooms"]`)
	admin.expect(`43/admin,5[{"rooms":[{"room":"lobby","count":2},{"room":"ops","count":1}]}]`)
	root.send(`424["rooms"]`)
	root.expect(`434[{"rooms":[{"room":"lobby","count":2}]}]`)
	if r := native.request(map[string]any{"type": "rooms"}); fmt.Sprint(r["rooms"]) != "[map[count:2 room:lobby]]" {
		t.Fatalf("native rooms %v, want only lobby", r)
	}

	// A room name with the key separator names no room of another
	// namespace.
	if r := native.request(map[string]any{"type": "join", "room": "/admin\x1flobby"}); r["type"] != "error" || r["code"] != "invalid_room" {
		t.Fatalf("join of a room key: %v, want invalid_room", r)
	}
	root.send(`425["join","/admin\u001flobby"]`)
	root.expect(`435[{"error":{"code":"invalid_room","message":"room name must be valid text without control or format characters"}}]`)
}

// TestSocketIONamespacesShareConnection: one Engine.IO connection with
// "/" and "/admin" connected, as socket.io-client's Manager shares it:
// two chat sessions with their own ids and rooms; what the hub sends one
// of them (room messages, direct messages, server API publishes) comes on
// its namespace; "41/admin," ends only /admin.
func TestSocketIONamespacesShareConnection(t *testing.T) {
	g := startGateway(t, "-sio-namespaces", "/admin")
	api, ctx := apiClientFor(g, ""), apiCtx(t)
	c := sioDial(t, g, true)
	rootSid := c.connect("40", "/")
	adminSid := c.connect("40/admin,", "/admin")
	if rootSid == adminSid {
		t.Fatalf("both namespaces got sid %s", rootSid)
	}
	c.send(`421["join","lobby"]`)
	c.expect(`431[{"room":"lobby","count":1}]`)
	c.send(`42/admin,2["join","lobby"]`)
	c.expect(`43/admin,2[{"room":"lobby","count":1}]`)

	native := dial(t, g)
	native.request(map[string]any{"type": "join", "room": "lobby"})
	expectPrefix(c, `42["presence",{"room":"lobby","event":"join","id":"`+native.id+`"`)
	native.request(map[string]any{"type": "send", "room": "lobby", "data": "hello"})
	expectPrefix(c, `42["message",{"room":"lobby","from":"`+native.id+`"`, `"data":"hello"`)
	// A direct message to the /admin socket comes on /admin, and is the
	// next thing the connection sees: no copy of "hello" on /admin.
	native.request(map[string]any{"type": "send", "to": adminSid, "data": "dm"})
	expectPrefix(c, `42/admin,["message",{"from":"`+native.id+`"`, `"data":"dm"`)

	// The server API: a namespace's room, and "/"'s by default.
	if err := api.Call(ctx, "publish", apiclient.PublishParams{Room: "lobby", Namespace: "/admin", Data: "to-admin"}, nil); err != nil {
		t.Fatal(err)
	}
	expectPrefix(c, `42/admin,["message",{"room":"lobby","from":""`, `"data":"to-admin"`)
	if err := api.Publish(ctx, "lobby", "to-root"); err != nil {
		t.Fatal(err)
	}
	expectPrefix(c, `42["message",{"room":"lobby","from":""`, `"data":"to-root"`)
	if m := native.readType("message"); m["data"] != "to-root" {
		t.Fatalf("native got %v, want to-root (and not to-admin)", m)
	}
	var rooms struct{ Rooms []apiclient.Room }
	if err := api.Call(ctx, "rooms", map[string]any{"namespace": "/admin"}, &rooms); err != nil ||
		len(rooms.Rooms) != 1 || rooms.Rooms[0] != (apiclient.Room{Room: "lobby", Namespace: "/admin", Count: 1}) {
		t.Fatalf("API rooms of /admin: %+v, %v", rooms, err)
	}
	var members struct{ Members []apiclient.Member }
	if err := api.Call(ctx, "members", map[string]any{"room": "lobby", "namespace": "/admin"}, &members); err != nil ||
		len(members.Members) != 1 || members.Members[0].Client != adminSid {
		t.Fatalf("API members of /admin lobby: %+v, %v", members, err)
	}
	conns, err := api.Connections(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, cn := range conns {
		if cn.Client == adminSid && cn.Namespace == "/admin" && fmt.Sprint(cn.Rooms) == "[lobby]" {
			seen++
		}
		if cn.Client == rootSid && cn.Namespace == "/" && fmt.Sprint(cn.Rooms) == "[lobby]" {
			seen++
		}
	}
	if seen != 2 {
		t.Fatalf("API connections %+v, want %s on /admin and %s on /, each in lobby", conns, adminSid, rootSid)
	}
	// An API join names the namespace: /admin's socket joins /admin's
	// room; the "/" socket is not matched.
	if err := api.Call(ctx, "join", apiclient.MembershipParams{Target: apiclient.ClientTarget(adminSid), Room: "ops", Namespace: "/admin"}, nil); err != nil {
		t.Fatal(err)
	}
	expectPrefix(c, `42/admin,["joined",{"room":"ops","count":1`)
	if err := api.Call(ctx, "join", apiclient.MembershipParams{Target: apiclient.ClientTarget(rootSid), Room: "ops", Namespace: "/admin"}, nil); !apiclient.HasCode(err, apiclient.CodeNotFound) {
		t.Fatalf("API join of a / socket to an /admin room: %v, want not_found", err)
	}

	// The API disconnects the /admin socket: "1/admin," as socket.io's
	// socket.disconnect(); "/" stays connected.
	if n, err := api.Disconnect(ctx, apiclient.ClientTarget(adminSid), 0, ""); err != nil || n != 1 {
		t.Fatalf("API disconnect of the /admin socket: %d, %v", n, err)
	}
	c.expect(`41/admin,`)
	c.send(`42/admin,3["ping"]`) // not connected to /admin any more: dropped
	c.send(`423["ping"]`)
	c.expect(`433[{"ok":true}]`)
	adminSid = c.connect("40/admin,", "/admin")
	c.send(`42/admin,2["join","lobby"]`)
	c.expect(`43/admin,2[{"room":"lobby","count":1}]`)

	// Leaving /admin leaves "/" connected.
	c.send(`41/admin,`)
	c.send(`42/admin,3["ping"]`) // not connected to /admin any more: dropped
	c.send(`424["ping"]`)
	c.expect(`434[{"ok":true}]`)
	eventually(t, apiWait, "/admin's socket left its rooms", func() bool {
		var m struct{ Members []apiclient.Member }
		err := api.Call(ctx, "members", map[string]any{"room": "lobby", "namespace": "/admin"}, &m)
		return err == nil && len(m.Members) == 0
	})
	native.request(map[string]any{"type": "send", "room": "lobby", "data": "still"})
	expectPrefix(c, `42["message",{"room":"lobby"`, `"data":"still"`)
	// And it may connect again, with a new id.
	if sid := c.connect("40/admin,", "/admin"); sid == adminSid {
		t.Fatalf("reconnected /admin with the same id %s", sid)
	}
}

// TestSocketIONamespaceRefusals: an unlisted namespace, one over 256
// bytes and one past the per-connection bound get CONNECT_ERRORs on
// their namespace, and the connection stays usable.
func TestSocketIONamespaceRefusals(t *testing.T) {
	var list []string
	for i := 0; i < 40; i++ {
		list = append(list, fmt.Sprintf("/n%d", i))
	}
	g := startGateway(t, "-sio-namespaces", strings.Join(list, ","))
	c := sioDial(t, g, true)
	c.send("40/other,")
	c.expect(`44/other,{"message":"Invalid namespace"}`)
	long := "/" + strings.Repeat("n", 300)
	c.send("40" + long + ",")
	c.expect(`44` + long + `,{"message":"Invalid namespace name: it must start with \"/\" and be at most 256 bytes of text without commas"}`)
	c.send("40/bad\x01,")
	c.expect("44/bad\x01," + `{"message":"Invalid namespace name: it must start with \"/\" and be at most 256 bytes of text without commas"}`)

	// At most 32 namespaces at once: the 33rd and later are refused.
	for _, n := range list {
		c.send("40" + n + ",")
	}
	for i, n := range list {
		got := c.nextText()
		if i < 32 && !strings.HasPrefix(got, "40"+n+`,{"sid":"`) {
			t.Fatalf("CONNECT %d to %s: %q, want the ack", i, n, got)
		}
		if i >= 32 && got != "44"+n+`,{"message":"Too many namespaces on one connection"}` {
			t.Fatalf("CONNECT %d to %s: %q, want too many namespaces", i, n, got)
		}
	}
	// One left: another fits.
	c.send("41/n0,")
	c.connect("40/n39,", "/n39")
	c.send(`42/n39,1["ping"]`)
	c.expect(`43/n39,1[{"ok":true}]`)
}

// TestSocketIONamespaceAuth: a namespace's CONNECT carries the token as
// "/"'s does; without one (-auth-required) it is refused on its namespace,
// and the user of a token is the socket's.
func TestSocketIONamespaceAuth(t *testing.T) {
	g := startGateway(t, "-jwt-secret", hdSecret, "-auth-required", "-sio-namespaces", "/admin")
	c := sioDial(t, g, true)
	c.send("40/admin,")
	expectPrefix(c, `44/admin,{"message":"unauthorized","data":{"reason":`)
	c.send(`40/admin,{"token":"` + hdHS256(t, hdClaims("ann")) + `"}`)
	expectPrefix(c, `40/admin,{"sid":"`)
	c.send(`42/admin,1["join","lobby"]`)
	c.expect(`43/admin,1[{"room":"lobby","count":1}]`)
	c.send(`42/admin,2["members","lobby"]`)
	if m := sioAck(c, "43/admin,2")["members"].([]any); len(m) != 1 || m[0].(map[string]any)["user"] != "ann" {
		t.Fatalf("members %v, want ann's socket", m)
	}
}

// TestSocketIODynamicNamespaces: with -proxy-connect-url, a CONNECT to
// any namespace is asked of the backend: its allow makes the namespace
// (with the rooms it gives, in that namespace), its refusal is a
// CONNECT_ERROR on the namespace; and thousands of CONNECTs on one
// connection ask it at most MaxNamespaces times.
func TestSocketIODynamicNamespaces(t *testing.T) {
	be := newConnectBackend(t)
	g := startGateway(t, "-proxy-connect-url", be.srv.URL)

	c := sioDial(t, g, true)
	c.send(`40/dyn-1,{"who":"ann"}`)
	expectPrefix(c, `40/dyn-1,{"sid":"`)
	body := be.body(0)
	if body["namespace"] != "/dyn-1" || body["protocol"] != "socketio" {
		t.Fatalf("backend got %v, want namespace /dyn-1", body)
	}
	// The backend's rooms are the namespace's.
	c.send(`42/dyn-1,1["rooms"]`)
	c.expect(`43/dyn-1,1[{"rooms":[{"room":"hall","count":1}]}]`)
	root := sioDial(t, g, true)
	root.send(`40{"who":"bob"}`)
	expectPrefix(root, `40{"sid":"`)
	root.send(`421["rooms"]`)
	root.expect(`431[{"rooms":[{"room":"hall","count":1}]}]`)

	c.send(`40/dyn-2,{"who":"bad"}`)
	c.expect(`44/dyn-2,{"message":"go away","data":{"code":"forbidden"}}`)
	c.send(`42/dyn-1,2["ping"]`)
	c.expect(`43/dyn-1,2[{"ok":true}]`)

	// A flood of CONNECTs to new namespaces: bounded.
	flood := sioDial(t, g, true)
	const n = 2000
	for i := 0; i < n; i++ {
		flood.send(fmt.Sprintf(`40/f%d,{"who":"f"}`, i))
	}
	acks, refused := 0, 0
	for i := 0; i < n; i++ {
		got := flood.nextText()
		switch {
		case strings.HasPrefix(got, "40/f"):
			acks++
		case strings.HasSuffix(got, `,{"message":"Too many namespaces on one connection"}`):
			refused++
		default:
			t.Fatalf("answer %d: %q", i, got)
		}
	}
	if acks != 32 || refused != n-32 {
		t.Fatalf("%d acks and %d refusals, want 32 and %d", acks, refused, n-32)
	}
	asked := 0
	be.mu.Lock()
	for _, b := range be.bodies {
		if a, _ := b["auth"].(map[string]any); a["who"] == "f" {
			asked++
		}
	}
	be.mu.Unlock()
	if asked != 32 {
		t.Fatalf("the backend was asked %d times, want 32", asked)
	}
}

// TestClusterNamespaceRooms: rooms per namespace across the nodes of a
// cluster with JetStream history: an /admin room message crosses nodes
// to /admin's members only, with the namespace and the plain room name;
// counts, member lists and history are the namespace's. The room name is
// the longest allowed, so its key (namespace included) is longer than a
// room name, and the cluster must carry it.
func TestClusterNamespaceRooms(t *testing.T) {
	nats := startNATSServer(t, true)
	var nodes []*gateway
	for _, tag := range []string{"s1", "s2"} {
		nodes = append(nodes, startGateway(t, "-nats", nats, "-node", tag, "-cluster-key", chKey, "-sio-namespaces", "/admin", "-presence=false"))
	}
	for _, g := range nodes {
		metricReaches(t, g, "chatgate_cluster_history_sequencing", 1)
	}
	room := "lobby" + strings.Repeat("x", 123)
	q := strconv.Quote(room)
	a1 := sioDial(t, nodes[0], true)
	a1Sid := a1.connect("40/admin,", "/admin")
	a1.send(`42/admin,1["join",` + q + `]`)
	a1.expect(`43/admin,1[{"room":` + q + `,"count":1}]`)
	root2 := dial(t, nodes[1])
	root2.request(map[string]any{"type": "join", "room": room})
	a2 := sioDial(t, nodes[1], true)
	a2.connect("40/admin,", "/admin")
	eventually(t, 5*time.Second, "node 2 counts /admin's member on node 1", func() bool {
		a2.send(`42/admin,1["join",` + q + `]`)
		if strings.Contains(a2.nextText(), `"count":2`) {
			return true
		}
		a2.send(`42/admin,2["leave",` + q + `]`)
		a2.nextText()
		return false
	})
	if n := memberCount(root2, room); n != 1 {
		t.Fatalf("/'s room has %d members, want 1 (only the native client)", n)
	}

	a1.send(`42/admin,3["message",{"room":` + q + `,"data":"x-node"}]`)
	a1.expect(`43/admin,3[{"ok":true}]`)
	expectPrefix(a2, `42/admin,["message",{"room":`+q+`,"from":"`+a1Sid+`"`, `"data":"x-node"`)
	// "/" on node 2 gets nothing of it: its next message is this one.
	n1 := dial(t, nodes[0])
	n1.request(map[string]any{"type": "join", "room": room})
	n1.request(map[string]any{"type": "send", "room": room, "data": "root-marker"})
	if m := root2.readType("message"); m["data"] != "root-marker" {
		t.Fatalf("/'s member on node 2 got %v, want the marker", m)
	}

	// History of /admin's room on node 2: the message, under its plain
	// room name; "/"'s room has only the marker.
	a2.send(`42/admin,4["history",` + q + `]`)
	h := sioAck(a2, "43/admin,4")
	msgs, _ := h["messages"].([]any)
	if h["room"] != room || len(msgs) != 1 || msgs[0].(map[string]any)["data"] != "x-node" || msgs[0].(map[string]any)["room"] != room {
		t.Fatalf("/admin history %v, want the one x-node message", h)
	}
	r := root2.request(map[string]any{"type": "history", "room": room})
	if ms, _ := r["messages"].([]any); len(ms) != 1 || ms[0].(map[string]any)["data"] != "root-marker" {
		t.Fatalf("/ history %v, want only the marker", r)
	}
}
