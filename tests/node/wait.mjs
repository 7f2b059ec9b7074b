// Bounded waits for the Node tests: every wait ends, and when it ends
// without what it waited for, its error says what that was.
import assert from 'node:assert/strict';

export const WAIT = 5000; // ms, the bound of every single wait

// within resolves or rejects as promise does, or rejects after ms.
export function within(promise, ms, what) {
  let timer;
  const expired = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout (${ms} ms) waiting for ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

// once resolves with the arguments of the next `event` of emitter (a
// socket.io-client Socket or Manager, or a ws WebSocket), or rejects after
// ms. Register it before causing the event.
export function once(emitter, event, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const on = (...args) => { clearTimeout(timer); resolve(args); };
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`timeout (${ms} ms) waiting for "${event}"`));
    }, ms);
    emitter.once(event, on);
  });
}

// Queue records what an emitter delivers, so that a test can ask for an
// item after it arrived without racing its listener. all keeps every item
// pushed, in order, whether a next took it or not.
export class Queue {
  constructor() { this.items = []; this.all = []; this.waiters = []; }

  // push hands item to the oldest waiter whose pred accepts it, or keeps
  // it for a later next.
  push(item) {
    this.all.push(item);
    const i = this.waiters.findIndex((w) => w.pred(item));
    if (i >= 0) { const [w] = this.waiters.splice(i, 1); w.resolve(item); return; }
    this.items.push(item);
  }

  // next resolves with the oldest item pred accepts, removing it, or
  // rejects after ms.
  next(pred, what, ms = WAIT) {
    const i = this.items.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (item) => { clearTimeout(w.timer); resolve(item); } };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timeout (${ms} ms) waiting for ${what}`));
      }, ms);
      this.waiters.push(w);
    });
  }

  // none asserts that no kept item pred accepts.
  none(pred, what) {
    const hit = this.items.find(pred);
    assert.equal(hit, undefined, `unexpected ${what}: ${JSON.stringify(hit)}`);
  }
}
