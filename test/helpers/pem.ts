import { execFile } from 'node:child_process';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A new self-signed certificate (CN registry.test, valid `days`) and its key, as `dir`/cert.pem
 * and `dir`/key.pem, replaced as renewal tools do: new files renamed over the old ones.
 */
export async function renewPem(dir: string, days: string): Promise<void> {
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', days, '-subj', '/CN=registry.test',
    '-keyout', join(dir, 'key.pem.new'), '-out', join(dir, 'cert.pem.new'),
  ]);
  await rename(join(dir, 'key.pem.new'), join(dir, 'key.pem'));
  await rename(join(dir, 'cert.pem.new'), join(dir, 'cert.pem'));
}
