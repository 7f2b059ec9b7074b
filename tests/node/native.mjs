// The native-protocol client (docs/protocol.md) of the tests in which it
// chats next to Socket.IO clients: the `ws` package on /ws.
import WebSocket from 'ws';
import { WAIT, within, Queue } from './wait.mjs';

// Native is a /ws client speaking the native JSON protocol. connect
// resolves once its welcome has come, and closes it after the test t;
// options go to the ws WebSocket (perMessageDeflate, …).
export class Native {
  static async connect(t, addr, options) {
    const n = new Native(new WebSocket(`ws://${addr}/ws`, options));
    t.after(() => n.ws.terminate());
    await within(new Promise((resolve, reject) => {
      n.ws.once('open', resolve);
      n.ws.once('error', reject);
    }), WAIT, 'native open');
    const welcome = await n.inbox.next((m) => m.type === 'welcome', 'welcome');
    n.id = welcome.id;
    return n;
  }

  constructor(ws) {
    this.ws = ws;
    this.inbox = new Queue();
    this.seq = 0;
    ws.on('message', (data) => this.inbox.push(JSON.parse(data.toString())));
  }

  send(obj) { this.ws.send(JSON.stringify(obj)); }

  // request sends obj with an id and resolves with its ack or error.
  request(obj) {
    const id = `n${++this.seq}`;
    this.send({ ...obj, id });
    return this.inbox.next((m) => m.id === id && (m.type === 'ack' || m.type === 'error'), `reply to ${obj.type}`);
  }

  presence(event, id) {
    return this.inbox.next((m) => m.type === 'presence' && m.event === event && m.id === id, `presence ${event} of ${id}`);
  }

  message(match, what) {
    return this.inbox.next((m) => m.type === 'message' && match(m), what);
  }
}
