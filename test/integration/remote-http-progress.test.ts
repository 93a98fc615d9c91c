/**
 * `ADD <url>` reports its download through the build's progress output: a loopback server sends 4 MiB
 * in 64 KiB pieces 20 ms apart (so the download lasts over a second whatever the machine), and the
 * built CLI shows the bytes so far against the Content-Length, in json and plain modes.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, strata } from '../helpers/cli.js';
import { startFileServer, type FileServer } from '../helpers/file-server.js';

const SIZE = 4 * 1024 * 1024;

describe('ADD <url> download progress', () => {
  let tmp: string;
  let srv: FileServer;
  let ctx: string;
  let url: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'strata-add-progress-'));
    srv = await startFileServer();
    srv.routes.set('/big.bin', { body: Buffer.alloc(SIZE, 7), slowMs: 20 });
    url = `${srv.url}/big.bin`;
    ctx = join(tmp, 'ctx');
    await mkdir(ctx);
    await writeFile(join(ctx, 'Dockerfile'), `FROM scratch\nADD ${url} /big.bin\n`);
    const remote = join(tmp, 'remote');
    await mkdir(remote);
    await writeFile(join(remote, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /\nCOPY --from=extra b.txt /\n');
    await writeFile(join(remote, 'a.txt'), 'a\n');
    await writeFile(join(remote, 'b.txt'), 'b\n');
    srv.routes.set('/ctx.tar', { body: execFileSync('tar', ['-C', remote, '-c', '.']), slowMs: 5 });
  });
  afterAll(async () => {
    await srv?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const build = (mode: string, store: string) =>
    strata(['build', '--progress', mode, '-o', `type=oci,tar=false,dest=${join(tmp, `out-${store}`)}`, ctx], { STRATA_ROOT: join(tmp, store) });

  it('json: a start, bytes so far against the Content-Length (throttled), and the end', async () => {
    const result = await build('json', 'store-json');
    ok(result);
    const events = result.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { type: string; state?: string; bytes?: number; total?: number; url?: string; where?: string })
      .filter((e) => e.type === 'download');
    expect(events[0]).toMatchObject({ state: 'start', bytes: 0, total: SIZE, url, where: `${ctx}/Dockerfile:2` });
    expect(events.at(-1)).toMatchObject({ state: 'done', bytes: SIZE, total: SIZE });
    const progress = events.filter((e) => e.state === 'progress');
    // The pieces arrive over more than a second, so some byte counts pass the 250 ms throttle (its exact
    // spacing is the renderer's unit test, with a clock of its own).
    expect(progress.length).toBeGreaterThan(0);
    const bytes = progress.map((e) => e.bytes ?? 0);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(bytes.every((b) => b > 0 && b <= SIZE)).toBe(true);
  }, 60_000);

  it('plain: a line at the start with the size, and one at the end', async () => {
    const result = await build('plain', 'store-plain');
    ok(result);
    const prefix = `${ctx}/Dockerfile:2: ${url}: `;
    const lines = result.stderr.split('\n').filter((l) => l.startsWith(prefix));
    expect(lines[0]).toBe(`${prefix}downloading 4.0 MiB`);
    expect(lines.at(-1)).toBe(`${prefix}downloaded 4.0 MiB`);
    for (const line of lines.slice(1, -1)) expect(line).toMatch(/: \d+(\.\d)? (KiB|MiB) \/ 4\.0 MiB \(\d+%\)$/);
  }, 60_000);

  it('a context and a --build-context behind URLs are told as they download', async () => {
    const result = await strata(
      [
        'build',
        '--progress',
        'plain',
        '--build-context',
        `extra=${srv.url}/ctx.tar`,
        '-o',
        `type=oci,tar=false,dest=${join(tmp, 'out-ctx')}`,
        `${srv.url}/ctx.tar`,
      ],
      { STRATA_ROOT: join(tmp, 'store-ctx') },
    );
    ok(result);
    const lines = result.stderr.split('\n');
    expect(lines).toContain(`context: ${srv.url}/ctx.tar: downloading 10 KiB`);
    expect(lines).toContain(`context: ${srv.url}/ctx.tar: downloaded 10 KiB`);
    expect(lines).toContain(`--build-context: ${srv.url}/ctx.tar: downloaded 10 KiB`);
  }, 60_000);
});
