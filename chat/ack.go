package chat

import "time"

// Server acknowledgements: the server API's send with "ack" asks one
// client to acknowledge an event and waits for its answer, as Socket.IO's
// socket.timeout(t).emitWithAck() does. The hub only carries the request
// to the session's own loop; the peer (a Socket.IO session) keeps the
// waiters, sends the event with an ack id through its one outbound path
// and completes them when the client's ACK, the timeout or the session's
// end comes.

// Error codes of a server acknowledgement (docs/api.md).
const (
	CodeAckTimeout     = "ack_timeout"      // the client did not acknowledge within the timeout
	CodeAckDisconnect  = "ack_disconnected" // the client disconnected before it acknowledged
	CodeAckUnsupported = "ack_unsupported"  // the client's protocol has no acknowledgements (native)
	CodeTooManyAcks    = "too_many_acks"    // the client has MaxServerAcks acknowledgements outstanding
)

// MaxServerAcks bounds the acknowledgements one session may owe the
// server at once: each holds a waiter and a timer until it is answered.
const MaxServerAcks = 64

// Errors of a server acknowledgement.
var (
	ErrAckTimeout     = &Error{CodeAckTimeout, "the client did not acknowledge in time"}
	ErrAckDisconnect  = &Error{CodeAckDisconnect, "the client disconnected before it acknowledged"}
	ErrAckUnsupported = &Error{CodeAckUnsupported, "the client's protocol cannot acknowledge (native); only Socket.IO clients can"}
	ErrTooManyAcks    = &Error{CodeTooManyAcks, "the client has 64 acknowledgements outstanding"}
)

// AckDone receives the outcome of a server acknowledgement, on the
// session's loop, exactly once: the client's arguments (a JSON array that
// belongs to the callee) or an error. It must not block.
type AckDone func(args []byte, err *Error)

// Acker is implemented by peers whose protocol lets the server ask the
// client for an acknowledgement (Socket.IO).
type Acker interface {
	// EmitWithAck sends m to the client as an event with a fresh ack id
	// and calls done when the client acknowledges it (with a copy of its
	// arguments), when timeout passes (ErrAckTimeout), when the session
	// ends first (ErrAckDisconnect), or at once when MaxServerAcks are
	// outstanding (ErrTooManyAcks). Called on the session's own loop.
	EmitWithAck(m *Message, timeout time.Duration, done AckDone)
}

// SendAckLocal sends a message from the server to connection id, if it is
// on this node, as an event the client must acknowledge within timeout
// (see Acker), and reports whether it was on this node. done runs on the
// session's loop; it is never called when that loop is gone, so the
// caller bounds its own wait. data must not change until done runs.
func (h *Hub) SendAckLocal(id, data []byte, event string, timeout time.Duration, done AckDone) bool {
	s := h.sessions.get(id)
	if s == nil {
		return false
	}
	m := &Message{Data: data, Event: event, TS: h.cfg.Now().UnixMilli()}
	h.transport.Exec(s, func() {
		if !h.sessions.has(s) {
			done(nil, ErrAckDisconnect) // closed on its way here
			return
		}
		if s.pending {
			done(nil, ErrNotReady)
			return
		}
		a, ok := s.peer.(Acker)
		if !ok {
			done(nil, ErrAckUnsupported)
			return
		}
		a.EmitWithAck(m, timeout, done)
	})
	return true
}
