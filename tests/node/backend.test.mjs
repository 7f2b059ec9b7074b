// The backend proxy (-proxy-event-url) driven by the real socket.io-client:
// an application event (a name outside the built-in set) goes to the
// application's backend — here a Node.js HTTP server on loopback — and its
// answer comes back as the acknowledgement: the backend's ack args, or its
// error as the ack's one argument {error: {code, message}}; an emit command
// in the answer reaches another socket.io-client socket as that event with
// its args. tests/e2e/proxy_backend_test.go covers the rest with Go clients.
//
// Every wait has a timeout; sockets, gateways and the backend are closed
// in t.after.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { io } from 'socket.io-client';
import { startGateway, gatewayBinary } from './gateway.mjs';
import { WAIT, within } from './wait.mjs';

before(() => { gatewayBinary(); });

// startBackend serves POST /event: "echo" acks its args, "fail" answers
// the backend's own error, "tell" emits "news" to the client named by its
// first arg. It records every call.
async function startBackend() {
  const calls = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const call = JSON.parse(body);
      calls.push(call);
      let answer;
      switch (call.event) {
        case 'echo':
          answer = { result: { ack: call.args } };
          break;
        case 'fail':
          answer = { error: { code: 'nope', message: 'not today' } };
          break;
        case 'tell':
          answer = {
            result: {
              ack: ['told'],
              commands: [{ emit: { event: 'news', args: [1, 'two', { three: [3] }], to: { client: call.args[0] } } }],
            },
          };
          break;
        default:
          answer = { error: { code: 'no_such_event', message: `unknown event ${call.event}` } };
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${srv.address().port}/event`,
    calls,
    close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(resolve); }),
  };
}

// setup starts a backend and a gateway using it, and closes both (and
// every socket opened through connect) after the test.
async function setup(t) {
  const backend = await startBackend();
  const sockets = [];
  let gw;
  t.after(async () => {
    for (const s of sockets) s.close();
    if (gw) await gw.stop();
    await backend.close();
  });
  gw = await startGateway(['-loops', '2', '-proxy-event-url', backend.url]);
  const connect = () => {
    const socket = io(`http://${gw.addr}`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT });
    sockets.push(socket);
    return within(new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(socket));
      socket.once('connect_error', reject);
    }), WAIT, 'socket.io connect');
  };
  return { backend, gw, connect };
}

test('emitWithAck of an application event resolves with the backend\'s ack', async (t) => {
  const { backend, connect } = await setup(t);
  const s = await connect();
  // emitWithAck resolves with the first ack argument.
  const first = await s.timeout(WAIT).emitWithAck('echo', { a: [1, null] }, 'two', 3);
  assert.deepEqual(first, { a: [1, null] });
  // A callback gets every one of them.
  const all = await within(new Promise((resolve) => {
    s.emit('echo', { a: [1, null] }, 'two', 3, (...args) => resolve(args));
  }), WAIT, 'the ack callback');
  assert.deepEqual(all, [{ a: [1, null] }, 'two', 3]);
  // The backend got the event, its args and the socket's id.
  const call = backend.calls.at(-1);
  assert.equal(call.event, 'echo');
  assert.equal(call.client, s.id);
  assert.equal(call.namespace, '/');
  assert.deepEqual(call.args, [{ a: [1, null] }, 'two', 3]);
  // A built-in name is not an application event.
  const n = backend.calls.length;
  const ping = await s.timeout(WAIT).emitWithAck('ping');
  assert.deepEqual(ping, { ok: true });
  assert.equal(backend.calls.length, n);
});

test('the backend\'s error is the ack\'s first argument', async (t) => {
  const { connect } = await setup(t);
  const s = await connect();
  const ack = await s.timeout(WAIT).emitWithAck('fail', 'x');
  assert.deepEqual(ack, { error: { code: 'nope', message: 'not today' } });
  const unknown = await s.timeout(WAIT).emitWithAck('no-such-event');
  assert.deepEqual(unknown, { error: { code: 'no_such_event', message: 'unknown event no-such-event' } });
  // The socket stays connected and usable.
  assert.equal(s.connected, true);
  assert.deepEqual(await s.timeout(WAIT).emitWithAck('echo', 'still'), 'still');
});

test('an emit command reaches another socket as that event with its args', async (t) => {
  const { connect } = await setup(t);
  const alice = await connect();
  const bob = await connect();
  const aliceEvents = [];
  alice.onAny((event, ...args) => aliceEvents.push({ event, args }));
  const got = within(new Promise((resolve) => bob.once('news', (...args) => resolve(args))), WAIT, 'news at bob');
  assert.equal(await alice.timeout(WAIT).emitWithAck('tell', bob.id), 'told');
  assert.deepEqual(await got, [1, 'two', { three: [3] }]);
  // alice was not the target. Pushes to one socket arrive in order, so
  // once an emit addressed to her afterwards arrives, anything sent to her
  // before would be there too: her events are exactly that one.
  const marker = within(new Promise((resolve) => alice.once('news', (...args) => resolve(args))), WAIT, 'news at alice');
  assert.equal(await bob.timeout(WAIT).emitWithAck('tell', alice.id), 'told');
  assert.deepEqual(await marker, [1, 'two', { three: [3] }]);
  assert.deepEqual(aliceEvents, [{ event: 'news', args: [1, 'two', { three: [3] }] }]);
});
