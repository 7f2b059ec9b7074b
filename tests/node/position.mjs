// Room positions on the wire (docs/history.md), checked and stripped, so
// that a test can compare what it got with the exact shape it wants:
//
//   - join acks (native and Socket.IO) carry the room's position: `offset`,
//     the log's last offset, an integer ≥ 0, and `epoch`, 12 lowercase hex
//     digits;
//   - room messages (native `{"type":"message"}` and the Socket.IO
//     `message` object) carry their own `offset`;
//   - a Socket.IO room event (a message, or an event the server API or the
//     backend sent to a room) has the offset as an extra last argument, a
//     string of decimal digits: socket.io's connectionStateRecovery format.
import assert from 'node:assert/strict';

export const EPOCH = /^[0-9a-f]{12}$/;
const DIGITS = /^(0|[1-9][0-9]*)$/;

const where = (what) => (what ? `${what}: ` : '');

// assertOffset asserts that n is an offset: a safe integer ≥ 0.
export function assertOffset(n, what) {
  assert.ok(Number.isSafeInteger(n) && n >= 0, `${where(what)}offset ${JSON.stringify(n)}, want an integer >= 0`);
}

// withPosition asserts that got is want plus a room position (offset and
// epoch), and returns the position as {offset, epoch}.
export function withPosition(got, want, what) {
  assert.ok(got !== null && typeof got === 'object', `${where(what)}${JSON.stringify(got)} is not an object`);
  const { offset, epoch, ...rest } = got;
  assertOffset(offset, `${where(what)}${JSON.stringify(got)}`);
  assert.equal(typeof epoch, 'string', `${where(what)}epoch of ${JSON.stringify(got)}`);
  assert.match(epoch, EPOCH, `${where(what)}epoch of ${JSON.stringify(got)}`);
  assert.deepEqual(rest, want, what);
  return { offset, epoch };
}

// withOffset asserts that the room message m carries an offset, and
// returns m without it as msg, and the offset.
export function withOffset(m, what) {
  assert.ok(m !== null && typeof m === 'object', `${where(what)}${JSON.stringify(m)} is not an object`);
  const { offset, ...msg } = m;
  assertOffset(offset, `${where(what)}${JSON.stringify(m)}`);
  return { msg, offset };
}

// roomArgs checks the arguments of a Socket.IO room event: the last one
// is the offset as a string of decimal digits. It returns the arguments
// without it, and the offset as a number.
export function roomArgs(args, what) {
  assert.ok(Array.isArray(args) && args.length >= 1, `${where(what)}arguments ${JSON.stringify(args)}`);
  const last = args[args.length - 1];
  assert.equal(typeof last, 'string', `${where(what)}the last argument of ${JSON.stringify(args)} is not the offset string`);
  assert.match(last, DIGITS, `${where(what)}the last argument of ${JSON.stringify(args)} is not an offset`);
  const offset = Number(last);
  assertOffset(offset, what);
  return { args: args.slice(0, -1), offset };
}

// roomMessage checks the arguments of a Socket.IO room "message" event:
// [message, offset string], the message's `offset` equal to the string.
// It returns the message without its offset, and the offset.
export function roomMessage(args, what) {
  const { args: rest, offset } = roomArgs(args, what);
  assert.equal(rest.length, 1, `${where(what)}message arguments ${JSON.stringify(args)}`);
  assert.equal(rest[0]?.offset, offset, `${where(what)}the message's offset is not the last argument: ${JSON.stringify(args)}`);
  return { msg: withOffset(rest[0], what).msg, offset };
}
