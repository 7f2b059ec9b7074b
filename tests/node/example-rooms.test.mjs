// The rooms example (examples/rooms): the Socket.IO rooms-chat tutorial's
// front end, unchanged socket.io-client API, in headless Chromium against
// the real gateway and the example's Go backend behind -proxy-event-url and
// -proxy-disconnect-url, with a signing secret and an API key. Three people:
// alice and bob enter a room, are welcomed with the count, chat both ways;
// carol stays on the room list and sees it follow room_change (from the
// event's commands, then from the backend's disconnect handling through the
// server API); closing bob's tab says bye to alice.
//
// Needs examples/rooms/node_modules (npm ci in examples/rooms) and
// /usr/bin/chromium; without them the test is skipped, unless
// CHATGATE_REQUIRE_BROWSER=1 makes that a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, freePort, SIOCLIENT_DIR } from './gateway.mjs';
import { needs, launch } from './chromium.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const EXAMPLE = join(repo, 'examples', 'rooms');
// The file the page's <script src="/socket.io/socket.io.js"> must get.
const BUNDLE = join(SIOCLIENT_DIR, 'socket.io.js');
const ARTIFACTS = join(here, 'artifacts');

const { skip, ensure } = needs([[BUNDLE, 'npm ci --prefix sioclient']]);

const T = 15000; // per wait

// buildBackend compiles examples/rooms/backend into dir, bounded.
function buildBackend(dir) {
  const bin = join(dir, 'rooms-backend');
  return new Promise((resolve, reject) => {
    execFile('go', ['build', '-o', bin, './examples/rooms/backend'], { cwd: repo, timeout: 180000 },
      (err, _stdout, stderr) => (err ? reject(new Error(`go build ./examples/rooms/backend: ${err.message}\n${stderr}`)) : resolve(bin)));
  });
}

// startBackend runs the example backend and resolves once /healthz answers.
async function startBackend(bin, port, gatewayURL, apiURL, env) {
  const proc = spawn(bin, ['-addr', `127.0.0.1:${port}`, '-gateway-url', gatewayURL, '-api-url', apiURL, '-root', EXAMPLE],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let logs = '';
  proc.stdout.on('data', (d) => { logs += d; });
  proc.stderr.on('data', (d) => { logs += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the backend exited:\n${logs}`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.status === 200) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`the backend did not start:\n${logs}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    base, logs: () => logs,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

// person opens the page in its own browser context and waits until its
// socket is connected. script is the answer to the page's
// /socket.io/socket.io.js.
async function person(browser, url, name, problems) {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  const script = page.waitForResponse((r) => r.url() === `${url}/socket.io/socket.io.js`, { timeout: T });
  page.on('pageerror', (err) => problems.push(`${name}: page error ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`${name}: console error ${msg.text()} (${msg.location().url})`); });
  page.on('dialog', async (d) => { problems.push(`${name}: unexpected dialog`); await d.dismiss().catch(() => {}); });
  await page.goto(url);
  await page.locator('#status[data-state="connected"]').waitFor();
  return { name, context, page, script: await script };
}

async function setNickname(p, nick) {
  await p.page.fill('#name input', nick);
  await p.page.press('#name input', 'Enter');
}

async function enterRoom(p, room) {
  await p.page.fill('#welcome form input', room);
  await p.page.press('#welcome form input', 'Enter');
  // showRoom, the enter_room acknowledgement, ran.
  await p.page.locator('#room h3', { hasText: `Room ${room}` }).waitFor();
  assert.equal(await p.page.isHidden('#welcome'), true);
}

async function say(p, text) {
  await p.page.fill('#msg input', text);
  await p.page.press('#msg input', 'Enter');
}

function line(p, text) {
  return p.page.locator('#room ul li', { hasText: text }).waitFor();
}

// title waits until p's room title reads want; on a timeout the error
// says what it read instead.
async function title(p, want) {
  try {
    await p.page.waitForFunction((w) => document.querySelector('#room h3').innerText === w, want, { timeout: T });
  } catch (err) {
    const got = await p.page.innerText('#room h3').catch((e) => `(unreadable: ${e.message})`);
    err.message = `${p.name}'s room title: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}: ${err.message}`;
    throw err;
  }
}

function roomList(p) {
  return p.page.$$eval('#welcome ul li', (lis) => lis.map((li) => li.innerText));
}

// websocket waits until p's socket has upgraded from long-polling, so that
// closing its tab closes its connection at once.
function websocket(p) {
  return p.page.locator('#status[data-state="connected"][data-transport="websocket"]').waitFor();
}

// metric returns the value of one sample of the gateway's /metrics.
async function metric(adminURL, sample) {
  const text = await (await fetch(`${adminURL}/metrics`)).text();
  const row = text.split('\n').find((l) => l.startsWith(sample + ' '));
  return row ? Number(row.slice(sample.length + 1)) : 0;
}

// until polls check (bounded) until it returns true.
async function until(what, check) {
  const deadline = Date.now() + T;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('example rooms: the Socket.IO rooms tutorial on the gateway and its Go backend', { skip, timeout: 240000 }, async (t) => {
  ensure();
  const dir = mkdtempSync(join(tmpdir(), 'chatgate-rooms-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bin = await buildBackend(dir);

  const [gwPort, apiPort, adminPort, backendPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const key = randomBytes(16).toString('hex');
  const secret = randomBytes(16).toString('hex');
  const backendURL = `http://127.0.0.1:${backendPort}`;
  const apiURL = `http://127.0.0.1:${apiPort}`;
  const adminURL = `http://127.0.0.1:${adminPort}`;

  const backend = await startBackend(bin, backendPort, `http://127.0.0.1:${gwPort}`, apiURL,
    { CHATGATE_API_KEY: key, CHATGATE_PROXY_SECRET: secret });
  t.after(() => backend.stop());
  const gw = await startGateway([
    '-api-addr', `127.0.0.1:${apiPort}`, '-api-key', key,
    '-admin-addr', `127.0.0.1:${adminPort}`,
    '-proxy-event-url', `${backendURL}/chatgate/event`,
    '-proxy-disconnect-url', `${backendURL}/chatgate/disconnect`,
    '-proxy-secret', secret,
    '-sio-cors-origins', backendURL,
  ], gwPort);
  t.after(() => gw.stop());

  // The backend refuses requests the gateway did not sign.
  const probe = JSON.stringify({ client: 'x', user: '', event: 'no_such_event', args: [] });
  const post = (sig) => fetch(`${backendURL}/chatgate/event`, {
    method: 'POST', body: probe, headers: { 'Content-Type': 'application/json', ...(sig ? { 'X-Chatgate-Signature': sig } : {}) },
  });
  assert.equal((await post()).status, 401, 'unsigned');
  assert.equal((await post('sha256=' + '0'.repeat(64))).status, 401, 'wrongly signed');
  const signed = await post('sha256=' + createHmac('sha256', secret).update(probe).digest('hex'));
  assert.equal(signed.status, 200);
  assert.deepEqual((await signed.json()).error.code, 'unknown_event');

  // The page gets the gateway's URL from the backend.
  assert.match(await (await fetch(`${backendURL}/config.js`)).text(), new RegExp(`window\\.CHATGATE_URL = "http://127\\.0\\.0\\.1:${gwPort}"`));

  // /socket.io/socket.io.js on the backend's origin is the gateway's
  // bundle: the npm file's bytes, the gateway's ETag (the quoted
  // socket.io-client version), and a revalidation answered 304 by the
  // gateway through the backend. The backend has no copy of its own.
  assert.match(gw.logs(), /serving the socket\.io client bundle/, 'the gateway found the bundle');
  const npmBytes = readFileSync(BUNDLE);
  const version = JSON.parse(readFileSync(join(SIOCLIENT_DIR, '..', 'package.json'), 'utf8')).version;
  const etag = `"${version}"`;
  const direct = await fetch(`http://127.0.0.1:${gwPort}/socket.io/socket.io.js`);
  assert.equal(direct.headers.get('etag'), etag, 'the gateway\'s own ETag');
  await direct.arrayBuffer();
  const viaBackend = await fetch(`${backendURL}/socket.io/socket.io.js`);
  assert.equal(viaBackend.status, 200);
  assert.equal(viaBackend.headers.get('etag'), etag);
  assert.ok(Buffer.from(await viaBackend.arrayBuffer()).equals(npmBytes), 'the backend\'s socket.io.js is the npm file');
  const revalidated = await fetch(`${backendURL}/socket.io/socket.io.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(revalidated.status, 304);
  assert.equal(revalidated.headers.get('etag'), etag);
  assert.equal((await fetch(`${backendURL}/socket.io-client/socket.io.min.js`)).status, 404, 'the old copy');

  const browser = await launch(t);
  const problems = [];
  const alice = await person(browser, backendURL, 'alice', problems);
  const bob = await person(browser, backendURL, 'bob', problems);
  const carol = await person(browser, backendURL, 'carol', problems);

  // The page's script tag got the same, in the browser.
  assert.equal(alice.script.status(), 200);
  assert.equal(alice.script.headers().etag, etag);
  assert.ok((await alice.script.body()).equals(npmBytes), 'the page\'s socket.io.js is the npm file');

  await setNickname(alice, 'alice');
  await setNickname(bob, 'bob');

  // alice opens the kitchen: everyone's room list shows it (room_change to
  // all, an emit command); she is alone, so no welcome.
  await enterRoom(alice, 'kitchen');
  for (const p of [bob, carol]) await p.page.locator('#welcome ul li', { hasText: 'kitchen' }).waitFor();
  assert.deepEqual(await roomList(carol), ['kitchen']);

  // bob comes in: alice is told, with the count.
  await enterRoom(bob, 'kitchen');
  await line(alice, 'bob arrived!');
  await title(alice, 'Room kitchen (2)');
  assert.equal(await bob.page.innerText('#room h3'), 'Room kitchen');

  // The nicknames are the gateway's too (the set command).
  const members = await (await fetch(`${apiURL}/api/members`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `apikey ${key}` },
    body: JSON.stringify({ room: 'kitchen' }),
  })).json();
  assert.deepEqual(members.result.members.map((m) => m.nick).sort(), ['alice', 'bob']);

  // Messages both ways: "nick: msg" to the others, "You: msg" on the ack.
  await say(alice, 'hello bob');
  await line(bob, 'alice: hello bob');
  await line(alice, 'You: hello bob');
  await say(bob, 'hi alice');
  await line(alice, 'bob: hi alice');
  await line(bob, 'You: hi alice');
  assert.deepEqual(await alice.page.$$eval('#room ul li', (lis) => lis.map((li) => li.innerText)),
    ['bob arrived!', 'You: hello bob', 'bob: hi alice']);
  assert.deepEqual(await bob.page.$$eval('#room ul li', (lis) => lis.map((li) => li.innerText)),
    ['alice: hello bob', 'You: hi alice']);

  mkdirSync(ARTIFACTS, { recursive: true });
  await alice.page.screenshot({ path: join(ARTIFACTS, 'example-rooms-alice.png') });

  // bob closes his tab: the gateway reports the close, the backend says
  // bye to the kitchen (one argument: the nickname), and alice's title
  // drops the count. With recovery on, "bye" also has the room event's
  // offset as a last string argument (docs/history.md), which is no count.
  await websocket(bob);
  await bob.context.close();
  await line(alice, 'bob left ㅠㅠ');
  await title(alice, 'Room kitchen');

  // alice leaves too: the kitchen is empty, and carol, in no room, learns
  // it from the room_change the backend sends every connection.
  await websocket(alice);
  await alice.context.close();
  await carol.page.waitForFunction(() => document.querySelectorAll('#welcome ul li').length === 0, null, { timeout: T });

  // The proxy's metrics: 6 events (nickname, enter_room, new_message per
  // person) answered, 2 closes reported.
  await until('the event and disconnect counters', async () =>
    await metric(adminURL, 'chatgate_proxy_calls_total{kind="event",result="ok"}') === 6 &&
    await metric(adminURL, 'chatgate_proxy_calls_total{kind="disconnect",result="ok"}') === 2);

  assert.deepEqual(problems, []);
  // The backend logged nothing worse than the two probes it refused.
  assert.doesNotMatch(backend.logs(), /level=ERROR/, 'backend log');
  assert.equal(backend.logs().match(/level=WARN/g)?.length, 2, backend.logs());
  assert.doesNotMatch(gw.logs(), /proxy:/, 'gateway log');
});
