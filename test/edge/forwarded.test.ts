import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { errorCode, pushImage } from '../helpers/registry.js';
import { logCollector } from '../helpers/logs.js';
import { startWharf } from '../helpers/server.js';

// X-Forwarded-* counts only from the reverse proxies listed in trustedProxies.

const forwarded = { 'X-Forwarded-Host': 'docker-local.registry.test', 'X-Forwarded-For': '203.0.113.7' };

test('from a trusted proxy, X-Forwarded-Host routes and X-Forwarded-For is the client in the access log', async () => {
  const log = logCollector();
  const wharf = await startWharf({ baseDomain: 'registry.test', trustedProxies: ['127.0.0.0/8'], accessLog: log.write });
  try {
    await pushImage(wharf.url, 'docker-local/team/app', makeImage(), '1.0');
    const response = await fetch(`${wharf.url}/v2/team/app/tags/list`, { headers: forwarded });
    assert.equal(await response.json(), { name: 'team/app', tags: ['1.0'] });
    const line = await log.waitFor('/tags/list');
    assert.match(line, /203\.0\.113\.7 - "GET \/v2\/team\/app\/tags\/list" 200 /);
    assert.match(line, 'repo=docker-local host=127.0.0.1:');
  } finally {
    await wharf.cleanup();
  }
});

test('from anyone else the headers are ignored', async () => {
  const log = logCollector();
  const wharf = await startWharf({ baseDomain: 'registry.test', trustedProxies: ['10.0.0.0/8'], accessLog: log.write });
  try {
    const response = await fetch(`${wharf.url}/v2/team/app/tags/list`, { headers: forwarded });
    assert.is(response.status, 404);
    assert.is(await errorCode(response), 'NAME_UNKNOWN', 'routed by path: "team" is no repository key');
    const line = await log.waitFor('/tags/list');
    assert.not.match(line, '203.0.113.7');
    assert.match(line, /127\.0\.0\.1 - "GET/);
  } finally {
    await wharf.cleanup();
  }
});

const origin = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'docker-local.registry.test', 'X-Forwarded-Port': '8443' };

test('from a trusted proxy, Location and Link are absolute on the origin it reports', async () => {
  const wharf = await startWharf({ baseDomain: 'registry.test', trustedProxies: ['127.0.0.1'] });
  try {
    const started = await fetch(`${wharf.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: origin });
    assert.is(started.status, 202);
    assert.match(started.headers.get('location')!, /^https:\/\/docker-local\.registry\.test:8443\/v2\/team\/app\/blobs\/uploads\/[\w-]+$/);
    // The default port is left out; a path prefix stays as the request had it.
    const plain = await fetch(`${wharf.url}/api/docker/docker-local/v2/team/app/blobs/uploads/`, {
      method: 'POST', headers: { ...origin, 'X-Forwarded-Host': 'registry.test', 'X-Forwarded-Port': '443' },
    });
    assert.match(plain.headers.get('location')!, /^https:\/\/registry\.test\/api\/docker\/docker-local\/v2\/team\/app\/blobs\/uploads\//);
    await pushImage(wharf.url, 'docker-local/team/app', makeImage(), '1.0');
    await pushImage(wharf.url, 'docker-local/team/app', makeImage(), '2.0');
    const page = await fetch(`${wharf.url}/v2/team/app/tags/list?n=1`, { headers: origin });
    assert.is(page.headers.get('link'), '<https://docker-local.registry.test:8443/v2/team/app/tags/list?n=1&last=1.0>; rel="next"');
    // A malformed host is not echoed: the URL stays relative.
    const odd = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/`, {
      method: 'POST', headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.test/x?' },
    });
    assert.match(odd.headers.get('location')!, /^\/v2\/docker-local\/team\/app\/blobs\/uploads\//);
  } finally {
    await wharf.cleanup();
  }
});

test('from an untrusted peer, Location stays relative whatever it claims', async () => {
  const wharf = await startWharf({ baseDomain: 'registry.test', trustedProxies: ['10.0.0.0/8'] });
  try {
    const started = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST', headers: origin });
    assert.match(started.headers.get('location')!, /^\/v2\/docker-local\/team\/app\/blobs\/uploads\/[\w-]+$/);
  } finally {
    await wharf.cleanup();
  }
});

test.run();
