// The JavaScript client library served at /client.js (web/static/client.js),
// run in Node.js with the `ws` package against the real gateway binary:
// requests and acks, events, error codes, the offline queue, and automatic
// reconnection across a gateway crash and restart on the same port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { connect, ChatError } from '../../web/static/client.js';
import { startGateway } from './gateway.mjs';

const FAST = { WebSocket, minDelay: 50, maxDelay: 400, timeout: 3000 };

// once resolves with the arguments of the next `event` from client that
// satisfies pred, or rejects after ms.
function once(client, event, pred = () => true, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${event} event within ${ms} ms`)); }, ms);
    const off = client.on(event, (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args.length > 1 ? args : args[0]);
    });
  });
}

async function rejects(promise, code) {
  const err = await promise.then(() => null, (e) => e);
  assert.ok(err, `expected a rejection with code ${code}`);
  assert.ok(err instanceof Error, 'rejection is an Error');
  assert.ok(err instanceof ChatError);
  assert.equal(err.code, code, `${err.message}`);
  return err;
}

// restart starts a gateway on the port of the one just killed. Its
// clients reconnect to the same URL.
async function restart(gw, args) {
  try {
    return await startGateway(args, gw.port);
  } catch (err) {
    if (/address already in use/.test(err.message)) {
      err.message = `the gateway could not listen again on port ${gw.port} after a crash: its listener ` +
        `must set SO_REUSEADDR (gnet.WithReuseAddr(true)) so that TIME_WAIT sockets do not block it.\n${err.message}`;
    }
    throw err;
  }
}

test('client: requests, acks, events and errors', async (t) => {
  const gw = await startGateway(['-loops', '2']);
  t.after(() => gw.stop());
  const url = `ws://${gw.addr}/ws`;

  // Record every frame alice writes, to check the request ids.
  const sent = [];
  class SpyWebSocket extends WebSocket {
    send(data, ...rest) {
      sent.push(JSON.parse(data));
      return super.send(data, ...rest);
    }
  }
  const alice = connect(url, { ...FAST, WebSocket: SpyWebSocket });
  const bob = connect(url, FAST);
  t.after(() => { alice.close(); bob.close(); });
  assert.equal(alice.state, 'connecting');
  const welcome = once(alice, 'welcome');
  await Promise.all([alice.ready(5000), bob.ready(5000)]);
  assert.equal(alice.state, 'connected');
  assert.match(alice.id, /^\S+$/);
  assert.notEqual(alice.id, bob.id);
  assert.deepEqual(await welcome, { id: alice.id, previousId: null, reconnected: false, nick: null, rooms: [] });

  assert.deepEqual(await alice.nick('alice'), { type: 'ack', id: 1, name: 'alice' });
  assert.equal(alice.nickname, 'alice');
  await bob.nick('bob');

  // join, with presence to the members already there
  const ackA = await alice.join('lobby');
  assert.equal(ackA.room, 'lobby');
  assert.equal(ackA.count, 1);
  const joined = once(alice, 'presence', (p) => p.event === 'join');
  const ackB = await bob.join('lobby');
  assert.equal(ackB.count, 2);
  const p = await joined;
  assert.deepEqual({ ...p }, { type: 'presence', room: 'lobby', event: 'join', id: bob.id, nick: 'bob', count: 2 });
  assert.deepEqual(alice.joined, ['lobby']);

  // room message: the others get it, the sender gets the ack
  const got = once(bob, 'message');
  assert.equal((await alice.send('lobby', { text: 'hi bob' })).type, 'ack');
  const m = await got;
  assert.equal(m.room, 'lobby');
  assert.equal(m.from, alice.id);
  assert.equal(m.nick, 'alice');
  assert.deepEqual(m.data, { text: 'hi bob' });
  assert.equal(typeof m.ts, 'number');

  // direct message
  const dm = once(alice, 'message');
  await bob.sendTo(alice.id, { text: 'psst' });
  const d = await dm;
  assert.equal(d.room, undefined);
  assert.equal(d.from, bob.id);
  assert.equal(d.nick, 'bob');
  assert.deepEqual(d.data, { text: 'psst' });

  // rooms and members
  await bob.join('zebra');
  const rooms = await alice.rooms();
  assert.deepEqual(rooms, [{ room: 'lobby', count: 2 }, { room: 'zebra', count: 1 }]);
  const members = await alice.members('lobby');
  assert.deepEqual(members, [{ id: alice.id, nick: 'alice' }, { id: bob.id, nick: 'bob' }].sort((x, y) => (x.id < y.id ? -1 : 1)));
  assert.equal(typeof await alice.ping(), 'number');

  // error replies reject with an Error carrying the gateway's code
  const e1 = await rejects(alice.send('zebra', { text: 'not in it' }), 'not_member');
  assert.match(e1.message, /member/);
  assert.deepEqual(e1.request, { type: 'send', room: 'zebra', data: { text: 'not in it' } });
  await rejects(alice.members('zebra'), 'not_member');
  await rejects(alice.leave('zebra'), 'not_member');
  await rejects(alice.sendTo('nobody', 1), 'no_such_connection');
  await rejects(alice.nick(''), 'invalid_name');
  await rejects(alice.join('x'.repeat(129)), 'invalid_room');
  assert.equal(alice.nickname, 'alice', 'a refused nick does not replace the restored one');
  assert.deepEqual(alice.joined, ['lobby'], 'a refused join is not rejoined later');

  // leave, with presence; off() unsubscribes
  let seen = 0;
  const count = () => { seen++; };
  alice.on('presence', count);
  alice.off('presence', count);
  const left = once(alice, 'presence', (q) => q.event === 'leave');
  const ackL = await bob.leave('lobby');
  assert.deepEqual([ackL.room, ackL.count], ['lobby', 1]);
  const q = await left;
  assert.deepEqual([q.id, q.nick, q.count], [bob.id, 'bob', 1]);
  assert.equal(seen, 0);
  assert.deepEqual(bob.joined, ['zebra']);

  // request ids are increasing integers, one per request
  const ids = sent.map((f) => f.id);
  assert.ok(ids.length >= 12, `alice sent ${ids.length} requests`);
  ids.forEach((id, i) => assert.equal(id, i + 1));

  // close: state, and requests after it are rejected
  const closed = once(alice, 'state', (s) => s === 'closed');
  alice.close();
  await closed;
  assert.equal(alice.state, 'closed');
  await rejects(alice.send('lobby', {}), 'closed');
  await rejects(alice.ready(), 'closed');
});

// gated returns a WebSocket class whose connections go to a closed port
// while gate.open is false: a network outage the test controls, so that
// it can set things up on the restarted gateway before the client (which
// keeps retrying by itself) gets through.
function gated(gate) {
  return class GatedWebSocket extends WebSocket {
    constructor(url, ...rest) {
      super(gate.open ? url : 'ws://127.0.0.1:1/ws', ...rest);
    }
  };
}

test('client: reconnects after a gateway crash, restores nick and rooms, flushes the offline queue', async (t) => {
  const args = ['-loops', '2'];
  let gw = await startGateway(args);
  t.after(() => gw.stop());
  const url = `ws://${gw.addr}/ws`;

  const gate = { open: true };
  const carol = connect(url, { ...FAST, WebSocket: gated(gate), queueLimit: 3 });
  t.after(() => carol.close());
  const states = [];
  carol.on('state', (s, info) => states.push(s));
  await carol.nick('carol');
  await carol.join('lobby');
  await carol.join('side');
  assert.equal(carol.state, 'connected');
  const firstId = carol.id;

  // Crash the gateway: the client notices and starts reconnecting.
  const reconnecting = once(carol, 'state', (s) => s === 'reconnecting');
  await gw.stop();
  const [, info] = await reconnecting;
  assert.equal(info.previous, 'connected');
  // Full jitter: the first delay is drawn from [0, minDelay].
  assert.ok(info.delay >= 0 && info.delay <= 50, `first delay ${info.delay} ms`);

  // Requests made while offline wait in the bounded queue.
  const offline = carol.send('lobby', { text: 'typed while offline' });
  const listing = carol.rooms();
  const third = carol.ping();
  assert.equal(carol.queued, 3);
  await rejects(carol.send('lobby', { text: 'one too many' }), 'queue_full');

  // A new gateway on the same port; dave is in the room before carol can
  // get back (her attempts fail while the gate is shut).
  gate.open = false;
  gw = await restart(gw, args);
  const dave = connect(url, FAST);
  t.after(() => dave.close());
  await dave.nick('dave');
  await dave.join('lobby');
  const delivered = once(dave, 'message', (m) => m.data?.text === 'typed while offline', 10000);
  const rejoined = once(dave, 'presence', (p) => p.event === 'join' && p.nick === 'carol', 10000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(carol.state, 'reconnecting');
  const attempts = states.filter((s) => s === 'reconnecting').length;
  assert.ok(attempts >= 2, `${attempts} reconnect attempts so far`);
  gate.open = true;

  // carol comes back by herself: new id, same nick, same rooms.
  const welcome = await once(carol, 'welcome', () => true, 10000);
  assert.equal(carol.state, 'connected');
  assert.equal(welcome.reconnected, true);
  assert.equal(welcome.previousId, firstId);
  assert.notEqual(carol.id, firstId, 'a new connection gets a new id');
  assert.deepEqual(welcome.rooms, ['lobby', 'side']);
  const seq = states.join(' ');
  assert.match(seq, /^connected( reconnecting){2,} connected$/, seq);
  const p = await rejoined;
  assert.equal(p.id, carol.id);

  // The members list, as another member sees it, has her with her nick.
  const members = await dave.members('lobby');
  assert.deepEqual(members.find((x) => x.id === carol.id), { id: carol.id, nick: 'carol' });
  assert.equal(carol.nickname, 'carol');
  assert.deepEqual(carol.joined, ['lobby', 'side']);

  // The message typed while offline is delivered, after the restore.
  const m = await delivered;
  assert.deepEqual([m.room, m.from, m.nick], ['lobby', carol.id, 'carol']);
  assert.equal((await offline).type, 'ack');
  assert.deepEqual((await listing).map((r) => r.room), ['lobby', 'side']);
  assert.equal(typeof await third, 'number');

  // And the reconnected client chats both ways.
  const back = once(carol, 'message');
  await dave.send('lobby', { text: 'welcome back' });
  assert.equal((await back).data.text, 'welcome back');
});

// fakeGateway is a stand-in WebSocket server that welcomes each client and
// then hands its frames to onFrame(frame, socket): for the cases a real
// gateway cannot be made to produce on cue (no reply, a drop mid-request).
async function fakeGateway(onFrame) {
  const { WebSocketServer } = await import('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  let n = 0;
  wss.on('connection', (sock) => {
    sock.send(JSON.stringify({ type: 'welcome', id: `fake${++n}` }));
    sock.on('message', (raw) => onFrame(JSON.parse(raw.toString()), sock));
  });
  return {
    url: `ws://127.0.0.1:${wss.address().port}/ws`,
    close: () => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(r); }),
  };
}

test('client: in-flight requests across a drop, reply timeouts and the heartbeat', async (t) => {
  const frames = [];
  let mode = 'answer';
  const fake = await fakeGateway((f, sock) => {
    frames.push(f);
    if (mode === 'answer' || f.type === 'join' || f.type === 'nick') {
      sock.send(JSON.stringify({ type: 'ack', id: f.id }));
    } else if (mode === 'drop' && f.type === 'members') {
      sock.terminate(); // after the send and the members request
    }
    // mode 'silent': no reply at all
  });
  t.after(() => fake.close());
  const c = connect(fake.url, { ...FAST, timeout: 300, heartbeat: 0 });
  t.after(() => c.close());
  await c.nick('gina');
  await c.join('r');
  assert.equal(c.id, 'fake1');

  // A send on the wire when the connection drops is rejected (it may have
  // been delivered); other requests are idempotent and are sent again.
  mode = 'drop';
  const send = c.send('r', { text: 'x' });
  const members = c.members('r');
  await rejects(send, 'disconnected');
  mode = 'answer';
  await members; // answered by the second connection
  assert.equal(c.id, 'fake2');
  const second = frames.slice(frames.findIndex((f) => f.type === 'members') + 1);
  assert.deepEqual(second.map((f) => [f.type, f.name ?? f.room]), [['nick', 'gina'], ['join', 'r'], ['members', 'r']],
    'restore first, then the requeued request');

  // No reply within the timeout: rejected with code timeout.
  mode = 'silent';
  const err = await rejects(c.rooms(), 'timeout');
  assert.match(err.message, /rooms/);
  c.close();

  // Heartbeat: a connection that stops answering is dropped and redialled.
  const d = connect(fake.url, { ...FAST, timeout: 300, heartbeat: 150 });
  t.after(() => d.close());
  await d.ready(3000);
  const [, info] = await once(d, 'state', (s) => s === 'reconnecting', 3000);
  assert.equal(info.reason, 'heartbeat timeout');
  mode = 'answer';
  await d.ready(3000);
  d.close();
});
