/**
 * The CLI as a careful user meets it when things go wrong: SIGINT/SIGTERM in the middle of a command,
 * a reader that closes stdout early, a full disk (a small tmpfs store), hostile bytes in a Dockerfile
 * and names far too long. Real processes, real files.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';
import { storeLeftovers } from '../helpers/store-files.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';

let tmp: string;
beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run make build`);
  tmp = await mkdtemp(join(tmpdir(), 'strata-robust-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Temp files and blobs under a store: what an interrupted command must not leave behind. */
const leftovers = storeLeftovers;

/** Starts strata, sends `signal` once `ready()` holds, and returns its exit status and stderr. */
function interrupted(
  args: string[],
  env: Record<string, string>,
  signal: NodeJS.Signals,
  ready: () => boolean,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = setInterval(() => {
      if (ready()) {
        clearInterval(poll);
        child.kill(signal);
      }
    }, 20);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code, stderr });
    });
  });
}

describe('signals, a closed stdout, hostile text', () => {
  it('SIGINT during append exits 130 with one line, leaving no temp file and no tag', async () => {
    const layer = join(tmp, 'big-layer');
    await mkdir(layer, { recursive: true });
    await writeFile(join(layer, 'big'), randomBytes(96 * 1024 * 1024));
    const store = join(tmp, 'store-int');
    const result = await interrupted(
      ['append', '--layer', layer, '-t', 'int:1', '--progress', 'quiet'],
      { STRATA_ROOT: store },
      'SIGINT',
      () => leftovers(store).length > 0,
    );
    expect(result.code).toBe(130);
    expect(result.stderr).toBe('strata: interrupted by SIGINT\n');
    expect(leftovers(store)).toEqual([]);
    expect(ok(await strata(['images'], { STRATA_ROOT: store }))).not.toContain('int');
  }, 60_000);

  it('a reader that closes stdout early ends the command quietly with 0', async () => {
    const store = join(tmp, 'store-epipe');
    const layer = join(tmp, 'small-layer');
    await mkdir(layer, { recursive: true });
    await writeFile(join(layer, 'f'), 'x');
    for (let i = 0; i < 3; i++) ok(await strata(['append', '--layer', layer, '-t', `epipe:${i}`, '--progress', 'quiet'], { STRATA_ROOT: store }));
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(CLI, ['images'], { env: { PATH: process.env.PATH, STRATA_ROOT: store }, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(result).toEqual({ code: 0, stderr: '' });
    // As a shell runs it.
    const shell = spawnSync('sh', ['-c', `"${CLI}" images | head -1`], { env: { PATH: process.env.PATH, STRATA_ROOT: store }, encoding: 'utf8' });
    expect(shell.stdout).toMatch(/^NAME/);
    expect(shell.stderr).toBe('');
  }, 60_000);

  it('control characters of a Dockerfile reach the terminal escaped', async () => {
    const ctx = join(tmp, 'ctl');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\n\x1b]0;pwned\x07\x1b[2J x\n');
    const result = await strata(['build', ctx], { STRATA_ROOT: join(tmp, 'store-ctl') });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unknown instruction: \\x1b]0;pwned\\x07\\x1b[2J');
    expect(result.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
  });

  it('a path far too long is shortened in the middle of the one line that names it', async () => {
    const long = join(tmp, 'a'.repeat(5000));
    const result = await strata(['append', '--layer', long, '-t', 'x:1'], { STRATA_ROOT: join(tmp, 'store-long') });
    expect(result.code).toBe(1);
    const line = result.stderr.split('\n')[0]!;
    expect(line.length).toBeLessThan(700);
    expect(line).toMatch(/aaaa…\[\d+ more\]…aaaa/);
  });
});

describeWithTools(['docker-registry'], 'SIGTERM during a pull', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url);
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
  });

  it('exits 143 and names nothing; the next pull works', async () => {
    const layer = join(tmp, 'pull-layer');
    await mkdir(layer, { recursive: true });
    await writeFile(join(layer, 'f'), randomBytes(1024 * 1024));
    const seed = join(tmp, 'store-seed');
    ok(await strata(['append', '--layer', layer, '-o', `docker://${reg.host}/robust/img:1`, '--progress', 'quiet'], { STRATA_ROOT: seed }));
    proxy.setRules([{ method: 'GET', path: /\/blobs\/sha256:/, action: { kind: 'stall-response', afterBytes: 100 } }]);
    const store = join(tmp, 'store-pull');
    const asked = (): boolean => proxy.requests.some((r) => r.fault === 'stall-response');
    const result = await interrupted(['pull', `${proxy.host}/robust/img:1`, '--progress', 'quiet'], { STRATA_ROOT: store }, 'SIGTERM', asked);
    expect(result.code, result.stderr).toBe(143);
    expect(result.stderr).toBe('strata: interrupted by SIGTERM\n');
    expect(leftovers(store)).toEqual([]);
    expect(ok(await strata(['images'], { STRATA_ROOT: store }))).not.toContain('robust/img');
    proxy.setRules([]);
    ok(await strata(['pull', `${proxy.host}/robust/img:1`, '--progress', 'quiet'], { STRATA_ROOT: store }));
  }, 60_000);

  it('SIGINT during a copy to an OCI layout exits 130 at once; no layout is left', async () => {
    proxy.setRules([{ method: 'GET', path: /\/blobs\/sha256:/, action: { kind: 'stall-response', afterBytes: 100 } }]);
    const store = join(tmp, 'store-copy');
    const dest = join(tmp, 'copy-layout');
    const before = proxy.requests.length;
    const asked = (): boolean => proxy.requests.slice(before).some((r) => r.fault === 'stall-response');
    const result = await interrupted(
      ['copy', `docker://${proxy.host}/robust/img:1`, `oci:${dest}:v1`, '--progress', 'quiet'],
      { STRATA_ROOT: store },
      'SIGINT',
      asked,
    );
    proxy.setRules([]);
    // The one line comes from the abort reaching the copy; the fallback exit 10 s later prints none.
    expect(result.code, result.stderr).toBe(130);
    expect(result.stderr).toBe('strata: interrupted by SIGINT\n');
    expect(existsSync(dest)).toBe(false);
  }, 60_000);

  it('SIGTERM during a push exits 143 at once; the tag is not written', async () => {
    const layer = join(tmp, 'push-layer');
    await mkdir(layer, { recursive: true });
    await writeFile(join(layer, 'g'), randomBytes(2 * 1024 * 1024));
    const store = join(tmp, 'store-push');
    ok(await strata(['append', '--layer', layer, '-t', 'robust/pushme:1', '--progress', 'quiet'], { STRATA_ROOT: store }));
    proxy.setRules([{ method: 'PATCH', path: /\/blobs\/uploads\//, action: { kind: 'stall-response', afterBytes: 0 } }]);
    const before = proxy.requests.length;
    const asked = (): boolean => proxy.requests.slice(before).some((r) => r.fault === 'stall-response');
    const result = await interrupted(
      ['push', 'robust/pushme:1', `docker://${proxy.host}/robust/pushed:1`, '--progress', 'quiet'],
      { STRATA_ROOT: store },
      'SIGTERM',
      asked,
    );
    proxy.setRules([]);
    expect(result.code, result.stderr).toBe(143);
    expect(result.stderr).toBe('strata: interrupted by SIGTERM\n');
    const tags = await fetch(`${reg.url}/v2/robust/pushed/tags/list`);
    expect(tags.status === 404 || !((await tags.json()) as { tags?: string[] | null }).tags?.includes('1')).toBe(true);
  }, 60_000);
});

describeAsRoot('a full disk', () => {
  let mount: string;
  beforeAll(async () => {
    mount = join(tmp, 'tmpfs');
    await mkdir(mount, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mount]);
  });
  afterAll(() => {
    if (mount) execFileSync('umount', [mount]);
  });

  it('says "no space left on device"; the store stays intact and earlier images inspect', async () => {
    const env = { STRATA_ROOT: join(mount, 'store') };
    const small = join(tmp, 'enospc-small');
    await mkdir(small, { recursive: true });
    await writeFile(join(small, 'f'), 'small\n');
    ok(await strata(['append', '--layer', small, '-t', 'before:1', '--progress', 'quiet'], env));
    const big = join(tmp, 'enospc-big');
    await mkdir(big, { recursive: true });
    await writeFile(join(big, 'f'), randomBytes(8 * 1024 * 1024));
    for (const args of [
      ['append', '--layer', big, '-t', 'after:1'],
      ['build', '-t', 'after:2', big],
    ]) {
      if (args[0] === 'build') await writeFile(join(big, 'Dockerfile'), 'FROM scratch\nCOPY f /f\n');
      const result = await strata([...args, '--progress', 'quiet'], env);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('no space left on device');
      expect(result.stderr).not.toContain('aborted');
    }
    expect(ok(await strata(['inspect', 'before:1'], env))).toContain('Digest:');
    expect(leftovers(env.STRATA_ROOT)).toEqual([]);
    expect(ok(await strata(['images'], env))).not.toContain('after');
  }, 60_000);
});
