// Reconnect-storm control seen by the JavaScript client (web/static/client.js):
// a gateway over its handshake rate (-handshake-rate) refuses the client
// with close 1013 "retry-after=<ms>" (the client dials /ws?limited=close)
// and the client comes back after that delay; a close 1012
// "reconnect=<ms>" (a draining node) makes it come back within the window;
// other drops back off with full jitter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { connect, retryDelay } from '../../web/static/client.js';
import { freePort, startGateway } from './gateway.mjs';

// nextState resolves with the info of client's next `state` event to
// `want`, or rejects after ms.
function nextState(client, want, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${want} state within ${ms} ms`)); }, ms);
    const off = client.on('state', (state, info) => {
      if (state !== want) return;
      clearTimeout(timer);
      off();
      resolve(info);
    });
  });
}

test('client: over the handshake rate, the gateway closes 1013 and the client returns after the delay', async (t) => {
  // One handshake per second, one at once: the second client is refused.
  const gw = await startGateway(['-loops', '1', '-handshake-rate', '1', '-handshake-burst', '1']);
  t.after(() => gw.stop());
  const url = `ws://${gw.addr}/ws`;
  const opts = { WebSocket, minDelay: 50, maxDelay: 400, timeout: 5000 };
  const a = connect(url, opts);
  t.after(() => a.close());
  await a.ready(5000);

  const b = connect(url, opts);
  t.after(() => b.close());
  const refused = await nextState(b, 'reconnecting', 5000);
  assert.equal(refused.code, 1013, `reconnecting after ${JSON.stringify(refused)}`);
  const m = /^retry-after=(\d+)$/.exec(refused.reason);
  assert.ok(m, `reason ${refused.reason}`);
  const ms = Number(m[1]);
  assert.ok(ms >= 1000 && ms <= 61000, `retry-after ${ms} ms`);
  // The delay honours the gateway's, not the client's 50..400 ms backoff.
  assert.ok(refused.delay >= ms && refused.delay < ms + 1000, `delay ${refused.delay} for retry-after=${ms}`);
  const started = Date.now();
  await b.ready(ms + 5000);
  assert.ok(Date.now() - started >= ms - 100, 'came back before the delay');
});

test('client: a close 1012 reconnect=<ms> brings the client back within the window', async (t) => {
  // A stand-in for a draining node: the first connection is closed with
  // 1012 at once, the next ones are kept.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.on('listening', r));
  t.after(() => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(r); }));
  let conns = 0;
  wss.on('connection', (ws) => {
    conns++;
    if (conns === 1) {
      ws.close(1012, 'reconnect=300');
      return;
    }
    ws.send(JSON.stringify({ type: 'welcome', id: 'c' + conns }));
  });
  // The client's own backoff is a minute: a delay within the 300 ms window
  // is the hint's (the backoff falls in it once in 200).
  const c = connect(`ws://127.0.0.1:${wss.address().port}/ws`, { WebSocket, minDelay: 60000, maxDelay: 60000, timeout: 5000 });
  t.after(() => c.close());
  const info = await nextState(c, 'reconnecting', 5000);
  assert.equal(info.code, 1012);
  assert.ok(info.delay >= 0 && info.delay <= 300, `delay ${info.delay}, want within the 300 ms window (not the 60 s backoff)`);
  await c.ready(5000);
  assert.equal(conns, 2);
});

test('client: a real drain (SIGTERM) closes 1012 with the hint, and the client comes back within it', async (t) => {
  // The gateway's own drain and client.js together: the reason the node
  // writes ("server restarting; reconnect=<ms>") is the one the client
  // parses. The node then comes back on the same port, as after a restart.
  const port = await freePort();
  const a = await startGateway(['-drain-spread', '300ms', '-drain-timeout', '3s'], port);
  t.after(() => a.stop());
  // A minute of backoff, as above.
  const c = connect(`ws://127.0.0.1:${port}/ws`, { WebSocket, minDelay: 60000, maxDelay: 60000, timeout: 5000 });
  t.after(() => c.close());
  await c.ready(5000);
  const reconnecting = nextState(c, 'reconnecting', 5000);
  a.proc.kill('SIGTERM');
  const info = await reconnecting;
  assert.equal(info.code, 1012);
  assert.match(info.reason, /(?:^|[; ])reconnect=300(?:$|[; ])/);
  // Within the node's 300 ms window, not the client's own 60 s backoff.
  assert.ok(info.delay >= 0 && info.delay <= 300, `delay ${info.delay}, want within the 300 ms window`);
  assert.equal((await a.exited).code, 0);
  const b = await startGateway([], port);
  t.after(() => b.stop());
  // Its hinted try may come before the new node listens, and then its
  // backoff (a minute) applies: skip it until the client is back.
  const skip = setInterval(() => c.reconnectNow(), 100);
  try {
    await c.ready(15000);
  } finally {
    clearInterval(skip);
  }
});

test('client: retryDelay: full jitter under the cap, the 1012 window, the 1013 delay', () => {
  const opts = { minDelay: 100, maxDelay: 1000 };
  const n = 2000;
  let sum = 0;
  let low = 0;
  for (let i = 0; i < n; i++) {
    const d = retryDelay(1006, '', 3, opts); // cap min(1000, 100·2³) = 800
    assert.ok(d >= 0 && d <= 800, `backoff ${d}`);
    sum += d;
    if (d < 400) low++;
  }
  // Full jitter: uniform over [0, cap], so about half below cap/2 (equal
  // jitter would give none).
  assert.ok(low > n * 0.4 && low < n * 0.6, `${low} of ${n} below half the cap`);
  assert.ok(Math.abs(sum / n - 400) < 40, `mean ${sum / n}`);
  for (let i = 0; i < 200; i++) {
    assert.ok(retryDelay(1006, '', 40, opts) <= 1000, 'capped at maxDelay');
    const w = retryDelay(1012, 'reconnect=250', 9, opts);
    assert.ok(w >= 0 && w <= 250, `1012 window ${w}`);
    const r = retryDelay(1013, 'retry-after=2000', 0, opts);
    assert.ok(r >= 2000 && r < 3000, `1013 delay ${r}`);
  }
  // Without a usable hint, the usual backoff.
  assert.ok(retryDelay(1012, 'server restart', 0, opts) <= 100);
  assert.ok(retryDelay(1013, '', 0, opts) <= 100);
});
