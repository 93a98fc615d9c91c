/**
 * Deadlines of registry requests, against the real CLI and a real registry behind the fault proxy:
 * a manifest that stalls after its headers and 10 bytes, a server that never answers, a stalled
 * blob. Each must end after the configured deadline and the retries (here 1 s per phase, so the
 * test takes seconds), with one line naming the registry, the request and the wait.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

describeWithTools(['docker-registry'], 'registry deadlines (CLI, fault proxy)', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run make build`);
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url);
    tmp = await mkdtemp(join(tmpdir(), 'strata-deadlines-'));
    env = { STRATA_ROOT: join(tmp, 'store'), HOME: join(tmp, 'home'), SOURCE_DATE_EPOCH: '1700000000' };
    const layer = join(tmp, 'tree');
    await mkdir(join(layer, 'data'), { recursive: true });
    await writeFile(join(layer, 'data', 'big'), Buffer.alloc(256 * 1024, 7));
    ok(await strata(['append', '--layer', layer, '-o', `docker://${reg.host}/deadline/img:1`, '--progress', 'quiet'], env));
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });
  beforeEach(async () => {
    proxy.setRules([]);
    proxy.requests.length = 0;
    await rm(join(tmp, 'store'), { recursive: true, force: true });
  });

  async function timed(args: string[]): Promise<{ code: number; stderr: string; seconds: number }> {
    const started = Date.now();
    const result = await strata([...args, '--registry-timeout', '1', '--progress', 'quiet'], env);
    return { code: result.code, stderr: result.stderr, seconds: (Date.now() - started) / 1000 };
  }

  it('a manifest that stalls after its headers and 10 bytes fails after 5 tries, naming the request', async () => {
    proxy.setRules([{ method: 'GET', path: /\/manifests\//, action: { kind: 'stall-response', afterBytes: 10 } }]);
    const result = await timed(['pull', `${proxy.host}/deadline/img:1`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `registry ${proxy.host}, repository deadline/img, manifest 1: GET http://${proxy.host}/v2/deadline/img/manifests/1: the response stalled: no data for 1 s after 10 bytes of the body (5 attempts)`,
    );
    expect(proxy.requests.filter((r) => r.fault === 'stall-response')).toHaveLength(5);
    // 5 waits of 1 s and the backoff between them (at most 3.75 s), with room for a slow machine.
    expect(result.seconds).toBeLessThan(30);
  }, 60_000);

  it('a server that never answers fails after 5 tries of its ping (inspect)', async () => {
    proxy.setRules([{ path: /.*/, action: { kind: 'silent' } }]);
    const result = await timed(['inspect', `docker://${proxy.host}/deadline/img:1`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`registry ${proxy.host}: GET http://${proxy.host}/v2/: no response within 1 s (5 attempts)`);
    expect(proxy.requests).toHaveLength(5);
    expect(result.seconds).toBeLessThan(30);
  }, 60_000);

  it('a blob that stalls fails the pull after 5 tries; nothing is tagged, and the pull works once the registry does', async () => {
    proxy.setRules([{ method: 'GET', path: /\/blobs\/sha256:/, action: { kind: 'stall-response', afterBytes: 10 } }]);
    const result = await timed(['pull', `${proxy.host}/deadline/img:1`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(
        `registry ${proxy.host.replace(/\./g, '\\.')}, repository deadline/img, blob sha256:[a-f0-9]{64}: GET http://\\S+/blobs/sha256:[a-f0-9]{64}: the response stalled: no data for 1 s after 10 bytes of the body \\(5 attempts\\)`,
      ),
    );
    expect(
      result.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('hint:')),
    ).toHaveLength(1);
    expect(result.seconds).toBeLessThan(40);
    expect(ok(await strata(['images'], env))).not.toContain('deadline/img');
    proxy.setRules([]);
    ok(await strata(['pull', `${proxy.host}/deadline/img:1`, '--progress', 'quiet'], env));
  }, 90_000);
});
