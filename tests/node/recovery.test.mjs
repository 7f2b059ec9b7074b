// Connection state recovery against the real gateway binary, with
// independent clients: the real socket.io-client (over WebSocket and over
// HTTP long-polling), the `ws` package speaking the native protocol, and
// the browser client library web/static/client.js run in Node.js.
//
// Each test cuts a client's connection, has another member send while it
// is away, and checks what the client gets back: the same id and the
// missed messages exactly once and in order, or — when the gap is no
// longer kept, the client left on purpose, or the gateway restarted — a
// new session (and, for client.js, a 'gap' event).
//
// The cut client's reconnect is held back until the messages are sent: a
// TCP relay (gate.mjs) or a WebSocket class that dials a closed port (for
// client.js) shuts the door, and the client retries by itself until it is
// opened. Every wait is on an event, bounded; there are no sleeps.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { connect } from '../../web/static/client.js';
import { startGateway, gatewayBinary, freePort } from './gateway.mjs';
import { startGate } from './gate.mjs';
import { WAIT, Queue, once } from './wait.mjs';

const BACK = 10000; // ms, the bound of a reconnect once the door is open
const TEST = 60000; // ms, the bound of a whole test

before(() => { gatewayBinary(); });

// --- Socket.IO (socket.io-client) ---

// sio opens a socket.io-client socket that reconnects by itself, quickly,
// and records its 'message' events (with the offset argument) and its
// 'presence' events.
function sio(addr, transport) {
  const socket = io(`http://${addr}`, {
    transports: [transport], forceNew: true, timeout: WAIT,
    reconnectionDelay: 50, reconnectionDelayMax: 200, randomizationFactor: 0,
  });
  socket.messages = new Queue();
  socket.presence = new Queue();
  socket.on('message', (msg, offset) => socket.messages.push({ msg, offset }));
  socket.on('presence', (p) => socket.presence.push(p));
  return socket;
}

async function sioConnected(socket) {
  if (!socket.connected) await once(socket, 'connect');
  return socket;
}

function ack(socket, ...args) {
  return socket.timeout(WAIT).emitWithAck(...args);
}

// sioSend sends data to room r and waits for the gateway's ack.
async function sioSend(socket, data) {
  const a = await ack(socket, 'message', { room: 'r', data });
  assert.deepEqual(a, { ok: true }, `ack of message ${JSON.stringify(data)}`);
}

// recoveries reads chatgate_recoveries_total from the gateway's admin
// listener: {kept, recovered, failed}. It tells a resume that was refused
// apart from a drop that was never kept.
async function recoveries(admin) {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  const out = {};
  for (const m of text.matchAll(/^chatgate_recoveries_total\{outcome="(\w+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

// sioScope starts a gateway (args) with a gate in front of it, and closes
// everything the test opened in t.after.
async function sioScope(t, args = []) {
  const admin = `127.0.0.1:${await freePort()}`;
  const gw = await startGateway(['-loops', '2', `-admin-addr=${admin}`, ...args]);
  gw.admin = admin;
  const gate = await startGate(gw.addr);
  const sockets = [];
  t.after(async () => {
    for (const s of sockets) s.disconnect();
    await gate.close();
    await gw.stop();
  });
  return { gw, gate, socket(addr, transport) { const s = sio(addr, transport); sockets.push(s); return s; } };
}

// sioAway sets up A (through the gate) and B (direct) in room "r", has B
// send one message A receives, then cuts A's transport with the door shut
// and waits until B sees A leave. It returns A, B, A's old id and the
// offset A received last.
async function sioAway(s, transport) {
  const a = await sioConnected(s.socket(s.gate.addr, transport));
  const j = await ack(a, 'join', 'r');
  assert.equal(j.room, 'r');
  assert.equal(typeof j.offset, 'number', 'the join ack carries the room position');
  assert.equal(a.recovered, false);
  const oldId = a.id;
  const b = await sioConnected(s.socket(s.gw.addr, transport));
  await ack(b, 'join', 'r');
  await a.presence.next((p) => p.event === 'join' && p.id === b.id, 'presence join of B');

  await sioSend(b, 'before');
  const first = await a.messages.next((m) => m.msg.data === 'before', 'the message before the cut');
  assert.equal(typeof first.offset, 'string', 'a room message has the offset as a last string argument');
  assert.equal(first.offset, String(first.msg.offset));

  const left = b.presence.next((p) => p.event === 'leave' && p.id === oldId, "B's presence leave of A");
  s.gate.shut();
  a.io.engine.close();
  await left;
  return { a, b, oldId, lastOffset: first.offset };
}

for (const transport of ['websocket', 'polling']) {
  test(`socket.io over ${transport}: a cut transport recovers the session, same id, the missed messages once and in order`, { timeout: TEST }, async (t) => {
    const s = await sioScope(t);
    const { a, b, oldId, lastOffset } = await sioAway(s, transport);
    for (let i = 0; i < 3; i++) await sioSend(b, i);

    const back = once(a, 'connect', BACK);
    const rejoined = b.presence.next((p) => p.event === 'join' && p.id === oldId, "B's presence join of A after recovery");
    s.gate.open();
    await back;
    assert.equal(a.recovered, true, 'socket.recovered after the reconnect');
    assert.equal(a.id, oldId, 'the same id');
    await rejoined;

    for (let i = 0; i < 3; i++) await a.messages.next((m) => m.msg.data === i, `missed message ${i}`);
    await sioSend(b, 3);
    await a.messages.next((m) => m.msg.data === 3, 'the message sent after recovery');

    // Messages to one client arrive in order: once the last is in, any
    // duplicate or stray replay would be too.
    const got = a.messages.all.map((m) => m.msg.data);
    assert.deepEqual(got, ['before', 0, 1, 2, 3]);
    const offsets = a.messages.all.map((m) => BigInt(m.offset));
    for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i] > offsets[i - 1], `offsets increase: ${offsets}`);
    assert.ok(offsets[1] > BigInt(lastOffset));
    for (const m of a.messages.all) assert.equal(m.msg.room, 'r');
    assert.deepEqual(await recoveries(s.gw.admin), { kept: 1, recovered: 1, failed: 0 });
  });
}

test('socket.io: a gap the history no longer keeps means a new session (all or nothing)', { timeout: TEST }, async (t) => {
  const s = await sioScope(t, ['-history-size', '2']);
  const { a, b, oldId } = await sioAway(s, 'websocket');
  for (let i = 0; i < 5; i++) await sioSend(b, i);

  const back = once(a, 'connect', BACK);
  s.gate.open();
  await back;
  assert.equal(a.recovered, false, 'not recovered');
  assert.notEqual(a.id, oldId, 'a new id');
  // The new session has no rooms: none of the missed messages, and B is
  // alone in "r". A's ping round trip comes after anything a recovery
  // would have pushed.
  await ack(a, 'ping');
  assert.deepEqual(a.messages.all.map((m) => m.msg.data), ['before']);
  const members = await ack(b, 'members', 'r');
  assert.deepEqual(members.members.map((m) => m.id), [b.id]);
  // The drop was kept; the resume was refused for the gap.
  assert.deepEqual(await recoveries(s.gw.admin), { kept: 1, recovered: 0, failed: 1 });
});

test('socket.io: a client that disconnects on purpose and connects again gets a new session', { timeout: TEST }, async (t) => {
  const s = await sioScope(t);
  const a = await sioConnected(s.socket(s.gw.addr, 'websocket'));
  await ack(a, 'join', 'r');
  const oldId = a.id;
  const b = await sioConnected(s.socket(s.gw.addr, 'websocket'));
  await ack(b, 'join', 'r');
  await sioSend(b, 'before');
  await a.messages.next((m) => m.msg.data === 'before', 'the message before the disconnect');

  const left = b.presence.next((p) => p.event === 'leave' && p.id === oldId, "B's presence leave of A");
  a.disconnect();
  await left;
  await sioSend(b, 0);
  const back = once(a, 'connect');
  a.connect(); // socket.io-client sends its pid and offset again
  await back;
  assert.equal(a.recovered, false);
  assert.notEqual(a.id, oldId);
  await ack(a, 'ping');
  assert.deepEqual(a.messages.all.map((m) => m.msg.data), ['before']);
  // Nothing was kept for a deliberate disconnect; the pid was refused.
  assert.deepEqual(await recoveries(s.gw.admin), { kept: 0, recovered: 0, failed: 1 });
});

// --- native protocol (ws) ---

// Native is a `ws` connection to /ws with a queue of the frames it got.
class Native {
  static async open(addr, query = '') {
    const c = new Native(new WebSocket(`ws://${addr}/ws${query}`));
    c.welcome = await c.frames.next((m) => m.type === 'welcome', 'welcome');
    c.id = c.welcome.id;
    return c;
  }
  constructor(ws) {
    this.ws = ws;
    this.seq = 0;
    this.frames = new Queue();
    ws.on('message', (data) => this.frames.push(JSON.parse(data.toString())));
    ws.on('error', () => { /* a terminated socket */ });
  }
  async request(obj) {
    const id = ++this.seq;
    this.ws.send(JSON.stringify({ ...obj, id }));
    const r = await this.frames.next((m) => m.id === id && (m.type === 'ack' || m.type === 'error'), `reply to ${obj.type}`);
    assert.equal(r.type, 'ack', `${obj.type}: ${JSON.stringify(r)}`);
    return r;
  }
  messages() { return this.frames.all.filter((m) => m.type === 'message'); }
  close() { this.ws.terminate(); }
}

test('native: a dropped client resumes with ?resume=&offset=: same id, then a recovered event with the missed messages', { timeout: TEST }, async (t) => {
  const gw = await startGateway(['-loops', '2']);
  const open = [];
  t.after(async () => { for (const c of open) c.close(); await gw.stop(); });
  const a = await Native.open(gw.addr);
  open.push(a);
  assert.equal(typeof a.welcome.session, 'string', 'the welcome carries a session token');
  assert.equal(a.welcome.recovered, undefined, 'a first connection asked for no resume');
  await a.request({ type: 'nick', name: 'alice' });
  await a.request({ type: 'join', room: 'r' });
  const b = await Native.open(gw.addr);
  open.push(b);
  await b.request({ type: 'join', room: 'r' });
  await b.request({ type: 'send', room: 'r', data: 'before' });
  const before = await a.frames.next((m) => m.type === 'message' && m.data === 'before', 'the message before the drop');
  assert.equal(typeof before.offset, 'number');

  const left = b.frames.next((m) => m.type === 'presence' && m.event === 'leave' && m.id === a.id, "B's presence leave of A");
  a.ws.terminate();
  await left;
  for (let i = 0; i < 3; i++) await b.request({ type: 'send', room: 'r', data: i });

  const rejoined = b.frames.next((m) => m.type === 'presence' && m.event === 'join' && m.id === a.id, "B's presence join of A");
  const a2 = await Native.open(gw.addr, `?resume=${encodeURIComponent(a.welcome.session)}&offset=${before.offset}`);
  open.push(a2);
  assert.equal(a2.welcome.recovered, true);
  assert.equal(a2.id, a.id, 'the same id');
  assert.equal(a2.welcome.nick, 'alice', 'the same nick');
  const rec = await a2.frames.next(() => true, 'the frame after the welcome');
  assert.equal(rec.type, 'recovered');
  assert.equal(rec.room, 'r');
  assert.equal(rec.recovered, true);
  assert.deepEqual(rec.messages.map((m) => [m.type, m.room, m.from, m.data]),
    [0, 1, 2].map((i) => ['message', 'r', b.id, i]));
  const offs = rec.messages.map((m) => m.offset);
  assert.ok(offs[0] > before.offset && offs[1] > offs[0] && offs[2] > offs[1], `offsets ${before.offset}, ${offs}`);
  assert.equal(rec.offset, offs[2], 'the room stands at its last message');
  assert.equal(typeof rec.epoch, 'string');
  await rejoined;

  // Live again, once: nothing of the gap is delivered a second time.
  await b.request({ type: 'send', room: 'r', data: 3 });
  await a2.frames.next((m) => m.type === 'message' && m.data === 3, 'the message after the resume');
  assert.deepEqual(a2.messages().map((m) => m.data), [3]);
});

// --- the client library (web/static/client.js) ---

// library returns a WebSocket class for client.js that records every
// socket it opens, the URL it dialled and every frame it sends, and dials
// a closed port while gate.open is false (the client keeps retrying by
// itself).
function library(gate) {
  const sockets = [];
  const dials = new Queue();
  const sent = [];
  class LibWebSocket extends WebSocket {
    constructor(url, ...rest) {
      dials.push(url);
      super(gate.open ? url : 'ws://127.0.0.1:1/ws', ...rest);
      sockets.push(this);
    }
    send(data, ...rest) {
      sent.push(JSON.parse(data));
      return super.send(data, ...rest);
    }
  }
  return { WebSocket: LibWebSocket, sockets, dials, sent };
}

// libEvents records a client.js client's events.
function libEvents(c) {
  const q = { messages: new Queue(), gaps: new Queue(), welcomes: new Queue(), presence: new Queue() };
  c.on('message', (m) => q.messages.push(m));
  c.on('gap', (g) => q.gaps.push(g));
  c.on('welcome', (w) => q.welcomes.push(w));
  c.on('presence', (p) => q.presence.push(p));
  return q;
}

const LIB = { minDelay: 50, maxDelay: 200, timeout: 3000, heartbeat: 0 };

// libAway connects alice (client.js, through a gate) and bob (client.js)
// to room "r", has bob send one message alice gets, runs more(clients)
// if given, then drops alice's socket with the gate shut and waits until
// bob sees her leave.
async function libAway(t, gw, more) {
  const url = `ws://${gw.addr}/ws`;
  const gate = { open: true };
  const lib = library(gate);
  const alice = connect(url, { ...LIB, WebSocket: lib.WebSocket });
  const bob = connect(url, { ...LIB, WebSocket });
  t.after(() => { alice.close(); bob.close(); });
  const ev = libEvents(alice);
  const bev = libEvents(bob);
  // Connected first: a request made before is queued without a timeout.
  await Promise.all([alice.ready(WAIT), bob.ready(WAIT)]);
  await alice.nick('alice');
  await alice.join('r');
  await bob.join('r');
  await bob.send('r', 'before');
  const before = await ev.messages.next((m) => m.data === 'before', 'the message before the drop');
  if (more) await more({ alice, bob });
  const oldId = alice.id;
  const left = bev.presence.next((p) => p.event === 'leave' && p.id === oldId, "bob's presence leave of alice");
  const away = new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`alice not reconnecting within ${WAIT} ms`)); }, WAIT);
    const off = alice.on('state', (st) => {
      if (st !== 'reconnecting') return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
  gate.open = false;
  lib.sockets.at(-1).terminate();
  await Promise.all([left, away]);
  return { alice, bob, ev, bev, gate, lib, oldId, before };
}

test('client.js: a dropped connection resumes: same id, rooms kept without a rejoin, the missed messages once and in order', { timeout: TEST }, async (t) => {
  const gw = await startGateway(['-loops', '2']);
  t.after(() => gw.stop());
  const { alice, bob, ev, bev, gate, lib, oldId, before } = await libAway(t, gw);
  for (let i = 0; i < 3; i++) await bob.send('r', i);

  const dialled = lib.dials.all.length;
  const sentBefore = lib.sent.length;
  const rejoined = bev.presence.next((p) => p.event === 'join' && p.id === oldId, "bob's presence join of alice");
  gate.open = true;
  const w = await ev.welcomes.next((x) => x.reconnected, 'the welcome after the drop', BACK);
  assert.deepEqual(w, { id: oldId, previousId: oldId, reconnected: true, recovered: true, nick: 'alice', rooms: ['r'] });
  assert.equal(alice.id, oldId);
  await rejoined;

  // The resume asked from the last offset alice received, after her own
  // query; the session needed no join (the gateway rejoined it).
  const u = new URL(lib.dials.all.at(-1));
  assert.ok(lib.dials.all.length > dialled, 'dialled again');
  assert.match(u.searchParams.get('resume'), /^\S+\.\S+$/);
  assert.equal(u.searchParams.get('offset'), String(before.offset));
  const after = lib.sent.slice(sentBefore).map((f) => f.type);
  assert.ok(!after.includes('join') && !after.includes('nick'), `frames after the resume: ${after}`);

  // The missed messages arrive as 'message' events, in order.
  await ev.messages.next((m) => m.data === 2, 'the last missed message');
  assert.deepEqual(ev.messages.all.map((m) => m.data), ['before', 0, 1, 2]);
  await bob.send('r', 3);
  await ev.messages.next((m) => m.data === 3, 'the message after the resume');
  assert.deepEqual(ev.messages.all.map((m) => m.data), ['before', 0, 1, 2, 3]);
  assert.deepEqual(ev.gaps.all, [], 'no gap');
  assert.deepEqual(alice.joined, ['r']);
});

test('client.js: a room whose missed messages are no longer kept reports a gap', { timeout: TEST }, async (t) => {
  const gw = await startGateway(['-loops', '2', '-history-size', '2']);
  t.after(() => gw.stop());
  const { alice, bob, ev, gate, oldId } = await libAway(t, gw);
  for (let i = 0; i < 5; i++) await bob.send('r', i);

  gate.open = true;
  const w = await ev.welcomes.next((x) => x.reconnected, 'the welcome after the drop', BACK);
  // The native protocol recovers room by room: the session (id, rooms)
  // is back, this room's gap is not.
  assert.equal(w.recovered, true);
  assert.equal(alice.id, oldId);
  await ev.gaps.next(() => true, 'the gap');
  assert.deepEqual(ev.gaps.all, [{ room: 'r', reason: 'unrecoverable' }]);
  await bob.send('r', 5);
  await ev.messages.next((m) => m.data === 5, 'a live message after the gap');
  assert.deepEqual(ev.messages.all.map((m) => m.data), ['before', 5]);
});

test('client.js: a session the gateway did not resume is joined again, with a gap', { timeout: TEST }, async (t) => {
  const gw = await startGateway(['-loops', '2']);
  t.after(() => gw.stop());
  const { alice, bob, ev, gate, lib, oldId } = await libAway(t, gw);
  await bob.send('r', 0);
  // Someone else (here a raw connection) resumes alice's session first,
  // with the token alice dials with, and closes it for good: a token
  // works once per drop, so alice's own resume gets a new session.
  const dial = await lib.dials.next((u) => new URL(u).searchParams.has('resume'), "alice's reconnect attempt");
  const session = new URL(dial).searchParams.get('resume');
  const thief = await Native.open(gw.addr, `?resume=${encodeURIComponent(session)}`);
  assert.equal(thief.welcome.recovered, true);
  assert.equal(thief.id, oldId);
  const gone = once(thief.ws, 'close');
  thief.ws.close(1000);
  await gone;

  const sentBefore = lib.sent.length;
  gate.open = true;
  const w = await ev.welcomes.next((x) => x.reconnected, 'the welcome after the drop', BACK);
  assert.equal(w.recovered, false);
  assert.notEqual(alice.id, oldId, 'a new id');
  assert.deepEqual(w.rooms, ['r']);
  const after = lib.sent.slice(sentBefore).map((f) => [f.type, f.room ?? f.name]);
  assert.deepEqual(after, [['nick', 'alice'], ['join', 'r']]);
  assert.deepEqual(ev.gaps.all, [{ room: 'r', reason: 'not_resumed' }]);
  await bob.send('r', 1);
  await ev.messages.next((m) => m.data === 1, 'a live message after the rejoin');
  assert.deepEqual(ev.messages.all.map((m) => m.data), ['before', 1]);
});

test('client.js: without recovery on the gateway, a reconnect rejoins and reports a gap', { timeout: TEST }, async (t) => {
  const gw = await startGateway(['-loops', '2', '-recovery-window', '0']);
  t.after(() => gw.stop());
  const { alice, ev, gate, lib, oldId } = await libAway(t, gw);
  gate.open = true;
  const w = await ev.welcomes.next((x) => x.reconnected, 'the welcome after the drop', BACK);
  assert.equal(w.recovered, false);
  assert.notEqual(alice.id, oldId);
  assert.ok(!lib.dials.all.some((u) => u.includes('resume=')), 'no resume asked: the gateway gave no session token');
  assert.deepEqual(ev.gaps.all, [{ room: 'r', reason: 'no_recovery' }]);
});

test('client.js: a resume shows no message from before a room was joined', { timeout: TEST }, async (t) => {
  const gw = await startGateway(['-loops', '2']);
  t.after(() => gw.stop());
  const { alice, bob, ev, gate, oldId, before } = await libAway(t, gw, async ({ alice, bob }) => {
    // Before alice joins "q", bob says something there: a message alice
    // never had, above the offset she will resume from.
    await bob.join('q');
    await bob.send('q', 'q before alice');
    const ack = await alice.join('q');
    assert.equal(typeof ack.offset, 'number');
  });
  await bob.send('q', 'q missed');
  await bob.send('r', 'r missed');

  gate.open = true;
  const w = await ev.welcomes.next((x) => x.reconnected, 'the welcome after the drop', BACK);
  assert.equal(w.recovered, true);
  assert.equal(alice.id, oldId);
  assert.deepEqual(w.rooms, ['q', 'r']);
  await ev.messages.next((m) => m.data === 'q missed', 'the message missed in q');
  await ev.messages.next((m) => m.data === 'r missed', 'the message missed in r');
  const got = ev.messages.all.map((m) => [m.room, m.data]);
  assert.deepEqual(got.filter(([room]) => room === 'q'), [['q', 'q missed']]);
  assert.deepEqual(got.filter(([room]) => room === 'r'), [['r', 'before'], ['r', 'r missed']]);
  assert.ok(ev.messages.all.every((m) => m.offset >= before.offset));
  assert.deepEqual(ev.gaps.all, []);
});
