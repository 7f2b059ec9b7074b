// Engine.IO HTTP long-polling on /socket.io/, and its upgrade to WebSocket,
// driven by the real socket.io-client next to native /ws clients (the `ws`
// package), against the real gateway binary:
//
//   - a client limited to polling is a full chat member;
//   - a default client starts on polling and upgrades, and messages in both
//     directions cross the upgrade once each, in order;
//   - a client behind a proxy that refuses WebSocket upgrades stays on
//     polling and still chats.
//
// Join acks carry the room's position, and room messages their offset,
// also as the event's last argument (docs/history.md), on either transport.
//
// The raw protocol rules (status codes, keep-alive, CORS, heartbeat, one GET
// at a time, maxPayload) are checked byte by byte in
// tests/e2e/polling_test.go.
//
// Every wait has a timeout and every test closes what it opened in
// t.after, so the file never hangs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket from 'ws';
import { io, NodeXHR, NodeWebSocket } from 'socket.io-client';
import { startGateway } from './gateway.mjs';
import { WAIT, within, Queue } from './wait.mjs';
import { Native } from './native.mjs';
import { withPosition, roomMessage } from './position.mjs';

// Upgrade tests run the gateway with the default 25 s Engine.IO ping
// interval, so a client that stalls while upgrading (waiting for a GET the
// gateway holds; see TestPollingGETAfterProbe in tests/e2e/polling_test.go)
// fails its bounded wait instead of being rescued by a ping.
const UPGRADE_ARGS = ['-loops', '2'];

const tick = () => new Promise((resolve) => setImmediate(resolve));

// SIO is a socket.io-client socket whose chat events are kept in an inbox
// (as { name, arg, more }: the first argument and the others) and whose
// Engine.IO transport changes are recorded.
class SIO {
  // connect opens a socket to url and resolves once it is connected.
  static async connect(t, url, opts = {}) {
    const socket = io(url, { forceNew: true, reconnection: false, timeout: WAIT, ...opts });
    const s = new SIO(socket);
    t.after(() => socket.close());
    await within(new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    }), WAIT, 'socket.io connect');
    return s;
  }

  constructor(socket) {
    this.socket = socket;
    this.inbox = new Queue();
    this.events = []; // Engine.IO transport events, in order
    this.upgraded = new Promise((resolve) => { this.onUpgrade = resolve; });
    this.upgradeFailed = new Promise((resolve) => { this.onUpgradeError = resolve; });
    socket.on('message', (arg, ...more) => this.inbox.push({ name: 'message', arg, more }));
    socket.on('presence', (arg, ...more) => this.inbox.push({ name: 'presence', arg, more }));
    // The manager creates the engine and emits 'open' before the engine
    // starts probing, so these listeners see the whole upgrade.
    socket.io.on('open', () => {
      const engine = socket.io.engine;
      this.events.push(`open:${engine.transport.name}`);
      engine.on('upgrading', (tr) => this.events.push(`upgrading:${tr.name}`));
      engine.on('upgrade', (tr) => {
        this.events.push(`upgrade:${tr.name}`);
        this.onUpgrade(tr.name);
      });
      engine.on('upgradeError', (err) => {
        this.events.push(`upgradeError:${err.message}`);
        this.onUpgradeError(err);
      });
    });
  }

  get id() { return this.socket.id; }
  get transport() { return this.socket.io.engine.transport.name; }

  // ack emits an event and resolves with its acknowledgement.
  ack(...args) { return this.socket.timeout(WAIT).emitWithAck(...args); }

  // message resolves with the first "message" that match accepts. A room
  // message has its offset as the last argument, equal to the message's
  // own; a direct message has neither.
  async message(match, what) {
    const m = await this.inbox.next((m) => m.name === 'message' && match(m.arg), what);
    if (m.arg.room !== undefined) {
      roomMessage([m.arg, ...m.more], what);
    } else {
      assert.deepEqual(m.more, [], `${what}: arguments after a direct message`);
      assert.equal('offset' in m.arg, false, `${what}: a direct message has no offset`);
    }
    return m.arg;
  }

  async presence(event, id) {
    const m = await this.inbox.next((m) => m.name === 'presence' && m.arg.event === event && m.arg.id === id,
      `presence ${event} of ${id}`);
    assert.deepEqual(m.more, [], 'presence has one argument and no offset');
    return m.arg;
  }
}

// gatedWebSocket returns a WebSocket transport for socket.io-client that
// opens only once gate resolves, so a test can start the upgrade in the
// middle of its traffic. Everything else is the client's own transport.
function gatedWebSocket(gate) {
  return class GatedWebSocket extends NodeWebSocket {
    doOpen() {
      gate.then(() => {
        if (this.readyState === 'opening') super.doOpen();
      });
    }
  };
}

function gate() {
  const g = {};
  g.promise = new Promise((resolve) => {
    g.open = () => { g.openedAt ??= performance.now(); resolve(); };
  });
  return g;
}

async function gateway(t, args) {
  const gw = await startGateway(args);
  t.after(() => gw.stop());
  return gw;
}

// assertSequence checks that got is 0..n-1, each once, in order.
function assertSequence(got, n, who) {
  assert.equal(got.length, n, `${who} got ${got.length} of ${n} messages`);
  for (let i = 0; i < n; i++) {
    if (got[i] !== i) assert.fail(`${who}: message ${i} is ${got[i]} (lost, repeated or reordered)`);
  }
}

test('polling only: a full chat member next to native and polling peers', async (t) => {
  const gw = await gateway(t, ['-loops', '2']);
  const url = `http://${gw.addr}`;
  const nat = await Native.connect(t, gw.addr);
  await nat.request({ type: 'nick', name: 'nat' });
  await nat.request({ type: 'join', room: 'lobby' });

  const alice = await SIO.connect(t, url, { transports: ['polling'] });
  const bob = await SIO.connect(t, url, { transports: ['polling'] });
  assert.equal(alice.transport, 'polling');
  assert.ok(alice.id && bob.id && alice.id !== bob.id, `socket ids ${alice.id} ${bob.id}`);

  assert.deepEqual(await alice.ack('nick', 'alice'), { ok: true, name: 'alice' });
  assert.deepEqual(await bob.ack('nick', 'bob'), { ok: true, name: 'bob' });
  const at = withPosition(await alice.ack('join', 'lobby'), { room: 'lobby', count: 2 });
  const pn = await nat.presence('join', alice.id);
  assert.equal(pn.nick, 'alice');
  const bt = withPosition(await bob.ack('join', 'lobby'), { room: 'lobby', count: 3 });
  assert.equal(bt.epoch, at.epoch, 'one room, one epoch');
  assert.deepEqual(await alice.presence('join', bob.id), { room: 'lobby', event: 'join', id: bob.id, nick: 'bob', count: 3 });

  // Native → both polling members.
  nat.send({ type: 'send', room: 'lobby', data: { n: [1, 2.5, 'é'], s: '\u2028<&>' } });
  const offsets = [];
  for (const s of [alice, bob]) {
    const m = await s.message((m) => m.from === nat.id, 'message from native');
    assert.equal(m.room, 'lobby');
    assert.equal(m.nick, 'nat');
    assert.deepEqual(m.data, { n: [1, 2.5, 'é'], s: '\u2028<&>' });
    assert.equal(typeof m.ts, 'number');
    offsets.push(m.offset);
  }
  assert.equal(offsets[0], offsets[1], 'one message, one offset for every member');
  assert.ok(offsets[0] > bt.offset, `the message's offset ${offsets[0]} is not after bob's join at ${bt.offset}`);

  // Polling → the others, acknowledged; the sender gets no copy.
  assert.deepEqual(await alice.ack('message', { room: 'lobby', data: 'hi all' }), { ok: true });
  assert.equal((await nat.message((m) => m.from === alice.id, 'native: alice')).data, 'hi all');
  assert.equal((await bob.message((m) => m.from === alice.id, 'bob: alice')).data, 'hi all');

  // Direct messages both ways, and an error acknowledgement.
  nat.send({ type: 'send', to: bob.id, data: 'psst' });
  const dm = await bob.message((m) => m.from === nat.id && m.data === 'psst', 'DM');
  assert.equal(dm.room, undefined);
  assert.deepEqual(await bob.ack('message', { to: nat.id, data: { re: 'psst' } }), { ok: true });
  const back = await nat.message((m) => m.from === bob.id, 'DM back');
  assert.equal(back.room, undefined);
  assert.deepEqual(back.data, { re: 'psst' });
  const err = await bob.ack('message', { room: 'nowhere', data: 1 });
  assert.equal(err.error?.code, 'not_member');

  // Rooms and members.
  assert.deepEqual(await alice.ack('rooms'), { rooms: [{ room: 'lobby', count: 3 }] });
  const members = await alice.ack('members', 'lobby');
  assert.deepEqual(members.members.map((m) => m.id).sort(), [nat.id, alice.id, bob.id].sort());

  // Binary: Buffers travel as base64 records in polling payloads and come
  // out intact; the native client gets them inline.
  const blob = Buffer.alloc(5000);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 7 + 3) & 0xff;
  const tiny = Buffer.from([0, 0xff, 0x1e, 0x0a]);
  assert.deepEqual(await alice.ack('message', { room: 'lobby', data: { blob, list: [tiny, 'x'] } }), { ok: true });
  const bm = await bob.message((m) => m.from === alice.id && m.data?.blob, 'binary message');
  assert.ok(Buffer.isBuffer(bm.data.blob), 'blob is a Buffer');
  assert.ok(bm.data.blob.equals(blob), 'blob intact');
  assert.ok(Buffer.from(bm.data.list[0]).equals(tiny), 'tiny intact');
  assert.equal(bm.data.list[1], 'x');
  const nb = await nat.message((m) => m.from === alice.id && m.data?.blob, 'native binary');
  assert.equal(nb.data.blob._binary, blob.toString('base64'));
  assert.equal(nb.data.list[0]._binary, tiny.toString('base64'));

  alice.inbox.none((m) => m.name === 'message' && m.arg.from === alice.id, 'own message echoed to alice');
  assert.equal(alice.transport, 'polling');
  assert.equal(bob.transport, 'polling');
  assert.deepEqual(alice.events, ['open:polling']);

  // Disconnecting sends presence to the room.
  const bobID = bob.id; // socket.id is unset once disconnected
  bob.socket.disconnect();
  assert.deepEqual(await alice.presence('leave', bobID), { room: 'lobby', event: 'leave', id: bobID, nick: 'bob', count: 2 });
  await nat.presence('leave', bobID);
});

test('default transports: starts on polling and upgrades to WebSocket', async (t) => {
  const gw = await gateway(t, UPGRADE_ARGS);
  const nat = await Native.connect(t, gw.addr);
  await nat.request({ type: 'join', room: 'seq' });

  // Several clients, one after the other: the moment a GET reaches the
  // gateway relative to the probe varies, and each must upgrade promptly.
  let s;
  for (let i = 0; i < 20; i++) {
    s?.socket.close();
    s = await SIO.connect(t, `http://${gw.addr}`);
    assert.equal(await within(s.upgraded, 1000, `upgrade of client ${i}`), 'websocket');
    assert.equal(s.transport, 'websocket');
    assert.deepEqual(s.events, ['open:polling', 'upgrading:websocket', 'upgrade:websocket']);
  }

  // Native messages sent as soon as the client is in the room.
  assert.equal((await s.ack('join', 'seq')).count, 2);
  const n = 200;
  for (let i = 0; i < n; i++) nat.send({ type: 'send', room: 'seq', data: i });
  const got = [];
  for (let i = 0; i < n; i++) got.push((await s.message((m) => m.from === nat.id, `message ${i}`)).data);
  assertSequence(got, n, 'socket.io client');
  assert.deepEqual(await s.ack('ping'), { ok: true });
});

// The upgrade starts after the client has been receiving for a while, and
// the native client keeps sending, one message per event-loop turn, until
// well after it: messages go out on GETs, wait in the session during the
// switch, and go out on the WebSocket.
test('upgrade under traffic: gateway → client messages arrive once, in order', async (t) => {
  const gw = await gateway(t, UPGRADE_ARGS);
  const nat = await Native.connect(t, gw.addr);
  await nat.request({ type: 'join', room: 'seq' });
  const g = gate();
  const s = await SIO.connect(t, `http://${gw.addr}`, { transports: [NodeXHR, gatedWebSocket(g.promise)] });
  assert.equal(s.transport, 'polling');
  assert.equal((await s.ack('join', 'seq')).count, 2);

  const got = [];
  const onTransport = { polling: 0, websocket: 0 };
  s.socket.on('message', (m) => {
    if (m.from !== nat.id) return;
    got.push(m.data);
    onTransport[s.transport]++;
  });
  let upgraded = false;
  let upgradeMs;
  s.upgraded.then(() => { upgraded = true; upgradeMs = Math.round(performance.now() - g.openedAt); });

  const phase = { before: 0, during: 0, after: 0 };
  let sent = 0;
  let afterUpgrade = 0;
  const deadline = Date.now() + 10000;
  while (sent < 200 || afterUpgrade < 50) {
    if (Date.now() > deadline) assert.fail(`no upgrade after ${sent} messages: ${s.events}`);
    if (sent === 50) {
      // The messages so far must have started arriving over polling before
      // the upgrade may begin, or they all move to the WebSocket with the
      // outbox and the test no longer crosses the switch.
      await within((async () => { while (onTransport.polling === 0) await new Promise((r) => setTimeout(r, 5)); })(), WAIT, 'a message over polling before the upgrade');
      g.open();
    }
    nat.send({ type: 'send', room: 'seq', data: sent++ });
    if (upgraded) { phase.after++; afterUpgrade++; } else if (sent > 50) phase.during++; else phase.before++;
    await tick();
  }
  await within((async () => { while (got.length < sent) await new Promise((r) => setTimeout(r, 5)); })(), WAIT, `all ${sent} messages`);
  await new Promise((r) => setTimeout(r, 50)); // anything repeated shows up
  t.diagnostic(`sent ${JSON.stringify(phase)}; received ${JSON.stringify(onTransport)}; upgrade took ${upgradeMs} ms`);
  assertSequence(got, sent, 'socket.io client');
  assert.equal(s.transport, 'websocket');
  assert.ok(phase.during > 0, 'no message was sent during the upgrade');
  assert.ok(onTransport.polling > 0 && onTransport.websocket > 0, `received ${JSON.stringify(onTransport)}`);
});

test('upgrade under traffic: client → gateway messages arrive once, in order', async (t) => {
  const gw = await gateway(t, UPGRADE_ARGS);
  const nat = await Native.connect(t, gw.addr);
  await nat.request({ type: 'join', room: 'seq' });
  const g = gate();
  const s = await SIO.connect(t, `http://${gw.addr}`, { transports: [NodeXHR, gatedWebSocket(g.promise)] });
  assert.equal((await s.ack('join', 'seq')).count, 2);
  await nat.presence('join', s.id);

  const got = [];
  nat.ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    if (m.type === 'message' && m.from === s.id) got.push(m.data);
  });
  let upgraded = false;
  let upgradeMs;
  s.upgraded.then(() => { upgraded = true; upgradeMs = Math.round(performance.now() - g.openedAt); });
  const acks = new Map();
  const phase = { before: 0, during: 0, after: 0 };
  let sent = 0;
  let afterUpgrade = 0;
  const deadline = Date.now() + 10000;
  while (sent < 200 || afterUpgrade < 50) {
    if (Date.now() > deadline) assert.fail(`no upgrade after ${sent} messages: ${s.events}`);
    if (sent === 50) g.open();
    const i = sent++;
    s.socket.emit('message', { room: 'seq', data: i }, (a) => acks.set(i, (acks.get(i) ?? 0) + (a?.ok ? 1 : 100)));
    if (upgraded) { phase.after++; afterUpgrade++; } else if (sent > 50) phase.during++; else phase.before++;
    await tick();
  }
  await within((async () => {
    while (got.length < sent || acks.size < sent) await new Promise((r) => setTimeout(r, 5));
  })(), WAIT, `all ${sent} messages and acks`);
  await new Promise((r) => setTimeout(r, 50));
  t.diagnostic(`sent ${JSON.stringify(phase)}; upgrade took ${upgradeMs} ms`);
  assertSequence(got, sent, 'native client');
  for (const [i, count] of acks) assert.equal(count, 1, `ack of message ${i}`);
  assert.ok(phase.during > 0, 'no message was sent during the upgrade');
  assert.equal(s.transport, 'websocket');
});

// startRefusingProxy forwards plain HTTP requests to addr, keeping its
// upstream connections alive, and answers every WebSocket upgrade with 403.
async function startRefusingProxy(t, addr) {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  const agent = new http.Agent({ keepAlive: true });
  const stats = { requests: 0, refused: 0 };
  const server = http.createServer((req, res) => {
    stats.requests++;
    const up = http.request({ host, port, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, socket) => {
    stats.refused++;
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
    agent.destroy();
  });
  return { url: `http://127.0.0.1:${server.address().port}`, stats };
}

test('behind a proxy that refuses WebSocket: stays on polling and chats', async (t) => {
  const gw = await gateway(t, ['-loops', '2']);
  const proxy = await startRefusingProxy(t, gw.addr);
  const nat = await Native.connect(t, gw.addr);
  await nat.request({ type: 'join', room: 'behind' });

  const s = await SIO.connect(t, proxy.url); // default transports: polling, then a probe
  await within(s.upgradeFailed, WAIT, 'upgradeError');
  assert.equal(s.transport, 'polling');
  assert.ok(proxy.stats.refused >= 1, 'the probe did not go through the proxy');

  assert.deepEqual(await s.ack('nick', 'proxied'), { ok: true, name: 'proxied' });
  withPosition(await s.ack('join', 'behind'), { room: 'behind', count: 2 });
  assert.equal((await nat.presence('join', s.id)).nick, 'proxied');
  for (let i = 0; i < 20; i++) nat.send({ type: 'send', room: 'behind', data: i });
  const got = [];
  for (let i = 0; i < 20; i++) got.push((await s.message((m) => m.from === nat.id, `message ${i}`)).data);
  assertSequence(got, 20, 'proxied client');
  assert.deepEqual(await s.ack('message', { room: 'behind', data: { via: 'proxy', b: Buffer.from('ok') } }), { ok: true });
  const m = await nat.message((m) => m.from === s.id, 'message from the proxied client');
  assert.deepEqual(m.data, { via: 'proxy', b: { _binary: Buffer.from('ok').toString('base64') } });
  nat.send({ type: 'send', to: s.id, data: 'direct' });
  await s.message((m) => m.data === 'direct' && m.room === undefined, 'DM through the proxy');
  assert.equal(s.transport, 'polling');
  assert.ok(proxy.stats.requests > 5, `only ${proxy.stats.requests} requests went through the proxy`);
});
