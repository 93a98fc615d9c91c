/**
 * `--cache-ttl` against a real docker-registry on loopback (issue 18): steps exported by a build are
 * replayed by a fresh store while they are younger than the TTL, and run again once older, the miss naming
 * the cache and when the step was made; the cache exported again then carries the new times. Built through
 * the public library with an injected clock (no waiting), and once through the CLI with a local cache.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { build, type BuildOptions, type StrataOptions } from '../../src/index.js';
import type { BuildEvent } from '../../src/internals.js';
import { CLI, ok, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

const DAY = 86_400_000;

describeWithTools(['docker-registry'], 'strata build --cache-ttl', () => {
  let reg: TestRegistry;
  let tmp: string;
  let dir: string;
  let stores = 0;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` (make test builds first)`);
    reg = await startRegistry({ auth: 'none' });
    tmp = await mkdtemp(join(tmpdir(), 'strata-cache-ttl-'));
    dir = join(tmp, 'ctx');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a\nLABEL kind=ttl\nCOPY b.txt /b\n');
    await writeFile(join(dir, 'a.txt'), 'alpha\n');
    await writeFile(join(dir, 'b.txt'), 'beta\n');
  });
  afterAll(async () => {
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** A build in a fresh store (a new CI runner) at the time `now`. */
  async function runner(now: string, options: Partial<BuildOptions>): Promise<{ cached: number; misses: string[] }> {
    const strataOptions: StrataOptions = { storeRoot: join(tmp, `store-${++stores}`), env: {}, homeDir: join(tmp, 'home'), now: () => new Date(now) };
    const events: BuildEvent[] = [];
    const result = await build({ context: dir, tags: [`ttl:${stores}`], ...options, events: (e) => events.push(e) }, strataOptions);
    const misses = events.flatMap((e) => (e.type === 'step' && e.miss !== undefined ? [e.miss.reason] : []));
    return { cached: result.steps.cached, misses };
  }

  it('replays an imported step younger than the TTL, runs an older one again, and re-exports it with its new time', async () => {
    const ref = `${reg.host}/cache/ttl:main`;
    const from = [{ type: 'registry' as const, ref }];
    const to = { type: 'registry' as const, ref, mode: 'max' as const };
    expect((await runner('2024-01-01T00:00:00Z', { cacheTo: to })).cached).toBe(0);

    const young = await runner('2024-01-10T00:00:00Z', { cacheFrom: from, cacheTtl: 14 * DAY });
    expect(young).toEqual({ cached: 2, misses: [] });
    // Without a TTL the same cache always hits, as with buildx.
    expect((await runner('2025-01-01T00:00:00Z', { cacheFrom: from })).cached).toBe(2);

    const old = await runner('2024-01-10T00:00:00Z', { cacheFrom: from, cacheTo: to, cacheTtl: 7 * DAY });
    expect(old.cached).toBe(0);
    const said = `older than --cache-ttl (made 2024-01-01T00:00:00.000Z)`;
    expect(old.misses).toEqual([`COPY a.txt missed: step in registry cache ${ref} ${said}`, `COPY b.txt missed: step in registry cache ${ref} ${said}`]);

    // The cache exported by that build dates the steps it ran again by its own start.
    expect((await runner('2024-01-12T00:00:00Z', { cacheFrom: from, cacheTtl: 7 * DAY })).cached).toBe(2);
  });

  it('takes --cache-ttl on the command line, with a local cache; a bad duration fails before building', async () => {
    const cacheDir = join(tmp, 'local-cache');
    const env = (): Record<string, string> => ({ STRATA_ROOT: join(tmp, `cli-store-${++stores}`), HOME: join(tmp, 'home') });
    const args = (...more: string[]): string[] => ['build', '--progress', 'plain', '-t', 'ttl-cli:1', ...more, dir];
    ok(await strata(args('--cache-to', `type=local,dest=${cacheDir}`), env()));
    const within = await strata(args('--cache-from', `type=local,src=${cacheDir}`, '--cache-ttl', '2w'), env());
    ok(within);
    expect(within.stderr).toMatch(/2\/3 steps cached/);
    // A TTL of zero: every step was made before this build started.
    const zero = await strata(args('--cache-from', `type=local,src=${cacheDir}`, '--cache-ttl', '0s'), env());
    ok(zero);
    expect(zero.stderr).toMatch(/0\/3 steps cached/);
    expect(zero.stderr).toMatch(/COPY a\.txt missed: step in local cache .*local-cache older than --cache-ttl \(made \d{4}-\d\d-\d\dT/);
    const bad = await strata(args('--cache-ttl', 'soon'), env());
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--cache-ttl: "soon" is not a duration');
  });
});
