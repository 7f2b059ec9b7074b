// Socket.IO namespaces in chat mode (-sio-namespaces, docs/socketio.md
// "Namespaces") with the real socket.io-client: io(url) and io(url +
// "/admin") share one Manager, so one Engine.IO connection, and each
// namespace is a socket of its own with its own rooms.
//
// Every wait has a timeout, and every test closes its sockets and stops
// its gateway in t.after.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Manager } from 'socket.io-client';
import { startGateway, gatewayBinary } from './gateway.mjs';
import { WAIT, once } from './wait.mjs';
import { withPosition, roomMessage } from './position.mjs';

before(() => { gatewayBinary(); });

// Sock is a socket.io-client socket recording the "message" events it
// gets, in order.
class Sock {
  constructor(socket) {
    this.socket = socket;
    this.messages = [];
    this.waiters = [];
    socket.on('message', (...args) => {
      const w = this.waiters.shift();
      if (w) w(args); else this.messages.push(args);
    });
  }
  ack(event, ...args) { return this.socket.timeout(WAIT).emitWithAck(event, ...args); }
  // nextMessage resolves with the arguments of the next "message" event.
  nextMessage() {
    if (this.messages.length) return Promise.resolve(this.messages.shift());
    return new Promise((resolve, reject) => {
      const w = (args) => { clearTimeout(timer); resolve(args); };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timeout (${WAIT} ms) waiting for a message`));
      }, WAIT);
      this.waiters.push(w);
    });
  }
}

// connectPair opens "/" and "/admin" on one Manager with transports.
async function connectPair(gw, managers, transports) {
  const manager = new Manager(`http://${gw.addr}`, { transports, reconnection: false, timeout: WAIT });
  managers.push(manager);
  const root = new Sock(manager.socket('/'));
  const admin = new Sock(manager.socket('/admin'));
  await Promise.all([once(root.socket, 'connect'), once(admin.socket, 'connect')]);
  return { manager, root, admin };
}

test('socket.io-client: io(url) and io(url + "/admin") share a Manager, rooms are per namespace', async (t) => {
  const gw = await startGateway(['-loops', '2', '-sio-namespaces', '/admin']);
  const managers = [];
  t.after(async () => {
    for (const m of managers) m.engine?.close();
    await gw.stop();
  });

  const a = await connectPair(gw, managers, ['websocket']);
  // b long-polls: the namespaces' packets share its polling payloads.
  const b = await connectPair(gw, managers, ['polling']);
  // One Engine.IO connection per Manager, one socket id per namespace.
  assert.equal(a.root.socket.io, a.admin.socket.io);
  assert.notEqual(a.root.socket.id, a.admin.socket.id);

  withPosition(await a.root.ack('join', 'lobby'), { room: 'lobby', count: 1 });
  withPosition(await a.admin.ack('join', 'lobby'), { room: 'lobby', count: 1 }, "/admin's lobby is not /'s");
  withPosition(await b.root.ack('join', 'lobby'), { room: 'lobby', count: 2 });
  withPosition(await b.admin.ack('join', 'lobby'), { room: 'lobby', count: 2 });
  assert.deepEqual((await b.admin.ack('members', 'lobby')).members.map((m) => m.id).sort(),
    [a.admin.socket.id, b.admin.socket.id].sort());

  // A message in "/"'s lobby reaches "/"'s members only, and one in
  // /admin's lobby /admin's members only: each socket's next message is
  // its own namespace's.
  assert.deepEqual(await a.root.ack('message', { room: 'lobby', data: 'for root' }), { ok: true });
  assert.deepEqual(await a.admin.ack('message', { room: 'lobby', data: 'for admins' }), { ok: true });
  const { msg: atRoot } = roomMessage(await b.root.nextMessage());
  assert.equal(atRoot.data, 'for root');
  assert.equal(atRoot.room, 'lobby');
  assert.equal(atRoot.from, a.root.socket.id);
  const { msg: atAdmin } = roomMessage(await b.admin.nextMessage());
  assert.equal(atAdmin.data, 'for admins');
  assert.equal(atAdmin.room, 'lobby');
  assert.equal(atAdmin.from, a.admin.socket.id);

  // A direct message to the /admin socket arrives on /admin.
  assert.deepEqual(await b.root.ack('message', { to: a.admin.socket.id, data: 'psst' }), { ok: true });
  const [dm] = await a.admin.nextMessage();
  assert.equal(dm.data, 'psst');
  assert.equal(a.root.messages.length, 0, 'nothing reached the "/" socket of the Manager');

  // An unlisted namespace is refused on the same connection.
  const nope = a.manager.socket('/nope');
  const [err] = await once(nope, 'connect_error');
  assert.equal(err.message, 'Invalid namespace');

  // Leaving /admin leaves "/" connected on the same Manager.
  a.admin.socket.disconnect();
  assert.deepEqual(await a.root.ack('ping'), { ok: true });
  withPosition(await b.admin.ack('join', 'lobby'), { room: 'lobby', count: 1 }, 'the /admin socket that left is gone');
});
