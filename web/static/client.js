// chatgate client: the native protocol (docs/protocol.md) over one
// WebSocket, with request/ack promises, events, and automatic reconnection
// that restores the nickname and rooms. When the gateway keeps dropped
// sessions (connection state recovery), a reconnect resumes the session:
// the same id, nickname and rooms, and the room messages missed meanwhile
// delivered as ordinary 'message' events; a room whose missed messages are
// lost is reported with a 'gap' event. Works in browsers and in Node.js
// (pass the `ws` package's constructor as options.WebSocket).
// Documented in docs/client.md.

/** Connection states, in the order a client usually goes through them. */
export const CONNECTING = 'connecting';
export const CONNECTED = 'connected';
export const RECONNECTING = 'reconnecting';
export const CLOSED = 'closed';

const DEFAULTS = {
  minDelay: 250, // first reconnect delay, ms
  maxDelay: 10000, // cap of the reconnect delay, ms
  timeout: 10000, // reply and connect timeout, ms
  queueLimit: 100, // requests held while disconnected
  heartbeat: 20000, // ping after this much time without traffic, ms (0: off)
};

const EVENTS = ['message', 'presence', 'state', 'welcome', 'error', 'gap'];

/**
 * Reasons of a 'gap' event: why a room's messages sent while the client
 * was away may be missing.
 */
export const GAP_UNRECOVERABLE = 'unrecoverable'; // session resumed, but the gateway no longer keeps this room's missed messages
export const GAP_NOT_RESUMED = 'not_resumed'; // the gateway did not resume the session: a new one, the room joined again
export const GAP_NO_RECOVERY = 'no_recovery'; // the gateway gave no session token (recovery off): the room joined again

/**
 * ChatError is the Error a request's promise is rejected with. `code` is
 * the gateway's error code (not_member, invalid_room, …) or one of the
 * client's own: timeout, disconnected, queue_full, closed.
 */
export class ChatError extends Error {
  constructor(code, message, request) {
    super(message || code);
    this.name = 'ChatError';
    this.code = code;
    if (request !== undefined) this.request = request;
  }
}

/**
 * connect opens a client to url (ws://host:port/ws; in a browser a path
 * such as '/ws' is resolved against the page) and returns it at once. It
 * connects, and reconnects after every drop, until close().
 */
export function connect(url, options = {}) {
  return new ChatClient(url, options);
}

export class ChatClient {
  #url;
  #opts;
  #WS;
  #ws = null; // current socket, or null
  #state = CONNECTING;
  #id = null; // connection id from the current welcome, null while disconnected
  #lastId = null; // id of the last connection that was welcomed
  #everConnected = false;
  #seq = 0; // last request id used
  #pending = new Map(); // id → {msg, resolve, reject, timer}: sent, awaiting reply
  #queue = []; // requests waiting for a connection: {msg, resolve, reject}
  #listeners = new Map(EVENTS.map((e) => [e, new Set()]));
  #nick = null; // nickname to restore (set by an acked nick)
  #rooms = new Set(); // rooms to rejoin (joined and not left)
  #attempt = 0; // reconnect attempts since the last success
  #retryTimer = null;
  #openTimer = null;
  #beatTimer = null;
  #lastTraffic = 0;
  #readyWaiters = [];
  #recover = true; // options.recover: resume dropped sessions
  #session = null; // token of the last welcome, to resume with; null when the gateway gave none
  #offset = null; // highest history offset known to be received, all rooms; null: none yet
  #joinedAt = new Map(); // room → the history offset of its join ack
  #resumeFrom = undefined; // #offset sent with the resume being dialled (null: none sent); undefined: no resume
  #replayFrom = null; // the offset the current session was resumed from: replayed messages at or below it are skipped

  constructor(url, options = {}) {
    this.#opts = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS)) {
      if (options[k] !== undefined) this.#opts[k] = Number(options[k]);
    }
    this.#recover = options.recover !== false;
    this.#WS = options.WebSocket || globalThis.WebSocket;
    if (typeof this.#WS !== 'function') {
      throw new TypeError('chatgate: no WebSocket constructor; pass options.WebSocket (e.g. the ws package)');
    }
    this.#url = resolveURL(url);
    this.#open();
  }

  /** The connection state: 'connecting', 'connected', 'reconnecting' or 'closed'. */
  get state() { return this.#state; }
  /**
   * This connection's id from its welcome; null while disconnected. A
   * reconnect brings a new id, unless the gateway resumed the session.
   */
  get id() { return this.#id; }
  /** The nickname the client restores after a reconnect, or null. */
  get nickname() { return this.#nick; }
  /** The rooms the client is in and rejoins after a reconnect, sorted. */
  get joined() { return [...this.#rooms].sort(); }
  /** Requests waiting for a connection. */
  get queued() { return this.#queue.length; }
  /** The WebSocket URL. */
  get url() { return this.#url; }

  /** Sets the nickname; resolves with the ack ({name}). */
  nick(name) {
    return this.#request({ type: 'nick', name }).then((ack) => {
      this.#nick = ack.name ?? name;
      return ack;
    });
  }

  /** Joins room; resolves with the ack ({room, count}, and offset and epoch when the gateway keeps history). */
  join(room) {
    return this.#request({ type: 'join', room }).then((ack) => {
      this.#rooms.add(room);
      return ack;
    });
  }

  /** Leaves room; resolves with the ack ({room, count}). */
  leave(room) {
    // Forget the room at once, so that a reconnect before the ack does
    // not rejoin it; not_member means it is left anyway.
    this.#rooms.delete(room);
    this.#joinedAt.delete(room);
    return this.#request({ type: 'leave', room });
  }

  /** Sends data (any JSON value) to the other members of room. */
  send(room, data) {
    return this.#request({ type: 'send', room, data: data === undefined ? null : data });
  }

  /** Sends data (any JSON value) to one connection by id. */
  sendTo(id, data) {
    return this.#request({ type: 'send', to: id, data: data === undefined ? null : data });
  }

  /** Lists rooms; resolves with [{room, count}, …] sorted by name. */
  rooms() {
    return this.#request({ type: 'rooms' }).then((ack) => ack.rooms || []);
  }

  /** Lists the members of a room the client is in; resolves with [{id, nick}, …]. */
  members(room) {
    return this.#request({ type: 'members', room }).then((ack) => ack.members || []);
  }

  /** Round-trips an application-level ping; resolves with the time taken in ms. */
  ping() {
    const t0 = now();
    return this.#request({ type: 'ping' }).then(() => now() - t0);
  }

  /** Subscribes fn to an event; returns a function that unsubscribes it. */
  on(event, fn) {
    const set = this.#listeners.get(event);
    if (!set) throw new TypeError(`chatgate: unknown event ${event}`);
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Unsubscribes fn from an event. */
  off(event, fn) {
    this.#listeners.get(event)?.delete(fn);
  }

  /**
   * Resolves once the client is connected (at once if it is), or rejects
   * with code 'closed' if it is closed first or 'timeout' after ms (if given).
   */
  ready(ms) {
    if (this.#state === CONNECTED) return Promise.resolve(this);
    if (this.#state === CLOSED) return Promise.reject(new ChatError('closed', 'client closed'));
    return new Promise((resolve, reject) => {
      const w = { resolve, reject, timer: null };
      if (ms > 0) {
        w.timer = setTimeout(() => {
          this.#readyWaiters = this.#readyWaiters.filter((x) => x !== w);
          reject(new ChatError('timeout', `not connected after ${ms} ms`));
        }, ms);
      }
      this.#readyWaiters.push(w);
    });
  }

  /** Skips the current reconnect delay and tries at once (e.g. when the network comes back). */
  reconnectNow() {
    if (this.#state !== RECONNECTING || this.#ws) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#open();
  }

  /**
   * Closes the connection for good: state becomes 'closed' and every
   * queued or unanswered request is rejected with code 'closed'.
   */
  close() {
    if (this.#state === CLOSED) return;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#openTimer);
    clearTimeout(this.#beatTimer);
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      detach(ws);
      try { ws.close(1000, 'bye'); } catch { /* already closing */ }
    }
    this.#failAll('closed', 'client closed');
    for (const w of this.#readyWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new ChatError('closed', 'client closed'));
    }
    this.#setState(CLOSED, {});
  }

  // --- requests ---

  #request(msg) {
    if (this.#state === CLOSED) return Promise.reject(new ChatError('closed', 'client closed', msg));
    return new Promise((resolve, reject) => {
      const req = { msg, resolve, reject };
      if (this.#state === CONNECTED) {
        this.#write(req);
      } else if (this.#queue.length >= this.#opts.queueLimit) {
        reject(new ChatError('queue_full', `not connected and ${this.#queue.length} requests already queued`, msg));
      } else {
        this.#queue.push(req);
      }
    });
  }

  // #write sends req on the current socket and arms its reply timeout.
  #write(req) {
    const id = ++this.#seq;
    req.msg = { ...req.msg, id };
    req.timer = setTimeout(() => {
      this.#pending.delete(id);
      req.reject(new ChatError('timeout', `no reply to ${req.msg.type} within ${this.#opts.timeout} ms`, req.msg));
      // A silent server is probably a dead connection.
      if (req.msg.type === 'ping') this.#drop('heartbeat timeout');
    }, this.#opts.timeout);
    this.#pending.set(id, req);
    try {
      this.#ws.send(JSON.stringify(req.msg));
    } catch (err) {
      // The socket is closing; its close event fails or requeues req.
    }
  }

  #failAll(code, message) {
    for (const req of this.#pending.values()) {
      clearTimeout(req.timer);
      req.reject(new ChatError(code, message, req.msg));
    }
    this.#pending.clear();
    for (const req of this.#queue.splice(0)) req.reject(new ChatError(code, message, req.msg));
  }

  // --- connection ---

  #open() {
    let ws;
    try {
      ws = new this.#WS(this.#dialURL());
    } catch (err) {
      this.#emit('error', new ChatError('connect_failed', String(err?.message || err)));
      this.#scheduleRetry({ reason: 'connect failed' });
      return;
    }
    this.#ws = ws;
    // The welcome must arrive within the timeout, or the attempt counts as failed.
    this.#openTimer = setTimeout(() => this.#drop('connect timeout'), this.#opts.timeout);
    ws.onmessage = (ev) => this.#onFrame(ev.data);
    ws.onclose = (ev) => this.#onClose(ev.code, ev.reason);
    ws.onerror = () => { /* onclose follows and carries the outcome */ };
  }

  // #dialURL is the URL of the next connection: the client's URL, plus
  // ?resume=<session token>&offset=<highest offset received> when there
  // is a session to resume. The parameters are appended, so that the
  // caller's own (such as an auth token) stay as they are.
  //
  // limited=close asks a gateway over its handshake rate (-handshake-rate)
  // to refuse with close 1013 "retry-after=<ms>" rather than HTTP 503: a
  // browser cannot read the status or the Retry-After of a refused
  // upgrade, but it reads a close frame's code and reason.
  #dialURL() {
    this.#resumeFrom = undefined;
    let q = 'limited=close';
    if (this.#recover && this.#session !== null) {
      this.#resumeFrom = this.#offset;
      q += '&resume=' + encodeURIComponent(this.#session);
      if (this.#offset !== null) q += '&offset=' + this.#offset;
    }
    return this.#url + (this.#url.includes('?') ? '&' : '?') + q;
  }

  // #drop abandons the current socket (dead or too slow) and reconnects.
  #drop(reason) {
    const ws = this.#ws;
    if (!ws) return;
    detach(ws);
    try { ws.close(4000, reason); } catch { /* ignore */ }
    this.#onClose(1006, reason, ws);
  }

  #onClose(code, reason, ws = this.#ws) {
    if (ws !== this.#ws || !ws) return;
    detach(ws);
    this.#ws = null;
    if (this.#id !== null) this.#lastId = this.#id;
    this.#id = null;
    clearTimeout(this.#openTimer);
    clearTimeout(this.#beatTimer);
    // Requests in flight: the gateway may have applied them. A send is not
    // repeated (it could be delivered twice), so its promise is rejected;
    // every other request is idempotent and goes back to the queue front.
    const retry = [];
    for (const req of [...this.#pending.values()].sort((a, b) => a.msg.id - b.msg.id)) {
      clearTimeout(req.timer);
      const { id, ...msg } = req.msg;
      if (req.restore) {
        req.reject(new ChatError('disconnected', 'connection lost while restoring', msg));
      } else if (msg.type === 'send') {
        req.reject(new ChatError('disconnected', 'connection lost before the gateway replied; the message may not have been delivered', msg));
      } else {
        retry.push({ msg, resolve: req.resolve, reject: req.reject });
      }
    }
    this.#pending.clear();
    this.#queue.unshift(...retry);
    this.#scheduleRetry({ code, reason: String(reason || '') });
  }

  #scheduleRetry(info) {
    if (this.#state === CLOSED) return;
    const delay = retryDelay(info.code, info.reason, this.#attempt, this.#opts);
    this.#attempt++;
    this.#setState(RECONNECTING, { ...info, attempt: this.#attempt, delay });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#open();
    }, delay);
  }

  #onFrame(raw) {
    let m;
    try {
      m = JSON.parse(typeof raw === 'string' ? raw : String(raw));
    } catch {
      this.#emit('error', new ChatError('bad_frame', 'gateway sent a frame that is not JSON'));
      return;
    }
    if (!m || typeof m !== 'object') return;
    this.#lastTraffic = now();
    switch (m.type) {
      case 'welcome':
        this.#onWelcome(m);
        return;
      case 'ack':
      case 'error': {
        const req = m.id !== undefined ? this.#pending.get(m.id) : undefined;
        if (!req) {
          if (m.type === 'error') this.#emit('error', new ChatError(m.code || 'error', m.message));
          return;
        }
        this.#pending.delete(m.id);
        clearTimeout(req.timer);
        if (m.type === 'ack' && req.msg.type === 'join') this.#joined(req.msg.room, m.offset);
        if (m.type === 'ack') req.resolve(m);
        else req.reject(new ChatError(m.code || 'error', m.message, stripId(req.msg)));
        return;
      }
      case 'message':
        if (m.room !== undefined) this.#see(m.offset);
        this.#emit('message', m);
        return;
      case 'recovered':
        this.#onRecovered(m);
        return;
      case 'presence':
        this.#emit('presence', m);
        return;
    }
  }

  async #onWelcome(m) {
    const ws = this.#ws;
    clearTimeout(this.#openTimer);
    const previousId = this.#lastId;
    this.#id = m.id;
    const reconnected = this.#everConnected;
    this.#everConnected = true;
    const resumed = this.#resumeFrom !== undefined;
    const recovered = resumed && m.recovered === true;
    const resumeFrom = this.#resumeFrom ?? null;
    this.#resumeFrom = undefined;
    this.#session = this.#recover && typeof m.session === 'string' && m.session !== '' ? m.session : null;
    let results;
    let restore;
    if (recovered) {
      // The gateway resumed the session: same id, nickname and rooms. It
      // joined the rooms again itself: nothing to rejoin. Behind the
      // welcome it pushes one 'recovered' event per room (#onRecovered);
      // they may arrive after the state is 'connected' (the gateway does
      // not order them before its replies to requests).
      this.#replayFrom = resumeFrom;
      restore = [];
      if (this.#nick !== null && m.nick !== this.#nick) restore.push({ type: 'nick', name: this.#nick });
      results = await this.#restore(restore);
      if (ws !== this.#ws) return; // dropped while restoring; the next welcome retries
    } else {
      // A new session: offsets start again from its joins.
      this.#offset = null;
      this.#joinedAt.clear();
      this.#replayFrom = null;
      // Restore the session before anything queued: the nickname, then
      // each room. Queued requests (such as sends to those rooms) follow
      // once the gateway has acknowledged the restore, so they find the
      // rooms joined.
      restore = [];
      if (this.#nick !== null) restore.push({ type: 'nick', name: this.#nick });
      for (const room of this.#rooms) restore.push({ type: 'join', room });
      results = await this.#restore(restore);
      if (ws !== this.#ws) return; // dropped while restoring; the next welcome retries
    }
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const msg = restore[i];
      const code = r.reason?.code;
      if (code === 'disconnected' || code === 'closed') return;
      // The gateway refused the room (it is no longer valid): stop
      // rejoining it. A timeout keeps it for the next reconnect.
      if (msg.type === 'join' && code !== 'timeout') this.#rooms.delete(msg.room);
      const err = new ChatError(r.reason?.code || 'restore_failed',
        `could not restore ${msg.type} ${msg.room ?? msg.name}: ${r.reason?.message}`, msg);
      this.#emit('error', err);
    });
    // Rooms joined again after a drop, rather than recovered, may have
    // missed messages: say so, before the welcome.
    if (reconnected && !recovered) {
      const reason = resumed ? GAP_NOT_RESUMED : GAP_NO_RECOVERY;
      results.forEach((r, i) => {
        if (r.status === 'fulfilled' && restore[i].type === 'join') this.#emit('gap', { room: restore[i].room, reason });
      });
    }
    this.#attempt = 0;
    this.#setState(CONNECTED, reconnected ? { id: this.#id, reconnected, recovered } : { id: this.#id, reconnected });
    const welcome = { id: this.#id, previousId, reconnected, nick: this.#nick, rooms: this.joined };
    if (reconnected) welcome.recovered = recovered;
    this.#emit('welcome', welcome);
    for (const w of this.#readyWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(this);
    }
    // Flush what was queued while disconnected, in order.
    for (const req of this.#queue.splice(0)) {
      if (this.#ws !== ws || this.#state !== CONNECTED) {
        this.#queue.push(req);
        continue;
      }
      this.#write(req);
    }
    this.#armHeartbeat();
  }

  // #restore writes the requests of a session's restore at once, ahead of
  // anything queued, and resolves with their settled results.
  #restore(msgs) {
    return Promise.allSettled(msgs.map((msg) => new Promise((resolve, reject) => {
      this.#write({ msg, resolve, reject, restore: true });
    })));
  }

  // #onRecovered handles one room's recovery behind a resumed welcome:
  // the messages missed, delivered as 'message' events in order, or a
  // 'gap' when the gateway no longer keeps them. A message at or below
  // the offset the resume was asked from, or from before the room's join,
  // was received already (or predates the client) and is skipped, so
  // nothing is delivered twice.
  #onRecovered(m) {
    // Left while disconnected (the leave is queued): nothing to show.
    if (!this.#rooms.has(m.room)) {
      this.#see(m.offset);
      return;
    }
    if (m.recovered === true) {
      const from = Math.max(this.#replayFrom ?? 0, this.#joinedAt.get(m.room) ?? 0);
      for (const msg of Array.isArray(m.messages) ? m.messages : []) {
        if (typeof msg?.offset === 'number' && msg.offset <= from) continue;
        this.#see(msg?.offset);
        this.#emit('message', msg);
      }
    } else {
      this.#emit('gap', { room: m.room, reason: GAP_UNRECOVERABLE });
    }
    this.#see(m.offset);
  }

  // #see records that every room message up to offset was received.
  #see(offset) {
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset)) return;
    if (this.#offset === null || offset > this.#offset) this.#offset = offset;
  }

  // #joined records where room's join put the client in the history: the
  // messages after it reach the client, and none before it is shown. The
  // first join of a session is also where the client has read up to,
  // until a message says more.
  #joined(room, offset) {
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset)) return;
    this.#joinedAt.set(room, offset);
    if (this.#offset === null) this.#offset = offset;
  }

  // #armHeartbeat pings after `heartbeat` ms without inbound traffic; a
  // ping that times out drops the connection (see #write), which is how a
  // silently dead network path is noticed.
  #armHeartbeat() {
    clearTimeout(this.#beatTimer);
    const every = this.#opts.heartbeat;
    if (!(every > 0) || this.#state !== CONNECTED) return;
    this.#lastTraffic = now();
    const arm = (ms) => {
      this.#beatTimer = setTimeout(tick, ms);
      this.#beatTimer.unref?.(); // the heartbeat alone never keeps Node.js running
    };
    const tick = () => {
      if (this.#state !== CONNECTED) return;
      let idle = now() - this.#lastTraffic;
      if (idle >= every) {
        this.ping().catch(() => { /* a timeout drops the connection */ });
        this.#lastTraffic = now();
        idle = 0;
      }
      arm(Math.max(100, every - idle));
    };
    arm(every);
  }

  #setState(state, info) {
    if (state === this.#state && state !== RECONNECTING) return;
    const previous = this.#state;
    this.#state = state;
    this.#emit('state', state, { ...info, previous });
  }

  #emit(event, ...args) {
    for (const fn of [...this.#listeners.get(event)]) {
      try {
        fn(...args);
      } catch (err) {
        // A listener's bug must not break the client or the other
        // listeners: report it the way the platform reports uncaught errors.
        (globalThis.reportError ?? console.error)(err);
      }
    }
  }
}

function detach(ws) {
  ws.onmessage = ws.onclose = ws.onopen = null;
  ws.onerror = () => {};
}

function stripId(msg) {
  const { id, ...rest } = msg;
  return rest;
}

function now() {
  return globalThis.performance?.now?.() ?? Date.now();
}

// resolveURL turns '/ws' or 'ws' into an absolute ws: or wss: URL on a
// page, and 'http(s)://' into 'ws(s)://'.
function resolveURL(url) {
  const loc = globalThis.location;
  let u;
  if (url === undefined || url === null || url === '') url = '/ws';
  try {
    u = new URL(String(url), loc?.href);
  } catch {
    throw new TypeError(`chatgate: bad URL ${url}`);
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  return u.href;
}

/** Close code of a gateway over its handshake rate: come back after the delay in the reason. */
export const CLOSE_TRY_AGAIN_LATER = 1013;
/** Close code of a draining gateway (a restart): reconnect within the window in the reason. */
export const CLOSE_SERVICE_RESTART = 1012;

// retryDelay is the wait before reconnect attempt `attempt` (0 for the
// first after a success), in ms, after a close with code and reason:
//   - 1013 "retry-after=<ms>" (the gateway's handshake rate refused this
//     one): that delay, plus up to a second at random, so that the clients
//     given one slot do not return in the same millisecond;
//   - 1012 "reconnect=<ms>" (a draining node): a random time in [0, ms],
//     so a restarted node's clients spread over the window it names;
//   - anything else: capped exponential backoff with full jitter, a random
//     time in [0, min(maxDelay, minDelay·2^attempt)], which spreads the
//     clients of one drop best (fewest collisions, least total work).
export function retryDelay(code, reason, attempt, opts = DEFAULTS) {
  const hint = (key) => {
    const m = new RegExp('(?:^|[ ;,])' + key + '=(\\d{1,9})(?:$|[ ;,])').exec(String(reason || ''));
    return m ? Number(m[1]) : null;
  };
  if (code === CLOSE_TRY_AGAIN_LATER) {
    const ms = hint('retry-after');
    if (ms !== null) return ms + Math.floor(Math.random() * 1000);
  }
  if (code === CLOSE_SERVICE_RESTART) {
    const ms = hint('reconnect');
    if (ms !== null) return Math.floor(Math.random() * (ms + 1));
  }
  const cap = Math.min(opts.maxDelay, opts.minDelay * 2 ** Math.min(attempt, 30));
  return Math.floor(Math.random() * (cap + 1));
}
