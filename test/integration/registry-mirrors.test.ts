/**
 * Registry mirrors with two loopback registries: the config file's `registry-mirrors` map sends pulls to the
 * mirror first; a mirror that holds the image serves it, one that lacks it or is down is passed over, and
 * the pull gets the same digest each time and says which served it. Pushes go to the registry, never to a
 * mirror.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';
import { writeTinyOciLayout, type TinyImage } from '../helpers/oci-layout.js';
import { freePort } from '../helpers/ports.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

function manifestGets(logs: string, repository: string): number {
  return logs.match(new RegExp(`"GET /v2/${repository}/manifests/[^ ]+ HTTP/1.1" 200`, 'g'))?.length ?? 0;
}

describeWithTools(['docker-registry'], 'registry mirrors', () => {
  let origin: TestRegistry;
  let mirror: TestRegistry;
  let tmp: string;
  let tiny: TinyImage;
  let down: string;
  const env = (n: string): Record<string, string> => ({
    STRATA_ROOT: join(tmp, `store-${n}`),
    HOME: join(tmp, 'home'),
    DOCKER_CONFIG: join(tmp, 'docker'),
    STRATA_CONFIG: join(tmp, `config-${n}.json`),
  });
  async function withConfig(mirrors: string[], n: string): Promise<Record<string, string>> {
    await writeFile(join(tmp, `config-${n}.json`), JSON.stringify({ 'registry-mirrors': { [origin.host]: mirrors } }));
    return env(n);
  }

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first`);
    tmp = await mkdtemp(join(tmpdir(), 'strata-mirrors-'));
    origin = await startRegistry();
    mirror = await startRegistry();
    down = `127.0.0.1:${await freePort()}`;
    tiny = await writeTinyOciLayout(join(tmp, 'tiny'), { tag: 'v1', content: 'mirrored\n' });
    const plain = { STRATA_ROOT: join(tmp, 'store-setup'), HOME: join(tmp, 'home'), DOCKER_CONFIG: join(tmp, 'docker') };
    for (const host of [origin.host, mirror.host]) ok(await strata(['push', `oci:${tiny.dir}:v1`, `${host}/mir/app:1`, '--progress', 'quiet'], plain));
    ok(await strata(['push', `oci:${tiny.dir}:v1`, `${origin.host}/mir/only-origin:1`, '--progress', 'quiet'], plain));
  });
  afterAll(async () => {
    await origin?.stop();
    await mirror?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a mirror holding the image serves it, and the pull says so', async () => {
    const before = manifestGets(origin.logs(), 'mir/app');
    const e = await withConfig([mirror.host], 'holds');
    const pulled = await strata(['pull', `${origin.host}/mir/app:1`, '--progress', 'plain'], e);
    expect(ok(pulled)).toBe(tiny.manifestDigest);
    expect(pulled.stderr).toContain(`pulling ${origin.host}/mir/app:1 from mirror ${mirror.host}`);
    expect(manifestGets(mirror.logs(), 'mir/app')).toBeGreaterThan(0);
    expect(manifestGets(origin.logs(), 'mir/app')).toBe(before);
  });

  it('a mirror lacking the image, or down, is passed over: the registry serves the same digest', async () => {
    const lacking = await strata(['pull', `${origin.host}/mir/only-origin:1`, '--progress', 'plain'], await withConfig([mirror.host], 'lacks'));
    expect(ok(lacking)).toBe(tiny.manifestDigest);
    expect(lacking.stderr).toContain(`mirror ${mirror.host} failed for ${origin.host}/mir/only-origin:1 (E_REGISTRY_NOT_FOUND); trying the next`);
    expect(lacking.stderr).not.toContain('pulling');

    const downFirst = await strata(['pull', `${origin.host}/mir/app:1`, '--progress', 'plain'], await withConfig([down, mirror.host], 'down'));
    expect(ok(downFirst)).toBe(tiny.manifestDigest);
    expect(downFirst.stderr).toContain(`mirror ${down} failed`);
    expect(downFirst.stderr).toContain(`from mirror ${mirror.host}`);

    const allDown = await strata(['pull', `${origin.host}/mir/app:1`, '--progress', 'plain'], await withConfig([down], 'all-down'));
    expect(ok(allDown)).toBe(tiny.manifestDigest);
  });

  it('a push with a mirror configured goes to the registry', async () => {
    const e = await withConfig([mirror.host], 'push');
    expect(ok(await strata(['push', `oci:${tiny.dir}:v1`, `${origin.host}/mir/pushed:1`, '--progress', 'quiet'], e))).toBe(tiny.manifestDigest);
    expect(origin.logs()).toMatch(/"PUT \/v2\/mir\/pushed\/manifests\/1 HTTP\/1.1" 201/);
    expect(mirror.logs()).not.toContain('/v2/mir/pushed/');
  });

  it('--registry-mirror applies to docker.io, and a bad config value is one clear error', async () => {
    await writeFile(join(tmp, 'config-bad.json'), JSON.stringify({ 'registry-mirrors': { 'docker.io': 'mirror:5000' } }));
    const bad = await strata(['pull', `${origin.host}/mir/app:1`], env('bad'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"registry-mirrors" must map registries to lists of mirror hosts');
  });
});
