// The socket.io-client bundle the gateway serves (package sioclient), used
// as Socket.IO's chat tutorials use it: a plain HTML page on the gateway's
// origin loads <script src="/socket.io/socket.io.js"> (or imports
// /socket.io/socket.io.esm.min.js) from the gateway, with no bundler,
// connects with io() and chats in a room with a Node socket.io-client,
// in real headless Chromium (the Debian package at /usr/bin/chromium,
// driven by playwright-core, as in browser.test.mjs).
//
// The HTML page is not part of the gateway: Playwright answers the page's
// own URL (on the gateway's origin) with it, and every other request the
// page makes — the bundle, the Engine.IO polling and WebSocket requests —
// goes to the real gateway binary. The bundle must be installed
// (npm ci --prefix sioclient, as scripts/test.sh does): without it the
// test fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join as joinPath, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import { startGateway } from './gateway.mjs';
import { needs, launch } from './chromium.mjs';

const REPO = joinPath(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUNDLE = joinPath(REPO, 'sioclient', 'node_modules', 'socket.io-client', 'dist');

const { skip, ensure } = needs();

const T = 15000; // per wait

// The page's chat, the same for both ways of loading the client: it
// connects to its own origin, takes a nickname, joins "lobby", and keeps
// every message it gets in window.got for the test to read.
const CHAT = `
  window.got = [];
  const socket = io();
  window.socket = socket;
  socket.on('message', (m) => window.got.push(m));
  socket.on('connect', async () => {
    await socket.emitWithAck('nick', window.NICK);
    window.joined = await socket.emitWithAck('join', 'lobby');
  });`;

const PAGES = {
  // A classic script, exactly as the Socket.IO chat tutorial writes it.
  'script': (nick) => `<!doctype html><meta charset="utf-8"><title>chat</title>
<script src="/socket.io/socket.io.js"></script>
<script>window.NICK = ${JSON.stringify(nick)};${CHAT}</script>`,
  // The ES module build, imported by path.
  'module': (nick) => `<!doctype html><meta charset="utf-8"><title>chat</title>
<script type="module">
  import { io } from '/socket.io/socket.io.esm.min.js';
  window.NICK = ${JSON.stringify(nick)};${CHAT}
</script>`,
};

// nodeClient connects a Node socket.io-client, joins lobby, and returns it
// with a function that waits for a message whose data is text.
async function nodeClient(t, addr) {
  const socket = io(`http://${addr}`, { transports: ['websocket'], reconnection: false });
  t.after(() => socket.close());
  const got = [];
  const waiters = [];
  socket.on('message', (m) => {
    got.push(m);
    for (const w of waiters.splice(0)) w();
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('node client: no connect')), T);
    socket.once('connect', () => { clearTimeout(timer); resolve(); });
  });
  await socket.timeout(T).emitWithAck('nick', 'node');
  await socket.timeout(T).emitWithAck('join', 'lobby');
  const received = (text) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node client: no message "${text}"; got ${JSON.stringify(got)}`)), T);
    const check = () => {
      const m = got.find((x) => x.data === text);
      if (m) { clearTimeout(timer); resolve(m); } else waiters.push(check);
    };
    check();
  });
  return { socket, received };
}

for (const [kind, page] of Object.entries(PAGES)) {
  test(`browser: a page that loads the client bundle from the gateway (${kind}) chats with no bundler`, { skip, timeout: 120000 }, async (t) => {
    ensure();
    assert.ok(existsSync(BUNDLE), `the socket.io client bundle is not installed at ${BUNDLE}: run npm ci --prefix sioclient`);
    const gw = await startGateway(['-loops', '2', '-sio-client-dir', BUNDLE]);
    t.after(() => gw.stop());
    const browser = await launch(t);
    const context = await browser.newContext();
    const tab = await context.newPage();
    tab.setDefaultTimeout(T);
    const problems = [];
    tab.on('pageerror', (err) => problems.push(`page error: ${err.message}`));

    // The page itself, on the gateway's origin; nothing else is routed.
    const origin = `http://${gw.addr}`;
    await tab.route(`${origin}/chat-page.html`, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: page('browser') }));
    const file = kind === 'script' ? 'socket.io.js' : 'socket.io.esm.min.js';
    const bundleResponse = tab.waitForResponse(`${origin}/socket.io/${file}`);
    await tab.goto(`${origin}/chat-page.html`);

    // The bundle came from the gateway, byte for byte the npm package's.
    const resp = await bundleResponse;
    assert.equal(resp.status(), 200);
    assert.equal(resp.headers()['content-type'], 'application/javascript; charset=utf-8');
    assert.ok((await resp.body()).equals(readFileSync(joinPath(BUNDLE, file))), `${file} as served differs from the npm package's`);

    // io() connected to the gateway and joined the room.
    await tab.waitForFunction(() => window.joined && window.joined.room === 'lobby', null, { timeout: T });
    const node = await nodeClient(t, gw.addr);

    // Both ways.
    await tab.evaluate(() => window.socket.emitWithAck('message', { room: 'lobby', data: 'hello from the page' }));
    const m = await node.received('hello from the page');
    assert.equal(m.room, 'lobby');
    assert.equal(m.nick, 'browser');
    assert.equal(m.from, await tab.evaluate(() => window.socket.id));
    const ack = await node.socket.timeout(T).emitWithAck('message', { room: 'lobby', data: 'hello from node' });
    assert.deepEqual(ack, { ok: true });
    await tab.waitForFunction(() => window.got.some((x) => x.data === 'hello from node' && x.nick === 'node'), null, { timeout: T });
    assert.deepEqual(problems, []);
  });
}
