// JWT authentication (docs/security.md) seen by the real socket.io-client:
// the token in the CONNECT auth payload (`auth: {token}`), in the
// handshake's query and Authorization header, over WebSocket and
// long-polling; refused clients get connect_error "unauthorized" with the
// reason and never appear in member lists, presence events or /stats;
// authenticated ones carry their `sub` as `user` in messages, presence
// events and member lists, seen alike by Socket.IO and native clients; the
// token's rooms claim refuses other rooms with `forbidden`. Join acks
// carry the room's position and room messages their offset, and the
// native welcome the session token (docs/history.md).
//
// Tokens are signed here with node:crypto (HS256), independently of the
// Go code under test. Every wait has a timeout and every test closes its
// sockets and stops its gateways in t.after.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startGateway, gatewayBinary } from './gateway.mjs';
import { WAIT, within, Queue } from './wait.mjs';
import { withPosition, withOffset, roomMessage } from './position.mjs';

const SECRET = 'node-auth-test-secret-0123456789abcdefghij'; // 42 bytes

before(() => { gatewayBinary(); });

const b64url = (s) => Buffer.from(s).toString('base64url');

// jwt signs claims with HS256 (or returns an unsigned "none" token, or
// one with another header, for the refusal cases).
function jwt(claims, { alg = 'HS256', secret = SECRET } = {}) {
  const head = `${b64url(JSON.stringify({ alg, typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  if (alg === 'none') return `${head}.`;
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
  return `${head}.${createHmac(hash, secret).update(head).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);
const claimsFor = (sub, extra = {}) => ({ sub, iat: now(), exp: now() + 3600, ...extra });

// scope collects what a test opens and closes it all in t.after.
function scope(t) {
  const clients = [];
  const gateways = [];
  t.after(async () => {
    for (const c of clients) c.close();
    for (const g of gateways) await g.stop();
  });
  return {
    client(c) { clients.push(c); return c; },
    async gateway(args) {
      const g = await startGateway(['-loops', '2', ...args]);
      gateways.push(g);
      return g;
    },
  };
}

// SIO is a socket.io-client socket with a queue of the events it got.
class SIO {
  constructor(socket) {
    this.socket = socket;
    this.events = new Queue();
    socket.onAny((event, ...args) => this.events.push({ event, args }));
  }
  static socket(gw, opts = {}) {
    return io(`http://${gw.addr}`, {
      transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT, ...opts,
    });
  }
  // connect resolves once connected, and rejects with the connect_error.
  static connect(s, gw, opts) {
    const c = s.client(new SIO(SIO.socket(gw, opts)));
    return within(new Promise((resolve, reject) => {
      c.socket.once('connect', () => resolve(c));
      c.socket.once('connect_error', reject);
    }), WAIT, 'socket.io connect');
  }
  // refused resolves with the connect_error of a socket that must not
  // connect.
  static refused(s, gw, opts) {
    const c = s.client(new SIO(SIO.socket(gw, opts)));
    return within(new Promise((resolve, reject) => {
      c.socket.once('connect', () => reject(new Error(`connected as ${c.socket.id}, want connect_error`)));
      c.socket.once('connect_error', (err) => resolve({ err, client: c }));
    }), WAIT, 'connect_error');
  }
  get id() { return this.socket.id; }
  ack(event, ...args) { return this.socket.timeout(WAIT).emitWithAck(event, ...args); }
  // next resolves with the first argument of the next `event` received
  // that satisfies pred.
  async next(event, pred = () => true) {
    return (await this.nextArgs(event, pred))[0];
  }
  // nextArgs is next, resolving with all the arguments.
  async nextArgs(event, pred = () => true) {
    const e = await this.events.next((e) => e.event === event && pred(e.args[0]), `socket.io "${event}"`);
    return e.args;
  }
  close() { this.socket.close(); }
}

// Native is a `ws` client of the native protocol on /ws.
class Native {
  static async connect(s, gw, { token, query = '' } = {}) {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const c = s.client(new Native(new WebSocket(`ws://${gw.addr}/ws${query}`, { headers })));
    await within(new Promise((resolve, reject) => {
      c.ws.once('open', resolve);
      c.ws.once('error', reject);
    }), WAIT, 'native open');
    c.welcome = await c.next('welcome');
    c.id = c.welcome.id;
    return c;
  }
  constructor(ws) {
    this.ws = ws;
    this.msgs = new Queue();
    this.seq = 0;
    ws.on('message', (data) => this.msgs.push(JSON.parse(data.toString())));
    ws.on('error', () => {});
  }
  next(type, pred = () => true) {
    return this.msgs.next((m) => m.type === type && pred(m), `native "${type}"`);
  }
  request(obj) {
    const id = ++this.seq;
    this.ws.send(JSON.stringify({ ...obj, id }));
    return this.msgs.next((m) => m.id === id && (m.type === 'ack' || m.type === 'error'), `reply to ${obj.type}`);
  }
  close() { this.ws.close(); }
}

async function stats(gw) {
  const r = await fetch(`http://${gw.addr}/stats`);
  return r.json();
}

// memberIDs returns the ids in a room's member list, sorted.
const memberIDs = (list) => list.members.map((m) => m.id).sort();

test('socket.io-client auth: {token}: connected as its sub, user in messages, presence and member lists', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-jwt-secret', SECRET, '-auth-required']);
  const native = await Native.connect(s, gw, { token: jwt(claimsFor('nora')) });
  assert.equal((await native.request({ type: 'join', room: 'lobby' })).type, 'ack');

  const alice = await SIO.connect(s, gw, { auth: { token: jwt(claimsFor('alice')) } });
  assert.equal(typeof alice.id, 'string');
  // Impersonation by nickname: alice calls herself "nora".
  assert.deepEqual(await alice.ack('nick', 'nora'), { ok: true, name: 'nora' });
  withPosition(await alice.ack('join', 'lobby'), { room: 'lobby', count: 2 });

  const p = await native.next('presence', (m) => m.event === 'join');
  assert.equal(p.id, alice.id);
  assert.equal(p.user, 'alice');
  assert.equal(p.nick, 'nora');

  // Member lists, from both sides, carry user for both.
  const sioList = await alice.ack('members', 'lobby');
  assert.deepEqual(memberIDs(sioList), [alice.id, native.id].sort());
  assert.deepEqual(sioList.members.find((m) => m.id === alice.id), { id: alice.id, nick: 'nora', user: 'alice' });
  assert.deepEqual(sioList.members.find((m) => m.id === native.id), { id: native.id, nick: '', user: 'nora' });
  const nativeList = await native.request({ type: 'members', room: 'lobby' });
  assert.deepEqual(nativeList.members, sioList.members);

  // Messages both ways.
  assert.deepEqual(await alice.ack('message', { room: 'lobby', data: 'hi' }), { ok: true });
  const m = await native.next('message');
  assert.equal(m.from, alice.id);
  assert.equal(m.user, 'alice');
  assert.equal(m.nick, 'nora');
  assert.deepEqual(Object.keys(withOffset(m).msg).sort(), ['data', 'from', 'nick', 'room', 'ts', 'type', 'user']);
  assert.equal((await native.request({ type: 'send', room: 'lobby', data: 'hello' })).type, 'ack');
  const { msg: back } = roomMessage(await alice.nextArgs('message'));
  assert.equal(back.from, native.id);
  assert.equal(back.user, 'nora');
  assert.deepEqual(Object.keys(back).sort(), ['data', 'from', 'nick', 'room', 'ts', 'user']);

  // A second Socket.IO client sees alice's presence with user too.
  const bob = await SIO.connect(s, gw, { auth: { token: jwt(claimsFor('bob')) } });
  await bob.ack('join', 'lobby');
  const aliceID = alice.id;
  alice.close();
  const left = await bob.next('presence', (x) => x.event === 'leave');
  assert.equal(left.user, 'alice');
  assert.equal(left.id, aliceID);
});

test('socket.io-client refused: connect_error "unauthorized" with the reason, never a member', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-jwt-secret', SECRET, '-auth-required']);
  const native = await Native.connect(s, gw, { token: jwt(claimsFor('nora')) });
  await native.request({ type: 'join', room: 'lobby' });
  const before = await stats(gw);

  const cases = [
    ['no auth at all', {}, 'no token'],
    ['auth without a token', { auth: { user: 'alice' } }, 'no token'],
    ['expired beyond the leeway', { auth: { token: jwt(claimsFor('alice', { exp: now() - 60 })) } }, 'token expired'],
    ['not valid yet', { auth: { token: jwt(claimsFor('alice', { nbf: now() + 120 })) } }, 'token not valid yet'],
    ['bad signature', { auth: { token: jwt(claimsFor('alice'), { secret: 'another-secret-of-forty-two-bytes-0123456' }) } }, 'bad signature'],
    ['HS512', { auth: { token: jwt(claimsFor('alice'), { alg: 'HS512' }) } }, 'signing algorithm not accepted'],
    ['alg none', { auth: { token: jwt(claimsFor('alice'), { alg: 'none' }) } }, 'signing algorithm not accepted'],
    ['no exp', { auth: { token: jwt({ sub: 'alice' }) } }, 'token has no exp claim'],
    ['garbage', { auth: { token: 'not-a-jwt' } }, 'malformed token'],
  ];
  for (const [name, opts, reason] of cases) {
    const { err, client } = await SIO.refused(s, gw, opts);
    assert.equal(err.message, 'unauthorized', name);
    assert.deepEqual(err.data, { reason }, name);
    assert.equal(client.socket.id, undefined, `${name}: no socket.id`);
    // Emits of a socket that never connected are buffered by the client
    // and never reach the gateway as a member.
    client.socket.emit('join', 'lobby');
  }
  // The refused sockets are in no list, no presence event and no count.
  const list = await native.request({ type: 'members', room: 'lobby' });
  assert.deepEqual(memberIDs(list), [native.id]);
  assert.deepEqual(await native.request({ type: 'rooms' }).then((r) => r.rooms), [{ room: 'lobby', count: 1 }]);
  native.msgs.none((m) => m.type === 'presence', 'presence event of a refused client');
  const after = await stats(gw);
  assert.equal(after.sessions, before.sessions);

  // Over long-polling the same.
  const { err } = await SIO.refused(s, gw, { transports: ['polling'], auth: { token: jwt(claimsFor('a', { exp: now() - 3600 })) } });
  assert.equal(err.message, 'unauthorized');
  assert.deepEqual(err.data, { reason: 'token expired' });
  assert.equal((await stats(gw)).sessions, before.sessions);
});

test('socket.io-client: the token in the query or the Authorization header, over WebSocket and long-polling', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-jwt-secret', SECRET, '-auth-required']);
  const native = await Native.connect(s, gw, { query: `?token=${jwt(claimsFor('nora'))}` });
  assert.equal(native.welcome.type, 'welcome');
  await native.request({ type: 'join', room: 'lobby' });

  const variants = [
    ['query, websocket', { query: { token: jwt(claimsFor('q-ws')) } }, 'q-ws'],
    ['query, polling then upgrade', { transports: ['polling', 'websocket'], query: { token: jwt(claimsFor('q-poll')) } }, 'q-poll'],
    ['auth, polling only', { transports: ['polling'], auth: { token: jwt(claimsFor('a-poll')) } }, 'a-poll'],
    ['auth, polling then upgrade', { transports: ['polling', 'websocket'], auth: { token: jwt(claimsFor('a-up')) } }, 'a-up'],
    ['Authorization header', { extraHeaders: { Authorization: `Bearer ${jwt(claimsFor('h-ws'))}` } }, 'h-ws'],
  ];
  for (const [name, opts, user] of variants) {
    const c = await SIO.connect(s, gw, opts);
    withPosition(await c.ack('join', 'lobby'), { room: 'lobby', count: 2 }, name);
    const id = c.id; // socket.id is cleared on close
    const p = await native.next('presence', (m) => m.event === 'join' && m.id === id);
    assert.equal(p.user, user, name);
    await c.ack('message', { room: 'lobby', data: name });
    const m = await native.next('message', (x) => x.data === name);
    assert.equal(m.user, user, name);
    c.close();
    await native.next('presence', (x) => x.event === 'leave' && x.id === id);
  }

  // An invalid token in the query is refused before the Engine.IO
  // handshake, on either transport.
  for (const transports of [['websocket'], ['polling']]) {
    const { err } = await SIO.refused(s, gw, { transports, query: { token: jwt(claimsFor('x', { exp: now() - 3600 })) } });
    assert.ok(err instanceof Error, `${transports}: ${err}`);
  }
  assert.equal((await stats(gw)).sessions, 1);
});

test('socket.io-client: the rooms claim refuses other rooms with forbidden', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-jwt-secret', SECRET]);
  const c = await SIO.connect(s, gw, { auth: { token: jwt(claimsFor('alice', { rooms: ['lobby', 'team-*'] })) } });
  withPosition(await c.ack('join', 'lobby'), { room: 'lobby', count: 1 });
  withPosition(await c.ack('join', 'team-red'), { room: 'team-red', count: 1 });
  for (const room of ['random', 'Lobby', 'team']) {
    assert.deepEqual(await c.ack('join', room), { error: { code: 'forbidden', message: 'room not allowed by token' } }, room);
  }
  // Still connected, and the refused rooms do not exist.
  assert.deepEqual(await c.ack('rooms'), { rooms: [{ room: 'lobby', count: 1 }, { room: 'team-red', count: 1 }] });

  // Authentication is optional here: an anonymous socket may join any
  // room and has no user.
  const anon = await SIO.connect(s, gw);
  withPosition(await anon.ack('join', 'lobby'), { room: 'lobby', count: 2 });
  const list = await c.ack('members', 'lobby');
  assert.deepEqual(list.members.find((m) => m.id === anon.id), { id: anon.id, nick: '' });
  assert.deepEqual(list.members.find((m) => m.id === c.id), { id: c.id, nick: '', user: 'alice' });
  // ...but an invalid token is refused even then.
  const { err } = await SIO.refused(s, gw, { auth: { token: jwt(claimsFor('alice', { exp: now() - 3600 })) } });
  assert.equal(err.message, 'unauthorized');
  assert.deepEqual(err.data, { reason: 'token expired' });
});

test('socket.io-client: -allowed-origins refuses other browser origins on both transports', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-allowed-origins', 'https://chat.example.com,https://*.example.org']);
  for (const transports of [['websocket'], ['polling']]) {
    for (const origin of ['https://chat.example.com', 'https://a.example.org']) {
      const c = await SIO.connect(s, gw, { transports, extraHeaders: { Origin: origin } });
      assert.deepEqual(await c.ack('ping'), { ok: true }, `${transports} ${origin}`);
    }
    for (const origin of ['https://evil.example.com', 'https://example.org', 'null']) {
      await SIO.refused(s, gw, { transports, extraHeaders: { Origin: origin } });
    }
    // No Origin header: not a browser, allowed.
    const c = await SIO.connect(s, gw, { transports });
    assert.deepEqual(await c.ack('ping'), { ok: true });
  }
  const r = await fetch(`http://${gw.addr}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: 'https://evil.example.com' } });
  assert.equal(r.status, 403);
  assert.equal(await r.text(), 'origin not allowed\n');
});

// session checks the session token of a welcome (docs/history.md): the
// connection id, a dot, and the token's MAC in base64url. It returns the
// welcome without it.
function session(welcome) {
  const { session: token, ...rest } = welcome;
  assert.equal(typeof token, 'string', `welcome ${JSON.stringify(welcome)} has no session token`);
  assert.ok(token.startsWith(`${welcome.id}.`), `session token ${token} is not the id ${welcome.id} and a MAC`);
  assert.match(token.slice(welcome.id.length + 1), /^[A-Za-z0-9_-]{16,}$/, `the MAC of session token ${token}`);
  return rest;
}

test('native welcome carries the token\'s sub as user (docs/security.md, Identity in messages)', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-jwt-secret', SECRET]);
  const alice = await Native.connect(s, gw, { token: jwt(claimsFor('alice')) });
  assert.deepEqual(session(alice.welcome), { type: 'welcome', id: alice.id, user: 'alice' });
  const anon = await Native.connect(s, gw);
  assert.deepEqual(session(anon.welcome), { type: 'welcome', id: anon.id });
});
