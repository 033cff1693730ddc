import { generateKeyPairSync } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, decodeJwt } from 'jose';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { newAccessToken, parseAccessToken, secretMatches } from '../../src/auth/access-tokens.js';
import { implied } from '../../src/auth/actions.js';
import { loadSigningKey, signingKeyFile } from '../../src/auth/keys.js';
import { TokenService } from '../../src/auth/jwt.js';
import { basicForm, hashPassword, VerifiedPasswords, verifyPassword } from '../../src/auth/passwords.js';
import { Authorizer } from '../../src/auth/permissions.js';
import type { Principal } from '../../src/auth/principal.js';
import { parseScopes, parseTokenScope } from '../../src/auth/scopes.js';
import { LoginThrottle } from '../../src/auth/throttle.js';
import { permissionsConfig } from '../../src/config/auth.js';
import { RegistryError } from '../../src/oci/errors.js';
import { tempDir } from '../helpers/server.js';

// The pure parts of access control, each on its own: hashes, tokens, permission targets, scopes, throttling.

test('passwords: scrypt with a per-user salt and its parameters; only the right password matches', async () => {
  const [a, b] = [await hashPassword('correct horse'), await hashPassword('correct horse')];
  assert.match(a, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.is.not(a, b, 'a random salt per hash');
  assert.ok(await verifyPassword('correct horse', a));
  assert.not.ok(await verifyPassword('correct horsf', a));
  assert.not.ok(await verifyPassword('correct horse', 'plain$text'));
  assert.not.ok(await verifyPassword('x', 'scrypt$0$8$1$AA==$AA=='));
});

test('verified passwords: remembered until unused for the TTL; concurrent checks of the same credentials share one scrypt', async () => {
  const hash = await hashPassword('right');
  let now = 0;
  let scrypts = 0;
  const passwords = new VerifiedPasswords({ ttlMs: 60_000, now: () => now, verify: (password, encoded) => { scrypts++; return verifyPassword(password, encoded); } });
  // Ten connections sending the same Basic credentials when none is remembered: one scrypt.
  assert.equal(await Promise.all(Array.from({ length: 10 }, () => passwords.check('ci', 'right', hash))), Array(10).fill(true));
  assert.is(scrypts, 1);
  const sent = basicForm('ci', 'right');
  assert.is(passwords.remembers(sent, () => hash), 'ci', 'Basic credentials as sent find their user');
  assert.ok(await passwords.check('ci', 'right', hash));
  assert.is(scrypts, 1, 'remembered: no scrypt');
  const changed = await hashPassword('right');
  assert.is(passwords.remembers(sent, () => changed), null, 'a changed hash matches nothing remembered');
  assert.is(passwords.remembers(sent, () => undefined), null, 'nor does a removed user');
  now += 50_000;
  assert.is(passwords.remembers(sent, () => hash), 'ci', 'each use extends the TTL');
  now += 50_000;
  assert.ok(await passwords.check('ci', 'right', hash), 'used 100 s after its scrypt, 50 s after its last use');
  assert.is(scrypts, 1);
  now += 60_000;
  assert.is(passwords.remembers(sent, () => hash), null, 'forgotten after the TTL unused');
  // Wrong passwords are never remembered; the same wrong one sent at once is hashed once, others each.
  const wrong = await Promise.all([passwords.check('ci', 'wrong', hash), passwords.check('ci', 'wrong', hash), passwords.check('ci', 'other', hash)]);
  assert.equal(wrong, [false, false, false]);
  assert.is(scrypts, 3);
  assert.not.ok(await passwords.check('ci', 'wrong', hash));
  assert.is(scrypts, 4, 'a failed check is not kept');
});

test('access tokens: shown once, stored as a hash, checked in constant time', () => {
  const { id, token, secretHash } = newAccessToken();
  const parsed = parseAccessToken(token)!;
  assert.is(parsed.id, id);
  assert.not.ok(secretHash.includes(parsed.secret));
  assert.ok(secretMatches(parsed.secret, secretHash));
  const last = parsed.secret.at(-1) === 'A' ? 'B' : 'A'; // a secret that differs in its last character
  assert.not.ok(secretMatches(`${parsed.secret.slice(0, -1)}${last}`, secretHash));
  assert.is(parseAccessToken('wharf_nothex_x'), null);
});

const targets = permissionsConfig([
  { name: 'team', repositories: ['docker-local'], include: ['team/**'], exclude: ['team/secret/**'], users: { ci: ['deploy'] }, groups: { devs: ['delete'] } },
  { name: 'public', repositories: ['*'], include: ['public/**'], anonymous: ['read'] },
], ['docker-local', 'docker-hub']);
const ci: Principal = { kind: 'user', name: 'ci', groups: [], admin: false, addedAt: 1 };
const dev: Principal = { kind: 'user', name: 'dana', groups: ['devs'], admin: false, addedAt: 1 };

test('permission targets: include/exclude patterns, nested actions, groups, anonymous, admins', () => {
  const authorizer = new Authorizer(targets);
  assert.equal(implied('deploy'), ['read', 'annotate', 'deploy']);
  assert.ok(authorizer.allows(ci, 'docker-local', 'team/app', 'deploy'));
  assert.ok(authorizer.allows(ci, 'docker-local', 'team/app', 'read'), 'deploy includes read');
  assert.not.ok(authorizer.allows(ci, 'docker-local', 'team/app', 'delete'));
  assert.not.ok(authorizer.allows(ci, 'docker-local', 'team/secret/x', 'read'), 'excluded');
  assert.not.ok(authorizer.allows(ci, 'docker-local', 'other/app', 'read'), 'not included');
  assert.not.ok(authorizer.allows(ci, 'docker-hub', 'team/app', 'read'), 'another repository');
  assert.ok(authorizer.allows(dev, 'docker-local', 'team/app', 'delete'), 'through the group');
  assert.not.ok(authorizer.allows(dev, 'docker-local', 'team/app', 'manage'));
  assert.ok(authorizer.allows({ kind: 'anonymous' }, 'docker-hub', 'public/x', 'read'));
  assert.not.ok(authorizer.allows({ kind: 'anonymous' }, 'docker-hub', 'public/x', 'deploy'));
  assert.ok(authorizer.allows(ci, 'docker-hub', 'public/x', 'read'), 'users get what anonymous callers get');
  assert.ok(authorizer.allows({ kind: 'user', name: 'root', groups: [], admin: true, addedAt: 1 }, 'docker-hub', 'x', 'manage'));
  assert.ok(authorizer.readsSomething(ci, 'docker-local'));
  assert.not.ok(authorizer.readsEverything(ci, 'docker-local'));
  authorizer.update([]);
  assert.not.ok(authorizer.allows(ci, 'docker-local', 'team/app', 'read'), 'update() drops cached decisions');
});

test('an access token may do what its owner may now, within its scope', () => {
  const authorizer = new Authorizer(targets);
  const token: Principal = { kind: 'token', name: 'ci', groups: [], admin: false, addedAt: 1, tokenId: 'x', scope: [parseTokenScope('repository:docker-local/team/app:pull')] };
  assert.ok(authorizer.allows(token, 'docker-local', 'team/app', 'read'));
  assert.not.ok(authorizer.allows(token, 'docker-local', 'team/app', 'deploy'), 'the owner may, the token not');
  assert.not.ok(authorizer.allows(token, 'docker-local', 'team/other', 'read'));
  const wide: Principal = { ...token, tokenId: 'y', scope: [parseTokenScope('repository:*:*')] } as Principal;
  assert.not.ok(authorizer.allows(wide, 'docker-local', 'team/app', 'delete'), 'never more than the owner');
});

test('scopes: repeated and space-separated, names with colons; malformed ones are refused', () => {
  assert.equal(parseScopes(['repository:docker-local/a:pull,push', 'registry:catalog:* repository:localhost:5000/a:pull']), [
    { type: 'repository', name: 'docker-local/a', actions: ['pull', 'push'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
    { type: 'repository', name: 'localhost:5000/a', actions: ['pull'] },
  ]);
  for (const bad of ['repository', 'repository:a', 'repository::pull', 'Repository:a:pull', 'repository:a:PULL']) {
    assert.throws(() => parseScopes([bad]), (error: unknown) => error instanceof RegistryError && error.status === 400, bad);
  }
  assert.throws(() => parseTokenScope('registry:catalog:*'));
  assert.equal([...parseTokenScope('repository:docker-local:push').actions], ['read', 'annotate', 'deploy']);
});

test('JWTs: issued with the service as audience; expired, forged, alg none and modified ones are refused', async () => {
  const dir = await tempDir();
  const key = await loadSigningKey(dir);
  assert.is((await stat(join(dir, signingKeyFile))).mode & 0o777, 0o600);
  assert.is((await loadSigningKey(dir)).kid, key.kid, 'the same key on the next start');
  let now = 1_800_000_000_000;
  const service = new TokenService({ key, service: 'wharf-test', lifetimeMs: 300_000, refreshLifetimeMs: 3_600_000, now: () => now });
  const jwt = await service.issue({ subject: 'ci', tokenId: null, addedAt: 7 }, [{ type: 'repository', name: 'docker-local/a', actions: ['pull'] }]);
  const claims = decodeJwt(jwt);
  assert.equal([claims.iss, claims.aud, claims.sub, claims.exp], ['wharf', 'wharf-test', 'ci', 1_800_000_300]);
  assert.ok(typeof claims.jti === 'string');
  const verified = await service.verify(jwt);
  assert.ok(verified?.grants.has('repository:docker-local/a:pull'));
  assert.is(verified?.addedAt, 7, 'when its user was added');
  const unaware = await new SignJWT({ sub: 'ci', access: [] }).setProtectedHeader({ alg: 'ES256', kid: key.kid }).setIssuer('wharf').setAudience('wharf-test')
    .setIssuedAt(1_799_999_900).setExpirationTime(1_800_000_200).setJti('j').sign(key.privateKey);
  assert.is((await service.verify(unaware))?.addedAt, 1_799_999_900_000, 'a token from before the claim: its user was added by the time it was issued');
  const [header, payload, signature] = jwt.split('.');
  const modified = Buffer.from(JSON.stringify({ ...claims, access: [{ type: 'repository', name: 'docker-local/a', actions: ['push'] }] })).toString('base64url');
  assert.is(await service.verify(`${header}.${modified}.${signature}`), null, 'payload modified');
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
  assert.is(await service.verify(`${none}.${payload}.`), null, 'alg none');
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const forged = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'ES256', kid: key.kid }).sign(other);
  assert.is(await service.verify(forged), null, 'signed by another key');
  const otherService = new TokenService({ key, service: 'elsewhere', lifetimeMs: 300_000, refreshLifetimeMs: 1, now: () => now });
  assert.is(await otherService.verify(jwt), null, 'bound to its service');
  const refresh = await service.issueRefresh({ subject: 'ci', tokenId: null, addedAt: 7, passwordChangedAt: 5 });
  assert.is(await service.verify(refresh), null, 'a refresh token is no access token');
  assert.is(await service.verifyRefresh(jwt), null, 'and the other way round');
  assert.equal(await service.verifyRefresh(refresh), { subject: 'ci', tokenId: null, addedAt: 7, passwordChangedAt: 5 });
  now += 300_001;
  assert.is(await service.verify(jwt), null, 'expired, although it was verified (and cached) before');
});

test('throttling: per (user, address) and per address within the window, with Retry-After; attempts count when reserved', () => {
  let now = 0;
  const throttle = new LoginThrottle({ perUser: 3, perAddress: 5, windowMs: 60_000, now: () => now });
  const refusal = (user: string, address: string) => { try { throttle.reserve(user, address); } catch (error) { return error as RegistryError; } return null; };
  for (let i = 0; i < 3; i++) {
    throttle.reserve('eve', '10.0.0.1'); // never told it succeeded: a failure
    now += 1000;
  }
  const refused = refusal('eve', '10.0.0.1');
  assert.is(refused?.status, 429);
  assert.is(refused?.headers['Retry-After'], '57', 'until the oldest attempt leaves the window');
  assert.is(refusal('eve', '10.0.0.2'), null, 'the user is not locked out from everywhere');
  for (let i = 0; i < 2; i++) throttle.reserve(`u${i}`, '10.0.0.1');
  assert.ok(refusal('someone', '10.0.0.1'), 'the address reached its limit across users');
  now += 60_000;
  assert.is(refusal('eve', '10.0.0.1'), null, 'after the window');
  // A success clears its pair and gives the address its attempt back.
  for (let i = 0; i < 2; i++) throttle.reserve('carl', '10.0.0.9');
  throttle.reserve('carl', '10.0.0.9').succeeded();
  for (let i = 0; i < 3; i++) throttle.reserve('carl', '10.0.0.9');
  assert.ok(refusal('dave', '10.0.0.9'), 'the address counts its 5 failures, not the success');
});

test.run();
