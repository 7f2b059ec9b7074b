// Starts the real gateway binary for a test and stops it afterwards.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let built;

// SIOCLIENT_DIR is the socket.io-client bundle the gateway serves
// (npm ci --prefix sioclient), by absolute path: the gateway's default,
// sioclient/node_modules/socket.io-client/dist, is relative to the
// repository root, and the tests run gateways with the cwd of node.
export const SIOCLIENT_DIR = join(repo, 'sioclient', 'node_modules', 'socket.io-client', 'dist');

// hasFlag reports whether args set the flag name (without dashes), as
// -name, --name, -name=… or --name=…: Go's flag package takes all four.
function hasFlag(args, name) {
  return args.some((a) => /^--?([^=]+)/.exec(a)?.[1] === name);
}

// gatewayBinary builds ./cmd/gateway once per process unless CHATGATE_BIN
// names a binary already built by the test script.
export function gatewayBinary() {
  if (process.env.CHATGATE_BIN) return process.env.CHATGATE_BIN;
  if (!built) {
    built = join(mkdtempSync(join(tmpdir(), 'chatgate-node-')), 'gateway');
    execFileSync('go', ['build', '-o', built, './cmd/gateway'], { cwd: repo, stdio: 'inherit' });
  }
  return built;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

// startGateway runs the binary on a free loopback port and resolves once
// /healthz answers.
export async function startGateway(args = [], port) {
  port = port ?? await freePort();
  const addr = `127.0.0.1:${port}`;
  // No admin listener unless a test asks for one: tests run gateways side by side.
  const adminArgs = args.some((a) => a.startsWith('-admin-addr')) ? [] : ['-admin-addr='];
  // The server API's default port would collide between gateways started
  // side by side: off unless a test sets it.
  if (!args.some((a) => a.startsWith('-api-addr'))) adminArgs.push('-api-addr=');
  // Tests of other features send faster than a chat user may: the rate
  // limits are off unless a test sets them.
  const rateArgs = [];
  if (!args.some((a) => a.startsWith('-rate-messages'))) rateArgs.push('-rate-messages=-1');
  if (!args.some((a) => a.startsWith('-rate-bytes'))) rateArgs.push('-rate-bytes=-1');
  // Every gateway serves the installed bundle at /socket.io/socket.io.js,
  // as one started from the repository root does, unless a test chooses
  // (its own -sio-client-dir, or -sio-serve-client); a test's flags come
  // last anyway, and the last of a repeated flag wins.
  const clientArgs = hasFlag(args, 'sio-client-dir') || hasFlag(args, 'sio-serve-client') ? [] : ['-sio-client-dir', SIOCLIENT_DIR];
  const proc = spawn(gatewayBinary(), ['-addr', addr, ...adminArgs, ...rateArgs, ...clientArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proc.stdout.on('data', (d) => { logs += d; });
  proc.stderr.on('data', (d) => { logs += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      const r = await fetch(`http://${addr}/healthz`);
      if (r.status === 200) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`gateway did not start:\n${logs}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    addr, port, proc, exited,
    logs: () => logs,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
}
