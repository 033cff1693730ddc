import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { errorCode, pushImage } from '../helpers/registry.js';
import { startWharf } from '../helpers/server.js';

// X-Forwarded-* counts only from the reverse proxies listed in trustedProxies.

const forwarded = { 'X-Forwarded-Host': 'docker-local.registry.test', 'X-Forwarded-For': '203.0.113.7' };

test('from a trusted proxy, X-Forwarded-Host routes and X-Forwarded-For is the client in the access log', async () => {
  let log = '';
  const wharf = await startWharf({ baseDomain: 'registry.test', trustedProxies: ['127.0.0.0/8'], accessLog: (text) => { log += text; } });
  try {
    await pushImage(wharf.url, 'docker-local/team/app', makeImage(), '1.0');
    const response = await fetch(`${wharf.url}/v2/team/app/tags/list`, { headers: forwarded });
    assert.equal(await response.json(), { name: 'team/app', tags: ['1.0'] });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(log, /203\.0\.113\.7 "GET \/v2\/team\/app\/tags\/list" 200/);
  } finally {
    await wharf.cleanup();
  }
});

test('from anyone else the headers are ignored', async () => {
  let log = '';
  const wharf = await startWharf({ baseDomain: 'registry.test', trustedProxies: ['10.0.0.0/8'], accessLog: (text) => { log += text; } });
  try {
    const response = await fetch(`${wharf.url}/v2/team/app/tags/list`, { headers: forwarded });
    assert.is(response.status, 404);
    assert.is(await errorCode(response), 'NAME_UNKNOWN', 'routed by path: "team" is no repository key');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.not.match(log, '203.0.113.7');
    assert.match(log, /127\.0\.0\.1 "GET/);
  } finally {
    await wharf.cleanup();
  }
});

test.run();
