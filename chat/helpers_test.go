package chat_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/native"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/payload"
	"github.com/chatgate/chatgate/rooms"
)

// Test fixture: a Hub over a real rooms.Table, wired to a recording
// transport, with the real native codec as kind 0 and the real Socket.IO
// codec as kind 1.

const (
	testLoops = 3
	testNode  = "tst0"

	kindNative   = 0
	kindSocketIO = 1
)

// testNow is the fixed clock of the hub under test; testTS is what
// messages must carry as "ts".
var (
	testNow = time.UnixMilli(1_700_000_000_123)
	testTS  = testNow.UnixMilli()
)

// countingCodec is a real codec that counts the payloads the hub encodes
// (every AppendMessage and AppendPresence fills one payload.Shared the hub
// acquired), so that the fixture can check that each of them reached the
// transport: a payload encoded and never handed over is a leaked reference.
type countingCodec struct {
	chat.Codec
	n *atomic.Int64
}

func (c countingCodec) AppendMessage(dst []byte, m *chat.Message) []byte {
	c.n.Add(1)
	return c.Codec.AppendMessage(dst, m)
}

func (c countingCodec) AppendPresence(dst []byte, p *chat.Presence) []byte {
	c.n.Add(1)
	return c.Codec.AppendPresence(dst, p)
}

// AppendRecovered counts the payload when the codec filled one (native);
// Socket.IO's replays are counted message by message.
func (c countingCodec) AppendRecovered(dst []byte, r *chat.Recovered) []byte {
	out := c.Codec.AppendRecovered(dst, r)
	if len(out) > len(dst) {
		c.n.Add(1)
	}
	return out
}

type fixture struct {
	t     *testing.T
	hub   *chat.Hub
	table *rooms.Table
	tr    *fakeTransport
	// encoded counts payloads the hub encoded; external counts payloads the
	// test itself handed to Hub.Push.
	encoded  atomic.Int64
	external atomic.Int64
}

// newHub returns a hub for cfg with the fixture's codecs, node tag and
// clock filled in where cfg leaves them unset. At the end of the test it
// releases every payload the transport took over (exactly once) and checks
// that every payload the hub encoded was handed to the transport.
func newHub(t *testing.T, cfg chat.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, table: rooms.New(testLoops)}
	if cfg.Codecs == nil {
		cfg.Codecs = []chat.Codec{
			kindNative:   countingCodec{native.Codec{}, &f.encoded},
			kindSocketIO: countingCodec{socketio.Codec{}, &f.encoded},
		}
	}
	if cfg.Node == "" {
		cfg.Node = testNode
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	f.hub = chat.NewHub(cfg, f.table)
	f.tr = &fakeTransport{t: t}
	f.hub.SetTransport(f.tr)
	t.Cleanup(func() {
		taken := f.tr.releaseAll()
		if want := f.encoded.Load() + f.external.Load(); int64(taken) != want {
			t.Errorf("transport took over %d payloads, want %d (%d encoded by the hub + %d pushed by the test): a payload was leaked or handed over twice",
				taken, want, f.encoded.Load(), f.external.Load())
		}
	})
	return f
}

// client is one open session and its peer.
type client struct {
	s    *chat.Session
	peer *fakePeer
}

func (c *client) id() string { return c.s.ID() }

// open opens a native session on loop.
func (f *fixture) open(loop int) *client { return f.openAs(loop, kindNative, nil) }

// openAs opens a session on loop, encoded as kind, for ident.
func (f *fixture) openAs(loop, kind int, ident *auth.Identity) *client {
	f.t.Helper()
	p := &fakePeer{}
	s := f.hub.Open(p, loop, kind, ident)
	if s == nil {
		f.t.Fatal("Open returned nil")
	}
	if s.Peer() != p {
		f.t.Fatalf("Session.Peer() = %v, want the peer given to Open", s.Peer())
	}
	if s.Loop() != loop || s.Kind() != kind {
		f.t.Fatalf("Session loop/kind = %d/%d, want %d/%d", s.Loop(), s.Kind(), loop, kind)
	}
	return &client{s: s, peer: p}
}

// do hands req to the hub for c and returns the one reply it must write.
func (f *fixture) do(c *client, req chat.Request) gotReply {
	f.t.Helper()
	before := len(c.peer.replies)
	f.hub.Handle(c.s, &req)
	return c.peer.only(f.t, before)
}

// must is do for a request that must be acknowledged.
func (f *fixture) must(c *client, req chat.Request) gotReply {
	f.t.Helper()
	r := f.do(c, req)
	r.wantAck(f.t)
	return r
}

// Request constructors, as a codec would fill them.

func reqNick(name string) chat.Request {
	return chat.Request{Op: chat.OpNick, Name: []byte(name), HasName: true}
}

func reqJoin(room string) chat.Request {
	return chat.Request{Op: chat.OpJoin, Room: []byte(room), HasRoom: true}
}

func reqLeave(room string) chat.Request {
	return chat.Request{Op: chat.OpLeave, Room: []byte(room), HasRoom: true}
}

func reqMembers(room string) chat.Request {
	return chat.Request{Op: chat.OpMembers, Room: []byte(room), HasRoom: true}
}

func reqRooms() chat.Request { return chat.Request{Op: chat.OpRooms} }

func reqPing() chat.Request { return chat.Request{Op: chat.OpPing} }

// reqSendRoom and reqSendTo fill a send request the way Request.SetSend
// does for every codec (unquoted destination, its Has flag, raw data). They
// fill the fields directly rather than call SetSend, whose parameter list
// is being extended (a "user" destination) while these tests are written.
func reqSendRoom(tb testing.TB, room, data string) chat.Request {
	tb.Helper()
	return chat.Request{Op: chat.OpSend, Room: []byte(room), HasRoom: true, Data: []byte(data)}
}

func reqSendTo(tb testing.TB, to, data string) chat.Request {
	tb.Helper()
	return chat.Request{Op: chat.OpSend, To: []byte(to), HasTo: true, Data: []byte(data)}
}

// withID returns req carrying the raw JSON id.
func withID(req chat.Request, id string) chat.Request {
	req.ID = []byte(id)
	return req
}

// fakePeer records the replies the hub writes. A *chat.Reply is reused by
// the hub, so each one is deep-copied and also encoded with the real
// native codec and decoded with encoding/json.
type fakePeer struct {
	replies []gotReply
}

type gotReply struct {
	chat.Reply
	Raw   string          // the native encoding
	JSON  map[string]any  // Raw decoded
	IDRaw json.RawMessage // Raw's "id", byte for byte; nil if absent
}

func (p *fakePeer) WriteReply(r *chat.Reply) {
	g := gotReply{Reply: *r}
	g.ID = clone(r.ID)
	g.Room = clone(r.Room)
	g.Rooms = append([]chat.RoomInfo(nil), r.Rooms...)
	g.Members = append([]chat.MemberInfo(nil), r.Members...)
	if r.Err != nil {
		e := *r.Err
		g.Err = &e
	}
	g.Raw = string(native.Codec{}.AppendReply(nil, r))
	if err := json.Unmarshal([]byte(g.Raw), &g.JSON); err != nil {
		panic(fmt.Sprintf("native reply %s is not JSON: %v", g.Raw, err))
	}
	var ids struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal([]byte(g.Raw), &ids)
	g.IDRaw = ids.ID
	p.replies = append(p.replies, g)
}

// only returns the one reply written since the peer had n replies.
func (p *fakePeer) only(tb testing.TB, n int) gotReply {
	tb.Helper()
	if got := len(p.replies) - n; got != 1 {
		tb.Fatalf("hub wrote %d replies, want exactly 1", got)
	}
	return p.replies[n]
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func (r gotReply) wantAck(tb testing.TB) {
	tb.Helper()
	if r.Err != nil {
		tb.Fatalf("reply is error %s (%s), want an ack; wire: %s", r.Err.Code, r.Err.Message, r.Raw)
	}
	if r.JSON["type"] != "ack" {
		tb.Fatalf("wire reply %s: type is not ack", r.Raw)
	}
}

// wantErr checks that r is the error reply with code, on the wire too.
func (r gotReply) wantErr(tb testing.TB, code string) {
	tb.Helper()
	if r.Err == nil {
		tb.Fatalf("reply is an ack, want error %q; wire: %s", code, r.Raw)
	}
	if r.Err.Code != code {
		tb.Fatalf("error code %q (%s), want %q", r.Err.Code, r.Err.Message, code)
	}
	if r.JSON["type"] != "error" || r.JSON["code"] != code || r.JSON["message"] != r.Err.Message || r.Err.Message == "" {
		tb.Fatalf("wire reply %s: want type error, code %q and the error's message", r.Raw, code)
	}
}

// fakeTransport records what the hub hands it. Every payload it takes
// over is held (so the pool cannot reuse it while the test runs) and
// released exactly once when the test ends; a payload handed over twice
// without a Retain then panics in Release, which is reported.
type fakeTransport struct {
	t *testing.T

	mu          sync.Mutex
	fanouts     []fanoutCall
	pushes      []*payload.Shared
	deliveries  []delivery
	disconnects []disconnectCall
	held        []*payload.Shared
	released    bool
}

type fanoutCall struct {
	Snap     *rooms.Snapshot
	Skip     rooms.Member
	Payloads chat.Payloads
}

type disconnectCall struct {
	To *chat.Session
	D  chat.Disconnect
}

// delivery is one payload as one recipient would get it.
type delivery struct {
	To          *chat.Session
	Via         string // "fanout" or "push"
	Text        string
	Type        string                     // "message", "presence", …
	Fields      map[string]json.RawMessage // the event object
	Attachments []string
}

func (d delivery) str(tb testing.TB, key string) string {
	tb.Helper()
	raw, ok := d.Fields[key]
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		tb.Fatalf("%q of %s is not a string: %v", key, d.Text, err)
	}
	return s
}

func (d delivery) num(tb testing.TB, key string) int64 {
	tb.Helper()
	var n int64
	if err := json.Unmarshal(d.Fields[key], &n); err != nil {
		tb.Fatalf("%q of %s is not an integer: %v", key, d.Text, err)
	}
	return n
}

func (d delivery) has(key string) bool { _, ok := d.Fields[key]; return ok }

func (tr *fakeTransport) Fanout(snap *rooms.Snapshot, skip rooms.Member, p *chat.Payloads) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.take(p[:]...)
	tr.fanouts = append(tr.fanouts, fanoutCall{Snap: snap, Skip: skip, Payloads: *p})
	for k, pl := range p {
		if want := snap.Kinds&(1<<uint(k)) != 0; want != (pl != nil) {
			tr.t.Errorf("Fanout: payload for kind %d is set=%v, but kind present in snapshot=%v", k, pl != nil, want)
		}
	}
	n := 0
	for loop, members := range snap.ByLoop {
		for _, m := range members {
			n++
			if m.Loop() != loop {
				tr.t.Errorf("Fanout: snapshot member on loop %d filed under loop %d", m.Loop(), loop)
			}
			if m == skip {
				continue
			}
			s, ok := m.(*chat.Session)
			if !ok {
				tr.t.Errorf("Fanout: member %T is not a *chat.Session", m)
				continue
			}
			pl := p[m.Kind()]
			if pl == nil {
				tr.t.Errorf("Fanout: no payload for member %s of kind %d", s.ID(), m.Kind())
				continue
			}
			tr.deliveries = append(tr.deliveries, tr.decode(s, "fanout", pl))
		}
	}
	if n != snap.Count {
		tr.t.Errorf("Fanout: snapshot Count %d but %d members", snap.Count, n)
	}
}

func (tr *fakeTransport) Push(to *chat.Session, p *payload.Shared) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.take(p)
	tr.pushes = append(tr.pushes, p)
	tr.deliveries = append(tr.deliveries, tr.decode(to, "push", p))
}

func (tr *fakeTransport) Disconnect(to *chat.Session, d chat.Disconnect) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.disconnects = append(tr.disconnects, disconnectCall{to, d})
}

// Exec runs fn at once: the tests are the sessions' only loop.
func (tr *fakeTransport) Exec(to *chat.Session, fn func()) { fn() }

// take holds one reference to each non-nil payload.
func (tr *fakeTransport) take(ps ...*payload.Shared) {
	if tr.released {
		tr.t.Errorf("transport used after the test ended")
	}
	for _, p := range ps {
		if p != nil {
			tr.held = append(tr.held, p)
		}
	}
}

// releaseAll releases every payload taken over, once each, and returns how
// many there were.
func (tr *fakeTransport) releaseAll() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.released = true
	for _, p := range tr.held {
		func() {
			defer func() {
				if r := recover(); r != nil {
					tr.t.Errorf("releasing a payload the transport took over: %v (handed over twice, or released by the hub after handing it over)", r)
				}
			}()
			p.Release()
		}()
	}
	n := len(tr.held)
	tr.held = nil
	return n
}

// decode turns the payload into the event its recipient would parse: a
// native JSON object, or a Socket.IO event packet 42["name",{…}] (451-[…]
// with binary attachments).
func (tr *fakeTransport) decode(to *chat.Session, via string, p *payload.Shared) delivery {
	d := delivery{To: to, Via: via, Text: string(p.Payload())}
	for i := 0; i < p.Attachments(); i++ {
		d.Attachments = append(d.Attachments, string(p.Attachment(i)))
	}
	text := d.Text
	if strings.HasPrefix(text, "{") {
		if err := json.Unmarshal([]byte(text), &d.Fields); err != nil {
			tr.t.Errorf("payload %s: %v", text, err)
			return d
		}
		_ = json.Unmarshal(d.Fields["type"], &d.Type)
		return d
	}
	i := strings.IndexByte(text, '[')
	if i < 0 || !strings.HasPrefix(text, "4") {
		tr.t.Errorf("payload %q is neither native JSON nor a Socket.IO event", text)
		return d
	}
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(text[i:]), &arr); err != nil || len(arr) != 2 {
		tr.t.Errorf("Socket.IO payload %q: want [name, object]: %v", text, err)
		return d
	}
	_ = json.Unmarshal(arr[0], &d.Type)
	if err := json.Unmarshal(arr[1], &d.Fields); err != nil {
		tr.t.Errorf("Socket.IO payload %q: %v", text, err)
	}
	return d
}

// reset forgets what was recorded so far (payloads stay held).
func (tr *fakeTransport) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.fanouts, tr.pushes, tr.deliveries, tr.disconnects = nil, nil, nil, nil
}

func (tr *fakeTransport) allDeliveries() []delivery {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]delivery(nil), tr.deliveries...)
}

func (tr *fakeTransport) fanoutCalls() []fanoutCall {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]fanoutCall(nil), tr.fanouts...)
}

func (tr *fakeTransport) pushCalls() []*payload.Shared {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]*payload.Shared(nil), tr.pushes...)
}

// to returns what c received, in order.
func (tr *fakeTransport) to(c *client) []delivery {
	var out []delivery
	for _, d := range tr.allDeliveries() {
		if d.To == c.s {
			out = append(out, d)
		}
	}
	return out
}

// recipients returns the ids of the sessions that received something.
func (tr *fakeTransport) recipients() []string {
	var out []string
	for _, d := range tr.allDeliveries() {
		out = append(out, d.To.ID())
	}
	sort.Strings(out)
	return out
}

// onlyTo returns the one delivery c received, failing if there is not
// exactly one.
func (tr *fakeTransport) onlyTo(tb testing.TB, c *client) delivery {
	tb.Helper()
	ds := tr.to(c)
	if len(ds) != 1 {
		tb.Fatalf("%s received %d payloads, want 1: %v", c.id(), len(ds), texts(ds))
	}
	return ds[0]
}

func texts(ds []delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.To.ID() + " <- " + d.Text
	}
	return out
}

func ids(cs ...*client) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.id()
	}
	sort.Strings(out)
	return out
}

// wantPresence checks that d is the presence event ev of who in room with
// count members.
func wantPresence(tb testing.TB, d delivery, room, ev string, who *client, count int) {
	tb.Helper()
	if d.Type != "presence" {
		tb.Fatalf("got %s, want a presence event", d.Text)
	}
	if d.str(tb, "room") != room || d.str(tb, "event") != ev || d.str(tb, "id") != who.id() ||
		d.str(tb, "nick") != who.s.Nick() || d.str(tb, "user") != who.s.User() || d.num(tb, "count") != int64(count) {
		tb.Fatalf("presence %s, want room %q event %q id %q nick %q user %q count %d",
			d.Text, room, ev, who.id(), who.s.Nick(), who.s.User(), count)
	}
}

// tableMembers returns the ids of room's members in the hub's table.
func (f *fixture) tableMembers(room string) []string {
	var out []string
	for _, m := range f.table.Members([]byte(room)) {
		out = append(out, m.(*chat.Session).ID())
	}
	sort.Strings(out)
	return out
}

// Authentication: identities are made the way the gateway makes them, by
// verifying a token with auth.Verifier.

var testSecret = []byte("chat-test-secret-0123456789abcdef")

// identity mints an HS256 token for sub with the given rooms claim (nil:
// no claim) and returns the identity auth.Verifier makes of it.
func identity(tb testing.TB, sub string, roomsClaim []string) *auth.Identity {
	tb.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if roomsClaim != nil {
		claims["rooms"] = roomsClaim
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{HS256Secret: testSecret, CacheSize: -1})
	if err != nil {
		tb.Fatal(err)
	}
	id, err := v.Verify([]byte(tok))
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return id
}

// fakeBroker records the hub's calls and answers reads from canned remote
// state.
type fakeBroker struct {
	mu      sync.Mutex
	calls   []string // "opened id nick user", "nick id n", "joined id room", "left id room", "closed id"
	room    []gotMessage
	direct  []directPublish
	user    []gotMessage
	count   map[string]int
	members map[string][]chat.MemberInfo
	rooms   map[string]int
	nodes   map[string]string
}

type gotMessage struct {
	Room, From, Nick, User, Data string
	TS                           int64
	Attachments                  []string
}

type directPublish struct {
	Node, To string
	Msg      gotMessage
}

func copyMessage(m *chat.Message) gotMessage {
	g := gotMessage{Room: string(m.Room), From: m.From, Nick: m.Nick, User: m.User, Data: string(m.Data), TS: m.TS}
	for _, a := range m.Attachments {
		g.Attachments = append(g.Attachments, string(a))
	}
	return g
}

func (b *fakeBroker) record(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

func (b *fakeBroker) PublishRoom(m *chat.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.room = append(b.room, copyMessage(m))
}

func (b *fakeBroker) PublishDirect(node string, to []byte, m *chat.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.direct = append(b.direct, directPublish{node, string(to), copyMessage(m)})
}

// PublishUser and RemoteUserCount serve messages sent to a user, which
// these tests do not cover: PublishUser only records, and no user has
// connections on other nodes.
func (b *fakeBroker) PublishUser(user []byte, m *chat.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.user = append(b.user, copyMessage(m))
}

func (b *fakeBroker) RemoteUserCount(user string) int { return 0 }

func (b *fakeBroker) PublishAll(m *chat.Message) {
	b.record("publish all %q %s", m.Event, m.Data)
}

func (b *fakeBroker) Opened(id, nick, user string)       { b.record("opened %s %q %q", id, nick, user) }
func (b *fakeBroker) Nick(id, nick string)               { b.record("nick %s %q", id, nick) }
func (b *fakeBroker) Joined(id, room string)             { b.record("joined %s %q", id, room) }
func (b *fakeBroker) Left(id, room string)               { b.record("left %s %q", id, room) }
func (b *fakeBroker) Closed(id string, recoverable bool) { b.record("closed %s", id) }

func (b *fakeBroker) RemoteCount(room []byte) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count[string(room)]
}

func (b *fakeBroker) RemoteMembers(room []byte, dst []chat.MemberInfo) []chat.MemberInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append(dst, b.members[string(room)]...)
}

func (b *fakeBroker) RemoteRooms(dst map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for r, n := range b.rooms {
		dst[r] += n
	}
}

func (b *fakeBroker) NodeOf(id []byte) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.nodes[string(id)]
	return n, ok
}

// takeCalls returns the membership calls recorded since the last take.
func (b *fakeBroker) takeCalls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls
	b.calls = nil
	return c
}

var _ chat.Broker = (*fakeBroker)(nil)
var _ chat.Transport = (*fakeTransport)(nil)
var _ chat.Peer = (*fakePeer)(nil)

// equalStrings compares string slices, nil equal to empty.
func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
