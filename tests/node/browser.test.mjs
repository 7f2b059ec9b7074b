// The chat page served by the gateway at /, driven in real headless
// Chromium (the Debian package at /usr/bin/chromium) with playwright-core:
// two people chat both ways, see each other in member lists and presence,
// survive a gateway crash and restart on the same port, and a nickname made
// of HTML stays text. Screenshots go to tests/node/artifacts/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join as joinPath, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway } from './gateway.mjs';
import { needs, launch } from './chromium.mjs';

const ARTIFACTS = joinPath(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const XSS = '<img src=x onerror=alert(1)>';

const { skip, ensure } = needs();

const T = 15000; // per wait

// Person is one browser context (its own storage) with one page.
async function person(browser, base, name, viewport, problems) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  // An alert would mean a nickname or message ran as HTML.
  page.on('dialog', async (d) => {
    problems.push(`${name}: unexpected ${d.type()} dialog "${d.message()}"`);
    await d.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => problems.push(`${name}: page error ${err.message}`));
  await page.goto(base);
  await page.locator('#nick-dialog[open]').waitFor();
  await page.fill('#nick-input', name);
  await page.click('#nick-submit');
  await page.locator('#nick-dialog').waitFor({ state: 'hidden' });
  await state(page, 'connected');
  const id = await page.textContent('#me-id');
  assert.match(id, /^\S+$/, 'connection id shown');
  assert.equal(await page.textContent('#me-nick'), name);
  // First visit: the page joins the lobby by itself.
  await page.locator('#room-list li[data-room="lobby"]').waitFor();
  return { name, context, page, id };
}

function state(page, want) {
  return page.waitForFunction((s) => document.getElementById('conn').dataset.state === s, want, { timeout: T });
}

async function enter(p, room) {
  await p.page.fill('#join-input', room);
  await p.page.press('#join-input', 'Enter');
  await p.page.locator(`#room-list li[data-room="${room}"] .nav-item.active`).waitFor();
  assert.equal(await p.page.textContent('#conv-title'), '#' + room);
}

async function say(p, text) {
  await p.page.fill('#composer-input', text);
  await p.page.press('#composer-input', 'Enter');
}

function received(p, text) {
  return p.page.locator('#messages .msg:not(.mine) .body', { hasText: text }).waitFor();
}

// memberId waits until p's member list shows name, and returns its id.
async function memberId(p, name) {
  const li = p.page.locator('#member-list li', { has: p.page.locator('.member-name', { hasText: name }) });
  await li.first().waitFor();
  return li.first().getAttribute('data-id');
}

async function shot(p, file) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await p.page.screenshot({ path: joinPath(ARTIFACTS, file) });
}

test('browser: chat page in headless Chromium', { skip, timeout: 120000 }, async (t) => {
  ensure();
  const args = ['-loops', '2'];
  let gw = await startGateway(args);
  t.after(() => gw.stop());
  const base = `http://${gw.addr}/`;
  const browser = await launch(t);
  const problems = [];

  const alice = await person(browser, base, 'alice', { width: 1280, height: 800 }, problems);
  const mallory = await person(browser, base, XSS, { width: 1280, height: 800 }, problems);
  assert.notEqual(alice.id, mallory.id);

  // Both join a new room; alice sees mallory arrive through presence.
  await enter(alice, 'general');
  await enter(mallory, 'general');
  await alice.page.locator('#messages .sys', { hasText: `${XSS} joined` }).waitFor();
  assert.equal(await memberId(alice, XSS), mallory.id);
  assert.equal(await memberId(mallory, 'alice'), alice.id);
  await alice.page.waitForFunction(() => document.getElementById('member-count').textContent === '2');
  await alice.page.locator('#conv-sub', { hasText: '2 members' }).waitFor();

  // Messages both ways, with sender and time.
  await say(alice, 'hello from alice');
  await received(mallory, 'hello from alice');
  await alice.page.locator('.msg.mine[data-status="sent"] .body', { hasText: 'hello from alice' }).waitFor();
  await say(mallory, 'hi alice, <b>this is not bold</b>');
  await received(alice, 'this is not bold');
  const last = alice.page.locator('#messages .msg:not(.mine)').last();
  assert.equal(await last.locator('.author').textContent(), XSS);
  assert.equal(await last.locator('.body').textContent(), 'hi alice, <b>this is not bold</b>');
  assert.match(await last.locator('time').textContent(), /\d{1,2}:\d{2}/);

  // The nickname is text everywhere: no <img>, <b> or script ran.
  for (const p of [alice, mallory]) {
    const dom = await p.page.evaluate(() => ({
      imgs: document.querySelectorAll('img').length,
      bolds: document.querySelectorAll('#messages b').length,
      text: document.body.textContent,
    }));
    assert.equal(dom.imgs, 0, `${p.name === XSS ? 'mallory' : p.name}: an <img> element was created`);
    assert.equal(dom.bolds, 0);
    assert.ok(dom.text.includes(XSS), 'the nickname is shown literally');
  }
  assert.equal(await mallory.page.textContent('#me-nick'), XSS);

  // Room list with live counts.
  await mallory.page.locator('#room-list li[data-room="general"] .count', { hasText: '2' }).waitFor();

  // Direct message: click a member.
  await alice.page.click(`#member-list li[data-id="${mallory.id}"] button`);
  await alice.page.locator('#conv-title', { hasText: '@' + XSS }).waitFor();
  await say(alice, 'a private word');
  await mallory.page.locator(`#dm-list li[data-key="dm:${alice.id}"] .badge`, { hasText: '1' }).waitFor();
  await mallory.page.click(`#dm-list li[data-key="dm:${alice.id}"] button`);
  await received(mallory, 'a private word');
  for (const p of [alice, mallory]) await p.page.click('#room-list li[data-room="general"] button');

  // Errors are shown with their code: a room name over 128 bytes.
  await alice.page.fill('#join-input', 'é'.repeat(100));
  await alice.page.press('#join-input', 'Enter');
  const toast = alice.page.locator('.toast[data-code="invalid_room"]');
  await toast.waitFor();
  assert.match(await toast.textContent(), /invalid_room/);
  await toast.locator('.toast-close').click();

  await shot(alice, 'browser-alice.png');
  await shot(mallory, 'browser-mallory.png');

  // A third person on a phone-sized screen.
  const phone = await person(browser, base, 'carol on a phone', { width: 375, height: 740 }, problems);
  await enter(phone, 'general');
  await say(alice, 'hi carol');
  await received(phone, 'hi carol');
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 375, `page is ${overflow}px wide on a 375px screen`);
  assert.ok(await phone.page.locator('#composer-input').isVisible());
  assert.ok(!(await phone.page.locator('#sidebar').isVisible()) || (await phone.page.locator('#sidebar').boundingBox()).x < 0,
    'the room list is a drawer on a narrow screen');
  await shot(phone, 'browser-narrow-375.png');
  await phone.page.click('#toggle-rooms');
  await phone.page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().x >= 0);
  await phone.page.waitForTimeout(250); // the drawer's slide-in transition
  await shot(phone, 'browser-narrow-375-rooms.png');
  await phone.page.click('#scrim', { position: { x: 360, y: 300 } });
  await phone.context.close();

  // The gateway crashes; both pages notice and keep retrying. Then alice's
  // network goes down too (no new connections from her browser), so that
  // mallory is back in the room first and alice's queued message has
  // someone to reach. The crash comes first on purpose: Chromium's offline
  // emulation can hold back the close of a WebSocket that is already open,
  // and a page that never hears of the crash shows 'connected' until its
  // heartbeat gives up (30 s), so cutting the network first made this test
  // fail about one run in three. Both waits are on states that last while
  // the gateway is down: a client that fails to reconnect stays
  // 'reconnecting' (shown as 'offline' once the browser is offline).
  await gw.stop();
  await state(mallory.page, 'reconnecting');
  await state(alice.page, 'reconnecting');
  await alice.context.setOffline(true);
  await state(alice.page, 'offline');
  await alice.page.locator('#messages .sys', { hasText: 'Connection lost' }).last().waitFor();
  await say(alice, 'typed while offline');
  const pending = alice.page.locator('.msg.mine[data-status="pending"]', { hasText: 'typed while offline' });
  await pending.waitFor();
  assert.match(await pending.locator('.status').textContent(), /Pending/);
  assert.equal(await alice.page.textContent('#conn-text'), 'Offline');
  assert.match(await alice.page.textContent('#conn-detail'), /1 pending/);
  await shot(alice, 'browser-alice-offline.png');

  gw = await startGateway(args, gw.port).catch((err) => {
    throw new Error(`could not restart the gateway on port ${gw.port} (its listener needs SO_REUSEADDR): ${err.message}`);
  });
  await state(mallory.page, 'connected');
  const malloryNew = await mallory.page.textContent('#me-id');
  assert.notEqual(malloryNew, mallory.id);
  await mallory.page.locator('#messages .sys', { hasText: 'Reconnected' }).last().waitFor();

  // alice's network returns: she reconnects by herself, rejoins, and her
  // pending message goes out.
  await alice.context.setOffline(false);
  await state(alice.page, 'connected');
  const aliceNew = await alice.page.textContent('#me-id');
  assert.notEqual(aliceNew, alice.id);
  await alice.page.locator('.msg.mine[data-status="sent"]', { hasText: 'typed while offline' }).waitFor();
  await received(mallory, 'typed while offline');
  assert.equal(await memberId(alice, XSS), malloryNew);
  assert.equal(await memberId(mallory, 'alice'), aliceNew);
  assert.equal(await alice.page.textContent('#me-nick'), 'alice');

  // And they chat again, both ways.
  await say(mallory, 'good to have you back');
  await received(alice, 'good to have you back');
  await say(alice, 'glad to be back');
  await received(mallory, 'glad to be back');
  await shot(alice, 'browser-alice-reconnected.png');
  await shot(mallory, 'browser-mallory-reconnected.png');

  assert.deepEqual(problems, []);
});
