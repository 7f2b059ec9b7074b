// The Socket.IO endpoint (/socket.io/, Engine.IO v4 over WebSocket +
// Socket.IO v5) driven by the real socket.io-client package, next to native
// clients on /ws (the `ws` package), against the real gateway binary. Raw
// `ws` connections to /socket.io/ check what socket.io-client never sends:
// malformed packets, missing pongs, a missing CONNECT.
//
// History and recovery are on (the default): join acks carry the room's
// position, room messages their offset (in the object, and for Socket.IO
// as the event's last argument), and the CONNECT ack a pid
// (docs/history.md). Recovery after a drop has its own tests in
// recovery.test.mjs; here a restarted gateway gives a new session.
//
// Every wait has a timeout, and every test closes its sockets and stops
// its gateways in t.after, so the file runs in a few seconds and never
// hangs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { io, Manager } from 'socket.io-client';
import { startGateway, gatewayBinary, freePort } from './gateway.mjs';
import { WAIT, within, Queue, once } from './wait.mjs';
import { withPosition, withOffset, roomMessage } from './position.mjs';

// Build the gateway (unless CHATGATE_BIN names one) before the first test,
// so that no test's time includes the build.
before(() => { gatewayBinary(); });

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// scope collects what a test opens and closes it all in t.after: clients
// first, so that none reconnects to a gateway being stopped.
function scope(t) {
  const clients = [];
  const gateways = [];
  t.after(async () => {
    for (const c of clients) c.close();
    for (const g of gateways) await g.stop();
  });
  return {
    client(c) { clients.push(c); return c; },
    async gateway(args, port) {
      const g = await startGateway(['-loops', '2', ...args], port);
      gateways.push(g);
      return g;
    },
  };
}

// SIO is a socket.io-client socket with a queue of the events it received.
class SIO {
  // connect opens a socket to the gateway's main namespace and resolves
  // once it is connected. No reconnection unless opts asks for it.
  static connect(gw, opts = {}) {
    const socket = io(`http://${gw.addr}`, {
      transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT, ...opts,
    });
    const c = new SIO(socket);
    return within(new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(c));
      socket.once('connect_error', reject);
    }), WAIT, 'socket.io connect').finally(() => {
      socket.off('connect');
      socket.off('connect_error');
    }).catch((err) => {
      socket.close();
      throw err;
    });
  }
  constructor(socket) {
    this.socket = socket;
    this.events = new Queue();
    socket.onAny((event, ...args) => this.events.push({ event, args }));
  }
  get id() { return this.socket.id; }
  // ack emits event with args and resolves with the acknowledgement.
  ack(event, ...args) {
    return this.socket.timeout(WAIT).emitWithAck(event, ...args);
  }
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

// Native is a client of the native JSON protocol on /ws.
class Native {
  static async connect(gw) {
    const c = new Native(new WebSocket(`ws://${gw.addr}/ws`));
    await once(c.ws, 'open');
    const w = await c.next('welcome');
    c.id = w.id;
    return c;
  }
  constructor(ws) {
    this.ws = ws;
    this.msgs = new Queue();
    this.seq = 0;
    ws.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'native clients get text frames only');
      this.msgs.push(JSON.parse(data.toString()));
    });
    ws.on('error', () => {});
  }
  next(type, pred = () => true) {
    return this.msgs.next((m) => m.type === type && pred(m), `native "${type}"`);
  }
  // request sends obj with a fresh id and resolves with its ack or error.
  request(obj) {
    const id = ++this.seq;
    this.ws.send(JSON.stringify({ ...obj, id }));
    return this.msgs.next((m) => m.id === id && (m.type === 'ack' || m.type === 'error'), `reply to ${obj.type}`);
  }
  close() { this.ws.close(); }
}

// RawEIO is a bare WebSocket to /socket.io/ that speaks Engine.IO by hand.
class RawEIO {
  static async open(gw, { pong = false } = {}) {
    const c = new RawEIO(new WebSocket(`ws://${gw.addr}/socket.io/?EIO=4&transport=websocket`), pong);
    await once(c.ws, 'open');
    c.openedAt = Date.now();
    const open = await c.next((d) => d.startsWith('0'), 'the open packet');
    c.handshake = JSON.parse(open.slice(1));
    return c;
  }
  constructor(ws, pong) {
    this.ws = ws;
    this.pings = 0;
    this.packets = new Queue();
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve({ code, at: Date.now() })));
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      const d = isBinary ? data : data.toString();
      if (d === '2') {
        this.pings++;
        if (pong) ws.send('3');
        return;
      }
      this.packets.push(d);
    });
  }
  next(pred, what) {
    return this.packets.next((d) => typeof d === 'string' && pred(d), what);
  }
  // connect joins namespace "/" and returns the session id. With recovery
  // on, the answer carries the session token as pid: the id, a dot and a
  // MAC (docs/history.md).
  async connect() {
    this.ws.send('40');
    const p = await this.next((d) => d.startsWith('40'), 'CONNECT answer');
    const ack = JSON.parse(p.slice(2));
    assert.deepEqual(Object.keys(ack).sort(), ['pid', 'sid'], `CONNECT answer ${p}`);
    assert.equal(typeof ack.sid, 'string', `CONNECT answer ${p}`);
    assert.ok(typeof ack.pid === 'string' && ack.pid.startsWith(`${ack.sid}.`) && ack.pid.length > ack.sid.length + 1,
      `pid of CONNECT answer ${p}`);
    return ack.sid;
  }
  // closedWithin resolves with the close code, or rejects after ms.
  closedWithin(ms) {
    return within(this.closed.then((c) => c.code), ms, 'the server to close the connection');
  }
  get isOpen() { return this.ws.readyState === WebSocket.OPEN; }
  close() { this.ws.terminate(); }
}

// sortedIDs returns the ids of a member list, sorted.
const sortedIDs = (members) => members.map((m) => m.id).sort();

test('socket.io-client: connect, nick, join, room messages and acks, lists', async (t) => {
  const s = scope(t);
  const gw = await s.gateway([]);
  const alice = s.client(await SIO.connect(gw));
  const bob = s.client(await SIO.connect(gw));
  const carol = s.client(await Native.connect(gw));

  assert.equal(typeof alice.id, 'string');
  assert.ok(alice.id.length > 0);
  assert.notEqual(alice.id, bob.id);
  assert.notEqual(alice.id, carol.id);

  assert.deepEqual(await alice.ack('nick', 'alice'), { ok: true, name: 'alice' });
  assert.deepEqual(await bob.ack('nick', 'bob'), { ok: true, name: 'bob' });
  await carol.request({ type: 'nick', name: 'carol' });

  // A join ack says where the room stands: its position, one epoch per
  // room, an offset that only grows.
  const at = withPosition(await alice.ack('join', 'lobby'), { room: 'lobby', count: 1 });
  const bt = withPosition(await bob.ack('join', 'lobby'), { room: 'lobby', count: 2 });
  const { type, id, ...ct } = await carol.request({ type: 'join', room: 'lobby' });
  assert.equal(type, 'ack');
  const cpos = withPosition(ct, { room: 'lobby', count: 3 }, 'native join ack');
  // Joining again changes nothing.
  const again = withPosition(await bob.ack('join', 'lobby'), { room: 'lobby', count: 3 });
  for (const p of [bt, cpos, again]) {
    assert.equal(p.epoch, at.epoch, 'one room, one epoch');
    assert.ok(p.offset >= at.offset, `join offsets go back: ${at.offset}, then ${p.offset}`);
  }

  // socket.id is the connection id native clients see: in member lists...
  const all = [alice.id, bob.id, carol.id].sort();
  const nativeList = await carol.request({ type: 'members', room: 'lobby' });
  assert.deepEqual(sortedIDs(nativeList.members), all);
  assert.deepEqual(nativeList.members.find((m) => m.id === alice.id), { id: alice.id, nick: 'alice' });
  const sioList = await bob.ack('members', 'lobby');
  assert.equal(sioList.room, 'lobby');
  assert.deepEqual(sioList.members, nativeList.members);

  // ...and as the sender of room messages. A room message reaches the
  // others, Socket.IO and native alike, with data intact; the sender gets
  // only the ack.
  const data = { text: 'hi all', n: [1, 2.5, -3], nested: { ok: true, nil: null }, emoji: '😀 <&>' };
  // Each member gets the message's offset, after every join's position.
  assert.deepEqual(await alice.ack('message', { room: 'lobby', data }), { ok: true });
  const { msg: atBob, offset } = roomMessage(await bob.nextArgs('message'));
  assert.deepEqual(Object.keys(atBob).sort(), ['data', 'from', 'nick', 'room', 'ts']);
  assert.equal(atBob.room, 'lobby');
  assert.equal(atBob.from, alice.id);
  assert.equal(atBob.nick, 'alice');
  assert.deepEqual(atBob.data, data);
  assert.equal(typeof atBob.ts, 'number');
  assert.ok(offset > again.offset, `message offset ${offset}, not after the joins' ${again.offset}`);
  const atCarol = await carol.next('message');
  assert.equal(atCarol.from, alice.id);
  assert.equal(atCarol.room, 'lobby');
  assert.deepEqual(atCarol.data, data);
  assert.equal(withOffset(atCarol).offset, offset, 'the same offset for native and Socket.IO members');

  // A native member's message reaches both Socket.IO clients. It is the
  // first message alice receives: her own never came back to her.
  assert.equal((await carol.request({ type: 'send', room: 'lobby', data: ['from', 'carol'] })).type, 'ack');
  for (const c of [alice, bob]) {
    const { msg: m, offset: next } = roomMessage(await c.nextArgs('message'));
    assert.equal(m.from, carol.id);
    assert.equal(m.nick, 'carol');
    assert.equal(m.room, 'lobby');
    assert.deepEqual(m.data, ['from', 'carol']);
    assert.ok(next > offset, `offsets increase: ${offset}, then ${next}`);
  }
  alice.events.none((e) => e.event === 'message', 'message at its sender');

  // Ack callbacks in the classic style, and an emit without any ack: it is
  // carried out, and nothing comes back.
  const pong = await new Promise((resolve, reject) => {
    alice.socket.timeout(WAIT).emit('ping', (err, res) => (err ? reject(err) : resolve(res)));
  });
  assert.deepEqual(pong, { ok: true });
  alice.socket.emit('message', { room: 'lobby', data: 'no ack wanted' });
  assert.equal((await bob.next('message')).data, 'no ack wanted');
  assert.equal((await carol.next('message')).data, 'no ack wanted');

  // Room list.
  await bob.ack('join', 'annex');
  assert.deepEqual(await alice.ack('rooms'), { rooms: [{ room: 'annex', count: 1 }, { room: 'lobby', count: 3 }] });

  // Leave: the count after leaving, and messages stop.
  assert.deepEqual(await bob.ack('leave', 'lobby'), { room: 'lobby', count: 2 });
  await alice.ack('message', { room: 'lobby', data: 'after bob left' });
  assert.equal((await carol.next('message')).data, 'after bob left');
  await carol.request({ type: 'send', room: 'annex', data: 'x' }).then((r) => assert.equal(r.code, 'not_member'));
  await alice.ack('join', 'annex');
  await alice.ack('message', { room: 'annex', data: 'annex only' });
  // bob's next message is the annex one: the lobby message skipped him.
  const { msg: next } = roomMessage(await bob.nextArgs('message'));
  assert.equal(next.room, 'annex');
  assert.equal(next.data, 'annex only');
});

test('socket.io-client: direct messages by socket id, both ways with native clients', async (t) => {
  const s = scope(t);
  const gw = await s.gateway([]);
  const alice = s.client(await SIO.connect(gw));
  const bob = s.client(await SIO.connect(gw));
  const carol = s.client(await Native.connect(gw));
  await alice.ack('nick', 'alice');

  // Socket.IO → Socket.IO, by socket.id; no room needed.
  // A direct message is not kept: no offset, in the object or after it.
  assert.deepEqual(await alice.ack('message', { to: bob.id, data: { secret: 42 } }), { ok: true });
  const dmArgs = await bob.nextArgs('message');
  assert.equal(dmArgs.length, 1, `direct message arguments ${JSON.stringify(dmArgs)}`);
  const [dm] = dmArgs;
  assert.deepEqual(Object.keys(dm).sort(), ['data', 'from', 'nick', 'ts']);
  assert.equal(dm.from, alice.id);
  assert.equal(dm.nick, 'alice');
  assert.deepEqual(dm.data, { secret: 42 });

  // Socket.IO → native: the native client sees the socket.id as "from",
  // and can answer to it.
  await alice.ack('message', { to: carol.id, data: 'hello carol' });
  const atCarol = await carol.next('message');
  assert.equal(atCarol.from, alice.id);
  assert.equal(atCarol.data, 'hello carol');
  assert.equal('room' in atCarol, false);
  assert.equal('offset' in atCarol, false);
  assert.equal((await carol.request({ type: 'send', to: atCarol.from, data: { re: 'hello alice' } })).type, 'ack');
  const back = await alice.next('message');
  assert.equal(back.from, carol.id);
  assert.deepEqual(back.data, { re: 'hello alice' });
  assert.equal('room' in back, false);

  // "to" wins over "room" when both are given.
  await alice.ack('message', { room: 'nowhere', to: bob.id, data: 2 });
  assert.equal((await bob.next('message')).data, 2);

  // To a socket that has gone.
  const gone = bob.id;
  const left = once(bob.socket, 'disconnect');
  bob.close();
  await left;
  for (let i = 0; ; i++) {
    const r = await alice.ack('message', { to: gone, data: 'late' });
    if (r.error) {
      assert.deepEqual(r, { error: { code: 'no_such_connection', message: 'no such connection' } });
      break;
    }
    // The gateway may not have seen bob's close yet.
    assert.ok(i < 50, 'the gone socket is still addressable');
    await sleep(20);
  }
});

test('socket.io-client: presence events', async (t) => {
  const s = scope(t);
  const gw = await s.gateway([]);
  const alice = s.client(await SIO.connect(gw));
  const bob = s.client(await SIO.connect(gw));
  const carol = s.client(await Native.connect(gw));
  await bob.ack('nick', 'bob');
  await carol.request({ type: 'nick', name: 'carol' });

  await alice.ack('join', 'p');
  await bob.ack('join', 'p');
  assert.deepEqual(await alice.next('presence'), { room: 'p', event: 'join', id: bob.id, nick: 'bob', count: 2 });

  await carol.request({ type: 'join', room: 'p' });
  for (const c of [alice, bob]) {
    assert.deepEqual(await c.next('presence'), { room: 'p', event: 'join', id: carol.id, nick: 'carol', count: 3 });
  }
  // Native members get presence for Socket.IO members, with socket.id.
  await alice.ack('leave', 'p');
  assert.deepEqual(await carol.next('presence'),
    { type: 'presence', room: 'p', event: 'leave', id: alice.id, nick: '', count: 2 });
  assert.deepEqual(await bob.next('presence'), { room: 'p', event: 'leave', id: alice.id, nick: '', count: 2 });

  // A disconnecting Socket.IO client leaves its rooms.
  const bobID = bob.id;
  bob.close();
  assert.deepEqual(await carol.next('presence'),
    { type: 'presence', room: 'p', event: 'leave', id: bobID, nick: 'bob', count: 1 });
  // The sender of a presence change never gets its own event.
  alice.events.none((e) => e.event === 'presence' && e.args[0].id === alice.id, 'own presence');
});

test('socket.io-client: errors come back through the ack, the connection stays', async (t) => {
  const s = scope(t);
  const gw = await s.gateway([]);
  const alice = s.client(await SIO.connect(gw));
  const cases = [
    [['leave', 'nowhere'], 'not_member', 'not a member of this room'],
    [['members', 'nowhere'], 'not_member', 'not a member of this room'],
    [['message', { room: 'nowhere', data: 1 }], 'not_member', 'not a member of this room'],
    [['dance'], 'unknown_type', 'unknown type'],
    [['dance', { room: 'lobby' }], 'unknown_type', 'unknown type'],
    [['message', { to: 'ghost', data: 1 }], 'no_such_connection', 'no such connection'],
    [['nick', ''], 'invalid_name', 'nickname must be 1 to 32 characters'],
    [['nick', 'x'.repeat(33)], 'invalid_name', 'nickname must be 1 to 32 characters'],
    [['join', ''], 'invalid_room', 'room name must be 1 to 128 bytes'],
    [['join', 'r'.repeat(129)], 'invalid_room', 'room name must be 1 to 128 bytes'],
    [['nick'], 'missing_field', 'missing "name"'],
    [['nick', 7], 'missing_field', 'missing "name"'],
    [['join', { room: 'lobby' }], 'missing_field', 'missing "room"'],
    [['message', 'just text'], 'missing_field', 'missing "room", "to" or "user"'],
    [['message', { data: 1 }], 'missing_field', 'missing "room", "to" or "user"'],
    [['message', { room: 5, data: 1 }], 'missing_field', 'missing "room"'],
    [['message', { room: 'lobby' }], 'missing_field', 'missing "data"'],
  ];
  for (const [args, code, message] of cases) {
    const res = await alice.ack(...args);
    assert.deepEqual(res, { error: { code, message } }, `emit ${JSON.stringify(args)}`);
  }
  // Limits are inclusive.
  assert.deepEqual(await alice.ack('nick', 'é'.repeat(32)), { ok: true, name: 'é'.repeat(32) });
  assert.equal((await alice.ack('join', 'r'.repeat(128))).count, 1);
  // An unknown event without an ack is dropped silently.
  alice.socket.emit('dance');
  assert.deepEqual(await alice.ack('ping'), { ok: true });
  assert.equal(alice.socket.connected, true);
});

test('socket.io-client: binary payloads reach Socket.IO clients intact and native clients as base64', async (t) => {
  const s = scope(t);
  const gw = await s.gateway([]);
  const alice = s.client(await SIO.connect(gw));
  const bob = s.client(await SIO.connect(gw));
  const carol = s.client(await Native.connect(gw));
  for (const c of [alice, bob]) await c.ack('join', 'bin');
  await carol.request({ type: 'join', room: 'bin' });

  const buf = Buffer.from([0, 1, 2, 253, 254, 255]);
  const u8 = Uint8Array.from([9, 8, 7]);
  const ab = Uint8Array.from([0xde, 0xad, 0xbe, 0xef]).buffer;
  // 40 KiB of deterministic noise: several TCP segments, every byte value.
  const big = Buffer.alloc(40 << 10);
  for (let i = 0, x = 1; i < big.length; i++) { x = (x * 1103515245 + 12345) >>> 0; big[i] = x >>> 24; }

  const data = { name: 'blob', buf, parts: [u8, ab, 'text between'], big, n: 1 };
  assert.deepEqual(await alice.ack('message', { room: 'bin', data }), { ok: true });

  const m = await bob.next('message');
  assert.equal(m.from, alice.id);
  assert.equal(m.room, 'bin');
  assert.equal(m.data.name, 'blob');
  assert.equal(m.data.n, 1);
  assert.ok(Buffer.isBuffer(m.data.buf), 'binary arrives as a Buffer');
  assert.deepEqual(Buffer.from(m.data.buf), buf);
  assert.deepEqual(Buffer.from(m.data.parts[0]), Buffer.from(u8));
  assert.deepEqual(Buffer.from(m.data.parts[1]), Buffer.from(ab));
  assert.equal(m.data.parts[2], 'text between');
  assert.ok(Buffer.from(m.data.big).equals(big), 'the 40 KiB attachment differs');

  const n = await carol.next('message');
  assert.equal(n.from, alice.id);
  assert.deepEqual(n.data.buf, { _binary: buf.toString('base64') });
  assert.deepEqual(n.data.parts, [
    { _binary: Buffer.from(u8).toString('base64') },
    { _binary: Buffer.from(ab).toString('base64') },
    'text between',
  ]);
  assert.deepEqual(n.data.big, { _binary: big.toString('base64') });
  assert.equal(n.data.name, 'blob');

  // data itself binary, as a direct message, to each kind of client.
  await alice.ack('message', { to: bob.id, data: Uint8Array.from([42]) });
  const dm = await bob.next('message');
  assert.deepEqual(Buffer.from(dm.data), Buffer.from([42]));
  assert.equal('room' in dm, false);
  await alice.ack('message', { to: carol.id, data: ab });
  assert.deepEqual((await carol.next('message')).data, { _binary: '3q2+7w==' });

  // An empty binary, and text messages after binary ones are unaffected.
  await alice.ack('message', { room: 'bin', data: [Buffer.alloc(0)] });
  assert.equal((await bob.next('message')).data[0].length, 0);
  assert.deepEqual((await carol.next('message')).data, [{ _binary: '' }]);
  await alice.ack('message', { room: 'bin', data: 'plain' });
  assert.equal((await bob.next('message')).data, 'plain');
});

// recoveries reads chatgate_recoveries_total from a gateway's admin
// listener: {kept, recovered, failed}.
async function recoveries(admin) {
  const text = await (await fetch(`http://${admin}/metrics`, { signal: AbortSignal.timeout(WAIT) })).text();
  const out = {};
  for (const m of text.matchAll(/^chatgate_recoveries_total\{outcome="(\w+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

// A restart of a gateway whose history is in memory loses the rooms, the
// log and the session records (docs/history.md, "Across restarts"):
// socket.io-client reconnects by itself and offers its pid and offset,
// and the new gateway refuses them, so the client is a new session. (A
// dropped transport on a running gateway is recovered instead: see
// recovery.test.mjs.)
test('socket.io-client: reconnects by itself after the gateway restarts', async (t) => {
  const s = scope(t);
  const gw = await s.gateway([]);
  const alice = s.client(await SIO.connect(gw, {
    reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0, timeout: 2000,
  }));
  const firstID = alice.id;
  assert.equal(alice.socket.recovered, false);
  const before = withPosition(await alice.ack('join', 'lobby'), { room: 'lobby', count: 1 });
  // A room message, so that alice has an offset to offer with her pid.
  const sender = s.client(await SIO.connect(gw));
  await sender.ack('join', 'lobby');
  assert.deepEqual(await sender.ack('message', { room: 'lobby', data: 'before the restart' }), { ok: true });
  assert.equal(roomMessage(await alice.nextArgs('message')).msg.data, 'before the restart');

  const dropped = once(alice.socket, 'disconnect');
  const reconnected = once(alice.socket, 'connect', 15000);
  reconnected.catch(() => {}); // awaited below, unless the restart fails
  await gw.stop();
  const [reason] = await dropped;
  assert.equal(reason, 'transport close');

  const admin = `127.0.0.1:${await freePort()}`;
  let gw2;
  try {
    gw2 = await s.gateway([`-admin-addr=${admin}`], gw.port);
  } catch (err) {
    if (/address already in use/.test(err.message)) {
      err.message = `port ${gw.port} could not be bound again right after the gateway was killed ` +
        `(the listener needs SO_REUSEADDR):\n${err.message}`;
    }
    throw err;
  }
  await reconnected;
  assert.equal(alice.socket.connected, true);
  assert.equal(alice.socket.recovered, false, 'a restarted in-memory gateway recovered the session');
  assert.notEqual(alice.id, firstID, 'a new gateway gives a new socket.id');
  // The new gateway was offered the old session and refused it.
  assert.deepEqual(await recoveries(admin), { kept: 0, recovered: 0, failed: 1 });

  // Rooms did not survive the restart, and the room's log started over
  // with a new epoch; the reconnected socket chats again.
  const bob = s.client(await SIO.connect(gw2));
  const carol = s.client(await Native.connect(gw2));
  const after = withPosition(await alice.ack('join', 'lobby'), { room: 'lobby', count: 1 });
  assert.notEqual(after.epoch, before.epoch, 'the epoch of a room in a restarted in-memory log');
  await bob.ack('join', 'lobby');
  await carol.request({ type: 'join', room: 'lobby' });
  await bob.ack('message', { room: 'lobby', data: 'welcome back' });
  const m = await alice.next('message', (x) => x.data === 'welcome back');
  assert.equal(m.from, bob.id);
  await alice.ack('message', { room: 'lobby', data: 'thanks' });
  const atCarol = await carol.next('message', (x) => x.data === 'thanks');
  assert.equal(atCarol.from, alice.id);
  alice.events.none((e) => e.event === 'message' && e.args[0].data === 'before the restart', 'a message from before the restart');
});

test('socket.io-client: an unknown namespace is refused, "/" on the same connection works', async (t) => {
  const s = scope(t);
  const gw = await s.gateway([]);

  const nope = io(`http://${gw.addr}/nope`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT });
  s.client(nope);
  const [err] = await once(nope, 'connect_error');
  assert.equal(err.message, 'Invalid namespace');
  assert.equal(nope.connected, false);

  // Namespaces share one Engine.IO connection through a Manager.
  const manager = new Manager(`http://${gw.addr}`, { transports: ['websocket'], reconnection: false, timeout: WAIT });
  const root = new SIO(manager.socket('/'));
  const custom = manager.socket('/custom'); // served only in conformance mode
  s.client(root);
  s.client(custom);
  const [[cerr]] = await Promise.all([once(custom, 'connect_error'), once(root.socket, 'connect')]);
  assert.equal(cerr.message, 'Invalid namespace');
  withPosition(await root.ack('join', 'still-here'), { room: 'still-here', count: 1 });
});

test('raw Engine.IO: malformed packets close the connection, others are unaffected', async (t) => {
  const s = scope(t);
  const gw = await s.gateway([]);
  const bystander = s.client(await SIO.connect(gw));
  const bad = [
    '4abc', // unknown Socket.IO packet type
    '42{}', // EVENT payload not an array
    '42abc["x"]', // ack id not a number
    '42["x"', // not JSON
    '9', // unknown Engine.IO packet type
    '', // empty
  ];
  for (const packet of bad) {
    const raw = s.client(await RawEIO.open(gw));
    const sid = await raw.connect();
    assert.equal(typeof sid, 'string');
    raw.ws.send(packet);
    assert.equal(await raw.closedWithin(WAIT), 1008, `after ${JSON.stringify(packet)}`);
  }
  // A binary message nobody announced.
  const raw = s.client(await RawEIO.open(gw));
  await raw.connect();
  raw.ws.send(Buffer.from([1, 2, 3]));
  assert.equal(await raw.closedWithin(WAIT), 1008, 'after an unannounced binary message');

  assert.deepEqual(await bystander.ack('ping'), { ok: true });
});

test('HTTP 400 with a JSON body for a missing or invalid EIO or transport', async (t) => {
  const s = scope(t);
  const gw = await s.gateway([]);
  const cases = [
    ['/socket.io/?transport=websocket', { code: 5, message: 'Unsupported protocol version' }],
    ['/socket.io/?EIO=3&transport=websocket', { code: 5, message: 'Unsupported protocol version' }],
    ['/socket.io/?EIO=abc&transport=websocket', { code: 5, message: 'Unsupported protocol version' }],
    ['/socket.io/?EIO=4&transport=abc', { code: 0, message: 'Transport unknown' }],
    ['/socket.io/?EIO=4', { code: 0, message: 'Transport unknown' }],
  ];
  for (const [path, body] of cases) {
    const res = await fetch(`http://${gw.addr}${path}`, { signal: AbortSignal.timeout(WAIT) });
    assert.equal(res.status, 400, path);
    assert.match(res.headers.get('content-type'), /^application\/json/, path);
    assert.deepEqual(await res.json(), body, path);
  }
  // The same refusal for a WebSocket upgrade.
  const ws = new WebSocket(`ws://${gw.addr}/socket.io/?EIO=3&transport=websocket`);
  const [, res] = await once(ws, 'unexpected-response');
  assert.equal(res.statusCode, 400);
  ws.on('error', () => {});
  ws.terminate();
});

test('heartbeat: answered pings keep a connection, an unanswered one is closed', async (t) => {
  const s = scope(t);
  const interval = 300;
  const timeout = 200;
  const gw = await s.gateway(['-sio-ping-interval', `${interval}ms`, '-sio-ping-timeout', `${timeout}ms`]);
  const live = s.client(await RawEIO.open(gw, { pong: true }));
  const mute = s.client(await RawEIO.open(gw, { pong: false }));
  assert.equal(live.handshake.pingInterval, interval);
  assert.equal(live.handshake.pingTimeout, timeout);
  assert.deepEqual(live.handshake.upgrades, []);
  await live.connect();
  await mute.connect();

  // The mute client is pinged, then closed once the pong is overdue.
  const code = await mute.closedWithin(interval + timeout + 1500);
  const after = (await mute.closed).at - mute.openedAt;
  assert.ok(mute.pings >= 1, 'the mute client was never pinged');
  assert.equal(code, 1001);
  assert.ok(after >= interval, `closed after ${after} ms, before the first ping was due`);

  // The live client answers: it is still there after several intervals,
  // and still served.
  const deadline = Date.now() + 10 * interval;
  while (live.pings < 4 && Date.now() < deadline) await sleep(25);
  assert.ok(live.pings >= 4, `only ${live.pings} pings in ${10 * interval} ms`);
  assert.equal(live.isOpen, true);
  live.ws.send('421["ping"]');
  assert.equal(await live.next((d) => d.startsWith('43'), 'ping ack'), '431[{"ok":true}]');
});

test('connect timeout: a client that never sends CONNECT is closed', async (t) => {
  const s = scope(t);
  const gw = await s.gateway(['-sio-connect-timeout', '500ms']);
  const idle = s.client(await RawEIO.open(gw));
  const ready = s.client(await RawEIO.open(gw));
  await ready.connect();

  assert.equal(await idle.closedWithin(3000), 1008);
  const after = (await idle.closed).at - idle.openedAt;
  assert.ok(after >= 300, `closed after ${after} ms, before the timeout`);

  // The connected one is not affected, also well past the timeout.
  await sleep(700);
  assert.equal(ready.isOpen, true);
  ready.ws.send('427["ping"]');
  assert.equal(await ready.next((d) => d.startsWith('43'), 'ping ack'), '437[{"ok":true}]');
});
