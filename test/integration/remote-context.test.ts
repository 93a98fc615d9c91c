/**
 * Build contexts that are not directories, with the built CLI: a tar on stdin (plain, gzip, bzip2, xz,
 * zstd; told by content), an http(s) URL of a tar archive, an http(s) URL of a Dockerfile (docker's
 * reading), the .dockerignore inside each, a tar whose entries climb out with ../ refused in one line
 * with nothing left behind, and --build-context NAME=<tar URL> with its own .dockerignore.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, ok, tool, type CliResult } from '../helpers/cli.js';
import { storeLeftovers } from '../helpers/store-files.js';
import { startFileServer, type FileServer } from '../helpers/file-server.js';
import { tarEntries } from '../helpers/image-read.js';
import { describeWithTools } from '../helpers/tools.js';

/** The CLI with `input` on its stdin. */
function strataWithStdin(args: string[], env: Record<string, string>, input: Buffer): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(CLI, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

describeWithTools(['tar', 'gzip', 'bzip2', 'xz', 'zstd'], 'remote build contexts', () => {
  let tmp: string;
  let srv: FileServer;
  let plainTar: Buffer;
  let n = 0;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json && node scripts/bundle-cli.mjs\``);
    tmp = await mkdtemp(join(tmpdir(), 'strata-remote-ctx-'));
    srv = await startFileServer();
    const src = join(tmp, 'src');
    await mkdir(join(src, 'dir'), { recursive: true });
    await writeFile(join(src, 'Dockerfile'), 'FROM scratch\nCOPY . /ctx/\n');
    await writeFile(join(src, 'dir', 'file.txt'), 'in the tar\n');
    await writeFile(join(src, 'secret.env'), 'TOKEN=nope\n');
    await writeFile(join(src, '.dockerignore'), '*.env\n');
    ok(await tool('tar', ['-C', src, '-cf', join(tmp, 'ctx.tar'), '.']));
    plainTar = await readFile(join(tmp, 'ctx.tar'));
  });
  afterAll(async () => {
    await srv?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function compressed(kind: 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd'): Promise<Buffer> {
    if (kind === 'tar') return plainTar;
    const file = join(tmp, `ctx-${kind}.tar`);
    await writeFile(file, plainTar);
    ok(await tool(kind, kind === 'zstd' ? ['-q', '-f', file] : ['-f', '-k', file]));
    return readFile(`${file}.${{ gzip: 'gz', bzip2: 'bz2', xz: 'xz', zstd: 'zst' }[kind]}`);
  }

  const env = (): Record<string, string> => ({ STRATA_ROOT: join(tmp, `store-${++n}`) });

  for (const kind of ['tar', 'gzip', 'bzip2', 'xz', 'zstd'] as const) {
    it(`takes a ${kind === 'tar' ? 'plain' : kind} tar on stdin as the context, with its .dockerignore`, async () => {
      const out = join(tmp, `rootfs-${kind}.tar`);
      const e = env();
      ok(await strataWithStdin(['build', '--progress', 'quiet', '-t', 'stdin-ctx:1', '-o', `type=tar,dest=${out}`, '-'], e, await compressed(kind)));
      const entries = await tarEntries(out);
      expect(entries.get('ctx/dir/file.txt')?.content.toString()).toBe('in the tar\n');
      expect(entries.has('ctx/secret.env')).toBe(false);
      // The unpacked context is removed when the build ends.
      expect(storeLeftovers(e.STRATA_ROOT!)).toEqual([]);
    });
  }

  it('takes an http tar.gz URL as the context, and a URL that is no archive as the Dockerfile', async () => {
    srv.routes.set('/ctx.tar.gz', { body: await compressed('gzip') });
    srv.routes.set('/Dockerfile', { body: 'FROM scratch\nLABEL from=url\n' });
    const out = join(tmp, `rootfs-url-${n}.tar`);
    ok(await strataWithStdin(['build', '--progress', 'quiet', '-o', `type=tar,dest=${out}`, `${srv.url}/ctx.tar.gz`], env(), Buffer.alloc(0)));
    expect((await tarEntries(out)).get('ctx/dir/file.txt')?.content.toString()).toBe('in the tar\n');
    const res = await strataWithStdin(['build', '--progress', 'plain', '-t', 'df-url:1', `${srv.url}/Dockerfile`], env(), Buffer.alloc(0));
    ok(res);
    expect(res.stderr).toContain('LABEL from=url');
  });

  it('takes --build-context NAME=<tar URL>, with the .dockerignore inside it', async () => {
    srv.routes.set('/named.tar.xz', { body: await compressed('xz') });
    const dir = join(tmp, `ctx-named-${++n}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY --from=extra dir/file.txt /named.txt\nCOPY --from=extra . /all/\n');
    const out = join(tmp, `rootfs-named-${n}.tar`);
    ok(
      await strataWithStdin(
        ['build', '--progress', 'quiet', '-t', 'named:1', '--build-context', `extra=${srv.url}/named.tar.xz`, '-o', `type=tar,dest=${out}`, dir],
        env(),
        Buffer.alloc(0),
      ),
    );
    const entries = await tarEntries(out);
    expect(entries.get('named.txt')?.content.toString()).toBe('in the tar\n');
    expect(entries.get('all/dir/file.txt')?.content.toString()).toBe('in the tar\n');
    // As BuildKit reads a named local context: its own .dockerignore applies.
    expect(entries.has('all/secret.env')).toBe(false);
  });

  it('refuses a tar whose entries climb out with ../, in one line, leaving nothing behind', async () => {
    const p = pack();
    p.entry({ name: 'Dockerfile' }, 'FROM scratch\nCOPY . /\n');
    p.entry({ name: '../escaped.txt' }, 'gotcha');
    p.finalize();
    const chunks: Buffer[] = [];
    for await (const c of p) chunks.push(c as Buffer);
    const e = env();
    const res = await strataWithStdin(['build', '--progress', 'quiet', '-t', 'evil:1', '-'], e, Buffer.concat(chunks));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('tar context from stdin: entry "../escaped.txt" escapes the layer root with ..');
    expect(existsSync(join(tmp, 'escaped.txt'))).toBe(false);
    expect(storeLeftovers(e.STRATA_ROOT!)).toEqual([]);
    const empty = await strataWithStdin(['build', '--progress', 'quiet', '-'], env(), Buffer.alloc(0));
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toContain('stdin was empty');
  });
});
