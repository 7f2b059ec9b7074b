// Socket.IO v2 clients (Engine.IO v3) with -sio-allow-eio3: the real
// socket.io-client 2.5.0 from npm (the "socket.io-client-v2" alias), over
// WebSocket, over long-polling and starting on polling then upgrading,
// chats in one room with a socket.io-client 4 socket and a native /ws
// client, both ways, text and binary, against the real gateway binary.
// A token comes in the handshake's query. Without the flag it is refused.
//
// The byte-level rules (payload framing, heartbeat, bad input) are checked
// in tests/e2e/eio3_test.go.
//
// Every wait has a timeout and every test closes what it opened in
// t.after, so the file never hangs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { io } from 'socket.io-client';
import ioV2 from 'socket.io-client-v2';
import { startGateway } from './gateway.mjs';
import { WAIT, within, Queue } from './wait.mjs';
import { Native } from './native.mjs';

// Client wraps a socket of either socket.io-client: its "message" events
// are kept with all their arguments.
class Client {
  static async connect(t, socket, what) {
    const c = new Client(socket);
    t.after(() => socket.close());
    await within(new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
      socket.once('error', reject);
    }), WAIT, `${what} connect`);
    return c;
  }

  constructor(socket) {
    this.socket = socket;
    this.inbox = new Queue();
    socket.on('message', (...args) => this.inbox.push(args));
  }

  // ack emits with a callback, which 2.x and 4.x clients both take, and
  // resolves with the acknowledgement's argument.
  ack(...args) {
    return within(new Promise((resolve) => this.socket.emit(...args, resolve)), WAIT, `ack of ${args[0]}`);
  }

  message(match, what) {
    return this.inbox.next((args) => match(args[0]), what);
  }
}

const v2 = (t, addr, opts) => Client.connect(t, ioV2(`http://${addr}`, {
  forceNew: true, reconnection: false, timeout: WAIT, ...opts,
}), 'socket.io-client 2.x');
const v4 = (t, addr) => Client.connect(t, io(`http://${addr}`, {
  forceNew: true, reconnection: false, timeout: WAIT, transports: ['websocket'],
}), 'socket.io-client 4.x');

// bytes returns the bytes of a binary value as socket.io-client hands it
// over in Node (a Buffer, or an ArrayBuffer).
const bytes = (b) => [...new Uint8Array(b instanceof ArrayBuffer ? b : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))];

// chat runs the three-way chat in room with a connected 2.x client.
async function chat(t, g, c2, room) {
  const native = await Native.connect(t, g.addr);
  await native.request({ type: 'join', room });
  const c4 = await v4(t, g.addr);
  await c4.ack('join', room);
  const joined = await c2.ack('join', room);
  assert.equal(joined.room, room);
  assert.equal(joined.count, 3);

  // 2.x → native and 4.x.
  assert.deepEqual(await c2.ack('message', { room, data: 'from v2 ✓' }), { ok: true });
  const n = await native.message((m) => m.data === 'from v2 ✓', 'native: message from v2');
  assert.equal(n.room, room);
  await c4.message((m) => m.data === 'from v2 ✓', 'v4: message from v2');

  // native and 4.x → 2.x; a 2.x listener gets the message alone, without
  // the history offset 4.x clients get as a last argument.
  await native.request({ type: 'send', room, data: 'from native 😀' });
  const fromNative = await c2.message((m) => m.data === 'from native 😀', 'v2: message from native');
  assert.equal(fromNative.length, 1, 'a 2.x client gets no offset argument');
  assert.equal(fromNative[0].from, native.id);
  await c4.ack('message', { room, data: 'from v4' });
  await c2.message((m) => m.data === 'from v4', 'v2: message from v4');
  const v4Own = await native.message((m) => m.data === 'from v4', 'native: message from v4');
  assert.equal(typeof v4Own.offset, 'number');

  // Binary, both ways between 2.x and 4.x.
  await c2.ack('message', { room, data: { blob: Buffer.from([1, 2, 3, 255]) } });
  const bin4 = await c4.message((m) => m.data && m.data.blob, 'v4: binary from v2');
  assert.deepEqual(bytes(bin4[0].data.blob), [1, 2, 3, 255]);
  await c4.ack('message', { room, data: { blob: Buffer.from([9, 8, 7]) } });
  const bin2 = await c2.message((m) => m.data && m.data.blob, 'v2: binary from v4');
  assert.deepEqual(bytes(bin2[0].data.blob), [9, 8, 7]);
}

test('socket.io-client 2.x over WebSocket chats with 4.x and native clients', async (t) => {
  const g = await startGateway(['-sio-allow-eio3']);
  t.after(() => g.stop());
  const c2 = await v2(t, g.addr, { transports: ['websocket'] });
  assert.equal(c2.socket.io.engine.transport.name, 'websocket');
  await chat(t, g, c2, 'ws-room');
});

test('socket.io-client 2.x over long-polling chats with 4.x and native clients', async (t) => {
  const g = await startGateway(['-sio-allow-eio3']);
  t.after(() => g.stop());
  const c2 = await v2(t, g.addr, { transports: ['polling'] });
  assert.equal(c2.socket.io.engine.transport.name, 'polling');
  await chat(t, g, c2, 'poll-room');
  assert.equal(c2.socket.io.engine.transport.name, 'polling');
});

test('socket.io-client 2.x with default transports upgrades from polling to WebSocket', async (t) => {
  const g = await startGateway(['-sio-allow-eio3']);
  t.after(() => g.stop());
  const socket = ioV2(`http://${g.addr}`, { forceNew: true, reconnection: false, timeout: WAIT });
  const upgraded = new Promise((resolve) => {
    socket.io.on('open', () => socket.io.engine.on('upgrade', (tr) => resolve(tr.name)));
  });
  const c2 = await Client.connect(t, socket, 'socket.io-client 2.x');
  assert.equal(await within(upgraded, WAIT, 'upgrade'), 'websocket');
  await chat(t, g, c2, 'up-room');
});

test('socket.io-client 2.x is refused without -sio-allow-eio3', async (t) => {
  const g = await startGateway([]);
  t.after(() => g.stop());
  for (const transports of [['websocket'], ['polling']]) {
    const socket = ioV2(`http://${g.addr}`, { forceNew: true, reconnection: false, timeout: WAIT, transports });
    t.after(() => socket.close());
    const outcome = await within(new Promise((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('connect_error', () => resolve('refused'));
    }), WAIT, `2.x connect over ${transports}`);
    assert.equal(outcome, 'refused', `2.x over ${transports}`);
  }
});

// jwt signs an HS256 token for sub with secret, here with node:crypto,
// independently of the gateway's code.
function jwt(sub, secret) {
  const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, iat: now, exp: now + 3600 })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

test('socket.io-client 2.x passes its token in the query', async (t) => {
  const secret = 'eio3-node-test-secret-0123456789abcdefghij';
  const g = await startGateway(['-sio-allow-eio3', '-jwt-secret', secret, '-auth-required']);
  t.after(() => g.stop());
  for (const transports of [['websocket'], ['polling']]) {
    const room = `auth-${transports[0]}`;
    const alice = await v2(t, g.addr, { transports, query: { token: jwt('alice', secret) } });
    const bob = await v2(t, g.addr, { transports, query: { token: jwt('bob', secret) } });
    await alice.ack('join', room);
    await bob.ack('join', room);
    await alice.ack('message', { room, data: 'signed' });
    const [m] = await bob.message((m) => m.data === 'signed', `bob: alice's message over ${transports}`);
    assert.equal(m.user, 'alice');

    // No token: the server's CONNECT of "/" is refused with an ERROR
    // packet, which socket.io-client 2.x emits as "error".
    const socket = ioV2(`http://${g.addr}`, { forceNew: true, reconnection: false, timeout: WAIT, transports });
    t.after(() => socket.close());
    const err = await within(new Promise((resolve) => socket.once('error', resolve)), WAIT, `anonymous 2.x over ${transports}`);
    assert.equal(err.message, 'unauthorized', `error event ${JSON.stringify(err)}`);
    assert.equal(socket.connected, false);
  }
});
