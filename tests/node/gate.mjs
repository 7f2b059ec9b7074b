// A TCP relay in front of a gateway, with a door the test opens and shuts:
// an outage the test controls, during which a client cannot get back in.
//
// While the door is shut, a connection whose first request would open a
// new session is reset as soon as its request line arrives: the client's
// reconnect attempts fail, and it keeps retrying by itself. Everything
// else passes: connections already relayed, and the requests of an
// existing Engine.IO session (those with a sid), such as the close packet
// socket.io-client POSTs when a polling transport is closed — the gateway
// must see it to notice the drop. Bytes pass through unchanged.
import net from 'node:net';

// opensSession reports whether an HTTP request line opens a session: a
// WebSocket or an Engine.IO handshake, or any other request, rather than
// one of an existing Engine.IO session (…/socket.io/?…&sid=…).
function opensSession(line) {
  const target = line.split(' ')[1] || '';
  return !(target.startsWith('/socket.io/') && /[?&]sid=/.test(target));
}

// startGate listens on a free loopback port and relays each connection to
// target ("host:port"). It resolves with {addr, port, open(), shut(),
// refused, close()}; the door starts open, and refused counts the
// connections it turned away.
export async function startGate(target) {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  let isOpen = true;
  const live = new Set();
  const gate = {
    addr: '', port: 0, refused: 0,
    open() { isOpen = true; },
    shut() { isOpen = false; },
    close() {
      for (const s of live) s.destroy();
      live.clear();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
  const relay = (down, head) => {
    const up = net.connect(port, host);
    live.add(down);
    live.add(up);
    const end = () => {
      down.destroy();
      up.destroy();
      live.delete(down);
      live.delete(up);
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    if (head.length) up.write(head);
    down.pipe(up);
    up.pipe(down);
  };
  const srv = net.createServer((down) => {
    // Hold the bytes until the request line is in, then decide.
    let head = Buffer.alloc(0);
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const eol = head.indexOf('\r\n');
      if (eol < 0 && head.length < 8192) return;
      down.off('data', onData);
      down.pause();
      const line = head.subarray(0, eol < 0 ? head.length : eol).toString('latin1');
      if (!isOpen && opensSession(line)) {
        gate.refused++;
        down.resetAndDestroy();
        return;
      }
      relay(down, head);
    };
    down.on('data', onData);
    down.on('error', () => down.destroy());
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  gate.port = srv.address().port;
  gate.addr = `127.0.0.1:${gate.port}`;
  return gate;
}
