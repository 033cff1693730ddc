import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli, spawnWharf, tempDir } from '../helpers/server.js';
import { terminate } from '../helpers/children.js';

// The wharf command as a new operator meets it: version, help on every command, a start-up banner
// that says what is served where, and `setup` listing the repositories.

const { version } = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

test('wharf --version prints the package version', async () => {
  for (const flag of ['--version', 'version']) {
    const result = await runCli([flag]);
    assert.is(result.code, 0);
    assert.is(result.stdout, `wharf ${version}\n`);
  }
});

test('COMMAND --help (and -h) prints the usage, not a parser message, for every command and subcommand', async () => {
  const commands = [['serve'], ['certs'], ['setup'], ['proxy-config'], ['gc'], ['promote'], ['user'], ['user', 'add'], ['user', 'passwd'], ['token'], ['token', 'create']];
  for (const [command, flag] of commands.flatMap((words) => [[words, '--help'], [words, '-h']] as const)) {
    const result = await runCli([...command, flag]);
    assert.is(result.code, 0, `${command.join(' ')} ${flag}: ${result.stderr}`);
    assert.match(result.stdout, 'Usage:\n  wharf serve [--config FILE]');
    assert.is(result.stderr, '');
  }
});

test('an unknown command with --help is still an unknown command', async () => {
  const result = await runCli(['bogus', '--help']);
  assert.is(result.code, 2);
  assert.match(result.stderr, 'wharf: unknown command "bogus"');
});

test('wharf setup without a repository lists them with their kind and image prefix, in aligned columns', async () => {
  const dir = await tempDir('wharf-cli-');
  const file = join(dir, 'wharf.yaml');
  await writeFile(file, 'listeners:\n  - { address: 127.0.0.1, port: 5000 }\n  - { address: 127.0.0.1, port: 5002, repository: docker-hub }\n'
    + 'repositories:\n  docker-local: { type: local }\n  docker-hub: { type: remote, url: "https://registry-1.docker.io" }\n'
    + '  docker: { type: virtual, repositories: [docker-local, docker-hub] }\n');
  const result = await runCli(['setup', '--config', file]);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, 'Repositories (wharf setup REPOSITORY prints the commands for one):');
  assert.match(result.stdout, /docker-local {2}local {4}127\.0\.0\.1:5000\/docker-local\/<image> {2}\(by repository path\)/);
  assert.match(result.stdout, /docker-hub {4}remote {3}127\.0\.0\.1:5002\/<image> {2}\(by port binding\)/);
  assert.match(result.stdout, /docker {8}virtual {2}127\.0\.0\.1:5000\/docker\/<image> {2}\(by repository path\)/);
});

test('the start-up banner names the version, the config file, each listener with what it serves, and the data', async () => {
  const dataDir = await tempDir();
  const wharf = await spawnWharf(dataDir);
  try {
    const output = wharf.log.lines.join('\n');
    assert.match(output, new RegExp(`info wharf ${version.replaceAll('.', '\\.')}: config ${dataDir}\\.yaml, data in ${dataDir}`));
    assert.match(output, `info listening on ${wharf.url} serving docker-local by path (/v2/<key>/…)`);
  } finally {
    await terminate(wharf.child);
  }
});

test.run();
