/**
 * Mount memory across runs: the store records where blobs were seen, so a push in a new process to another
 * repository of the same registry mounts them (zero uploads in the registry's own log); with a token registry
 * the mount asks pull on the source repository, and where the credentials do not allow it the push uploads.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';
import { writeTinyOciLayout, type TinyImage } from '../helpers/oci-layout.js';
import { startRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

/** Blob upload requests (POST without a mount that succeeded is not counted: PATCH and PUT carry the bytes). */
function uploadsTo(logs: string, repository: string): number {
  const pattern = new RegExp(`http\\.request\\.method=(PUT|PATCH) .*http\\.request\\.uri="/v2/${repository}/blobs/uploads/`, 'g');
  return logs.match(pattern)?.length ?? 0;
}

function mountsInto(logs: string, repository: string, from: string): number {
  const pattern = new RegExp(
    `http\\.request\\.method=POST .*http\\.request\\.uri="/v2/${repository}/blobs/uploads/\\?[^"]*from=${from.replace('/', '%2F')}`,
    'g',
  );
  return logs.match(pattern)?.length ?? 0;
}

describeWithTools(['docker-registry'], 'mount memory across runs', () => {
  let tmp: string;
  let tiny: TinyImage;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first`);
    tmp = await mkdtemp(join(tmpdir(), 'strata-mounts-'));
    tiny = await writeTinyOciLayout(join(tmp, 'tiny'), { tag: 'v1', content: 'mount me across runs\n' });
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a push in a new process to another repository mounts every blob: zero uploads', async () => {
    const reg = await startRegistry({ auth: 'none' });
    try {
      const env = { STRATA_ROOT: join(tmp, 'store-anon'), HOME: join(tmp, 'home'), DOCKER_CONFIG: join(tmp, 'docker-anon') };
      ok(await strata(['push', `oci:${tiny.dir}:v1`, `${reg.host}/mm/a:1`, '--progress', 'quiet'], env));
      expect(uploadsTo(reg.logs(), 'mm/a')).toBeGreaterThan(0);
      const second = await strata(['push', `oci:${tiny.dir}:v1`, `${reg.host}/mm/b:1`, '--progress', 'plain'], env);
      expect(ok(second)).toBe(tiny.manifestDigest);
      expect(uploadsTo(reg.logs(), 'mm/b')).toBe(0);
      expect(second.stderr).toMatch(/mounted/);
      // An image pulled into another store in one process is mounted by a push from it in the next.
      const puller = { ...env, STRATA_ROOT: join(tmp, 'store-pulled') };
      ok(await strata(['pull', `${reg.host}/mm/a:1`, '--progress', 'quiet'], puller));
      ok(await strata(['push', `${reg.host}/mm/a:1`, `${reg.host}/mm/d:1`, '--progress', 'quiet'], puller));
      expect(uploadsTo(reg.logs(), 'mm/d')).toBe(0);
      // A store without the record uploads, as before.
      ok(await strata(['push', `oci:${tiny.dir}:v1`, `${reg.host}/mm/c:1`, '--progress', 'quiet'], { ...env, STRATA_ROOT: join(tmp, 'store-fresh') }));
      expect(uploadsTo(reg.logs(), 'mm/c')).toBeGreaterThan(0);
    } finally {
      await reg.stop();
    }
  });

  it('with a token registry the mount asks pull on the source, and falls back to upload where it is denied', async () => {
    const reg = await startRegistry({
      auth: 'token',
      users: { tester: 'secret-pass-123', other: 'other-pass-456' },
      // `other` may use tok/c only: its mounts from tok/a and tok/b must fail and become uploads.
      tokenPermissions: (account, requested) => (account === undefined ? [] : account === 'other' && requested.name !== 'tok/c' ? [] : requested.actions),
    });
    try {
      const env = { STRATA_ROOT: join(tmp, 'store-token'), HOME: join(tmp, 'home'), DOCKER_CONFIG: join(tmp, 'docker-token') };
      ok(await strata(['login', reg.host, '-u', 'tester', '-p', 'secret-pass-123'], env));
      ok(await strata(['push', `oci:${tiny.dir}:v1`, `${reg.host}/tok/a:1`, '--progress', 'quiet'], env));
      const before = reg.tokenServer!.requests.length;
      ok(await strata(['push', `oci:${tiny.dir}:v1`, `${reg.host}/tok/b:1`, '--progress', 'quiet'], env));
      expect(uploadsTo(reg.logs(), 'tok/b')).toBe(0);
      expect(mountsInto(reg.logs(), 'tok/b', 'tok/a')).toBeGreaterThan(0);
      const asked = reg.tokenServer!.requests.slice(before).flatMap((r) => r.scopes);
      expect(asked).toContain('repository:tok/a:pull');

      // Same store (the record names tok/a and tok/b), credentials that may not pull from either: uploads, no error.
      const otherEnv = { ...env, DOCKER_CONFIG: join(tmp, 'docker-other') };
      ok(await strata(['login', reg.host, '-u', 'other', '-p', 'other-pass-456'], otherEnv));
      const denied = await strata(['push', `oci:${tiny.dir}:v1`, `${reg.host}/tok/c:1`, '--progress', 'plain'], otherEnv);
      expect(ok(denied)).toBe(tiny.manifestDigest);
      expect(uploadsTo(reg.logs(), 'tok/c')).toBeGreaterThan(0);
      expect(mountsInto(reg.logs(), 'tok/c', 'tok/b')).toBeGreaterThan(0);
    } finally {
      await reg.stop();
    }
  });
});
