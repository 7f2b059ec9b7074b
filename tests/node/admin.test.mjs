// The admin page served at / on the admin listener, driven in real headless
// Chromium (the Debian package at /usr/bin/chromium) with playwright-core:
// it lists live connections (from native `ws` clients), rooms with counts,
// nodes and rates; the filter narrows the list; it is read-only until the
// API key is entered, refuses a wrong key, and its disconnect button closes
// a client with 4000. Screenshots go to tests/node/artifacts/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join as joinPath, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { startGateway, freePort } from './gateway.mjs';
import { needs, launch } from './chromium.mjs';

const ARTIFACTS = joinPath(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const XSS = '<img src=x onerror=alert(1)>';
const KEY = 'admin-test-key-0123456789';

const { skip, ensure } = needs();

const T = 15000; // per wait

// Client is a native-protocol WebSocket client with request/ack helpers.
class Client {
  static async connect(addr) {
    const ws = new WebSocket(`ws://${addr}/ws`);
    const c = new Client(ws);
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
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
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      const w = this.waiters.shift();
      if (w) w(m); else this.queue.push(m);
    });
  }
  next(timeout = T) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting for a message')), timeout);
      this.waiters.push((m) => { clearTimeout(t); resolve(m); });
    });
  }
  async request(obj) {
    const id = ++this.seq;
    this.ws.send(JSON.stringify({ ...obj, id }));
    for (;;) {
      const m = await this.next();
      if (m.id === id && m.type === 'ack') return m;
      if (m.id === id && m.type === 'error') throw new Error(`${obj.type}: ${m.code} ${m.message}`);
    }
  }
}

function status(page, want) {
  return page.waitForFunction((s) => document.getElementById('status').dataset.state === s, want, { timeout: T });
}

// listed returns the client ids in the page's connection table.
function listed(page) {
  return page.$$eval('#conns tbody tr', (rows) => rows.map((r) => r.dataset.client));
}

// waitListed waits until the connection table lists exactly ids (in id order).
async function waitListed(page, ids) {
  const want = [...ids].sort();
  await page.waitForFunction((w) => {
    const got = [...document.querySelectorAll('#conns tbody tr')].map((r) => r.dataset.client);
    return JSON.stringify(got) === JSON.stringify(w);
  }, want, { timeout: T }).catch(async (err) => {
    throw new Error(`connection list ${JSON.stringify(await listed(page))}, want ${JSON.stringify(want)}: ${err.message}`);
  });
}

function roomCount(page, room, count) {
  return page.waitForFunction(([r, n]) => {
    const row = [...document.querySelectorAll('#rooms tbody tr')].find((tr) => tr.dataset.room === r);
    return row && row.querySelector('.count').textContent === String(n);
  }, [room, count], { timeout: T });
}

test('admin page in headless Chromium', { skip, timeout: 120000 }, async (t) => {
  ensure();
  const adminPort = await freePort();
  const apiPort = await freePort();
  const gw = await startGateway(['-loops', '2', `-admin-addr=127.0.0.1:${adminPort}`,
    `-api-addr=127.0.0.1:${apiPort}`, `-api-key=${KEY}`]);
  t.after(() => gw.stop());
  const base = `http://127.0.0.1:${adminPort}/`;

  // The page and its API answer as designed before any browser is involved.
  const res = await fetch(base);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);
  const refused = await fetch(`${base}admin/disconnect`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'apikey nope' }, body: '{"client":"x"}',
  });
  assert.equal(refused.status, 401);

  const browser = await launch(t);
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  const problems = [];
  page.on('dialog', async (d) => {
    problems.push(`unexpected ${d.type()} dialog "${d.message()}"`);
    await d.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => problems.push(`page error ${err.message}`));
  // Console errors (a CSP violation would be one) are problems, but for
  // the 401 of the wrong key entered on purpose below.
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 401 \(Unauthorized\)/.test(msg.text())) problems.push(`console error ${msg.text()}`);
  });

  await page.goto(base);
  await status(page, 'live');
  assert.ok(await page.locator('#api-off').isHidden(), 'the API is connected');
  await page.locator('#nodes tbody tr').first().waitFor();
  assert.equal(await page.locator('#nodes tbody tr').count(), 1);

  // Two native clients join rooms; the page lists both with their rooms.
  const alice = await Client.connect(gw.addr);
  const bob = await Client.connect(gw.addr);
  t.after(() => { alice.ws.terminate(); bob.ws.terminate(); });
  await alice.request({ type: 'nick', name: 'alice' });
  await bob.request({ type: 'nick', name: XSS });
  await alice.request({ type: 'join', room: 'lobby' });
  await bob.request({ type: 'join', room: 'lobby' });
  await bob.request({ type: 'join', room: 'dev' });
  await waitListed(page, [alice.id, bob.id]);
  await roomCount(page, 'lobby', 2);
  await roomCount(page, 'dev', 1);
  await page.waitForFunction(() => document.getElementById('t-connections').textContent === '2');
  const bobRow = page.locator(`#conns tbody tr[data-client="${bob.id}"]`);
  assert.equal(await bobRow.locator('.nick').textContent(), XSS, 'the nickname is shown as text');
  assert.deepEqual((await bobRow.locator('.chip').allTextContents()).sort(), ['dev', 'lobby']);
  assert.equal(await page.locator('img').count(), 0, 'no element was made from the nickname');

  // Rates: messages sent now show in the next refresh.
  for (let i = 0; i < 5; i++) await alice.request({ type: 'send', room: 'lobby', data: { i } });
  await page.waitForFunction(() => Number(document.getElementById('r-messages_received').textContent) > 0);

  // The filter narrows the list to one client's id, then clears.
  await page.fill('#filter', alice.id);
  await waitListed(page, [alice.id]);
  await page.fill('#filter', 'LOBBY'); // rooms match too, whatever the case
  await waitListed(page, [alice.id, bob.id]);
  await page.fill('#filter', 'dev');
  await waitListed(page, [bob.id]);
  await page.fill('#filter', '');
  await waitListed(page, [alice.id, bob.id]);

  // Read-only until a key is accepted: no disconnect button.
  assert.equal(await page.locator('#conns button.disconnect').count(), 0);
  await page.fill('#key-input', 'not-the-key');
  await page.click('#key-submit');
  const msg = page.locator('#key-msg[data-kind="error"]');
  await msg.waitFor();
  assert.match(await msg.textContent(), /Key refused: missing or invalid API key/);
  assert.equal(await page.getAttribute('#key-form', 'data-key'), 'refused');
  assert.equal(await page.locator('#conns button.disconnect').count(), 0);
  await shot(page, 'admin-refused-key.png');

  await page.fill('#key-input', KEY);
  await page.click('#key-submit');
  await page.locator('#key-form[data-key="accepted"]').waitFor();
  await page.locator(`#conns tbody tr[data-client="${bob.id}"] button.disconnect`).waitFor();
  assert.equal(await page.locator('#conns button.disconnect').count(), 2);
  assert.equal(await page.inputValue('#key-input'), '', 'the key is not left in the input');
  await shot(page, 'admin.png');

  // Disconnect bob: his socket closes with 4000 and the list drops him.
  await page.click(`#conns tbody tr[data-client="${bob.id}"] button.disconnect`);
  const closed = await bob.closed;
  assert.equal(closed.code, 4000);
  assert.equal(closed.reason, 'disconnected by server');
  await waitListed(page, [alice.id]);
  await roomCount(page, 'lobby', 1);
  await page.waitForFunction(() => ![...document.querySelectorAll('#rooms tbody tr')].some((tr) => tr.dataset.room === 'dev'));
  await page.locator('#key-msg[data-kind="ok"]', { hasText: `Disconnected ${bob.id}` }).waitFor();
  assert.equal(alice.ws.readyState, WebSocket.OPEN, 'alice stays connected');
  await shot(page, 'admin-after-disconnect.png');

  // Lock again: back to read-only.
  await page.click('#key-lock');
  await page.waitForFunction(() => document.querySelectorAll('#conns button.disconnect').length === 0);

  await context.close();
  assert.deepEqual(problems, []);
});

test('admin page without -api-key is read-only, without the API says so', { skip, timeout: 60000 }, async (t) => {
  ensure();
  const keyless = await freePort();
  const noAPI = await freePort();
  const gwKeyless = await startGateway([`-admin-addr=127.0.0.1:${keyless}`, `-api-addr=127.0.0.1:${await freePort()}`]);
  t.after(() => gwKeyless.stop());
  const gwNoAPI = await startGateway([`-admin-addr=127.0.0.1:${noAPI}`]); // -api-addr= (off) by default in tests
  t.after(() => gwNoAPI.stop());

  const refused = await fetch(`http://127.0.0.1:${keyless}/admin/disconnect`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'apikey anything' }, body: '{"client":"x"}',
  });
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).error.message, 'set -api-key to enable actions');

  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  page.setDefaultTimeout(T);
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error ${err.message}`));

  const c = await Client.connect(gwKeyless.addr);
  t.after(() => c.ws.terminate());
  await page.goto(`http://127.0.0.1:${keyless}/`);
  await status(page, 'live');
  await waitListed(page, [c.id]);
  assert.ok(await page.locator('#key-input').isDisabled(), 'no key to enter');
  assert.match(await page.getAttribute('#key-input', 'placeholder'), /set -api-key to enable actions/);
  assert.equal(await page.locator('#conns button.disconnect').count(), 0);

  await page.goto(`http://127.0.0.1:${noAPI}/`);
  await status(page, 'live');
  await page.locator('#api-off').waitFor();
  assert.match(await page.textContent('#status-text'), /API unavailable/);
  assert.match(await page.textContent('#conns-empty'), /API unavailable/);
  await shot(page, 'admin-no-api.png');
  assert.deepEqual(problems, []);
});

async function shot(page, file) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: joinPath(ARTIFACTS, file), fullPage: true });
}
