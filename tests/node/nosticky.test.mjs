// Long-polling without sticky sessions (docs/deploy.md, "Without sticky
// sessions"): the real socket.io-client limited to polling, behind haproxy
// with scripts/haproxy-nosticky.cfg (round robin, no cookie, no hash) over
// three gateway nodes in cluster mode on a real nats-server, chats with a
// native /ws client on another node. Every request of the session may
// reach any node; the nodes forward the ones for other nodes' sessions
// over NATS (engineio/forward.go). Nothing is lost or repeated, and
// haproxy answers no request of the session with a 4xx or 5xx (counted
// from haproxy's own statistics).
//
// It needs the haproxy binary (Debian: apt-get install haproxy) and builds
// nats-server from the Go module cache (the module is a dependency of
// chatgate's tests). Without haproxy it skips, unless
// CHATGATE_REQUIRE_PROXIES=1 (scripts/test.sh sets it when haproxy is
// installed), as tests/e2e/proxy_test.go does.
//
// Every wait is bounded and every process started is stopped by its
// handle in t.after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { io } from 'socket.io-client';
import { startGateway, freePort } from './gateway.mjs';
import { WAIT, within, Queue } from './wait.mjs';
import { Native } from './native.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MESSAGES = 40; // each way

// which returns the path of the executable name on PATH (and /usr/sbin,
// where Debian installs haproxy), or undefined.
function which(name) {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    try {
      execFileSync('test', ['-x', join(dir, name)]);
      return join(dir, name);
    } catch { /* not here */ }
  }
  return undefined;
}

// until retries check every 25 ms until it returns true, for at most ms.
async function until(check, what, ms = WAIT) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timeout (${ms} ms) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// child spawns a process for the test and returns it with its output and
// a stop that kills it by its handle and waits for its exit.
function child(t, bin, args) {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proc.stdout.on('data', (d) => { logs += d; });
  proc.stderr.on('data', (d) => { logs += d; });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  };
  t.after(stop);
  return { proc, logs: () => logs, stop };
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

// metric reads one sample of a gateway's Prometheus metrics (0 if absent).
async function metric(adminAddr, name) {
  const text = await (await fetch(`http://${adminAddr}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

// haproxyStats returns haproxy's CSV statistics as one object per row,
// keyed by "<proxy>/<server>".
async function haproxyStats(statsAddr) {
  const text = await (await fetch(`http://${statsAddr}/stats;csv`)).text();
  const [head, ...rows] = text.trim().split('\n');
  const cols = head.replace(/^# /, '').split(',');
  const out = {};
  for (const row of rows) {
    const v = row.split(',');
    const o = Object.fromEntries(cols.map((c, i) => [c, v[i]]));
    out[`${o.pxname}/${o.svname}`] = o;
  }
  return out;
}

test('socket.io-client on polling behind haproxy round robin, no stickiness, 3 nodes: chats with a native client on another node, nothing lost, no 4xx/5xx', async (t) => {
  const haproxy = which('haproxy');
  if (!haproxy) {
    if (process.env.CHATGATE_REQUIRE_PROXIES === '1') assert.fail('haproxy not installed');
    t.skip('haproxy not installed');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'chatgate-nosticky-'));

  // nats-server, built from the module cache.
  const natsBin = join(dir, 'nats-server');
  execFileSync('go', ['build', '-o', natsBin, 'github.com/nats-io/nats-server/v2'], { cwd: repo, stdio: 'inherit' });
  const natsPort = await freePort();
  const nats = child(t, natsBin, ['-a', '127.0.0.1', '-p', String(natsPort)]);
  await until(() => portOpen(natsPort), `nats-server on ${natsPort}:\n${nats.logs()}`);

  // Three nodes in cluster mode, each with its metrics.
  const nodes = [];
  for (let i = 1; i <= 3; i++) {
    const admin = `127.0.0.1:${await freePort()}`;
    const gw = await startGateway(['-nats', `nats://127.0.0.1:${natsPort}`, '-node', `gw${i}`,
      '-admin-addr', admin, '-presence=false']);
    t.after(() => gw.stop());
    nodes.push({ gw, admin, tag: `gw${i}` });
  }
  for (const n of nodes) {
    await until(async () => await metric(n.admin, 'chatgate_cluster_nodes') === 2, `${n.tag} sees the other nodes`);
  }

  // haproxy with the shipped configuration, its example addresses
  // rewritten to the nodes, the root-only lines dropped, and the PROXY
  // header off (the native client talks to its node directly), plus a
  // statistics listener for the status counts.
  const port = await freePort();
  const statsAddr = `127.0.0.1:${await freePort()}`;
  let cfg = readFileSync(join(repo, 'scripts', 'haproxy-nosticky.cfg'), 'utf8')
    .replace(/bind :80$/m, `bind 127.0.0.1:${port}`)
    .replace(/^ {4}(chroot|user|group) .*\n/gm, '')
    .replace(/maxconn 200000$/m, 'maxconn 4000')
    .replace('default-server send-proxy-v2 ', 'default-server ');
  nodes.forEach((n, i) => { cfg = cfg.replaceAll(`10.0.0.1${i + 1}:8080`, n.gw.addr); });
  const live = cfg.split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n');
  assert.equal(/10\.0\.0\.1\d:8080/.test(live), false, 'every example node was rewritten');
  cfg += `\nfrontend stats\n    bind ${statsAddr}\n    stats enable\n    stats uri /stats\n`;
  const cfgPath = join(dir, 'haproxy.cfg');
  writeFileSync(cfgPath, cfg);
  const hap = child(t, haproxy, ['-W', '-db', '-f', cfgPath]);
  await until(async () => {
    const st = await haproxyStats(statsAddr);
    return ['gw1', 'gw2', 'gw3'].every((s) => st[`chatgate_polling/${s}`]?.status === 'UP');
  }, `haproxy up with its three nodes:\n${hap.logs()}`);

  // The Socket.IO client, polling only, through haproxy.
  const socket = io(`http://127.0.0.1:${port}`, { transports: ['polling'], forceNew: true, reconnection: false, timeout: WAIT });
  t.after(() => socket.close());
  const inbox = new Queue();
  const errors = [];
  socket.on('message', (arg) => inbox.push(arg));
  socket.on('connect_error', (e) => errors.push(`connect_error: ${e.message}`));
  socket.on('disconnect', (r) => errors.push(`disconnect: ${r}`));
  await within(new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  }), WAIT, 'socket.io connect through haproxy');
  const sid = socket.io.engine.id;
  const home = nodes.find((n) => sid.startsWith(n.tag + '.'));
  assert.ok(home, `sid ${sid} names one of the nodes`);
  const ack = await socket.timeout(WAIT).emitWithAck('join', 'nosticky');
  assert.equal(ack.room, 'nosticky');

  // The native client on another node.
  const other = nodes.find((n) => n !== home);
  const native = await Native.connect(t, other.gw.addr);
  await native.request({ type: 'join', room: 'nosticky' });
  await until(async () => (await native.request({ type: 'members', room: 'nosticky' })).members.length === 2,
    'both members seen from the native client\'s node');

  // Native → polling client, and polling client → native, interleaved.
  const fromSIO = new Queue();
  native.ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    if (m.type === 'message' && m.room === 'nosticky' && m.from === socket.id) fromSIO.push(m.data.n);
  });
  for (let i = 0; i < MESSAGES; i++) {
    native.send({ type: 'send', room: 'nosticky', data: { k: i } });
    const a = await socket.timeout(WAIT).emitWithAck('message', { room: 'nosticky', data: { n: i } });
    assert.equal(a.ok, true, `ack of message ${i}`);
  }
  const gotK = [];
  for (let i = 0; i < MESSAGES; i++) gotK.push((await inbox.next((m) => m.room === 'nosticky', `native message ${i}`)).data.k);
  const gotN = [];
  for (let i = 0; i < MESSAGES; i++) gotN.push(await fromSIO.next(() => true, `socket.io message ${i}`));
  assert.deepEqual(gotK, [...Array(MESSAGES).keys()], 'the polling client got every native message once, in order');
  assert.deepEqual(gotN, [...Array(MESSAGES).keys()], 'the native client got every polling message once, in order');
  assert.deepEqual(errors, [], 'the socket.io client saw no error and no disconnect');

  // Requests did cross nodes, and none failed.
  let answered = 0;
  for (const n of nodes) {
    answered += await metric(n.admin, 'chatgate_polling_forwarded_total{outcome="answered"}');
    for (const o of ['refused', 'unknown_node', 'unavailable', 'busy', 'bad']) {
      assert.equal(await metric(n.admin, `chatgate_polling_forwarded_total{outcome="${o}"}`), 0, `${n.tag}: forwarded ${o}`);
    }
  }
  assert.ok(answered >= MESSAGES, `forwarded requests answered: ${answered}, want at least ${MESSAGES}`);
  const stats = await haproxyStats(statsAddr);
  const st = stats['chatgate_polling/BACKEND'];
  assert.ok(Number(st.hrsp_2xx) > 2 * MESSAGES, `haproxy 2xx answers: ${st.hrsp_2xx}`);
  assert.equal(Number(st.hrsp_4xx), 0, 'haproxy counted no 4xx answer');
  assert.equal(Number(st.hrsp_5xx), 0, 'haproxy counted no 5xx answer');
  for (const s of ['gw1', 'gw2', 'gw3']) {
    assert.ok(Number(stats[`chatgate_polling/${s}`].hrsp_2xx) > 0, `round robin sent requests to ${s}`);
  }
});
