import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic, challengeOf } from '../helpers/auth.js';
import { logCollector } from '../helpers/logs.js';
import { errorCode } from '../helpers/registry.js';
import { startWharf } from '../helpers/server.js';

// A reverse proxy appends to X-Forwarded-For the address it was connected from, and whatever a
// client sends comes before it. Wharf believes the header only from the right, past its trusted
// proxies: entries a client writes further left are ignored for throttling, the audit trail, the
// access log and the loopback exemption. X-Forwarded-Host and -Proto are the proxy's own (last) value.

const proxy = ['127.0.0.1'];
const client = '203.0.113.7';

test('spoofed X-Forwarded-For entries change nothing: throttling, audit and access log see the address the proxy wrote', async () => {
  const accessLog = logCollector();
  let audit = '';
  const wharf = await startWharf({
    auth: { throttle: { perUser: 100, perAddress: 3, window: '1m' } },
    trustedProxies: proxy,
    accessLog: accessLog.write,
    audit: (line) => { audit += `${line}\n`; },
    users: [{ name: 'ci', password: 'ci-password-1' }],
  });
  try {
    // Each guess claims another origin on the left; the proxy's own entry is the same every time.
    const guess = (i: number) => fetch(`${wharf.url}/v2/token?service=wharf`, {
      headers: { authorization: basic(`guess-${i}`, 'wrong'), 'X-Forwarded-For': `198.51.100.${i}, 10.9.9.${i}, ${client}`, 'X-Forwarded-Proto': 'https' },
    });
    for (let i = 0; i < 3; i++) assert.is((await guess(i)).status, 401);
    const throttled = await guess(3);
    assert.is(throttled.status, 429, 'the address limit holds whatever the client prepends');
    assert.is(await errorCode(throttled), 'TOOMANYREQUESTS');
    assert.match(audit, `who=guess-3 from=${client} action=login result=throttled`);
    assert.not.match(audit, '198.51.100.');
    const line = await accessLog.waitFor('" 429 ');
    assert.match(line, `${client} - "GET /v2/token`);
    assert.not.match(accessLog.lines.join('\n'), '198.51.100.');
    // Another client behind the same proxy is not throttled with the first.
    const other = await fetch(`${wharf.url}/v2/token?service=wharf`, {
      headers: { authorization: basic('ci', 'ci-password-1'), 'X-Forwarded-For': `${client}, 203.0.113.8`, 'X-Forwarded-Proto': 'https' },
    });
    assert.is(other.status, 200, 'a spoofed copy of the throttled address on the left does not lock out the real one');
  } finally {
    await wharf.cleanup();
  }
});

test('the loopback exemption needs loopback all the way from the client; a claimed "127.0.0.1" on the left is not it', async () => {
  const wharf = await startWharf({ auth: {}, trustedProxies: proxy, users: [{ name: 'ci', password: 'ci-password-1' }] });
  try {
    const v2 = (forwardedFor: string | null) => fetch(`${wharf.url}/v2/`, {
      headers: { authorization: basic('ci', 'ci-password-1'), ...(forwardedFor === null ? {} : { 'X-Forwarded-For': forwardedFor }) },
    });
    assert.is((await v2('127.0.0.1')).status, 200, 'a client on the proxy\'s loopback sent its password on loopback only');
    const spoofed = await v2(`127.0.0.1, ${client}`);
    assert.is(spoofed.status, 401, 'a remote client claiming loopback');
    assert.match(((await spoofed.json()) as { errors: { message: string }[] }).errors[0]!.message, 'over TLS or on loopback only');
    assert.is((await v2(null)).status, 401, 'a trusted proxy that names no client is no loopback client');
    assert.is((await v2('not-an-address')).status, 401, 'nor one that names none');
  } finally {
    await wharf.cleanup();
  }
});

test('through a trusted proxy, Basic gets the same answer on /metrics and at the token endpoint', async () => {
  const wharf = await startWharf({ auth: {}, trustedProxies: proxy, users: [{ name: 'root', password: 'root-password', admin: true }] });
  try {
    const both = async (headers: Record<string, string>) => {
      const answers = await Promise.all(['/metrics', '/v2/token?service=wharf'].map((path) => fetch(`${wharf.url}${path}`, { headers: { authorization: basic('root', 'root-password'), ...headers } })));
      return Promise.all(answers.map(async (answer) => ({ ok: answer.ok, text: await answer.text() })));
    };
    // Loopback is the proxy here: a request from it that names no client may come from anywhere.
    for (const [label, headers] of [['no X-Forwarded-For', {}], ['X-Forwarded-Proto: http', { 'X-Forwarded-For': client, 'X-Forwarded-Proto': 'http' }]] as const) {
      const [metrics, token] = await both(headers);
      assert.not.ok(metrics!.ok, `/metrics, ${label}`);
      assert.not.ok(token!.ok, `/v2/token, ${label}`);
      for (const answer of [metrics!, token!]) assert.match(answer.text, 'over TLS or on loopback only');
    }
    for (const [label, headers] of [['a loopback client', { 'X-Forwarded-For': '127.0.0.1' }], ['https', { 'X-Forwarded-For': client, 'X-Forwarded-Proto': 'https' }]] as const) {
      const [metrics, token] = await both(headers);
      assert.ok(metrics!.ok && token!.ok, `${label}: both accept`);
    }
  } finally {
    await wharf.cleanup();
  }
});

test('X-Forwarded-Host and -Proto: the value the proxy appended wins over what the client sent', async () => {
  const wharf = await startWharf({ auth: {}, trustedProxies: proxy, users: [{ name: 'ci', password: 'ci-password-1' }] });
  try {
    const headers = { 'X-Forwarded-For': client, 'X-Forwarded-Host': 'evil.example, registry.example', 'X-Forwarded-Proto': 'https, http', 'X-Forwarded-Port': '8443, 80' };
    const anonymous = await fetch(`${wharf.url}/v2/`, { headers });
    assert.is(challengeOf(anonymous).realm, 'http://registry.example/v2/token', 'realm on the origin the proxy reports');
    const login = await fetch(`${wharf.url}/v2/`, { headers: { ...headers, authorization: basic('ci', 'ci-password-1') } });
    assert.is(login.status, 401, 'the client\'s "https" does not make the clear-text hop safe');
    assert.match(((await login.json()) as { errors: { message: string }[] }).errors[0]!.message, 'over TLS or on loopback only');
  } finally {
    await wharf.cleanup();
  }
});

test.run();
