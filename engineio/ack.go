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

// serverAck is one outstanding acknowledgement.
type serverAck struct {
	done  chat.AckDone
	timer *time.Timer
}

// EmitWithAck implements chat.Acker, on the home loop: m is encoded by
// the Socket.IO codec as any push to the client is, gains an ack id, and
// goes out through send, the session's one enqueue.
func (ss *session) EmitWithAck(m *chat.Message, timeout time.Duration, done chat.AckDone) {
	srv := ss.srv
	if ss.done || ss.chat == nil || ss.nsps&nspRoot == 0 {
		done(nil, chat.ErrAckDisconnect)
		return
	}
	if len(ss.acks) >= chat.MaxServerAcks {
		done(nil, chat.ErrTooManyAcks)
		return
	}
	st := &srv.loops[ss.home.Index()]
	st.buf = srv.hub.Codec(KindSocketIO).AppendMessage(st.buf[:0], m)
	id := ss.nextAck
	pkt, ok := socketio.AppendWithAckID(nil, st.buf, id)
	if !ok {
		// The codec writes every message as an event: a bug, not input.
		srv.log.Error("engineio: server ack: the codec's message is not an event", "conn", ss.chatID())
		done(nil, chat.ErrAckUnsupported)
		return
	}
	ss.nextAck++
	if ss.acks == nil {
		ss.acks = make(map[int64]*serverAck)
	}
	w := &serverAck{done: done}
	// Registered before the send: a send that closes the session (slow
	// consumer) fails the waiter with the others.
	ss.acks[id] = w
	home := ss.home
	w.timer = time.AfterFunc(timeout, func() {
		home.Run(nil, func() { ss.ackTimeout(id, w) })
	})
	ss.send(ws.OpText, pkt)
}

// ackTimeout ends waiter w of ack id when its timeout passed, on the home
// loop, unless the ACK or the session's end came first.
func (ss *session) ackTimeout(id int64, w *serverAck) {
	if ss.acks[id] != w {
		return
	}
	delete(ss.acks, id)
	ss.srv.cfg.Metrics.ServerAck(metrics.AckTimeout)
	w.done(nil, chat.ErrAckTimeout)
}

// ack handles the client's ACK or BINARY_ACK p of namespace bit. The
// waiter of its id gets a copy of the arguments, with binary attachments
// inlined as {"_binary":"<base64>"} (the API's answer is JSON). An ACK
// the server was not waiting for — an unknown id, or one already answered
// (ids are never reused) — is ignored and counted.
func (ss *session) ack(p *socketio.Packet, bit uint8, atts [][]byte) {
	w := ss.acks[p.ID]
	if bit != nspRoot || w == nil {
		ss.srv.cfg.Metrics.ServerAck(metrics.AckIgnored)
		return
	}
	delete(ss.acks, p.ID)
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

// failAcks ends every outstanding waiter with ack_disconnected: the chat
// session ends (the client left "/" or the session closed).
func (ss *session) failAcks() {
	for id, w := range ss.acks {
		delete(ss.acks, id)
		w.timer.Stop()
		ss.srv.cfg.Metrics.ServerAck(metrics.AckDisconnected)
		w.done(nil, chat.ErrAckDisconnect)
	}
}
