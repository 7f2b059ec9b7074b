// Connection state recovery in the chat page, in real headless Chromium
// (the Debian package at /usr/bin/chromium, driven by playwright-core, as
// in browser.test.mjs): the page's WebSocket is closed from inside the
// page, another member sends while it is away, and once the page is back
// by itself it shows every message once and in order, under the same
// connection id, with no "may be missing" note.
//
// The page is served through a TCP relay (gate.mjs) whose door the test
// shuts while the messages are sent, so that the page's reconnect attempts
// fail until they are all in the room's history: the missed messages can
// only arrive by recovery. The socket is closed from the page rather than
// by network emulation, since Chromium's offline mode can hold back the
// close of an open WebSocket (see browser.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join as joinPath, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { connect } from '../../web/static/client.js';
import { startGateway } from './gateway.mjs';
import { needs, launch } from './chromium.mjs';
import { startGate } from './gate.mjs';

const ARTIFACTS = joinPath(dirname(fileURLToPath(import.meta.url)), 'artifacts');

const { skip, ensure } = needs();

const T = 15000; // per wait: above the page's largest reconnect delay (8 s)

// once resolves with the next `event` of a client.js client that
// satisfies pred, or rejects after ms. Register it before causing it.
function once(client, event, pred, what, ms = T) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`timeout (${ms} ms) waiting for ${what}`)); }, ms);
    const off = client.on(event, (x) => {
      if (!pred(x)) return;
      clearTimeout(timer);
      off();
      resolve(x);
    });
  });
}

function state(page, want) {
  return page.waitForFunction((s) => document.getElementById('conn').dataset.state === s, want, { timeout: T });
}

// shown returns the texts of the messages others sent, as the open room
// shows them.
function shown(page) {
  return page.locator('#messages .msg:not(.mine) .body').allTextContents();
}

test('browser: the chat page recovers a dropped connection: every missed message once, in order, same id', { skip, timeout: 120000 }, async (t) => {
  ensure();
  const gw = await startGateway(['-loops', '2']);
  t.after(() => gw.stop());
  const gate = await startGate(gw.addr);
  t.after(() => gate.close());
  const browser = await launch(t);
  const problems = [];

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  page.on('pageerror', (err) => problems.push(`page error ${err.message}`));
  page.on('dialog', async (d) => {
    problems.push(`unexpected ${d.type()} dialog "${d.message()}"`);
    await d.dismiss().catch(() => {});
  });
  // Keep the page's WebSockets within reach, to close one from the page.
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__sockets.push(this);
      }
    };
  });

  await page.goto(`http://${gate.addr}/`);
  await page.locator('#nick-dialog[open]').waitFor();
  await page.fill('#nick-input', 'alice');
  await page.click('#nick-submit');
  await page.locator('#nick-dialog').waitFor({ state: 'hidden' });
  await state(page, 'connected');
  await page.locator('#room-list li[data-room="lobby"]').waitFor();
  await page.fill('#join-input', 'r');
  await page.press('#join-input', 'Enter');
  await page.locator('#room-list li[data-room="r"] .nav-item.active').waitFor();
  const id = await page.textContent('#me-id');

  // bob, another member, with the client library in Node.js.
  const bob = connect(`ws://${gw.addr}/ws`, { WebSocket, minDelay: 50, maxDelay: 400, timeout: 5000, heartbeat: 0 });
  t.after(() => bob.close());
  await bob.ready(T); // a request made before is queued without a timeout
  await bob.nick('bob');
  await bob.join('r');
  assert.ok((await bob.members('r')).some((m) => m.id === id), 'alice is in r');
  await bob.send('r', { text: 'before the drop' });
  await page.locator('#messages .msg .body', { hasText: 'before the drop' }).waitFor();

  // The page's socket closes, with the door shut: the page keeps trying.
  const left = once(bob, 'presence', (p) => p.event === 'leave' && p.id === id, "alice's leave");
  gate.shut();
  const closed = await page.evaluate(() => {
    const ws = window.__sockets.at(-1);
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.close();
    return true;
  });
  assert.ok(closed, 'the page had an open WebSocket');
  await left;
  await state(page, 'reconnecting');
  for (let i = 0; i < 3; i++) await bob.send('r', { text: `missed ${i}` });

  // The door opens: the page gets back by itself (a nudge skips the
  // current delay) and recovers.
  const back = once(bob, 'presence', (p) => p.event === 'join' && p.id === id, "alice's return");
  gate.open();
  await page.evaluate(() => window.chatgate.client.reconnectNow());
  await state(page, 'connected');
  await back;
  assert.equal(await page.textContent('#me-id'), id, 'the same connection id');
  await page.locator('#messages .sys', { hasText: 'Reconnected' }).last().waitFor();
  await page.locator('#messages .msg .body', { hasText: 'missed 2' }).waitFor();

  await bob.send('r', { text: 'after the return' });
  await page.locator('#messages .msg .body', { hasText: 'after the return' }).waitFor();
  assert.deepEqual(await shown(page), ['before the drop', 'missed 0', 'missed 1', 'missed 2', 'after the return']);
  assert.equal(await page.locator('#messages .sys', { hasText: 'may be missing' }).count(), 0, 'no gap shown');

  // And alice can still talk: her message reaches bob.
  const heard = once(bob, 'message', (m) => m.data?.text === 'thanks bob', 'alice\'s message');
  await page.fill('#composer-input', 'thanks bob');
  await page.press('#composer-input', 'Enter');
  const m = await heard;
  assert.equal(m.from, id);

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: joinPath(ARTIFACTS, 'recovery-browser.png') });
  assert.deepEqual(problems, []);
});
