'use strict';

// Compatibility tests: the npm Nacos naming client (nacos@2.6.3, i.e.
// nacos-naming@2.6.3: HTTP v1 API plus UDP push) against a distrod node.
//
// Run with `node --test` in this directory. distrod is taken from
// $DISTROD_BIN, or built with `go build ./cmd/distrod` from the repository
// root when that is unset. The test starts its own node on free loopback
// ports and stops it in after().

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { NacosNamingClient } = require('nacos');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const GRPC_OFFSET = 1000;
const CLUSTER_OFFSET = 1001;
const READY_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 10000;
// A change must reach a subscriber this fast: the client polls only every
// cacheMillis (10 s), so anything quicker is a UDP push.
const PUSH_DEADLINE_MS = 3000;
// Long enough for the 10 s poll to deliver a change, to tell "late" (no
// push, poll only) from "never".
const POLL_DEADLINE_MS = 15000;
const TEST_TIMEOUT_MS = 60000;

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// withTimeout bounds a promise.
function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// eventually calls fn until it resolves without throwing, or rejects with
// its last error after timeoutMs.
async function eventually(fn, { timeoutMs = 5000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) {
        err.message = `${what} not met within ${timeoutMs} ms: ${err.message}`;
        throw err;
      }
    }
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

// ---------------------------------------------------------------- distrod

function distrodBin() {
  if (process.env.DISTROD_BIN) {
    const bin = path.resolve(process.env.DISTROD_BIN);
    fs.accessSync(bin, fs.constants.X_OK);
    return { bin, cleanup: () => {} };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distro-compat-node-bin-'));
  const bin = path.join(dir, 'distrod');
  execFileSync('go', [ 'build', '-o', bin, './cmd/distrod' ], {
    cwd: REPO_ROOT,
    env: { ...process.env, GOWORK: 'off' },
    stdio: [ 'ignore', 'inherit', 'inherit' ],
    timeout: 5 * 60 * 1000,
  });
  return { bin, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function canListen(port) {
  return new Promise(resolve => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

// freePort picks P in [20000, 31000) such that P, P+1000 and P+1001 are free
// on 127.0.0.1.
async function freePort() {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + crypto.randomInt(11000);
    if (await canListen(p) && await canListen(p + GRPC_OFFSET) && await canListen(p + CLUSTER_OFFSET)) {
      return p;
    }
  }
  throw new Error('no free port triple P, P+1000, P+1001 on 127.0.0.1');
}

// Distrod is one distrod process with its output kept in memory.
class Distrod {
  constructor(bin, extraArgs = []) {
    this.bin = bin;
    this.extraArgs = extraArgs;
    this.output = '';
    this.child = null;
    this.exited = null;
    this.port = 0;
  }

  get base() { return `http://127.0.0.1:${this.port}`; }
  get serverList() { return `127.0.0.1:${this.port}`; }

  _append(chunk) {
    this.output += chunk.toString();
    if (this.output.length > 8 << 20) this.output = this.output.slice(-(4 << 20));
  }

  // start retries on fresh ports when another process took the picked ones.
  async start() {
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      const mark = this.output.length;
      try {
        await this._startOnce();
        return;
      } catch (err) {
        if (attempt >= 3 || !this.output.slice(mark).includes('address already in use')) {
          err.message += `\n--- distrod output ---\n${this.output}`;
          throw err;
        }
      }
    }
  }

  async _startOnce() {
    // No server-side health check: the tests register made-up addresses,
    // and a check would send traffic off loopback.
    const args = [ '--port', String(this.port), '--bind', '127.0.0.1', '--log-level', 'debug', '--health-check-default', 'NONE',
      ...this.extraArgs ];
    const env = Object.fromEntries(Object.entries(process.env).filter(([ k ]) => !k.startsWith('DISTRO_')));
    this._append(`=== start: ${this.bin} ${args.join(' ')} ===\n`);
    // A work directory of its own: an auth-on node keeps ./data there.
    this.dir = this.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'distro-compat-node-'));
    const child = spawn(this.bin, args, { env, cwd: this.dir, stdio: [ 'ignore', 'pipe', 'pipe' ] });
    this.child = child;
    child.stdout.on('data', c => this._append(c));
    child.stderr.on('data', c => this._append(c));
    this.exited = new Promise(resolve => {
      child.once('exit', (code, signal) => {
        this._append(`=== distrod exited: code ${code} signal ${signal} ===\n`);
        resolve({ code, signal });
      });
      child.once('error', err => {
        this._append(`=== spawn error: ${err.message} ===\n`);
        resolve({ code: null, signal: null, error: err });
      });
    });
    let gone = false;
    this.exited.then(() => { gone = true; });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = 'no answer yet';
    for (;;) {
      if (gone) throw new Error('distrod exited before it was ready');
      try {
        const res = await fetch(`${this.base}/readyz`, { signal: AbortSignal.timeout(1000) });
        await res.text();
        if (res.status === 200) return;
        last = `GET /readyz: ${res.status}`;
      } catch (err) {
        last = err.message;
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`distrod not ready within ${READY_TIMEOUT_MS} ms (last: ${last})`);
      }
      await sleep(50);
    }
  }

  // stop sends SIGTERM, then SIGKILL after STOP_TIMEOUT_MS.
  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    try {
      await withTimeout(this.exited, STOP_TIMEOUT_MS, 'distrod SIGTERM');
    } catch (_) {
      this.child.kill('SIGKILL');
      await withTimeout(this.exited, 5000, 'distrod SIGKILL');
    }
  }

  // listInstances is the server's own view: raw GET instance/list (no
  // udpPort, so no push subscription, and no client cache).
  async listInstances(groupedName, clusters = '', token = '') {
    const q = new URLSearchParams({ serviceName: groupedName, clusters, namespaceId: 'public' });
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const res = await fetch(`${this.base}/nacos/v1/ns/instance/list?${q}`, { headers, signal: AbortSignal.timeout(5000) });
    const body = await res.text();
    assert.equal(res.status, 200, `instance/list ${groupedName}: HTTP ${res.status}: ${body}`);
    return JSON.parse(body);
  }

  // login returns an access token (POST /nacos/v1/auth/login).
  async login(username, password) {
    const res = await fetch(`${this.base}/nacos/v1/auth/login`, {
      method: 'POST', body: new URLSearchParams({ username, password }), signal: AbortSignal.timeout(5000),
    });
    const body = await res.text();
    assert.equal(res.status, 200, `login ${username}: HTTP ${res.status}: ${body}`);
    return JSON.parse(body).accessToken;
  }
}

// ---------------------------------------------------------------- clients

// A quiet console-like logger: keeps warnings and errors for diagnostics.
function quietLogger(name) {
  const lines = [];
  const keep = level => (...args) => {
    lines.push(`${new Date().toISOString()} ${level} [${name}] ${args.map(a => (a instanceof Error ? a.stack : typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}`);
    if (lines.length > 200) lines.shift();
  };
  const noop = () => {};
  return { lines, logger: { debug: noop, info: noop, log: noop, warn: keep('WARN'), error: keep('ERROR') } };
}

let distrod;
let binCleanup = () => {};
const clients = [];
const loggers = [];

async function newClient(name, { node = distrod, ...opts } = {}) {
  const { lines, logger } = quietLogger(name);
  loggers.push({ name, lines });
  const client = new NacosNamingClient({ logger, serverList: node.serverList, namespace: 'public', ...opts });
  clients.push(client);
  // A background error (failed poll, push receiver) must not crash the run;
  // it is logged and shows up in the diagnostics of a failing test.
  client.on('error', err => logger.error(err));
  await withTimeout(client.ready(), 10000, `${name}: client.ready()`);
  return client;
}

function uniq(base) {
  return `node-${base}-${crypto.randomBytes(3).toString('hex')}`;
}

const addrs = hosts => (hosts || []).map(h => `${h.ip}:${h.port}`).sort();

// Listener records subscribe callbacks; waitFor resolves with the first one
// (in order) that matches.
class Listener {
  constructor() {
    this.events = [];
    this.waiters = [];
    this.fn = hosts => {
      const ev = { at: Date.now(), hosts: addrs(hosts) };
      this.events.push(ev);
      for (const w of [ ...this.waiters ]) w(ev);
    };
    this.cursor = 0;
  }

  describe() {
    return this.events.map(e => `${new Date(e.at).toISOString()} ${JSON.stringify(e.hosts)}`).join('; ') || '(no callbacks)';
  }

  // waitFor consumes events from the cursor on until ok(event) holds.
  waitFor(ok, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const check = () => {
        while (this.cursor < this.events.length) {
          const ev = this.events[this.cursor++];
          if (ok(ev)) return ev;
        }
        return null;
      };
      const hit = check();
      if (hit) return resolve(hit);
      const waiter = () => {
        const ev = check();
        if (ev) {
          clearTimeout(timer);
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          resolve(ev);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`${what}: no matching listener call within ${timeoutMs} ms; calls: ${this.describe()}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

const sameSet = (got, want) => JSON.stringify([ ...got ].sort()) === JSON.stringify([ ...want ].sort());

// expectPush waits for the listener call showing want after a change made at
// changedAt and checks it came as a push, not from the 10 s poll.
async function expectPush(t, listener, what, changedAt, want) {
  const ev = await listener.waitFor(e => sameSet(e.hosts, want), POLL_DEADLINE_MS, what);
  const latency = ev.at - changedAt;
  t.diagnostic(`${what}: listener called ${latency} ms after the change`);
  assert.ok(latency <= PUSH_DEADLINE_MS,
    `${what}: listener called ${latency} ms after the change, later than ${PUSH_DEADLINE_MS} ms: that is the client's 10 s poll, so no UDP push reached it`);
}

// diag writes text as diagnostics, one per line (TAP escapes newlines),
// keeping the last 400 lines.
function diag(t, text) {
  const lines = text.split('\n');
  if (lines.length > 400) t.diagnostic(`[... ${lines.length - 400} earlier lines dropped ...]`);
  for (const line of lines.slice(-400)) t.diagnostic(line);
}

// it is test() with a timeout and, on failure, the distrod output and the
// clients' warnings/errors as diagnostics.
function it(name, fn) {
  test(name, { timeout: TEST_TIMEOUT_MS }, async t => {
    const mark = distrod ? distrod.output.length : 0;
    try {
      await fn(t);
    } catch (err) {
      if (distrod) diag(t, `--- distrod output during this test ---\n${distrod.output.slice(mark) || '(none)'}`);
      for (const { name: n, lines } of loggers) {
        if (lines.length) diag(t, `--- client ${n} warnings/errors ---\n${lines.join('\n')}`);
      }
      throw err;
    }
  });
}

// ---------------------------------------------------------------- tests

// authd is a second node with client auth on and a known admin password.
let authd;
const ADMIN_PW = 'node-compat-admin-password';

before(async () => {
  const b = distrodBin();
  binCleanup = b.cleanup;
  distrod = new Distrod(b.bin);
  authd = new Distrod(b.bin, [ '--auth', '--auth-admin-password', ADMIN_PW ]);
  await withTimeout(Promise.all([ distrod.start(), authd.start() ]), READY_TIMEOUT_MS * 3 + 5000, 'start distrod');
});

after(async () => {
  await Promise.allSettled(clients.map(c => withTimeout(c.close(), 5000, 'client.close()')));
  await Promise.allSettled([ distrod, authd ].filter(Boolean).map(d => d.stop()));
  for (const d of [ distrod, authd ]) if (d && d.dir) fs.rmSync(d.dir, { recursive: true, force: true });
  binCleanup();
});

// Safety net: never leave distrod behind, even if the runner is killed.
process.once('exit', () => {
  for (const d of [ distrod, authd ]) {
    if (d && d.child && d.child.exitCode === null) d.child.kill('SIGKILL');
  }
});

it('getServerStatus is UP', async () => {
  const client = await newClient('status');
  assert.equal(await withTimeout(client.getServerStatus(), 10000, 'getServerStatus'), 'UP');
});

it('registerInstance, then getAllInstances and selectInstances list it', async () => {
  const client = await newClient('register');
  const svc = uniq('register');
  await withTimeout(client.registerInstance(svc, {
    ip: '10.30.0.1', port: 8080, weight: 2, metadata: { version: '1.0', zone: 'z-1' }, clusterName: 'DEFAULT',
  }), 10000, 'registerInstance');
  await withTimeout(client.registerInstance(svc, { ip: '10.30.0.2', port: 9090 }, 'NODE_GROUP'), 10000, 'registerInstance(group)');

  const hosts = await withTimeout(client.getAllInstances(svc), 10000, 'getAllInstances');
  assert.deepEqual(addrs(hosts), [ '10.30.0.1:8080' ]);
  const h = hosts[0];
  assert.equal(h.weight, 2);
  assert.deepEqual(h.metadata, { version: '1.0', zone: 'z-1' });
  assert.equal(h.clusterName, 'DEFAULT');
  assert.equal(h.healthy, true);
  assert.equal(h.enabled, true);
  assert.equal(h.ephemeral, true);
  assert.equal(h.serviceName, `DEFAULT_GROUP@@${svc}`);

  const grouped = await withTimeout(client.getAllInstances(svc, 'NODE_GROUP'), 10000, 'getAllInstances(group)');
  assert.deepEqual(addrs(grouped), [ '10.30.0.2:9090' ]);
  assert.equal(grouped[0].serviceName, `NODE_GROUP@@${svc}`);

  const healthy = await withTimeout(client.selectInstances(svc, 'DEFAULT_GROUP', 'DEFAULT', true), 10000, 'selectInstances');
  assert.deepEqual(addrs(healthy), [ '10.30.0.1:8080' ]);
  const direct = await withTimeout(client.getAllInstances(svc, 'DEFAULT_GROUP', '', false), 10000, 'getAllInstances(subscribe=false)');
  assert.deepEqual(addrs(direct), [ '10.30.0.1:8080' ]);
});

// subscribe() without clusters queries clusters=DEFAULT, so everything is
// registered in cluster DEFAULT.
it('subscribe: the listener fires on subscribe and, by UDP push, on register and deregister', async t => {
  const provider = await newClient('sub-provider');
  const other = await newClient('sub-provider2');
  const consumer = await newClient('sub-consumer');
  const svc = uniq('subscribe');
  const a = { ip: '10.31.0.1', port: 8080, clusterName: 'DEFAULT' };
  const b = { ip: '10.31.0.2', port: 8080, clusterName: 'DEFAULT' };

  await withTimeout(provider.registerInstance(svc, a), 10000, 'registerInstance(a)');
  const listener = new Listener();
  const subscribedAt = Date.now();
  consumer.subscribe({ serviceName: svc }, listener.fn);
  await listener.waitFor(e => sameSet(e.hosts, [ '10.31.0.1:8080' ]), 5000, 'initial listener call');

  // The client refreshes a new subscription once, 1 s after subscribing,
  // then every cacheMillis (10 s). Change things after that first refresh so
  // that only a push can deliver them quickly. (A fixed offset from the
  // subscription, not a synchronisation sleep.)
  await sleep(Math.max(0, subscribedAt + 1500 - Date.now()));

  let changedAt = Date.now();
  await withTimeout(other.registerInstance(svc, b), 10000, 'registerInstance(b)');
  await expectPush(t, listener, 'register b', changedAt, [ '10.31.0.1:8080', '10.31.0.2:8080' ]);

  changedAt = Date.now();
  await withTimeout(other.deregisterInstance(svc, b), 10000, 'deregisterInstance(b)');
  await expectPush(t, listener, 'deregister b', changedAt, [ '10.31.0.1:8080' ]);

  const hosts = await withTimeout(consumer.getAllInstances(svc, 'DEFAULT_GROUP', 'DEFAULT'), 10000, 'getAllInstances(DEFAULT)');
  assert.deepEqual(addrs(hosts), [ '10.31.0.1:8080' ]);
  consumer.unSubscribe({ serviceName: svc }, listener.fn);
});

it('deregisterInstance removes the instance', async () => {
  const client = await newClient('deregister');
  const svc = uniq('deregister');
  const grouped = `DEFAULT_GROUP@@${svc}`;
  const one = { ip: '10.32.0.1', port: 80 };
  const two = { ip: '10.32.0.2', port: 80 };
  await withTimeout(client.registerInstance(svc, one), 10000, 'registerInstance(one)');
  await withTimeout(client.registerInstance(svc, two), 10000, 'registerInstance(two)');
  assert.deepEqual(addrs(await client.getAllInstances(svc, 'DEFAULT_GROUP', '', false)), [ '10.32.0.1:80', '10.32.0.2:80' ]);

  await withTimeout(client.deregisterInstance(svc, two), 10000, 'deregisterInstance(two)');
  assert.deepEqual(addrs((await distrod.listInstances(grouped)).hosts), [ '10.32.0.1:80' ]);
  await eventually(async () => {
    assert.deepEqual(addrs(await client.getAllInstances(svc, 'DEFAULT_GROUP', '', false)), [ '10.32.0.1:80' ]);
  }, { timeoutMs: 5000, what: 'client list without the deregistered instance' });

  // The last one: the server lists nothing. (The Node client ignores empty
  // host lists, so its own view keeps the last non-empty list.)
  await withTimeout(client.deregisterInstance(svc, one), 10000, 'deregisterInstance(one)');
  assert.deepEqual(addrs((await distrod.listInstances(grouped)).hosts), []);
  // Deregistering again is accepted (idempotent, HTTP 200).
  await withTimeout(client.deregisterInstance(svc, one), 10000, 'deregisterInstance(one) again');
});

// The npm client sends username and password with every request (it never
// logs in); distrod checks them like a token, from a cache after the first
// bcrypt check.
it('auth: a client with username and password registers, lists and is pushed changes', async t => {
  const creds = { node: authd, username: 'nacos', password: ADMIN_PW };
  const provider = await newClient('auth-provider', creds);
  const consumer = await newClient('auth-consumer', creds);
  const svc = uniq('auth');
  const a = { ip: '10.33.0.1', port: 8080, clusterName: 'DEFAULT' };
  const b = { ip: '10.33.0.2', port: 8080, clusterName: 'DEFAULT' };
  await withTimeout(provider.registerInstance(svc, a), 10000, 'registerInstance(a)');
  const listener = new Listener();
  const subscribedAt = Date.now();
  consumer.subscribe({ serviceName: svc }, listener.fn);
  await listener.waitFor(e => sameSet(e.hosts, [ '10.33.0.1:8080' ]), 5000, 'initial listener call');
  await sleep(Math.max(0, subscribedAt + 1500 - Date.now()));
  const changedAt = Date.now();
  await withTimeout(provider.registerInstance(svc, b), 10000, 'registerInstance(b)');
  await expectPush(t, listener, 'register b', changedAt, [ '10.33.0.1:8080', '10.33.0.2:8080' ]);
  consumer.unSubscribe({ serviceName: svc }, listener.fn);
});

it('auth: a wrong password or no credentials fail cleanly and register nothing', async () => {
  const svc = uniq('auth-wrong');
  // The client reports "failed to req API ... after all servers tried" and
  // logs each server's answer: Nacos's 403 "user not found!".
  const refused = name => {
    const { lines } = loggers.find(l => l.name === name);
    assert.ok(lines.some(l => l.includes('code: 403') && l.includes('user not found!')), `${name}: no 403 logged: ${lines.join('\n')}`);
    return true;
  };
  const wrong = await newClient('auth-wrong', { node: authd, username: 'nacos', password: 'wrong-password' });
  await assert.rejects(withTimeout(wrong.registerInstance(svc, { ip: '10.34.0.1', port: 80 }), 10000, 'registerInstance'),
    () => refused('auth-wrong'));
  const anon = await newClient('auth-anon', { node: authd });
  await assert.rejects(withTimeout(anon.registerInstance(svc, { ip: '10.34.0.2', port: 80 }), 10000, 'registerInstance'),
    () => refused('auth-anon'));
  const token = await authd.login('nacos', ADMIN_PW);
  assert.deepEqual(addrs((await authd.listInstances(`DEFAULT_GROUP@@${svc}`, '', token)).hosts), []);
});
