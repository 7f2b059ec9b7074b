// The native protocol driven by the Node `ws` package, an implementation
// independent of the server's gobwas/ws and of the Go tests' gorilla.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startGateway } from './gateway.mjs';

// Client wraps a ws socket with a message queue and request/ack helpers.
class Client {
  static async connect(addr) {
    const c = new Client(new WebSocket(`ws://${addr}/ws`));
    await new Promise((resolve, reject) => { c.ws.once('open', resolve); c.ws.once('error', reject); });
    const w = await c.next();
    assert.equal(w.type, 'welcome');
    c.id = w.id;
    return c;
  }
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.seq = 0;
    ws.on('message', (data, isBinary) => {
      assert.equal(isBinary, false);
      const m = JSON.parse(data.toString());
      m.__raw = data.toString();
      const w = this.waiters.shift();
      if (w) w(m); else this.queue.push(m);
    });
  }
  next(timeout = 5000) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting for a message')), timeout);
      this.waiters.push((m) => { clearTimeout(t); resolve(m); });
    });
  }
  async nextOf(type) {
    for (let i = 0; i < 100; i++) {
      const m = await this.next();
      if (m.type === type) return m;
    }
    throw new Error(`no ${type}`);
  }
  async request(obj) {
    const id = ++this.seq;
    this.ws.send(JSON.stringify({ ...obj, id }));
    for (let i = 0; i < 100; i++) {
      const m = await this.next();
      if (m.id === id && (m.type === 'ack' || m.type === 'error')) return m;
    }
    throw new Error('no reply');
  }
  close() { this.ws.close(); }
}

test('native protocol over the Node ws client', async (t) => {
  const gw = await startGateway(['-loops', '2']);
  t.after(() => gw.stop());
  const alice = await Client.connect(gw.addr);
  const bob = await Client.connect(gw.addr);
  t.after(() => { alice.close(); bob.close(); });
  assert.notEqual(alice.id, bob.id);

  assert.deepEqual((await alice.request({ type: 'nick', name: 'alice' })).type, 'ack');
  await bob.request({ type: 'nick', name: 'bob' });
  const j1 = await alice.request({ type: 'join', room: 'lobby' });
  assert.equal(j1.count, 1);
  const j2 = await bob.request({ type: 'join', room: 'lobby' });
  assert.equal(j2.count, 2);
  const p = await alice.nextOf('presence');
  assert.equal(p.event, 'join');
  assert.equal(p.id, bob.id);

  // Room message: others get it with data byte for byte; the sender gets an ack only.
  const data = '{"emoji":"\\ud83d\\ude00","list":[1,2,3],"f":1.50}';
  alice.ws.send(`{"type":"send","room":"lobby","id":"m1","data":${data}}`);
  const ack = await alice.next();
  assert.equal(ack.type, 'ack');
  assert.equal(ack.id, 'm1');
  const msg = await bob.nextOf('message');
  assert.ok(msg.__raw.includes(`"data":${data}`), msg.__raw);
  assert.equal(msg.from, alice.id);
  assert.equal(msg.nick, 'alice');
  assert.equal(msg.room, 'lobby');
  assert.equal(typeof msg.ts, 'number');

  // Direct message by connection id.
  await bob.request({ type: 'send', to: alice.id, data: { hi: true } });
  const dm = await alice.nextOf('message');
  assert.equal(dm.from, bob.id);
  assert.deepEqual(dm.data, { hi: true });
  assert.equal('room' in dm, false);

  // Lists.
  const rooms = await bob.request({ type: 'rooms' });
  assert.deepEqual(rooms.rooms, [{ room: 'lobby', count: 2 }]);
  const members = await bob.request({ type: 'members', room: 'lobby' });
  assert.deepEqual(members.members.map((m) => m.nick).sort(), ['alice', 'bob']);

  // Errors leave the connection open.
  alice.ws.send('not json');
  assert.equal((await alice.next()).code, 'bad_json');
  assert.equal((await alice.request({ type: 'send', to: 'ghost', data: 1 })).code, 'no_such_connection');
  assert.equal((await alice.request({ type: 'bogus' })).code, 'unknown_type');
  alice.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  assert.equal((await alice.next()).code, 'unsupported');

  // Leave and disconnect presence.
  const left = await bob.request({ type: 'leave', room: 'lobby' });
  assert.equal(left.count, 1);
  const pl = await alice.nextOf('presence');
  assert.equal(pl.event, 'leave');
  assert.equal(pl.count, 1);
});

test('oversize message closes with 1009, others keep chatting', async (t) => {
  const gw = await startGateway(['-max-message', '512', '-presence=false']);
  t.after(() => gw.stop());
  const a = await Client.connect(gw.addr);
  const b = await Client.connect(gw.addr);
  const bad = await Client.connect(gw.addr);
  t.after(() => { a.close(); b.close(); });
  for (const c of [a, b, bad]) await c.request({ type: 'join', room: 'r' });
  const closed = new Promise((resolve) => bad.ws.once('close', (code) => resolve(code)));
  bad.ws.send(JSON.stringify({ type: 'send', room: 'r', data: 'x'.repeat(1000) }));
  assert.equal(await closed, 1009);
  await a.request({ type: 'send', room: 'r', data: 'fine' });
  assert.equal((await b.nextOf('message')).data, 'fine');
});

test('SIGTERM drains with close 1012 and a reconnect hint', async (t) => {
  const gw = await startGateway(['-drain-timeout', '3s', '-drain-spread', '2500ms']);
  t.after(() => gw.stop());
  const c = await Client.connect(gw.addr);
  const closed = new Promise((resolve) => c.ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  gw.proc.kill('SIGTERM');
  const close = await closed;
  assert.equal(close.code, 1012);
  assert.equal(close.reason.match(/(?:^|[; ])reconnect=(\d+)/)?.[1], '2500', `reason ${close.reason}`);
  const { code } = await gw.exited;
  assert.equal(code, 0);
});
