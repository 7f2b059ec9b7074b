package cluster

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ---- Writer goroutine: publishes, subscriptions, heartbeats ----

// writeLoop is the only goroutine that publishes queued messages and
// (un)subscribes rooms, so a slow socket write to NATS stalls this
// goroutine, never an event loop.
func (c *Cluster) writeLoop() {
	defer c.wg.Done()
	hb := time.NewTicker(c.cfg.Heartbeat)
	defer hb.Stop()
	c.heartbeat() // announce ourselves at once
	for {
		select {
		case o := <-c.out:
			if o.flushed != nil {
				_ = c.nc.FlushTimeout(time.Second)
				close(o.flushed)
				continue
			}
			// Subscribe before publishing anything queued after the
			// interest change (a join's state event in particular): over
			// one connection the server sees the SUB first, so a peer
			// that learned of the join sends to a subject we already
			// listen on.
			select {
			case <-c.interest:
				c.reconcile()
			default:
			}
			c.publish(o)
		case <-c.interest:
			c.reconcile()
		case <-c.hbNow:
			c.heartbeat()
		case <-hb.C:
			c.heartbeat()
			c.collectDropped()
			c.reportDown()
			c.reportHistoryDropped()
		case <-c.done:
			// Whatever is still queued will not reach NATS.
			for {
				select {
				case o := <-c.out:
					if o.flushed != nil {
						close(o.flushed)
						continue
					}
					if o.counted {
						c.stats.undelivered.Add(1)
					} else {
						c.stats.stateLost.Add(1)
					}
					releaseBuf(o.buf)
				default:
					return
				}
			}
		}
	}
}

func (c *Cluster) publish(o outMsg) {
	var subj string
	switch {
	case o.subj != "":
		subj = o.subj
	case o.room != nil:
		subj = c.subject(true, o.room)
	default:
		subj = c.subject(false, []byte(o.node))
	}
	// Signing may grow the buffer: o.room (which aliases it) is not used
	// after the subject lookup above.
	*o.buf = c.sign.seal(*o.buf)
	// nats.go copies the payload into its write buffer, so the buffer can
	// go back to the pool at once.
	err := c.nc.Publish(subj, *o.buf)
	releaseBuf(o.buf)
	switch {
	case err != nil && o.counted:
		c.stats.undelivered.Add(1)
	case err != nil:
		c.stats.stateLost.Add(1)
	case o.counted:
		c.stats.published.Add(1)
	}
}

// reportHistoryDropped logs (rate-limited) that room messages were lost
// since the last heartbeat because a history queue was full: the event
// loops only count them.
func (c *Cluster) reportHistoryDropped() {
	if n := c.stats.histDropped.Load(); n > c.histDroppedSeen {
		c.histDroppedSeen = n
		c.warn("cluster: history queue full, room messages lost", "lost", n)
	}
}

// reportDown logs, at most every 10 s, why the NATS connection is down:
// the client retries refused credentials in silence otherwise.
func (c *Cluster) reportDown() {
	if c.nc.IsConnected() {
		return
	}
	if err := c.nc.LastError(); err != nil {
		c.warn("cluster: not connected to NATS", "err", err)
	}
}

// subject returns the subject of a room (isRoom) or node key, cached per
// key: room names recur, and a map lookup with a []byte key converted in
// the index expression does not allocate.
func (c *Cluster) subject(isRoom bool, key []byte) string {
	cache := c.nodeSubjs
	if isRoom {
		cache = c.roomSubjs
	}
	if s, ok := cache[string(key)]; ok {
		return s
	}
	if len(cache) >= 65536 {
		clear(cache) // bounded: a cache, not a registry of every room ever
	}
	var s string
	if isRoom {
		s = c.roomPrefix + roomToken(key)
	} else {
		s = c.nodePrefix + string(key)
	}
	cache[string(key)] = s
	return s
}

// heartbeat queues a heartbeat behind every state event queued so far, so
// that a peer receiving it has seen all events up to its sequence number
// unless some were lost.
func (c *Cluster) heartbeat() {
	c.local.mu.Lock()
	b := acquireBuf()
	*b = appendHB(*b, c.cfg.Node, c.epoch, c.local.seq, c.hbFlags())
	c.enqueue(outMsg{buf: b, subj: c.hbSubj})
	c.local.mu.Unlock()
}

// reconcile makes the room subscriptions match the rooms with local
// members. Interest changes are recorded as dirty rooms rather than queued
// operations, so none is ever lost to a full queue and a quick leave and
// rejoin costs nothing.
func (c *Cluster) reconcile() {
	type change struct {
		room string
		want bool
	}
	var changes []change
	c.local.mu.Lock()
	for room := range c.local.dirty {
		changes = append(changes, change{room, c.local.rooms[room] > 0})
	}
	clear(c.local.dirty)
	c.local.mu.Unlock()
	for _, ch := range changes {
		sub := c.subs[ch.room]
		switch {
		case ch.want && sub == nil:
			s, err := c.nc.ChanSubscribe(c.roomPrefix+roomToken([]byte(ch.room)), c.in)
			if err != nil {
				c.warn("cluster: subscribe failed", "room", ch.room, "err", err)
				continue
			}
			c.subs[ch.room] = s
		case !ch.want && sub != nil:
			if d, err := sub.Dropped(); err == nil {
				c.droppedBase += uint64(d)
			}
			_ = sub.Unsubscribe()
			delete(c.subs, ch.room)
		}
	}
	c.stats.subs.Store(int64(len(c.subs)))
}

// collectDropped sums the slow-consumer drops of every subscription (all
// share the dispatcher's queue, so a full queue drops on any of them).
func (c *Cluster) collectDropped() {
	total := c.droppedBase
	for _, s := range c.sysSubs {
		if d, err := s.Dropped(); err == nil {
			total += uint64(d)
		}
	}
	for _, s := range c.subs {
		if d, err := s.Dropped(); err == nil {
			total += uint64(d)
		}
	}
	if total > c.stats.dropped.Load() {
		c.stats.dropped.Store(total)
		c.warn("cluster: inbound queue full, messages dropped", "dropped", total)
	}
}

// ---- Dispatcher goroutine: inbound messages and the replica ----

func (c *Cluster) dispatchLoop() {
	defer c.wg.Done()
	tick := c.cfg.TTL / 10
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case m := <-c.in:
			c.dispatch(m)
		case sm := <-c.seqIn:
			c.fromStream(sm)
		case f := <-c.unseq:
			c.fellBack(f)
		case r := <-c.syncRes:
			c.applySnapshot(r)
		case <-t.C:
			c.expire()
			c.recent.expire(monotonic())
		case <-c.done:
			return
		}
	}
}

// receive opens, decodes and checks payload b into w: it reports false,
// counting and logging why, for a payload to drop.
func (c *Cluster) receive(b []byte, subject string, w *wireMsg) bool {
	body, err := c.sign.open(b)
	if err == nil {
		err = decodeBody(body, w)
	}
	if err == nil {
		err = check(w, c.cfg.Node, c.cfg.MaxMessage, c.connOf)
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, errForged):
		c.stats.forged.Add(1)
		c.warn("cluster: dropped an unsigned or forged payload", "subject", subject)
	case errors.Is(err, errInvalid):
		c.stats.invalid.Add(1)
		c.warn("cluster: dropped a payload that breaks the limits", "subject", subject, "origin", string(w.origin), "kind", int(w.kind))
	default:
		c.stats.bad.Add(1)
		c.warn("cluster: bad payload", "subject", subject, "err", err)
	}
	return false
}

func (c *Cluster) dispatch(m *nats.Msg) {
	w := &c.scratch
	if !c.receive(m.Data, m.Subject, w) {
		return
	}
	if str(w.origin) == c.cfg.Node {
		// NoEcho hides our own publishes: this is another process using
		// our tag, whose ids would collide with ours.
		c.warn("cluster: another node uses this node's tag", "subject", m.Subject)
		return
	}
	switch w.kind {
	case kindRoom, kindDirect, kindUser, kindAll:
		c.stats.received.Add(1)
		msg := &c.msg
		*msg = Message{From: str(w.from), Nick: str(w.nick), User: str(w.user), Data: w.data,
			TS: w.ts, Attachments: w.atts, Origin: str(w.origin), Event: str(w.event),
			EventArgs: w.mflag&msgEventArgs != 0}
		switch w.kind {
		case kindRoom:
			if c.hlog != nil {
				// A peer's room message that JetStream did not take.
				*msg = Message{}
				c.recent.add(fnv1a64(m.Data), monotonic()+int64(c.cfg.AckTimeout+c.cfg.TTL))
				c.unsequenced(w, false)
				return
			}
			msg.Room = w.room
			c.h.RoomMessage(msg)
		case kindDirect:
			msg.To = w.room
			c.h.Direct(msg)
		case kindAll:
			c.h.All(msg)
		default:
			msg.To = w.room
			c.h.User(msg)
		}
		*msg = Message{}
	case kindState:
		c.stateEvent(w)
	case kindHB:
		c.heartbeatFrom(w)
	case kindSyncReq:
		if m.Reply != "" && strings.HasPrefix(m.Subject, c.syncPrefix) {
			c.serveSnapshot(m.Reply)
		}
	default:
		c.stats.bad.Add(1)
	}
}

// peerOf returns the record of the node w came from, creating it or
// resetting it when the node restarted (new epoch), and marks it seen.
func (c *Cluster) peerOf(w *wireMsg) *peer {
	p := c.peers[str(w.origin)]
	if p == nil {
		p = &peer{tag: string(w.origin), epoch: w.epoch, sessions: make(map[string]*remoteSession)}
		c.peers[p.tag] = p
		c.stats.nodes.Store(int64(len(c.peers)))
		c.publishNodes()
		c.log.Info("cluster: node up", "peer", p.tag)
	} else if p.epoch != w.epoch {
		c.log.Info("cluster: node restarted", "peer", p.tag)
		c.dropSessions(p)
		*p = peer{tag: p.tag, epoch: w.epoch, sessions: p.sessions}
	}
	p.seen = monotonic()
	return p
}

var start = time.Now()

// monotonic returns nanoseconds on the monotonic clock.
func monotonic() int64 { return int64(time.Since(start)) }

func (c *Cluster) stateEvent(w *wireMsg) {
	p := c.peerOf(w)
	switch {
	case p.synced && w.seq <= p.seq:
		return // duplicate
	case p.synced && w.seq == p.seq+1:
	case !p.synced && !p.syncing && p.seq == 0 && w.seq == 1 && len(p.sessions) == 0:
		// The node's very first event: we have seen all of its state.
		p.synced = true
	default:
		// A gap, or a node we know nothing about yet: keep the event for
		// after the snapshot.
		p.synced = false
		if len(p.pending) >= maxPending {
			p.pending, p.pendingLost = nil, true
		}
		p.pending = append(p.pending, event{seq: w.seq, op: w.op, id: string(w.id),
			nick: string(w.nick), user: string(w.user), room: string(w.room), flags: w.stateFlags()})
		c.requestSync(p)
		return
	}
	p.seq = w.seq
	c.apply(p, w.op, str(w.id), str(w.nick), str(w.user), str(w.room), w.stateFlags())
}

func (c *Cluster) heartbeatFrom(w *wireMsg) {
	if w.flags&hbBye != 0 {
		if p := c.peers[str(w.origin)]; p != nil && p.epoch == w.epoch {
			c.log.Info("cluster: node left", "peer", p.tag)
			c.dropPeer(p)
		}
		return
	}
	p := c.peerOf(w)
	if seq := w.flags&hbSequencing != 0; seq != (c.hlog != nil) && !p.mixedWarned {
		p.mixedWarned = true
		c.log.Warn("cluster: this node and a peer keep room history differently (one in JetStream, one per node): delivery works, recovery across them does not; restart the node that is not using JetStream",
			"peer", p.tag, "peer_jetstream", seq, "jetstream", c.hlog != nil)
	}
	switch {
	case p.synced && w.seq == p.seq:
	case !p.synced && !p.syncing && w.seq == 0 && p.seq == 0:
		p.synced = true // a node with no events yet
	case p.synced && w.seq > p.seq, !p.synced:
		// Events were lost (or we just met the node): heartbeats are sent
		// behind the events they count, so nothing is still in flight.
		p.synced = false
		c.requestSync(p)
	}
}

func (c *Cluster) requestSync(p *peer) {
	if p.syncing {
		return
	}
	select {
	case c.syncReq <- syncReq{tag: p.tag, epoch: p.epoch}:
		p.syncing = true
		c.stats.resyncs.Add(1)
	default: // the syncer is busy; the next heartbeat asks again
	}
}

// apply applies one state event of p; flags are an opClose's
// (closeRecoverable). Strings may alias a payload: they are copied before
// being stored.
func (c *Cluster) apply(p *peer, o op, id, nick, user, room string, flags uint8) {
	switch o {
	case opOpen:
		s := p.sessions[id]
		if s == nil {
			c.addSession(p, strings.Clone(id), strings.Clone(nick), strings.Clone(user))
		}
	case opClose:
		if flags&closeRecoverable != 0 {
			c.keep(p, id)
		} else if c.hh != nil {
			c.hh.ForgetRemote(id)
		}
		c.removeSession(p, id)
	case opNick:
		if s := p.sessions[id]; s != nil {
			c.setNick(s, id, strings.Clone(nick))
		}
	case opJoin:
		s := p.sessions[id]
		if s == nil {
			s = c.addSession(p, strings.Clone(id), strings.Clone(nick), strings.Clone(user))
		}
		c.join(p, s, id, room)
	case opLeave:
		if s := p.sessions[id]; s != nil {
			c.leave(p, s, id, room)
		}
	}
}

func (c *Cluster) addSession(p *peer, id, nick, user string) *remoteSession {
	if c.hh != nil {
		// Open again, on p: a record of it kept here must not resume it
		// a second time.
		c.hh.ForgetRemote(id)
	}
	s := &remoteSession{nick: nick, user: user}
	p.sessions[id] = s
	c.rep.setOwner(id, p.tag)
	c.rep.addUser(user, p.tag)
	c.stats.sessions.Add(1)
	return s
}

func (c *Cluster) removeSession(p *peer, id string) {
	s := p.sessions[id]
	if s == nil {
		return
	}
	for len(s.rooms) > 0 {
		c.leave(p, s, id, s.rooms[len(s.rooms)-1])
	}
	delete(p.sessions, id)
	c.rep.deleteOwner(id)
	c.rep.removeUser(s.user, p.tag)
	c.stats.sessions.Add(-1)
}

func (c *Cluster) setNick(s *remoteSession, id, nick string) {
	s.nick = nick
	for _, r := range s.rooms {
		c.rep.setNick(r, id, nick)
	}
}

func (c *Cluster) join(p *peer, s *remoteSession, id, room string) {
	for _, r := range s.rooms {
		if r == room {
			return
		}
	}
	if len(s.rooms) >= maxSessionRooms {
		c.stats.invalid.Add(1)
		return
	}
	room = strings.Clone(room)
	s.rooms = append(s.rooms, room)
	n := c.rep.add(room, Member{ID: strings.Clone(id), Nick: s.nick, User: s.user})
	c.presence(p, s, id, room, true, n)
}

func (c *Cluster) leave(p *peer, s *remoteSession, id, room string) {
	for i, r := range s.rooms {
		if r == room {
			s.rooms = append(s.rooms[:i], s.rooms[i+1:]...)
			n := c.rep.remove(r, id)
			c.presence(p, s, id, r, false, n)
			return
		}
	}
}

// presence tells the Handler about a remote join or leave, if the room has
// local members to tell.
func (c *Cluster) presence(p *peer, s *remoteSession, id, room string, join bool, remote int) {
	local := c.localCount(room)
	if local == 0 {
		return
	}
	pr := &c.pres
	*pr = Presence{Room: []byte(room), Join: join, ID: id, Nick: s.nick, User: s.user,
		Origin: p.tag, Count: local + remote}
	c.h.Presence(pr)
	*pr = Presence{}
}

// dropSessions removes every session of p, telling local members, and
// keeps each for recovery: p died, left or restarted, and its clients will
// come back to some node.
func (c *Cluster) dropSessions(p *peer) {
	for id := range p.sessions {
		c.keep(p, id)
		c.removeSession(p, id)
	}
}

// keep hands remote session id of p to the handler for recovery, as the
// replica knows it, before it is removed.
func (c *Cluster) keep(p *peer, id string) {
	s := p.sessions[id]
	if s == nil || !c.keepRemote {
		return
	}
	c.stats.remoteKept.Add(1)
	c.hh.KeepRemote(strings.Clone(id), s.user, s.nick, slices.Clone(s.rooms))
}

func (c *Cluster) dropPeer(p *peer) {
	c.dropSessions(p)
	delete(c.peers, p.tag)
	c.stats.nodes.Store(int64(len(c.peers)))
	c.publishNodes()
}

// expire drops peers silent for longer than the TTL.
func (c *Cluster) expire() {
	now := monotonic()
	for _, p := range c.peers {
		if now-p.seen > int64(c.cfg.TTL) {
			c.log.Warn("cluster: node lost (no heartbeat within TTL)", "peer", p.tag, "sessions", len(p.sessions))
			c.dropPeer(p)
		}
	}
}

// applySnapshot replaces a peer's sessions with a snapshot, telling local
// members about the differences, then applies the events that arrived
// meanwhile.
func (c *Cluster) applySnapshot(r syncResult) {
	p := c.peers[r.tag]
	if p == nil {
		return
	}
	p.syncing = false
	if r.err != nil || p.epoch != r.epoch {
		if r.err != nil {
			c.warn("cluster: snapshot failed", "peer", r.tag, "err", r.err)
		}
		return // the next heartbeat asks again
	}
	want := make(map[string]*snapSession, len(r.sessions))
	for i := range r.sessions {
		want[r.sessions[i].id] = &r.sessions[i]
	}
	for id, s := range p.sessions {
		ws := want[id]
		if ws == nil {
			// Closed while this node was out of step with p, for a
			// reason it cannot know: kept, as a drop would be.
			c.keep(p, id)
			c.removeSession(p, id)
			continue
		}
		for i := len(s.rooms) - 1; i >= 0; i-- {
			if !contains(ws.rooms, s.rooms[i]) {
				c.leave(p, s, id, s.rooms[i])
			}
		}
	}
	for id, ws := range want {
		s := p.sessions[id]
		if s == nil {
			s = c.addSession(p, id, ws.nick, ws.user)
		} else if s.nick != ws.nick {
			c.setNick(s, id, ws.nick)
		}
		for _, room := range ws.rooms {
			c.join(p, s, id, room)
		}
	}
	p.seq, p.synced = r.seq, true
	pending, lost := p.pending, p.pendingLost
	p.pending, p.pendingLost = nil, false
	for i, e := range pending {
		if e.seq <= p.seq {
			continue
		}
		if e.seq != p.seq+1 {
			p.synced = false
			p.pending = append(p.pending, pending[i:]...)
			break
		}
		p.seq = e.seq
		c.apply(p, e.op, e.id, e.nick, e.user, e.room, e.flags)
	}
	if lost || !p.synced {
		p.synced = false
		c.requestSync(p)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// serveSnapshot answers a peer's sync request with this node's sessions,
// in parts of at most maxSnapPart bytes. It runs on the dispatcher: the
// snapshot is taken under the local lock (consistent with its sequence
// number), the publishes are buffered by nats.go.
func (c *Cluster) serveSnapshot(reply string) {
	type body struct {
		n uint32
		b []byte
	}
	var bodies []body
	cur := body{}
	c.local.mu.Lock()
	seq := c.local.seq
	for id, s := range c.local.sessions {
		cur.b = appendSession(cur.b, id, s.nick, s.user, s.rooms)
		cur.n++
		if len(cur.b) >= maxSnapPart {
			bodies = append(bodies, cur)
			cur = body{}
		}
	}
	c.local.mu.Unlock()
	if cur.n > 0 || len(bodies) == 0 {
		bodies = append(bodies, cur)
	}
	for i, bd := range bodies {
		b := appendSnapHeader(make([]byte, 0, 64+macLen+len(bd.b)), c.cfg.Node, c.epoch, seq, uint64(i), uint64(len(bodies)), bd.n)
		b = c.sign.seal(append(b, bd.b...))
		if err := c.nc.Publish(reply, b); err != nil {
			c.warn("cluster: snapshot reply failed", "err", err)
			return
		}
	}
}

// ---- Sync goroutine: snapshot requests ----

// syncLoop requests snapshots one at a time, off the dispatcher: a request
// waits for the peer's reply.
func (c *Cluster) syncLoop() {
	defer c.wg.Done()
	for {
		select {
		case r := <-c.syncReq:
			res := c.fetchSnapshot(r)
			select {
			case c.syncRes <- res:
			case <-c.done:
				return
			}
		case <-c.done:
			return
		}
	}
}

var errSnapMismatch = errors.New("cluster: snapshot parts disagree")

func (c *Cluster) fetchSnapshot(r syncReq) syncResult {
	res := syncResult{tag: r.tag}
	inbox := nats.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		res.err = err
		return res
	}
	defer sub.Unsubscribe()
	if err := c.nc.PublishRequest(c.syncPrefix+r.tag, inbox, c.sign.seal(appendSyncReq(nil, c.cfg.Node))); err != nil {
		res.err = err
		return res
	}
	deadline := time.Now().Add(c.cfg.SyncTimeout)
	var w wireMsg
	var got, parts uint64
	for parts == 0 || got < parts {
		wait := time.Until(deadline)
		if wait <= 0 {
			res.err = nats.ErrTimeout
			return res
		}
		m, err := sub.NextMsg(wait)
		if err != nil {
			res.err = err
			return res
		}
		body, err := c.sign.open(m.Data)
		if errors.Is(err, errForged) {
			// Not from a node: skip it, the parts may still come.
			c.stats.forged.Add(1)
			c.warn("cluster: dropped an unsigned or forged snapshot part", "peer", r.tag)
			continue
		}
		if err == nil {
			err = decodeBody(body, &w)
		}
		if err != nil || w.kind != kindSnap || str(w.origin) != r.tag {
			res.err = errSnapMismatch
			return res
		}
		if parts == 0 {
			parts, res.epoch, res.seq = w.parts, w.epoch, w.seq
		} else if w.parts != parts || w.epoch != res.epoch || w.seq != res.seq || w.part != got {
			res.err = errSnapMismatch
			return res
		}
		ss, err := w.decodeSessions()
		if err == nil {
			if err = checkSessions(r.tag, ss, c.connOf); err != nil {
				c.stats.invalid.Add(1)
			}
		}
		if err != nil {
			res.err = err
			return res
		}
		res.sessions = append(res.sessions, ss...)
		got++
	}
	return res
}
