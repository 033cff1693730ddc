import { execFile } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { skopeo } from '../helpers/skopeo.js';
import { startWharf, tempDir } from '../helpers/server.js';

// The token flow over Wharf's own TLS, HTTP/2 and HTTP/1.1: the realm is https on the origin the
// client used (:authority for h2), and skopeo verifying the chain logs in, pushes and pulls.

const run = promisify(execFile);

test('over TLS (h2 and HTTP/1.1) the challenge names an https realm; skopeo logs in, pushes and pulls', async () => {
  const wharf = await startWharf({
    auth: {},
    listeners: [{ address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } }],
    users: [{ name: 'ci', password: 'ci-password-1' }],
    permissions: [{ name: 'all', repositories: ['*'], users: { ci: ['deploy'] } }],
  });
  try {
    const origin = wharf.url;
    for (const version of ['--http2', '--http1.1']) {
      const { stdout } = await run('curl', ['-s', '-i', version, '--cacert', wharf.caPath!, `${origin}/v2/docker-local/team/app/tags/list`]);
      assert.match(stdout, /^HTTP\/(2|1\.1) 401/);
      assert.match(stdout.replace(/^WWW-Authenticate:/m, "www-authenticate:"), `www-authenticate: Bearer realm="${origin}/v2/token",service="wharf",scope="repository:docker-local/team/app:pull"`);
    }
    const certDir = await tempDir('wharf-ca-');
    await copyFile(wharf.caPath!, join(certDir, 'ca.crt'));
    const dir = join(await tempDir('wharf-layout-'), 'image');
    const image = makeImage({ layers: 1 });
    await writeOciLayout(dir, 'v1', [image]);
    const host = origin.replace('https://', '');
    await skopeo(['copy', '--dest-cert-dir', certDir, '--dest-creds', 'ci:ci-password-1', `oci:${dir}:v1`, `docker://${host}/docker-local/team/app:1`]);
    const raw = JSON.parse(await skopeo(['inspect', '--raw', '--cert-dir', certDir, '--creds', 'ci:ci-password-1', `docker://${host}/docker-local/team/app:1`])) as { config: { digest: string } };
    assert.is(raw.config.digest, image.config.digest);
  } finally {
    await wharf.cleanup();
  }
});

test.run();
