package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef-test-key")
	otherKey = []byte("another key of at least thirty-two bytes!")
)

// startServerOpts runs an embedded NATS server with o (authorization,
// TLS) on a random loopback port.
func startServerOpts(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", -1, true, true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { stopServer(s) })
	return s
}

// newNodeCfg is newNode with cfg's credentials, TLS, key and logger.
func newNodeCfg(t testing.TB, cfg Config) (*Cluster, *recorder) {
	t.Helper()
	cfg.Heartbeat, cfg.TTL, cfg.ReconnectWait = testHB, testTTL, 50*time.Millisecond
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	r := newRecorder()
	c, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, r
}

// logBuffer collects a node's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// refused asserts that node never joins while a and b, which can connect,
// keep meeting each other: it waits until node has logged its refusal
// (want) and checks that nobody knows it.
func refused(t *testing.T, node *Cluster, logs *logBuffer, want string, a, b *Cluster) {
	t.Helper()
	eventually(t, 5*time.Second, "the refusal is logged", func() bool { return strings.Contains(logs.String(), want) })
	meshed(t, a, b)
	if node.Stats().Connected {
		t.Fatal("a node with refused credentials is connected")
	}
	for _, c := range []*Cluster{a, b} {
		if slices.Contains(c.Nodes(), node.Node()) {
			t.Fatalf("%s knows the refused node: %v", c.Node(), c.Nodes())
		}
	}
}

// A NATS server with users: a node with a wrong password, or none, is
// refused and never joins; nodes with the right ones form the cluster.
func TestNATSUserPassword(t *testing.T) {
	s := startServerOpts(t, &server.Options{Users: []*server.User{
		{Username: "gw", Password: "right-password"},
	}})
	var wrong, none logBuffer
	bad, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "bad", User: "gw", Password: "wrong-password", Logger: wrong.logger()})
	anon, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "anon", Logger: none.logger()})
	a, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "a", User: "gw", Password: "right-password"})
	b, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "b", User: "gw", Password: "right-password"})
	refused(t, bad, &wrong, "Authorization Violation", a, b)
	refused(t, anon, &none, "Authorization Violation", a, b)
	if strings.Contains(wrong.String(), "wrong-password") {
		t.Fatal("the password is logged")
	}
}

// Token authentication.
func TestNATSToken(t *testing.T) {
	s := startServerOpts(t, &server.Options{Authorization: "s3cret-token"})
	var logs logBuffer
	bad, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "bad", Token: "not-it", Logger: logs.logger()})
	a, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "a", Token: "s3cret-token"})
	b, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "b", Token: "s3cret-token"})
	refused(t, bad, &logs, "Authorization Violation", a, b)
}

// writePEM writes blocks to a new file in dir.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testPKI makes a CA and, signed by it, a server certificate for
// 127.0.0.1 and a client certificate. It returns the files.
func testPKI(t *testing.T) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(k)
		return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	srvCert, srvKey = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER), srvCert, srvKey, cliCert, cliKey
}

// A NATS server that requires TLS with client certificates: a node with
// the CA and its certificate joins; one without a client certificate, or
// without the CA, is refused.
func TestNATSTLS(t *testing.T) {
	ca, srvCert, srvKey, cliCert, cliKey := testPKI(t)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: srvCert, KeyFile: srvKey, CaFile: ca, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	s := startServerOpts(t, &server.Options{TLS: true, TLSVerify: true, TLSConfig: tc, TLSTimeout: 2})
	var noCert, noCA logBuffer
	bad1, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "nocert", TLSCAFile: ca, Logger: noCert.logger()})
	bad2, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "noca", TLSCertFile: cliCert, TLSKeyFile: cliKey, Logger: noCA.logger()})
	a, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "a", TLSCAFile: ca, TLSCertFile: cliCert, TLSKeyFile: cliKey})
	b, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "b", TLSCAFile: ca, TLSCertFile: cliCert, TLSKeyFile: cliKey})
	refused(t, bad1, &noCert, "not connected to NATS", a, b)
	refused(t, bad2, &noCA, "certificate", a, b)
}

func TestTrustConfigErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Config{URL: "nats://127.0.0.1:1", Node: "a"}
	with := func(f func(*Config)) Config { c := base; f(&c); return c }
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"short key", with(func(c *Config) { c.Key = []byte("short") }), ErrShortKey},
		{"user and token", with(func(c *Config) { c.User, c.Password, c.Token = "u", "p", "t" }), ErrAuth},
		{"password alone", with(func(c *Config) { c.Password = "p" }), ErrAuth},
		{"token and creds", with(func(c *Config) { c.Token, c.CredsFile = "t", file }), ErrAuth},
		{"cert without key", with(func(c *Config) { c.TLSCertFile = file }), ErrTLSPair},
		{"key without cert", with(func(c *Config) { c.TLSKeyFile = file }), ErrTLSPair},
		{"missing CA", with(func(c *Config) { c.TLSCAFile = file + ".missing" }), os.ErrNotExist},
		{"missing creds", with(func(c *Config) { c.CredsFile = file + ".missing" }), os.ErrNotExist},
		{"bad seed", with(func(c *Config) { c.NKeySeedFile = file }), nil}, // any error
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, newRecorder())
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignerSealOpen(t *testing.T) {
	s, other, none := newSigner(testKey), newSigner(otherKey), newSigner(nil)
	plain := appendMessage(nil, kindRoom, "a", []byte("lobby"), &Message{From: "a000001", Data: []byte(`{"x":1}`)})
	if got := none.seal(slices.Clone(plain)); !bytes.Equal(got, plain) {
		t.Fatal("sealing without a key changed the payload")
	}
	if body, err := none.open(plain); err != nil || !bytes.Equal(body, plain) {
		t.Fatalf("open without a key: %v", err)
	}
	signed := s.seal(slices.Clone(plain))
	if signed[0] != wireSigned || len(signed) != len(plain)+macLen {
		t.Fatalf("signed payload: version %d, %d bytes", signed[0], len(signed))
	}
	body, err := s.open(signed)
	if err != nil {
		t.Fatal(err)
	}
	var w wireMsg
	if err := decodeBody(body, &w); err != nil || w.kind != kindRoom || string(w.data) != `{"x":1}` {
		t.Fatalf("signed body decodes to %+v, %v", w, err)
	}
	// Every single flipped bit is caught, in the body and in the MAC.
	for i := range signed {
		b := slices.Clone(signed)
		b[i] ^= 1
		if _, err := s.open(b); err == nil {
			t.Fatalf("flipping a bit of byte %d went unnoticed", i)
		}
	}
	for name, b := range map[string][]byte{
		"unsigned":  plain,
		"other key": other.seal(slices.Clone(plain)),
		"truncated": signed[:len(signed)-1],
		"no MAC":    append([]byte{wireSigned}, plain[1:]...),
	} {
		if _, err := s.open(b); !errors.Is(err, errForged) {
			t.Errorf("%s: %v, want errForged", name, err)
		}
	}
	// A node API request, signed.
	body, err = s.open(s.seal(appendAPI(nil, kindAPIReq, "a", []byte(`{"m":1}`))))
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeBody(body, &w); err != nil || w.kind != kindAPIReq || string(w.origin) != "a" || string(w.data) != `{"m":1}` {
		t.Fatalf("API request decodes to %+v, %v", w, err)
	}
	if _, err := none.open(signed); !errors.Is(err, errVersion) {
		t.Errorf("a node without a key took a signed payload: %v", err)
	}
	if _, err := s.open([]byte{9, 1, 0}); !errors.Is(err, errForged) {
		t.Errorf("unknown version with a key: %v, want errForged", err)
	}
	if _, err := none.open([]byte{9, 1, 0}); !errors.Is(err, errVersion) {
		t.Errorf("unknown version without a key: %v, want errVersion", err)
	}
}

// check, rule by rule: every payload here is dropped by node "b".
func TestCheckRejects(t *testing.T) {
	good := func() *Message {
		return &Message{From: "a000001", Nick: "ann", User: "u-1", Data: []byte(`{"text":"hi"}`), TS: 1}
	}
	mod := func(f func(m *Message)) *Message { m := good(); f(m); return m }
	long := func(n int) string { return strings.Repeat("x", n) }
	room := func(m *Message) []byte { return appendMessage(nil, kindRoom, "a", []byte("lobby"), m) }
	state := func(o op, id, nick, user, room string) []byte {
		return appendState(nil, "a", 1, 1, o, id, nick, user, room)
	}
	// The good ones pass.
	for name, b := range map[string][]byte{
		"room":         room(good()),
		"server":       room(&Message{Data: []byte(`"x"`), Event: "news"}),
		"no data":      room(&Message{From: "a000001"}),
		"emit":         room(&Message{Data: []byte(` ["a",1]`), Event: "welcome", EventArgs: true}),
		"direct":       appendMessage(nil, kindDirect, "a", []byte("b00000z"), good()),
		"user":         appendMessage(nil, kindUser, "a", []byte("u-2"), good()),
		"all":          appendMessage(nil, kindAll, "a", nil, &Message{Data: []byte(`1`)}),
		"max data":     room(mod(func(m *Message) { m.Data = []byte(`"` + long(1022) + `"`) })),
		"server 1 MiB": room(&Message{Data: []byte(`"` + long(1<<20-2) + `"`)}),
		"32 runes":     room(mod(func(m *Message) { m.Nick = strings.Repeat("é", 32) })),
		"open":         state(opOpen, "a000001", "", "", ""),
		"join":         state(opJoin, "a0000000000zz", "n", "u", long(128)),
		"hb":           appendHB(nil, "a", 1, 1, 0),
		"sync":         appendSyncReq(nil, "a-b_C9"),
	} {
		var w wireMsg
		if err := decode(b, &w); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := check(&w, "b", 1024, strictIDs); err != nil {
			t.Errorf("%s: %v, want accepted", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"not JSON":              room(mod(func(m *Message) { m.Data = []byte(`{"text":"hi"`) })),
		"JSON and more":         room(mod(func(m *Message) { m.Data = []byte(`{}{}`) })),
		"bare word":             room(mod(func(m *Message) { m.Data = []byte(`hello`) })),
		"data too large":        room(mod(func(m *Message) { m.Data = []byte(`"` + long(1023) + `"`) })),
		"server data too large": room(&Message{Data: []byte(`"` + long(1<<20-1) + `"`)}),
		"attachment too large":  room(mod(func(m *Message) { m.Attachments = [][]byte{make([]byte, 1025)} })),
		"65 attachments":        room(mod(func(m *Message) { m.Attachments = make([][]byte, 65) })),
		"sender of another":     room(mod(func(m *Message) { m.From = "b000001" })),
		"sender too short":      room(mod(func(m *Message) { m.From = "a00001" })),
		"sender too long":       room(mod(func(m *Message) { m.From = "a" + strings.Repeat("0", 14) })),
		"sender bad digit":      room(mod(func(m *Message) { m.From = "a00000i" })),
		"sender with event":     room(mod(func(m *Message) { m.Event = "news" })),
		"server with nick":      room(&Message{Nick: "root", Data: []byte(`1`)}),
		"server with user":      room(&Message{User: "admin", Data: []byte(`1`)}),
		"nick 33 runes":         room(mod(func(m *Message) { m.Nick = strings.Repeat("é", 33) })),
		"nick not UTF-8":        room(mod(func(m *Message) { m.Nick = "\xff" })),
		"user too long":         room(mod(func(m *Message) { m.User = long(257) })),
		"event too long":        room(&Message{Data: []byte(`1`), Event: long(129)}),
		"emit without array":    room(&Message{Data: []byte(`{}`), Event: "e", EventArgs: true}),
		"emit without event":    append(appendStr(room(&Message{Data: []byte(`[]`)}), ""), msgEventArgs),
		"empty room":            appendMessage(nil, kindRoom, "a", nil, good()),
		"room too long":         appendMessage(nil, kindRoom, "a", []byte(long(maxRoomLen+1)), good()),
		"direct elsewhere":      appendMessage(nil, kindDirect, "a", []byte("c000001"), good()),
		"direct to origin":      appendMessage(nil, kindDirect, "a", []byte("a000002"), good()),
		"user empty":            appendMessage(nil, kindUser, "a", nil, good()),
		"all with a room":       appendMessage(nil, kindAll, "a", []byte("r"), good()),
		"bad origin":            appendMessage(nil, kindRoom, "a.*", []byte("r"), &Message{}),
		"empty origin":          appendHB(nil, "", 1, 1, 0),
		"state foreign id":      state(opOpen, "b000001", "", "", ""),
		"state bad op":          state(op(9), "a000001", "", "", ""),
		"state open with room":  state(opOpen, "a000001", "", "", "r"),
		"state join no room":    state(opJoin, "a000001", "", "", ""),
		"state long nick":       state(opNick, "a000001", long(33), "", ""),
		"state long room":       state(opLeave, "a000001", "", "", long(maxRoomLen+1)),
	} {
		var w wireMsg
		if err := decode(b, &w); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := check(&w, "b", 1024, strictIDs); !errors.Is(err, errInvalid) {
			t.Errorf("%s: %v, want errInvalid", name, err)
		}
	}
	// A snapshot's sessions.
	for name, ss := range map[string][]snapSession{
		"foreign id": {{id: "b000001"}},
		"long nick":  {{id: "a000001", nick: long(129)}},
		"empty room": {{id: "a000001", rooms: []string{""}}},
	} {
		if err := checkSessions("a", ss, strictIDs); !errors.Is(err, errInvalid) {
			t.Errorf("snapshot %s: %v", name, err)
		}
	}
	if err := checkSessions("a", []snapSession{{id: "a000001", nick: "n", user: "u", rooms: []string{"r"}}}, strictIDs); err != nil {
		t.Errorf("good snapshot: %v", err)
	}
}

// rawClient is a NATS client that is not a node: what an attacker with
// access to the server has.
func rawClient(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// forgeries returns payloads in the names of nodes "a" (real) and "zz"
// (invented) for receiver "b", whose connection b000001 is in room "r".
// They are valid version-1 payloads: a node without a key believes them.
func forgeries() map[string][]byte {
	m := &Message{From: "a000001", Nick: "mallory", Data: []byte(`{"forged":true}`), TS: 1}
	return map[string][]byte{
		"room":   appendMessage(nil, kindRoom, "a", []byte("r"), m),
		"direct": appendMessage(nil, kindDirect, "a", []byte("b000001"), m),
		"user":   appendMessage(nil, kindUser, "a", []byte("u-b"), m),
		"all":    appendMessage(nil, kindAll, "a", nil, &Message{Data: []byte(`"all"`)}),
		"member": appendState(nil, "a", 1, 1, opJoin, "a0000zz", "fake", "", "r"),
		"room2":  appendState(nil, "zz", 1, 1, opJoin, "zz000001", "fake", "", "fake-room"),
		"hb":     appendHB(nil, "zz", 1, 0, 0),
	}
}

// With a key: unsigned payloads, and payloads signed with another key,
// reach nobody and change no list; they are counted as forged. Signed
// traffic flows, node API calls included.
func TestSignedClusterDropsForgeries(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	url := s.ClientURL()
	a, _ := newNodeCfg(t, Config{URL: url, Node: "a", Key: testKey})
	b, rb := newNodeCfg(t, Config{URL: url, Node: "b", Key: testKey})
	meshed(t, a, b)
	b.LocalOpened("b000001", "bob", "u-b")
	b.LocalJoined("b000001", "r")
	a.LocalOpened("a000001", "ann", "")
	a.LocalJoined("a000001", "r")
	eventually(t, time.Second, "a and b see each other's members", func() bool {
		return a.RemoteCount([]byte("r")) == 1 && b.RemoteCount([]byte("r")) == 1
	})

	if err := b.Serve(func(req []byte) []byte { return append([]byte("served "), req...) }); err != nil {
		t.Fatal(err)
	}
	nc := rawClient(t, url)
	other := newSigner(otherKey)
	subj := map[string]string{"room": b.roomPrefix + roomToken([]byte("r")), "direct": b.nodeSubj, "user": b.nodeSubj,
		"all": b.nodeSubj, "member": b.stateSubj, "room2": b.stateSubj, "hb": b.hbSubj}
	n := 0
	for name, p := range forgeries() {
		for _, payload := range [][]byte{p, other.seal(slices.Clone(p))} {
			if err := nc.Publish(subj[name], payload); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	// A snapshot request, and a node API request, without the key: each
	// is counted instead of answered.
	if err := nc.PublishRequest(b.syncSubj, nats.NewInbox(), appendSyncReq(nil, "zz")); err != nil {
		t.Fatal(err)
	}
	n++
	if err := nc.PublishRequest(b.apiSubject("b"), nats.NewInbox(), []byte(`{"method":"info"}`)); err != nil {
		t.Fatal(err)
	}
	n++
	eventually(t, 2*time.Second, "every forgery counted", func() bool { return b.Stats().Forged == uint64(n) })
	// a is in room r too: it drops the room, state and heartbeat ones.
	eventually(t, 2*time.Second, "a counts those it got", func() bool { return a.Stats().Forged == 8 })

	// The forgeries reached nobody and changed nothing.
	a.PublishRoom(msg("r", `"genuine"`))
	eventually(t, time.Second, "the genuine message arrives", func() bool { return len(rb.room("r")) > 0 })
	if got := rb.room("r"); !slices.Equal(got, []string{`"genuine"`}) {
		t.Fatalf("b's room got %q", got)
	}
	if got := rb.dms(); len(got) != 0 {
		t.Fatalf("b got direct messages %q", got)
	}
	rooms := map[string]int{}
	b.RemoteRooms(rooms)
	if len(rooms) != 1 || rooms["r"] != 1 || b.RemoteCount([]byte("r")) != 1 || !slices.Equal(b.Nodes(), []string{"a"}) {
		t.Fatalf("b's lists changed: rooms %v, nodes %v", rooms, b.Nodes())
	}
	if st := b.Stats(); st.BadPayloads != 0 || st.Invalid != 0 {
		t.Fatalf("b stats %+v", st)
	}

	// Signed node API calls work; an unsigned reply is refused.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if got, err := a.Call(ctx, "b", []byte("ping")); err != nil || string(got) != "served ping" {
		t.Fatalf("Call = %q, %v", got, err)
	}
	sub, err := nc.Subscribe(a.cfg.Prefix+".api.zz", func(m *nats.Msg) { _ = m.Respond([]byte(`{"ok":true}`)) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	forged := a.Stats().Forged
	if _, err := a.Call(ctx, "zz", []byte("ping")); !errors.Is(err, ErrForgedReply) {
		t.Fatalf("Call answered by an impostor: %v, want ErrForgedReply", err)
	}
	if a.Stats().Forged != forged+1 {
		t.Fatal("the forged reply was not counted")
	}
}

// Nodes with different keys do not believe each other.
func TestDifferentKeysDoNotMesh(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "a", Key: testKey})
	b, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "b", Key: otherKey})
	c, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "c", Key: testKey})
	meshed(t, a, c)
	eventually(t, time.Second, "b's heartbeats are counted as forged", func() bool {
		return a.Stats().Forged > 0 && b.Stats().Forged > 0
	})
	if len(b.Nodes()) != 0 || slices.Contains(a.Nodes(), "b") {
		t.Fatalf("a knows %v, b knows %v", a.Nodes(), b.Nodes())
	}
}

// Without a key, payloads that break the limits (not JSON, ids of another
// node, names too long) are dropped and counted; well-formed ones pass.
func TestUnsignedClusterValidates(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	url := s.ClientURL()
	a, _ := newNodeCfg(t, Config{URL: url, Node: "a"})
	b, rb := newNodeCfg(t, Config{URL: url, Node: "b", MaxMessage: 100})
	meshed(t, a, b)
	b.LocalOpened("b000001", "bob", "")
	b.LocalJoined("b000001", "r")
	a.LocalOpened("a000001", "ann", "")
	eventually(t, time.Second, "a sees b's member", func() bool { return a.RemoteCount([]byte("r")) == 1 })
	eventually(t, time.Second, "b sees a's session", func() bool { _, ok := b.NodeOf([]byte("a000001")); return ok })

	nc := rawClient(t, url)
	roomSubj := b.roomPrefix + roomToken([]byte("r"))
	bad := []struct{ subj, name string }{}
	publish := func(subj, name string, p []byte) {
		t.Helper()
		if err := nc.Publish(subj, p); err != nil {
			t.Fatal(err)
		}
		bad = append(bad, struct{ subj, name string }{subj, name})
	}
	m := func(from, data string) *Message { return &Message{From: from, Data: []byte(data), TS: 1} }
	publish(roomSubj, "not JSON", appendMessage(nil, kindRoom, "a", []byte("r"), m("a000001", `<script>`)))
	publish(roomSubj, "key injection", appendMessage(nil, kindRoom, "a", []byte("r"), m("a000001", `1,"from":"admin"`)))
	publish(roomSubj, "foreign sender", appendMessage(nil, kindRoom, "a", []byte("r"), m("b000001", `1`)))
	publish(roomSubj, "too large", appendMessage(nil, kindRoom, "a", []byte("r"), m("a000001", `"`+strings.Repeat("x", 100)+`"`)))
	publish(b.nodeSubj, "direct not JSON", appendMessage(nil, kindDirect, "a", []byte("b000001"), m("a000001", `{`)))
	// Ids open on another node (here b's own, and a's in zz's name).
	publish(b.stateSubj, "foreign member", appendState(nil, "a", 1, 1, opJoin, "b000001", "fake", "", "r"))
	publish(b.stateSubj, "fake room member", appendState(nil, "zz", 1, 1, opJoin, "a000001", "fake", "", "fake-room"))
	publish(b.stateSubj, "long nick", appendState(nil, "zz", 1, 1, opOpen, "zz000001", strings.Repeat("n", 33), "", ""))
	eventually(t, 2*time.Second, "every violation counted", func() bool { return b.Stats().Invalid == uint64(len(bad)) })

	a.PublishRoom(msg("r", `"genuine"`))
	eventually(t, time.Second, "the genuine message arrives", func() bool { return len(rb.room("r")) > 0 })
	if got := rb.room("r"); !slices.Equal(got, []string{`"genuine"`}) {
		t.Fatalf("b's room got %q", got)
	}
	rooms := map[string]int{}
	b.RemoteRooms(rooms)
	if len(rb.dms()) != 0 || len(rooms) != 0 || !slices.Equal(b.Nodes(), []string{"a"}) {
		t.Fatalf("b: dms %q, rooms %v, nodes %v", rb.dms(), rooms, b.Nodes())
	}
	if st := b.Stats(); st.Forged != 0 || st.BadPayloads != 0 {
		t.Fatalf("b stats %+v", st)
	}
}

// docConfig returns the nats-server configuration docs/cluster.md shows.
func docConfig(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/cluster.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```conf\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/cluster.md has no ```conf block")
	}
	return string(m[1])
}

// The nats-server configuration of docs/cluster.md works: its gateway
// users form a cluster, and a client of the other account can neither
// see the gateway's subjects nor forge anything on them.
func TestDocumentedNATSConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nats-server.conf")
	if err := os.WriteFile(path, []byte(docConfig(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHATGATE_GW1_PASSWORD", "gw1-pw")
	t.Setenv("CHATGATE_GW2_PASSWORD", "gw2-pw")
	t.Setenv("APP_PASSWORD", "app-pw")
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("the documented configuration does not load: %v", err)
	}
	s := startServerOpts(t, opts)
	url := s.ClientURL()
	a, _ := newNodeCfg(t, Config{URL: url, Node: "gw1", User: "gw1", Password: "gw1-pw"})
	b, rb := newNodeCfg(t, Config{URL: url, Node: "gw2", User: "gw2", Password: "gw2-pw"})
	meshed(t, a, b)
	b.LocalOpened("gw2000001", "bob", "")
	b.LocalJoined("gw2000001", "r")
	eventually(t, time.Second, "gw1 sees gw2's member", func() bool { return a.RemoteCount([]byte("r")) == 1 })
	// Forwarded long-polling requests pass the documented permissions.
	if err := b.ServePolling(func(req []byte, respond func([]byte)) { go respond(req) }); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer pcancel()
	if got, err := a.CallPolling(pctx, "gw2", []byte("poll")); err != nil || string(got) != "poll" {
		t.Fatalf("forwarded polling request under the documented permissions: %q, %v", got, err)
	}

	// The application's user is in another account, and its forgeries
	// reach no node.
	app, err := nats.Connect(url, nats.UserInfo("app", "app-pw"), nats.Name("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	cz, err := s.Connz(&server.ConnzOptions{Username: true})
	if err != nil {
		t.Fatal(err)
	}
	accounts := map[string]string{}
	for _, ci := range cz.Conns {
		accounts[ci.AuthorizedUser] = ci.Account
	}
	if accounts["gw1"] != "CHATGATE" || accounts["gw2"] != "CHATGATE" || accounts["app"] != "APP" {
		t.Fatalf("accounts of the users: %v", accounts)
	}
	for name, p := range forgeries() {
		subj := map[string]string{"room": b.roomPrefix + roomToken([]byte("r")), "member": b.stateSubj, "room2": b.stateSubj, "hb": b.hbSubj}[name]
		if subj == "" {
			subj = b.nodeSubj
		}
		if err := app.Publish(subj, p); err != nil {
			t.Fatal(err)
		}
	}
	// The server has routed the forgeries once the flush returns: any that
	// could reach gw2 is queued to it before gw1's genuine message.
	if err := app.Flush(); err != nil {
		t.Fatal(err)
	}
	a.PublishRoom(msg("r", `"genuine"`))
	eventually(t, time.Second, "the genuine message arrives", func() bool { return len(rb.room("r")) > 0 })
	if got := rb.room("r"); !slices.Equal(got, []string{`"genuine"`}) || len(rb.dms()) != 0 {
		t.Fatalf("gw2 got %q, dms %q", got, rb.dms())
	}
	rooms := map[string]int{}
	b.RemoteRooms(rooms)
	if len(rooms) != 0 || !slices.Equal(b.Nodes(), []string{"gw1"}) {
		t.Fatalf("gw2's lists changed: rooms %v, nodes %v", rooms, b.Nodes())
	}
	if st := b.Stats(); st.Invalid+st.Forged+st.BadPayloads != 0 {
		t.Fatalf("gw2 received forgeries: %+v", st)
	}
}

// A session resumed on another node keeps its id, whose tag is its first
// node's: the node it moved to may name it as its own (members, senders,
// direct message targets), unless the id is open on some other node.
func TestResumedIDsAccepted(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	url := s.ClientURL()
	a, ra := newNodeCfg(t, Config{URL: url, Node: "a"})
	b, rb := newNodeCfg(t, Config{URL: url, Node: "b"})
	c, rc := newNodeCfg(t, Config{URL: url, Node: "c"})
	meshed(t, a, b, c)
	b.LocalOpened("b000001", "bob", "")
	b.LocalOpened("b000002", "bea", "")
	c.LocalOpened("c000001", "cy", "")
	c.LocalJoined("c000001", "r")
	eventually(t, time.Second, "a sees b's sessions", func() bool { _, ok := a.NodeOf([]byte("b000002")); return ok })

	// b000001 drops from b and resumes on a.
	b.LocalClosed("b000001", true)
	eventually(t, time.Second, "c sees it close", func() bool { _, ok := c.NodeOf([]byte("b000001")); return !ok })
	a.LocalOpened("b000001", "bob", "")
	a.LocalJoined("b000001", "r")
	for name, n := range map[string]*Cluster{"b": b, "c": c} {
		eventually(t, time.Second, name+" sees b000001 on a", func() bool { node, ok := n.NodeOf([]byte("b000001")); return ok && node == "a" })
	}
	a.PublishRoom(&Message{Room: []byte("r"), From: "b000001", Nick: "bob", Data: []byte(`"back"`), TS: 1})
	eventually(t, time.Second, "c delivers its message", func() bool { return slices.Equal(rc.room("r"), []string{`"back"`}) })
	c.PublishDirect("a", &Message{To: []byte("b000001"), From: "c000001", Data: []byte(`"dm"`), TS: 1})
	eventually(t, time.Second, "a delivers the direct message", func() bool { return slices.Equal(ra.dms(), []string{`b000001 "dm"`}) })

	// a cannot claim b000002, which is open on b.
	a.LocalOpened("b000002", "", "")
	eventually(t, time.Second, "b and c count the claim invalid", func() bool { return b.Stats().Invalid >= 1 && c.Stats().Invalid >= 1 })
	if node, _ := c.NodeOf([]byte("b000002")); node != "b" {
		t.Fatalf("c thinks b000002 is on %q", node)
	}
	if st := b.Stats(); st.Forged+st.BadPayloads != 0 || len(rb.dms()) != 0 {
		t.Fatalf("b: %+v, dms %q", st, rb.dms())
	}
}
