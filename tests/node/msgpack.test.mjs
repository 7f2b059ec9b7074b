// Socket.IO clients with the msgpack parser (socket.io-msgpack-parser, on
// socket.io-client), chosen per connection: on the same gateway a msgpack
// client, a JSON client (the default parser) and a native `ws` client
// chat in one room, each way, Buffers included, over WebSocket and
// long-polling. A raw WebSocket that sends malformed msgpack is closed
// with 1008 while the others go on, and what the server API starts
// reaches a msgpack client in msgpack (docs/socketio.md, "Parsers").
//
// Every wait has a timeout; every test closes its sockets and stops its
// gateway in t.after.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import { startGateway, gatewayBinary, freePort } from './gateway.mjs';
import { WAIT, within, Queue } from './wait.mjs';

before(() => { gatewayBinary(); });

// sio connects a socket.io-client socket to "/" and records its events.
async function sio(t, gw, opts = {}) {
  const socket = io(`http://${gw.addr}`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT, ...opts });
  t.after(() => socket.close());
  const inbox = new Queue();
  socket.onAny((event, ...args) => inbox.push({ event, args }));
  await within(new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  }), WAIT, 'socket.io connect');
  return {
    socket, id: socket.id,
    ack: (event, ...args) => socket.timeout(WAIT).emitWithAck(event, ...args),
    next: async (event, pred = () => true) =>
      (await inbox.next((e) => e.event === event && pred(e.args[0]), `socket.io "${event}"`)).args[0],
  };
}

// native connects a native client on /ws.
async function native(t, gw) {
  const ws = new WebSocket(`ws://${gw.addr}/ws`);
  t.after(() => ws.close());
  const inbox = new Queue();
  ws.on('message', (data, isBinary) => {
    assert.equal(isBinary, false, 'native clients get text frames only');
    inbox.push(JSON.parse(data.toString()));
  });
  ws.on('error', () => {});
  const welcome = await inbox.next((m) => m.type === 'welcome', 'welcome');
  let seq = 0;
  return {
    id: welcome.id, ws,
    next: (type, pred = () => true) => inbox.next((m) => m.type === type && pred(m), `native "${type}"`),
    request(obj) {
      const id = ++seq;
      ws.send(JSON.stringify({ ...obj, id }));
      return inbox.next((m) => m.id === id && (m.type === 'ack' || m.type === 'error'), `reply to ${obj.type}`);
    },
  };
}

async function gateway(t, args = []) {
  const gw = await startGateway(['-loops', '2', ...args]);
  t.after(() => gw.stop());
  return gw;
}

for (const transports of [['websocket'], ['polling'], ['polling', 'websocket']]) {
  test(`msgpack (${transports}), JSON and native clients chat in one room`, async (t) => {
    const gw = await gateway(t);
    const mp = await sio(t, gw, { parser: msgpackParser, transports });
    const js = await sio(t, gw);
    const nat = await native(t, gw);

    assert.equal((await mp.ack('join', 'lobby')).count, 1);
    assert.equal((await js.ack('join', 'lobby')).count, 2);
    assert.equal((await mp.next('presence', (p) => p.id === js.id)).event, 'join');
    assert.equal((await nat.request({ type: 'join', room: 'lobby' })).type, 'ack');
    await mp.next('presence', (p) => p.id === nat.id);

    // msgpack -> JSON (a Buffer as an attachment) and native (inlined).
    const bytes = Buffer.from([0, 1, 2, 254, 255]);
    assert.deepEqual(await mp.ack('message', { room: 'lobby', data: { text: 'hé', n: 1.5, bytes, list: [1, null, true] } }), { ok: true });
    const toJSON = await js.next('message', (m) => m.from === mp.id);
    assert.equal(toJSON.room, 'lobby');
    assert.deepEqual({ ...toJSON.data, bytes: undefined }, { text: 'hé', n: 1.5, bytes: undefined, list: [1, null, true] });
    assert.ok(Buffer.from(toJSON.data.bytes).equals(bytes), 'the Buffer reaches the JSON client byte for byte');
    const toNative = await nat.next('message', (m) => m.from === mp.id);
    assert.deepEqual(toNative.data, { text: 'hé', n: 1.5, bytes: { _binary: bytes.toString('base64') }, list: [1, null, true] });

    // JSON -> msgpack, with a Buffer.
    assert.deepEqual(await js.ack('message', { room: 'lobby', data: { blob: Buffer.from([9, 8]), s: 'x' } }), { ok: true });
    const fromJSON = await mp.next('message', (m) => m.from === js.id);
    assert.ok(Buffer.from(fromJSON.data.blob).equals(Buffer.from([9, 8])));
    assert.equal(fromJSON.data.s, 'x');

    // native -> msgpack and JSON.
    nat.ws.send(JSON.stringify({ type: 'send', room: 'lobby', data: { big: 2 ** 40, f: -0.25, nested: { a: [[]] } } }));
    for (const c of [mp, js]) {
      const m = await c.next('message', (m) => m.from === nat.id);
      assert.deepEqual(m.data, { big: 2 ** 40, f: -0.25, nested: { a: [[]] } });
      assert.equal(typeof m.ts, 'number');
    }

    // Errors are acknowledgements too; the lists work.
    assert.equal((await mp.ack('leave', 'nowhere')).error.code, 'not_member');
    const members = await mp.ack('members', 'lobby');
    assert.deepEqual(members.members.map((m) => m.id).sort(), [mp.id, js.id, nat.id].sort());
  });
}

test('malformed msgpack closes that connection with 1008, the others go on', async (t) => {
  const gw = await gateway(t);
  const mp = await sio(t, gw, { parser: msgpackParser });
  const js = await sio(t, gw);
  await mp.ack('join', 'lobby');
  await js.ack('join', 'lobby');

  for (const bad of [Buffer.from([0xc1]), Buffer.from([0x82, 0xa4, 0x74, 0x79]), Buffer.from([0x81, 0x01, 0x02])]) {
    const raw = new WebSocket(`ws://${gw.addr}/socket.io/?EIO=4&transport=websocket`);
    t.after(() => raw.close());
    raw.on('error', () => {});
    const closed = new Promise((resolve) => raw.once('close', (code) => resolve(code)));
    const opened = new Promise((resolve) => raw.once('message', resolve));
    await within(opened, WAIT, 'the open packet');
    raw.send(bad);
    assert.equal(await within(closed, WAIT, 'the close'), 1008, `after ${bad.toString('hex')}`);
  }

  assert.deepEqual(await mp.ack('message', { room: 'lobby', data: 'still here' }), { ok: true });
  assert.equal((await js.next('message', (m) => m.from === mp.id)).data, 'still here');
  assert.deepEqual(await js.ack('message', { room: 'lobby', data: 'me too' }), { ok: true });
  assert.equal((await mp.next('message', (m) => m.from === js.id)).data, 'me too');
});

// What the server starts (the server API: a push, a server join, a
// publish, a disconnect) reaches a msgpack client in msgpack too.
test('server API pushes, joins and disconnects reach a msgpack client', async (t) => {
  const KEY = 'node-msgpack-test-key-0123456789';
  const apiAddr = `127.0.0.1:${await freePort()}`;
  const gw = await gateway(t, [`-api-addr=${apiAddr}`, '-api-key', KEY]);
  const call = async (method, params) => {
    const r = await fetch(`http://${apiAddr}/api/${method}`, {
      method: 'POST', body: JSON.stringify(params), signal: AbortSignal.timeout(WAIT),
      headers: { 'Content-Type': 'application/json', Authorization: `apikey ${KEY}` },
    });
    assert.equal(r.status, 200, `${method}: HTTP ${r.status}`);
    return (await r.json()).result;
  };
  const mp = await sio(t, gw, { parser: msgpackParser });

  assert.deepEqual(await call('send', { client: mp.id, event: 'whisper', data: { a: [1, 'b'] } }), { delivered: 1 });
  assert.deepEqual(await mp.next('whisper'), { a: [1, 'b'] });
  await call('join', { client: mp.id, room: 'news' });
  assert.equal((await mp.next('joined')).room, 'news');
  await call('publish', { room: 'news', data: { text: 'extra' } });
  const m = await mp.next('message', (m) => m.room === 'news');
  assert.deepEqual([m.from, m.data], ['', { text: 'extra' }]);

  const reason = new Promise((resolve) => mp.socket.once('disconnect', resolve));
  await call('disconnect', { client: mp.id });
  assert.equal(await within(reason, WAIT, 'the disconnect'), 'io server disconnect');
});
