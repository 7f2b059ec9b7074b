// The server API (POST /api/<method> on -api-addr, docs/api.md) seen
// by the real socket.io-client: publish arrives as the "message" event
// from "" (or, with an event name, as that event with the data as its one
// argument), send reaches one socket by its id, a server join is the
// "joined" event and makes the room's messages arrive, a server leave is
// "left", a server disconnect is a disconnect ("io server disconnect"),
// and -max-connections-per-user refuses the socket one too many with
// CONNECT_ERROR "too many connections for this user". With history on (the
// default), what reaches a room carries its offset (docs/history.md): in
// the message object, and as the event's extra last argument.
//
// The API is called with Node's built-in fetch. Every wait has a timeout;
// every test closes its sockets and stops its gateway in t.after. A socket
// that must get nothing more is checked with a marker: the API sends it a
// message, which must be the next event (the gateway keeps one
// connection's messages in order) with nothing unread before it.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { io } from 'socket.io-client';
import { startGateway, gatewayBinary, freePort } from './gateway.mjs';
import { WAIT, within, Queue } from './wait.mjs';
import { withPosition, roomArgs, roomMessage } from './position.mjs';

const KEY = 'node-api-test-key-0123456789';
const SECRET = 'node-api-test-secret-0123456789abcdefghij'; // 41 bytes

before(() => { gatewayBinary(); });

// jwt signs claims with HS256 (node:crypto, independent of the Go code).
const b64url = (s) => Buffer.from(s).toString('base64url');
function jwt(sub) {
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub, iat: now, exp: now + 3600 }))}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

// SIO is a socket.io-client socket with a queue of every event it got.
class SIO {
  constructor(socket) {
    this.socket = socket;
    this.events = new Queue();
    socket.onAny((event, ...args) => this.events.push({ event, args }));
  }
  static socket(gw, opts = {}) {
    return io(`http://${gw.addr}`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT, ...opts });
  }
  get id() { return this.socket.id; }
  ack(event, ...args) { return this.socket.timeout(WAIT).emitWithAck(event, ...args); }
  // next resolves with the next event received (it must be `event`), as
  // its list of arguments: exactness, not a search.
  async next(event) {
    const e = await this.events.next(() => true, `socket.io "${event}"`);
    assert.equal(e.event, event, `got ${JSON.stringify(e)}, want the "${event}" event`);
    return e.args;
  }
  close() { this.socket.close(); }
}

// scope collects what a test opens and closes it all in t.after.
function scope(t) {
  const sockets = [];
  const gateways = [];
  t.after(async () => {
    for (const s of sockets) s.close();
    for (const g of gateways) await g.stop();
  });
  return {
    // gateway starts one with the API on a free loopback port, with KEY.
    async gateway(args = []) {
      const apiAddr = `127.0.0.1:${await freePort()}`;
      const g = await startGateway(['-loops', '2', `-api-addr=${apiAddr}`, '-api-key', KEY, ...args]);
      gateways.push(g);
      g.apiAddr = apiAddr;
      return g;
    },
    // connect resolves with a connected SIO socket.
    connect(gw, opts) {
      const c = new SIO(SIO.socket(gw, opts));
      sockets.push(c);
      return within(new Promise((resolve, reject) => {
        c.socket.once('connect', () => resolve(c));
        c.socket.once('connect_error', reject);
      }), WAIT, 'socket.io connect');
    },
    // refused resolves with the connect_error of a socket that must not
    // connect.
    refused(gw, opts) {
      const c = new SIO(SIO.socket(gw, opts));
      sockets.push(c);
      return within(new Promise((resolve, reject) => {
        c.socket.once('connect', () => reject(new Error(`connected as ${c.socket.id}, want connect_error`)));
        c.socket.once('connect_error', resolve);
      }), WAIT, 'connect_error');
    },
  };
}

// post calls API method with params and resolves with the HTTP status and
// the parsed answer.
async function post(gw, method, params, key = KEY) {
  const headers = { 'Content-Type': 'application/json' };
  if (key) headers.Authorization = `apikey ${key}`;
  const r = await fetch(`http://${gw.apiAddr}/api/${method}`, {
    method: 'POST', headers, body: JSON.stringify(params), signal: AbortSignal.timeout(WAIT),
  });
  assert.equal(r.headers.get('content-type'), 'application/json');
  return { status: r.status, body: await r.json() };
}

// call calls API method and resolves with its result, failing on an error.
async function call(gw, method, params = {}) {
  const { status, body } = await post(gw, method, params);
  assert.equal(status, 200, `${method} ${JSON.stringify(params)}: HTTP ${status} ${JSON.stringify(body)}`);
  assert.deepEqual(Object.keys(body), ['result']);
  return body.result;
}

// message checks a "message" event's arguments: want plus a ts stamped by
// the server between since and now. A room message (want has a room) also
// carries its offset, in the object and as the last argument; message
// returns it.
function message(args, since, want) {
  let msg;
  let offset;
  if ('room' in want) {
    ({ msg, offset } = roomMessage(args));
  } else {
    assert.equal(args.length, 1, `direct message arguments ${JSON.stringify(args)}`);
    msg = args[0];
  }
  const { ts, ...rest } = msg;
  assert.equal(typeof ts, 'number');
  assert.ok(ts >= since && ts <= Date.now(), `ts ${ts} outside [${since}, now]`);
  assert.deepEqual(rest, want);
  return offset;
}

// increasing asserts that a socket's room offsets, in the order received,
// increase strictly.
function increasing(offsets, who) {
  for (let i = 1; i < offsets.length; i++) {
    assert.ok(offsets[i] > offsets[i - 1], `${who}'s offsets do not increase: ${offsets}`);
  }
}

// quiet proves that c got nothing unread: a marker sent through the API
// is the very next event.
async function quiet(gw, c) {
  const marker = { marker: c.id };
  assert.deepEqual(await call(gw, 'send', { client: c.id, data: marker }), { delivered: 1 });
  const args = await c.next('message');
  assert.deepEqual(args[0].data, marker, `got ${JSON.stringify(args)} before the marker`);
  assert.deepEqual(c.events.items, [], 'events after the marker');
}

test('publish: the "message" event from "", and with event "announce" that event with the data', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-presence=false']);
  const a = await s.connect(gw);
  const b = await s.connect(gw);
  const joinedAt = withPosition(await a.ack('join', 'lobby'), { room: 'lobby', count: 1 });
  withPosition(await b.ack('join', 'elsewhere'), { room: 'elsewhere', count: 1 });

  // Every event to the room carries the next offset: the data is the one
  // argument before it, as socket.io's connectionStateRecovery sends.
  const offsets = [joinedAt.offset];
  let since = Date.now();
  assert.deepEqual(await call(gw, 'publish', { room: 'lobby', data: { text: 'hi', n: [1, null, true] } }), {});
  offsets.push(message(await a.next('message'), since, { room: 'lobby', from: '', nick: '', data: { text: 'hi', n: [1, null, true] } }));

  since = Date.now();
  assert.deepEqual(await call(gw, 'publish', { room: 'lobby', event: 'announce', data: { at: '18:00' } }), {});
  let e = roomArgs(await a.next('announce'), 'announce');
  assert.deepEqual(e.args, [{ at: '18:00' }]);
  offsets.push(e.offset);
  assert.deepEqual(await call(gw, 'publish', { room: 'lobby', event: 'announce', data: 'plain string' }), {});
  e = roomArgs(await a.next('announce'), 'announce');
  assert.deepEqual(e.args, ['plain string']);
  offsets.push(e.offset);

  // broadcast: once per room the socket is in.
  since = Date.now();
  assert.deepEqual(await call(gw, 'broadcast', { rooms: ['lobby', 'elsewhere'], data: 7 }), {});
  offsets.push(message(await a.next('message'), since, { room: 'lobby', from: '', nick: '', data: 7 }));
  message(await b.next('message'), since, { room: 'elsewhere', from: '', nick: '', data: 7 });
  increasing(offsets, 'a');

  await quiet(gw, a);
  await quiet(gw, b);
});

test('send to a socket.io client id: "message" without room, or the named event', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-presence=false']);
  const a = await s.connect(gw);
  const other = await s.connect(gw);

  const since = Date.now();
  assert.deepEqual(await call(gw, 'send', { client: a.id, data: { for: 'a' } }), { delivered: 1 });
  message(await a.next('message'), since, { from: '', nick: '', data: { for: 'a' } });
  assert.deepEqual(await call(gw, 'send', { client: a.id, event: 'whisper', data: [1, 2] }), { delivered: 1 });
  assert.deepEqual(await a.next('whisper'), [[1, 2]]);
  assert.deepEqual(await call(gw, 'send', { client: 'zz-nobody', data: 1 }), { delivered: 0 });

  await quiet(gw, a);
  await quiet(gw, other);
});

test('server join: the "joined" event, then the room\'s messages; server leave: "left"', async (t) => {
  const s = scope(t);
  const gw = await s.gateway();
  const a = await s.connect(gw);
  const member = await s.connect(gw);
  withPosition(await member.ack('join', 'news'), { room: 'news', count: 1 });

  assert.deepEqual(await call(gw, 'join', { client: a.id, room: 'news' }), {});
  const joined = await a.next('joined');
  assert.equal(joined.length, 1);
  withPosition(joined[0], { room: 'news', count: 2 }, 'the server join carries the room\'s position');
  assert.deepEqual(await member.next('presence'), [{ room: 'news', event: 'join', id: a.id, nick: '', count: 2 }]);
  // a is a member now, for the chat events too.
  assert.deepEqual((await a.ack('members', 'news')).members.map((m) => m.id).sort(), [a.id, member.id].sort());

  let since = Date.now();
  assert.deepEqual(await call(gw, 'publish', { room: 'news', data: 'extra' }), {});
  message(await a.next('message'), since, { room: 'news', from: '', nick: '', data: 'extra' });
  message(await member.next('message'), since, { room: 'news', from: '', nick: '', data: 'extra' });

  assert.deepEqual(await call(gw, 'leave', { client: a.id, room: 'news' }), {});
  assert.deepEqual(await a.next('left'), [{ room: 'news', count: 1 }]);
  assert.deepEqual(await member.next('presence'), [{ room: 'news', event: 'leave', id: a.id, nick: '', count: 1 }]);
  since = Date.now();
  assert.deepEqual(await call(gw, 'publish', { room: 'news', data: 'after' }), {});
  message(await member.next('message'), since, { room: 'news', from: '', nick: '', data: 'after' });

  const { status, body } = await post(gw, 'join', { client: 'zz-nobody', room: 'news' });
  assert.equal(status, 404);
  assert.equal(body.error.code, 'not_found');

  await quiet(gw, a);
  await quiet(gw, member);
});

test('server disconnect: the socket sees "io server disconnect"; others stay', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-presence=false']);
  const a = await s.connect(gw);
  const other = await s.connect(gw);
  const id = a.id;

  const gone = within(new Promise((resolve) => a.socket.once('disconnect', (reason) => resolve(reason))), WAIT, 'disconnect');
  assert.deepEqual(await call(gw, 'disconnect', { client: id, code: 4321, reason: 'bye' }), { disconnected: 1 });
  assert.equal(await gone, 'io server disconnect');
  assert.equal(a.socket.connected, false);
  assert.deepEqual(a.events.items, [], 'events before the disconnect');

  // The connection list drops it once the gateway has closed it.
  const deadline = Date.now() + WAIT;
  for (;;) {
    const { connections } = await call(gw, 'connections');
    if (connections.length === 1) {
      assert.equal(connections[0].client, other.id);
      break;
    }
    assert.ok(Date.now() < deadline, `connections still ${JSON.stringify(connections)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(await call(gw, 'disconnect', { client: id }), { disconnected: 0 });
  await quiet(gw, other);
});

test('-max-connections-per-user: connect_error "too many connections for this user"', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-jwt-secret', SECRET, '-max-connections-per-user', '1', '-presence=false']);
  const first = await s.connect(gw, { auth: { token: jwt('lim') } });

  const err = await s.refused(gw, { auth: { token: jwt('lim') } });
  assert.equal(err.message, 'too many connections for this user');
  // Another user, and an anonymous socket, are not limited.
  const other = await s.connect(gw, { auth: { token: jwt('other') } });
  const anon = await s.connect(gw);

  const { connections } = await call(gw, 'connections', { user: 'lim' });
  assert.equal(connections.length, 1);
  assert.equal(connections[0].client, first.id);
  assert.equal(connections[0].user, 'lim');
  assert.equal(connections[0].transport, 'websocket');

  // A slot freed by the API can be taken again.
  const gone = within(new Promise((resolve) => first.socket.once('disconnect', resolve)), WAIT, 'disconnect');
  assert.deepEqual(await call(gw, 'disconnect', { user: 'lim' }), { disconnected: 1 });
  assert.equal(await gone, 'io server disconnect');
  const deadline = Date.now() + WAIT;
  while ((await call(gw, 'connections', { user: 'lim' })).connections.length !== 0) {
    assert.ok(Date.now() < deadline, 'lim\'s connection did not end');
    await new Promise((r) => setTimeout(r, 20));
  }
  const again = await s.connect(gw, { auth: { token: jwt('lim') } });
  assert.equal((await s.refused(gw, { auth: { token: jwt('lim') } })).message, 'too many connections for this user');
  for (const c of [again, other, anon]) await quiet(gw, c);
});

test('the API refuses a call without the key: 401 unauthorized', async (t) => {
  const s = scope(t);
  const gw = await s.gateway();
  for (const key of ['', 'wrong']) {
    const { status, body } = await post(gw, 'info', {}, key);
    assert.equal(status, 401);
    assert.equal(body.error.code, 'unauthorized');
  }
  const { nodes } = await call(gw, 'info');
  assert.equal(nodes.length, 1);
});

// send with "ack": socket.timeout(t).emitWithAck() from the server. The
// socket's callback answers with its arguments (binary ones as
// {"_binary":"<base64>"}); a socket that never calls it gets ack_timeout
// after the timeout; one that disconnects instead gets ack_disconnected.
// The same over long-polling.
test('send with ack: the callback\'s arguments, ack_timeout, ack_disconnected', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-presence=false']);
  const a = await s.connect(gw);
  a.socket.on('ask', (arg, cb) => cb({ got: arg }, 'ok'));
  a.socket.on('bin', (arg, cb) => cb(Buffer.from([1, 2, 3, 4])));
  a.socket.on('bye', () => a.socket.disconnect());

  let r = await post(gw, 'send', { client: a.id, event: 'ask', data: { q: 1 }, ack: true, timeout: 3000 });
  assert.deepEqual(r, { status: 200, body: { result: { delivered: 1, ack: [{ got: { q: 1 } }, 'ok'] } } });
  r = await post(gw, 'send', { client: a.id, event: 'bin', data: 0, ack: true });
  assert.deepEqual(r, { status: 200, body: { result: { delivered: 1, ack: [{ _binary: 'AQIDBA==' }] } } });

  const start = Date.now();
  r = await post(gw, 'send', { client: a.id, event: 'nobody-answers', data: 1, ack: true, timeout: 300 });
  assert.equal(r.status, 504, JSON.stringify(r));
  assert.equal(r.body.error.code, 'ack_timeout');
  assert.ok(Date.now() - start >= 300, `ack_timeout after ${Date.now() - start} ms`);

  r = await post(gw, 'send', { client: a.id, event: 'bye', data: 1, ack: true, timeout: 4000 });
  assert.equal(r.status, 410, JSON.stringify(r));
  assert.equal(r.body.error.code, 'ack_disconnected');
  // Over long-polling too.
  const p = await s.connect(gw, { transports: ['polling'] });
  p.socket.on('ask', (arg, cb) => cb('polled', arg));
  r = await post(gw, 'send', { client: p.id, event: 'ask', data: [1], ack: true });
  assert.deepEqual(r, { status: 200, body: { result: { delivered: 1, ack: ['polled', [1]] } } });
});
