import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { rm } from 'node:fs/promises';
import { basic, heldLogins } from '../helpers/auth.js';
import { terminate } from '../helpers/children.js';
import { postgresDatabase, stopPostgres } from '../helpers/postgres.js';
import { errorCode } from '../helpers/registry.js';
import { spawnWharf, startWharf, tempDir, testStorage, type StartOptions, type TestServer } from '../helpers/server.js';

// Several nodes on one PostgreSQL count login attempts together (auth.throttle): N nodes do not
// allow N times the guesses. Each test starts two servers on one database and bucket.

const users = [{ name: 'victim', password: 'right-password' }, { name: 'other', password: 'other-password' }];

async function twoNodes(options: StartOptions): Promise<{ nodes: [TestServer, TestServer]; database: string; cleanup(): Promise<void> }> {
  const storage = await testStorage('s3-postgres');
  const a = await startWharf({ storage, users, audit: () => undefined, ...options });
  const b = await startWharf({ storage, audit: () => undefined, ...options });
  return {
    nodes: [a, b],
    database: (storage.metadata as { url: string }).url,
    async cleanup() {
      await a.cleanup();
      await b.cleanup();
    },
  };
}

function login(node: Pick<TestServer, 'url'>, user: string, password: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${node.url}/v2/token?service=wharf`, { headers: { authorization: basic(user, password), ...headers } });
}

test('two nodes: guesses split between them count together, and the next is refused 429 with Retry-After on either node', async () => {
  let now = 1_800_000_000_000;
  const { nodes: [a, b], cleanup } = await twoNodes({ auth: { throttle: { perUser: 3, perAddress: 5, window: '1m' } }, now: () => now });
  try {
    for (const [i, node] of [a, b, a].entries()) {
      assert.is((await login(node, 'victim', `guess-${i}`)).status, 401);
      now += 1000;
    }
    for (const node of [a, b]) {
      const refused = await login(node, 'victim', 'right-password');
      assert.is(refused.status, 429, 'the fourth attempt, on either node');
      assert.is(await errorCode(refused), 'TOOMANYREQUESTS');
      assert.is(refused.headers.get('retry-after'), '57');
    }
    for (const node of [b, a]) assert.is((await login(node, 'nobody', 'guess')).status, 401, 'refusals did not count: the address had 3 attempts of its 5');
    for (const node of [a, b]) assert.is((await login(node, 'other', 'other-password')).status, 429, 'the address is at its limit on both nodes');
  } finally {
    await cleanup();
  }
});

test('two nodes: guesses sent to both at once let exactly the limit reach the password hash', async () => {
  const guesses = 12;
  // Each guess either waits in the hook (its attempt counted, its hash not begun) or was refused:
  // once all have done one or the other, the held ones are released together.
  const held = heldLogins(guesses);
  const { nodes, cleanup } = await twoNodes({ auth: { throttle: { perUser: 3, perAddress: 100, window: '1m' } }, loginHooks: { reserved: held.reserved } });
  try {
    const statuses = await held.send((i) => login(nodes[i % 2]!, 'victim', `guess-${i}`));
    assert.is(held.hashed, 3, 'three attempts reached the hash, on both nodes together');
    assert.is(statuses.filter((status) => status === 401).length, 3);
    assert.is(statuses.filter((status) => status === 429).length, guesses - 3);
  } finally {
    await cleanup();
  }
});

test('two nodes: a success on one stops its user\'s failures counting on the other; the address keeps them', async () => {
  const { nodes: [a, b], cleanup } = await twoNodes({ auth: { throttle: { perUser: 3, perAddress: 5, window: '1m' } } });
  try {
    for (const node of [a, b]) assert.is((await login(node, 'victim', 'guess')).status, 401);
    assert.is((await login(a, 'victim', 'right-password')).status, 200);
    for (const node of [b, a, b]) assert.is((await login(node, 'victim', 'guess')).status, 401, 'the two failures before the success no longer count for victim');
    assert.is((await login(a, 'victim', 'guess')).status, 429, 'three failures since the success');
    assert.is((await login(b, 'other', 'other-password')).status, 429, 'the address counts its 5 failures on both nodes, not the success');
  } finally {
    await cleanup();
  }
});

test('two nodes: the window slides (an injected clock), and the rows of attempts that left it are deleted', async () => {
  let now = 1_800_000_000_000;
  const { nodes: [a, b], database, cleanup } = await twoNodes({ auth: { throttle: { perUser: 3, perAddress: 100, window: '1m' } }, now: () => now });
  const admin = new pg.Client({ connectionString: database });
  await admin.connect();
  try {
    for (const node of [a, b, a]) {
      assert.is((await login(node, 'victim', 'guess')).status, 401);
      now += 10_000;
    }
    const refused = await login(b, 'victim', 'guess');
    assert.is(refused.status, 429);
    assert.is(refused.headers.get('retry-after'), '30', 'until the first attempt leaves the window');
    now += 30_000;
    assert.is((await login(b, 'victim', 'guess')).status, 401, 'the first attempt left the window: one more');
    const again = await login(a, 'victim', 'guess');
    assert.is(again.status, 429, 'the second and third are still in it');
    assert.is(again.headers.get('retry-after'), '10');
    now += 60_000;
    for (const node of [a, b]) assert.is((await login(node, 'victim', 'right-password')).status, 200, 'all left the window');
    const { rows } = await admin.query<{ count: number }>('SELECT count(*)::int AS count FROM login_attempts');
    assert.is(rows[0]!.count, 0, 'no row of an attempt that left the window is kept');
  } finally {
    await admin.end();
    await cleanup();
  }
});

test('a node with workers on PostgreSQL counts in the database too, not in its primary: guesses split with another node add up', async () => {
  const url = await postgresDatabase();
  const throttle = { perUser: 3, perAddress: 100, window: '1m' };
  const single = await startWharf({ storage: { metadata: { driver: 'postgres', url } }, users, audit: () => undefined, auth: { throttle } });
  const dataDir = await tempDir();
  const workers = await spawnWharf(dataDir, {
    config: `workers: 2\nstorage: { metadata: { driver: postgres, url: "${url}" } }\nrepositories:\n  docker-local: { type: local }\nlog: { access: false }\nauth: { enabled: true, throttle: { perUser: 3, perAddress: 100, window: 1m } }\n`,
  });
  try {
    for (const node of [workers, single, workers]) assert.is((await login(node, 'victim', 'guess')).status, 401);
    for (const node of [workers, workers, single]) assert.is((await login(node, 'victim', 'right-password')).status, 429, 'the fourth attempt, on any worker or node');
  } finally {
    await terminate(workers.child);
    await rm(dataDir, { recursive: true, force: true });
    await single.cleanup();
  }
});

test('a database outage while a login is counted is audited result=error, not throttled; a real refusal still is', async () => {
  const audit: string[] = [];
  const node = await startWharf({ storage: { metadata: { driver: 'postgres', url: await postgresDatabase() } }, users, audit: (line) => audit.push(line), auth: { throttle: { perUser: 1, perAddress: 100, window: '1m' } } });
  let restart: (() => Promise<void>) | null = null;
  try {
    assert.is((await login(node, 'other', 'guess')).status, 401);
    assert.is((await login(node, 'other', 'other-password')).status, 429);
    restart = await stopPostgres();
    assert.is((await login(node, 'victim', 'right-password')).status, 503);
    await restart();
    restart = null;
    assert.equal(audit.filter((line) => line.includes('action=login')).map((line) => / who=(\S+) .* result=(\S+)/.exec(line)!.slice(1).join(' ')), ['other failed', 'other throttled', 'victim error']);
  } finally {
    await restart?.();
    await node.cleanup();
  }
});

test.run();
