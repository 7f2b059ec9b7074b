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
import { Native } from './native.mjs';
import { WAIT, Queue } from './wait.mjs';

const TEXT = 'Meeting moved to 3pm, room B; bring the quarterly numbers and the draft. '.repeat(16);
// bytesRead is what client c has read off its TCP socket so far.
const bytesRead = (c) => c.ws._socket.bytesRead;

// The options of a compressing client (threshold 0: it compresses all it
// sends) and of a plain one.
const ZIPPED = { perMessageDeflate: { threshold: 0 } };
const PLAIN = { perMessageDeflate: false };

test('Node ws with perMessageDeflate and a plain ws client in one room', async (t) => {
  const gw = await startGateway(['-compression']);
  t.after(() => gw.stop());
  const zipped = await Native.connect(t, gw.addr, ZIPPED);
  const plain = await Native.connect(t, gw.addr, PLAIN);
  assert.equal(zipped.ws.extensions, 'permessage-deflate');
  assert.equal(plain.ws.extensions, '');
  for (const c of [zipped, plain]) assert.equal((await c.request({ type: 'join', room: 'z' })).type, 'ack');
  await zipped.inbox.next((m) => m.type === 'presence', 'presence');

  // A broadcast from the plain client: both decode it, the compressing
  // one from far fewer bytes.
  const z0 = bytesRead(zipped);
  const p0 = bytesRead(plain);
  assert.equal((await plain.request({ type: 'send', room: 'z', data: { text: TEXT } })).type, 'ack');
  const m = await zipped.message(() => true, 'message');
  assert.equal(m.data.text, TEXT);
  const zBytes = bytesRead(zipped) - z0;
  const pBytes = bytesRead(plain) - p0; // the ack, then the plain member has no copy: the sender is skipped
  assert.ok(zBytes < TEXT.length / 4, `compressing member read ${zBytes} bytes for a ${TEXT.length}-byte text`);
  assert.ok(pBytes < 100, `the sender read ${pBytes} bytes for its ack`);

  // A compressed message from the Node client reaches the plain one.
  const p1 = bytesRead(plain);
  assert.equal((await zipped.request({ type: 'send', room: 'z', data: { text: TEXT } })).type, 'ack');
  const got = await plain.message(() => true, 'message');
  assert.equal(got.data.text, TEXT);
  assert.ok(bytesRead(plain) - p1 > TEXT.length, 'the plain member got the plain frame');
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
  t.after(() => ws.terminate());
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  assert.equal((await zipped.inbox.next(() => true, 'the first message')).type, 'welcome');
  assert.equal(await answered, 'permessage-deflate;server_no_context_takeover;client_no_context_takeover');
  const plain = await Native.connect(t, gw.addr, PLAIN);
  for (const c of [zipped, plain]) assert.equal((await c.request({ type: 'join', room: 'row' })).type, 'ack');
  await zipped.inbox.next((m) => m.type === 'presence', 'presence');

  // Twelve compressed messages sent at once, each repeating most of the
  // one before: a client that kept its window would refer back to it.
  const N = 12;
  for (let i = 0; i < N; i++) zipped.ws.send(JSON.stringify({ type: 'send', room: 'row', data: `${i}: ${TEXT}` }));
  for (let i = 0; i < N; i++) assert.equal((await plain.message(() => true, 'message')).data, `${i}: ${TEXT}`);
  // And twelve compressed broadcasts in a row the other way.
  const z0 = bytesRead(zipped);
  for (let i = 0; i < N; i++) plain.ws.send(JSON.stringify({ type: 'send', room: 'row', data: `${N + i}: ${TEXT}` }));
  for (let i = 0; i < N; i++) assert.equal((await zipped.message(() => true, 'message')).data, `${N + i}: ${TEXT}`);
  assert.ok(bytesRead(zipped) - z0 < N * TEXT.length / 4, `the compressing member read ${bytesRead(zipped) - z0} bytes for ${N} messages`);
});

test('socket.io-client over WebSocket with perMessageDeflate, next to a plain native client', async (t) => {
  const gw = await startGateway(['-compression']);
  t.after(() => gw.stop());
  const plain = await Native.connect(t, gw.addr, PLAIN);
  assert.equal((await plain.request({ type: 'join', room: 'z' })).type, 'ack');
  const sock = io(`http://${gw.addr}`, {
    transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT,
    perMessageDeflate: { threshold: 0 },
  });
  t.after(() => sock.close());
  const events = new Queue();
  sock.on('message', (m) => events.push(m));
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('connect_error', reject); });
  assert.equal(sock.io.engine.transport.ws.extensions, 'permessage-deflate');
  const joined = await sock.timeout(WAIT).emitWithAck('join', 'z');
  assert.equal(joined.count, 2);

  const tcp = sock.io.engine.transport.ws._socket;
  const before = tcp.bytesRead;
  assert.equal((await plain.request({ type: 'send', room: 'z', data: { text: TEXT } })).type, 'ack');
  const m = await events.next(() => true, 'a Socket.IO message');
  assert.equal(m.data.text, TEXT);
  const read = tcp.bytesRead - before;
  assert.ok(read < TEXT.length / 4, `Socket.IO client read ${read} bytes for a ${TEXT.length}-byte text`);

  const ack = await sock.timeout(WAIT).emitWithAck('message', { room: 'z', data: { text: TEXT } });
  assert.equal(ack.ok, true);
  assert.equal((await plain.message(() => true, 'message')).data.text, TEXT);
});

const CHROMIUM = '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM) && process.env.CHATGATE_REQUIRE_BROWSER !== '1'
  ? `${CHROMIUM} is missing: install the Debian package chromium (CHATGATE_REQUIRE_BROWSER=1 makes this a failure)`
  : false;

test('headless Chromium negotiates permessage-deflate and chats with a plain client', { skip }, async (t) => {
  const gw = await startGateway(['-compression']);
  t.after(() => gw.stop());
  const plain = await Native.connect(t, gw.addr, PLAIN);
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
  await plain.inbox.next((m) => m.type === 'presence', 'presence');

  assert.equal((await plain.request({ type: 'send', room: 'z', data: { text: TEXT } })).type, 'ack');
  const text = await page.waitForFunction(() => window.got.find((m) => m.type === 'message')?.data.text, null, { timeout: WAIT });
  assert.equal(await text.jsonValue(), TEXT);

  // Chromium compresses what it sends: the gateway inflates it.
  await page.evaluate((t) => window.ws.send(JSON.stringify({ type: 'send', room: 'z', id: 2, data: { text: t } })), TEXT);
  assert.equal((await plain.message(() => true, 'message')).data.text, TEXT);
});

test('socket.io-client upgraded from long-polling gets its direct messages compressed', async (t) => {
  const gw = await startGateway(['-compression', '-loops', '2']);
  t.after(() => gw.stop());
  const plain = await Native.connect(t, gw.addr, PLAIN);
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
