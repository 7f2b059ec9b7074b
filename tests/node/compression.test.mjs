// permessage-deflate (-compression) with real peers: the Node `ws` client
// with perMessageDeflate, socket.io-client over WebSocket, and headless
// Chromium, which offers the extension by default, each in a room with a
// client that does not compress. The bytes each client reads off its
// socket show that the compressing ones got compressed frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startGateway } from './gateway.mjs';

const TEXT = 'Meeting moved to 3pm, room B; bring the quarterly numbers and the draft. '.repeat(16);
const WAIT = 5000;

// Native is a native-protocol ws client with a queue of its messages.
class Native {
  static async connect(addr, perMessageDeflate) {
    const c = new Native(new WebSocket(`ws://${addr}/ws`, { perMessageDeflate }));
    await new Promise((resolve, reject) => { c.ws.once('open', resolve); c.ws.once('error', reject); });
    assert.equal((await c.next()).type, 'welcome');
    return c;
  }
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.seq = 0;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      const w = this.waiters.shift();
      if (w) w(m); else this.queue.push(m);
    });
  }
  next() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting for a message')), WAIT);
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
      if (m.id === id) return m;
    }
    throw new Error('no reply');
  }
  // read is the bytes read off the TCP socket so far.
  get read() { return this.ws._socket.bytesRead; }
}

test('Node ws with perMessageDeflate and a plain ws client in one room', async (t) => {
  const gw = await startGateway(['-compression']);
  t.after(() => gw.stop());
  // threshold 0: the client compresses everything it sends.
  const zipped = await Native.connect(gw.addr, { threshold: 0 });
  const plain = await Native.connect(gw.addr, false);
  t.after(() => { zipped.ws.close(); plain.ws.close(); });
  assert.equal(zipped.ws.extensions, 'permessage-deflate');
  assert.equal(plain.ws.extensions, '');
  for (const c of [zipped, plain]) assert.equal((await c.request({ type: 'join', room: 'z' })).type, 'ack');
  await zipped.nextOf('presence');

  // A broadcast from the plain client: both decode it, the compressing
  // one from far fewer bytes.
  const z0 = zipped.read;
  const p0 = plain.read;
  assert.equal((await plain.request({ type: 'send', room: 'z', data: { text: TEXT } })).type, 'ack');
  const m = await zipped.nextOf('message');
  assert.equal(m.data.text, TEXT);
  const zBytes = zipped.read - z0;
  const pBytes = plain.read - p0; // the ack, then the plain member has no copy: the sender is skipped
  assert.ok(zBytes < TEXT.length / 4, `compressing member read ${zBytes} bytes for a ${TEXT.length}-byte text`);
  assert.ok(pBytes < 100, `the sender read ${pBytes} bytes for its ack`);

  // A compressed message from the Node client reaches the plain one.
  const p1 = plain.read;
  assert.equal((await zipped.request({ type: 'send', room: 'z', data: { text: TEXT } })).type, 'ack');
  const got = await plain.nextOf('message');
  assert.equal(got.data.text, TEXT);
  assert.ok(plain.read - p1 > TEXT.length, 'the plain member got the plain frame');
});

test('Node ws: the gateway requires client_no_context_takeover, and many compressed messages in a row inflate', async (t) => {
  const gw = await startGateway(['-compression']);
  t.after(() => gw.stop());
  // The default offer of ws: permessage-deflate; client_max_window_bits,
  // without client_no_context_takeover. The gateway's answer adds it
  // (RFC 7692 §7.1.1.1), so that it can inflate each message with a
  // pooled decompressor and keep none per connection.
  const ws = new WebSocket(`ws://${gw.addr}/ws`, { perMessageDeflate: { threshold: 0 } });
  const answered = new Promise((resolve) => ws.once('upgrade', (res) => resolve(res.headers['sec-websocket-extensions'])));
  const zipped = new Native(ws);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  assert.equal((await zipped.next()).type, 'welcome');
  assert.equal(await answered, 'permessage-deflate;server_no_context_takeover;client_no_context_takeover');
  const plain = await Native.connect(gw.addr, false);
  t.after(() => { zipped.ws.close(); plain.ws.close(); });
  for (const c of [zipped, plain]) assert.equal((await c.request({ type: 'join', room: 'row' })).type, 'ack');
  await zipped.nextOf('presence');

  // Twelve compressed messages sent at once, each repeating most of the
  // one before: a client that kept its window would refer back to it.
  const N = 12;
  for (let i = 0; i < N; i++) zipped.ws.send(JSON.stringify({ type: 'send', room: 'row', data: `${i}: ${TEXT}` }));
  for (let i = 0; i < N; i++) assert.equal((await plain.nextOf('message')).data, `${i}: ${TEXT}`);
  // And twelve compressed broadcasts in a row the other way.
  const z0 = zipped.read;
  for (let i = 0; i < N; i++) plain.ws.send(JSON.stringify({ type: 'send', room: 'row', data: `${N + i}: ${TEXT}` }));
  for (let i = 0; i < N; i++) assert.equal((await zipped.nextOf('message')).data, `${N + i}: ${TEXT}`);
  assert.ok(zipped.read - z0 < N * TEXT.length / 4, `the compressing member read ${zipped.read - z0} bytes for ${N} messages`);
});

test('socket.io-client over WebSocket with perMessageDeflate, next to a plain native client', async (t) => {
  const gw = await startGateway(['-compression']);
  t.after(() => gw.stop());
  const plain = await Native.connect(gw.addr, false);
  t.after(() => plain.ws.close());
  assert.equal((await plain.request({ type: 'join', room: 'z' })).type, 'ack');
  const sock = io(`http://${gw.addr}`, {
    transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT,
    perMessageDeflate: { threshold: 0 },
  });
  t.after(() => sock.close());
  const events = [];
  const waiters = [];
  sock.on('message', (m) => { const w = waiters.shift(); if (w) w(m); else events.push(m); });
  const nextMessage = () => events.length ? Promise.resolve(events.shift())
    : new Promise((resolve, reject) => {
      const tm = setTimeout(() => reject(new Error('timeout waiting for a Socket.IO message')), WAIT);
      waiters.push((m) => { clearTimeout(tm); resolve(m); });
    });
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('connect_error', reject); });
  assert.equal(sock.io.engine.transport.ws.extensions, 'permessage-deflate');
  const joined = await sock.timeout(WAIT).emitWithAck('join', 'z');
  assert.equal(joined.count, 2);

  const tcp = sock.io.engine.transport.ws._socket;
  const before = tcp.bytesRead;
  assert.equal((await plain.request({ type: 'send', room: 'z', data: { text: TEXT } })).type, 'ack');
  const m = await nextMessage();
  assert.equal(m.data.text, TEXT);
  const read = tcp.bytesRead - before;
  assert.ok(read < TEXT.length / 4, `Socket.IO client read ${read} bytes for a ${TEXT.length}-byte text`);

  const ack = await sock.timeout(WAIT).emitWithAck('message', { room: 'z', data: { text: TEXT } });
  assert.equal(ack.ok, true);
  assert.equal((await plain.nextOf('message')).data.text, TEXT);
});

const CHROMIUM = '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM) && process.env.CHATGATE_REQUIRE_BROWSER !== '1'
  ? `${CHROMIUM} is missing: install the Debian package chromium (CHATGATE_REQUIRE_BROWSER=1 makes this a failure)`
  : false;

test('headless Chromium negotiates permessage-deflate and chats with a plain client', { skip }, async (t) => {
  const gw = await startGateway(['-compression']);
  t.after(() => gw.stop());
  const plain = await Native.connect(gw.addr, false);
  t.after(() => plain.ws.close());
  assert.equal((await plain.request({ type: 'join', room: 'z' })).type, 'ack');

  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://${gw.addr}/healthz`); // an origin of the gateway's own
  // The page's WebSocket: Chromium's own offer, its own inflate.
  const extensions = await page.evaluate(() => new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${location.host}/ws`);
    window.got = [];
    window.ws = ws;
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      window.got.push(m);
      if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'join', room: 'z', id: 1 }));
      if (m.type === 'ack' && m.id === 1) resolve(ws.extensions);
    };
    ws.onerror = () => reject(new Error('WebSocket error'));
    ws.onclose = (e) => reject(new Error(`closed ${e.code} ${e.reason}`));
  }));
  assert.match(extensions, /^permessage-deflate/);
  await plain.nextOf('presence');

  assert.equal((await plain.request({ type: 'send', room: 'z', data: { text: TEXT } })).type, 'ack');
  const text = await page.waitForFunction(() => window.got.find((m) => m.type === 'message')?.data.text, null, { timeout: WAIT });
  assert.equal(await text.jsonValue(), TEXT);

  // Chromium compresses what it sends: the gateway inflates it.
  await page.evaluate((t) => window.ws.send(JSON.stringify({ type: 'send', room: 'z', id: 2, data: { text: t } })), TEXT);
  assert.equal((await plain.nextOf('message')).data.text, TEXT);
});

test('socket.io-client upgraded from long-polling gets its direct messages compressed', async (t) => {
  const gw = await startGateway(['-compression', '-loops', '2']);
  t.after(() => gw.stop());
  const plain = await Native.connect(gw.addr, false);
  t.after(() => plain.ws.close());
  // Several clients, each upgraded (its session's home may be another
  // loop than its WebSocket's).
  for (let i = 0; i < 4; i++) {
    const sock = io(`http://${gw.addr}`, { forceNew: true, reconnection: false, timeout: WAIT, perMessageDeflate: { threshold: 0 } });
    t.after(() => sock.close());
    await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('connect_error', reject); });
    if (sock.io.engine.transport.name !== 'websocket') {
      await new Promise((resolve) => sock.io.engine.once('upgrade', resolve));
    }
    const ws = sock.io.engine.transport.ws;
    assert.equal(ws.extensions, 'permessage-deflate');
    const before = ws._socket.bytesRead;
    const got = new Promise((resolve) => sock.once('message', resolve));
    assert.equal((await plain.request({ type: 'send', to: sock.id, data: TEXT })).type, 'ack');
    assert.equal((await got).data, TEXT);
    const read = ws._socket.bytesRead - before;
    assert.ok(read < TEXT.length / 4, `client ${i} read ${read} bytes for a ${TEXT.length}-byte direct message`);
  }
});
