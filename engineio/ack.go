package engineio

import (
	"time"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/metrics"
)

// Acknowledgements the server asks for (chat.Acker): the server API's
// send with "ack", socket.timeout(t).emitWithAck() in Socket.IO. The
// waiters live in the session, on its home loop: the timeout comes back
// through the loop's mailbox, and the client's ACK, the timeout and the
// session's end each complete a waiter only if it is still in the table,
// so exactly one of them does.

// serverAck is one outstanding acknowledgement, asked on namespace so
// (nil: "/"). The ids of one Engine.IO session are shared by its
// namespaces and never reused, so an ACK names one waiter, and it counts
// only when it comes on the namespace that asked.
type serverAck struct {
	done  chat.AckDone
	timer *time.Timer
	so    *nspSocket
}

// EmitWithAck implements chat.Acker for the session's "/" socket, on the
// home loop.
func (ss *session) EmitWithAck(m *chat.Message, timeout time.Duration, done chat.AckDone) {
	if ss.done || ss.chat == nil || ss.nsps&nspRoot == 0 {
		done(nil, chat.ErrAckDisconnect)
		return
	}
	ss.emitWithAck(nil, m, timeout, done)
}

// EmitWithAck implements chat.Acker for a namespace's socket, on the home
// loop.
func (so *nspSocket) EmitWithAck(m *chat.Message, timeout time.Duration, done chat.AckDone) {
	if so.ss.done || !so.connected || so.ss.socket(so.name) != so {
		done(nil, chat.ErrAckDisconnect)
		return
	}
	so.ss.emitWithAck(so, m, timeout, done)
}

// emitWithAck sends m to socket so (nil: "/") with an ack id: m is encoded
// as text by the session's codec as any push to the client is, is put on
// the socket's namespace, gains the id, and goes out through send, the
// session's one enqueue (which translates it for a msgpack client).
func (ss *session) emitWithAck(so *nspSocket, m *chat.Message, timeout time.Duration, done chat.AckDone) {
	srv := ss.srv
	if len(ss.r0().acks) >= chat.MaxServerAcks {
		done(nil, chat.ErrTooManyAcks)
		return
	}
	st := &srv.loops[ss.home.Index()]
	st.buf = srv.hub.Codec(ss.textKind()).AppendMessage(st.buf[:0], m)
	event := st.buf
	if so != nil {
		st.nsbuf = socketio.WithNamespace(st.nsbuf[:0], st.buf, so.name)
		event = st.nsbuf
	}
	id := ss.r().nextAck
	pkt, ok := socketio.AppendWithAckID(nil, event, id)
	if !ok {
		// The codec writes every message as an event: a bug, not input.
		srv.log.Error("engineio: server ack: the codec's message is not an event", "conn", ss.chatID())
		done(nil, chat.ErrAckUnsupported)
		return
	}
	ss.r().nextAck++
	if ss.r().acks == nil {
		ss.r().acks = make(map[int64]*serverAck)
	}
	w := &serverAck{done: done, so: so}
	// Registered before the send: a send that closes the session (slow
	// consumer) fails the waiter with the others.
	ss.r().acks[id] = w
	home := ss.home
	w.timer = time.AfterFunc(timeout, func() {
		home.Run(nil, func() { ss.ackTimeout(id, w) })
	})
	ss.send(ws.OpText, pkt)
}

// ackTimeout ends waiter w of ack id when its timeout passed, on the home
// loop, unless the ACK or the session's end came first.
func (ss *session) ackTimeout(id int64, w *serverAck) {
	if ss.r0().acks[id] != w {
		return
	}
	delete(ss.r().acks, id)
	ss.srv.cfg.Metrics.ServerAck(metrics.AckTimeout)
	w.done(nil, chat.ErrAckTimeout)
}

// ack handles the client's ACK or BINARY_ACK p on socket so (nil: "/"). The
// waiter of its id gets a copy of the arguments, with binary attachments
// inlined as {"_binary":"<base64>"} (the API's answer is JSON). An ACK
// the server was not waiting for — an unknown id, or one already answered
// (ids are never reused) — is ignored and counted.
func (ss *session) ack(p *socketio.Packet, so *nspSocket, atts [][]byte) {
	w := ss.r0().acks[p.ID]
	if w == nil || w.so != so {
		ss.srv.cfg.Metrics.ServerAck(metrics.AckIgnored)
		return
	}
	delete(ss.r().acks, p.ID)
	w.timer.Stop()
	var args []byte
	if len(atts) > 0 {
		out, err := socketio.InlineAttachments(nil, p.Data, atts)
		if err != nil {
			out = append([]byte(nil), p.Data...) // malformed placeholders: as they came
		}
		args = out
	} else {
		args = append([]byte(nil), p.Data...)
	}
	ss.srv.cfg.Metrics.ServerAck(metrics.AckAnswered)
	w.done(args, nil)
}

// failAcks ends every outstanding waiter of socket so (nil: "/") with
// ack_disconnected: its chat session ends (the client left the namespace,
// or the session closed).
func (ss *session) failAcks(so *nspSocket) {
	for id, w := range ss.r0().acks {
		if w.so != so {
			continue
		}
		delete(ss.r().acks, id)
		w.timer.Stop()
		ss.srv.cfg.Metrics.ServerAck(metrics.AckDisconnected)
		w.done(nil, chat.ErrAckDisconnect)
	}
}
