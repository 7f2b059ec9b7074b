package chat_test

import (
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// ackPeer is a peer whose protocol acknowledges (chat.Acker): it records
// what it was asked to emit and answers with args.
type ackPeer struct {
	fakePeer
	got     *chat.Message
	timeout time.Duration
	args    string
}

func (p *ackPeer) EmitWithAck(m *chat.Message, timeout time.Duration, done chat.AckDone) {
	p.got, p.timeout = m, timeout
	done([]byte(p.args), nil)
}

// ackResult is what an AckDone was called with, and how often.
type ackResult struct {
	calls int
	args  string
	err   *chat.Error
}

func (r *ackResult) done(args []byte, err *chat.Error) {
	r.calls++
	r.args, r.err = string(args), err
}

// TestSendAckLocal: the hub hands a send with ack to the peer of the
// connection, on its loop, with the message and the timeout; a peer that
// cannot acknowledge (native) gets ack_unsupported, a connection the
// backend has not accepted not_ready, an unknown id nothing at all.
func TestSendAckLocal(t *testing.T) {
	f := newHub(t, chat.Config{})
	p := &ackPeer{args: `["ok"]`}
	s := f.hub.Open(p, 0, kindSocketIO, nil)
	var r ackResult
	if !f.hub.SendAckLocal([]byte(s.ID()), []byte(`{"q":1}`), "ask", 3*time.Second, r.done) {
		t.Fatal("SendAckLocal: the connection is not found")
	}
	if r.calls != 1 || r.args != `["ok"]` || r.err != nil {
		t.Fatalf("done %+v, want once with [\"ok\"]", r)
	}
	if p.got == nil || string(p.got.Data) != `{"q":1}` || p.got.Event != "ask" || p.got.TS != testNow.UnixMilli() || p.timeout != 3*time.Second {
		t.Fatalf("the peer was asked for %+v within %v", p.got, p.timeout)
	}

	native := f.open(1)
	r = ackResult{}
	if !f.hub.SendAckLocal([]byte(native.id()), []byte(`1`), "", time.Second, r.done) || r.calls != 1 || r.err != chat.ErrAckUnsupported {
		t.Fatalf("native: %+v, want ack_unsupported", r)
	}

	pending := f.hub.OpenPending(&ackPeer{}, 0, kindSocketIO, nil)
	r = ackResult{}
	if !f.hub.SendAckLocal([]byte(pending.ID()), []byte(`1`), "", time.Second, r.done) || r.calls != 1 || r.err != chat.ErrNotReady {
		t.Fatalf("pending: %+v, want not_ready", r)
	}

	r = ackResult{}
	if f.hub.SendAckLocal([]byte("zz-nobody"), []byte(`1`), "", time.Second, r.done) || r.calls != 0 {
		t.Fatalf("unknown id: found, or done called (%+v)", r)
	}
}
