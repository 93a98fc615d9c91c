/**
 * The sh launcher package.json's "bin" names (cli/strata), with a stand-in `node` first on PATH that
 * prints what it was started with: the launcher's own job is only the environment and the argv.
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { takeDeferredCaCerts } from '../../cli/deferred-ca.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { describeWithTools } from '../helpers/tools.js';

const run = promisify(execFile);

interface Started {
  argv: string[];
  env: Record<string, string>;
}

describeWithTools(['sh', 'readlink'], 'the strata launcher', () => {
  let dir: string;
  let launcher: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-launcher-'));
    await mkdir(join(dir, 'pkg', 'dist', 'cli'), { recursive: true });
    await mkdir(join(dir, 'fake-bin'));
    launcher = join(dir, 'pkg', 'dist', 'cli', 'strata');
    await copyFile(join(REPO_ROOT, 'cli', 'strata'), launcher);
    await chmod(launcher, 0o755);
    // Prints argv and environment as JSON (NODE_OPTIONS left out: this Node need not know them).
    await writeFile(
      join(dir, 'fake-bin', 'node'),
      `#!/bin/sh\nunset NODE_OPTIONS\nexec ${JSON.stringify(process.execPath)} -e 'console.log(JSON.stringify({ argv: process.argv.slice(1), env: process.env }))' -- "$@"\n`,
    );
    await chmod(join(dir, 'fake-bin', 'node'), 0o755);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function start(path: string, args: string[], env: Record<string, string>): Promise<Started> {
    const { stdout } = await run(path, args, { env: { PATH: `${join(dir, 'fake-bin')}:${process.env.PATH ?? ''}`, ...env } });
    return JSON.parse(stdout) as Started;
  }

  it('starts main.js beside it with the arguments as given, through a symlink too (as npm links a bin)', async () => {
    const args = ['build', 'a dir with spaces', '--label', 'k=v "quoted"', ''];
    const main = join(dir, 'pkg', 'dist', 'cli', 'main.js');
    expect((await start(launcher, args, {})).argv).toEqual([main, ...args]);
    await mkdir(join(dir, 'node_modules', '.bin'), { recursive: true });
    const link = join(dir, 'node_modules', '.bin', 'strata');
    await symlink(launcher, link);
    expect((await start(link, args, {})).argv).toEqual([main, ...args]);
    // Run by sh from its own directory: $0 has no slash.
    const { stdout } = await run('sh', ['strata', ...args], { cwd: join(dir, 'pkg', 'dist', 'cli'), env: { PATH: `${join(dir, 'fake-bin')}:${process.env.PATH ?? ''}` } });
    expect((JSON.parse(stdout) as Started).argv).toEqual(['./main.js', ...args]);
  });

  it('starts Node without NODE_EXTRA_CA_CERTS, handing it over under another name', async () => {
    const { env } = await start(launcher, ['--version'], { NODE_EXTRA_CA_CERTS: '/etc/extra.pem' });
    expect(env.NODE_EXTRA_CA_CERTS).toBeUndefined();
    expect(env.STRATA_DEFERRED_EXTRA_CA_CERTS).toBe('/etc/extra.pem');
  });

  it('leaves the variable to Node when Node is told to use another CA store', async () => {
    for (const option of ['--use-openssl-ca', '--max-old-space-size=512 --use-system-ca']) {
      const { env } = await start(launcher, ['--version'], { NODE_EXTRA_CA_CERTS: '/etc/extra.pem', NODE_OPTIONS: option });
      expect(env.NODE_EXTRA_CA_CERTS).toBe('/etc/extra.pem');
      expect(env.STRATA_DEFERRED_EXTRA_CA_CERTS).toBeUndefined();
    }
  });

  it('changes nothing when the variable is not set', async () => {
    const { env } = await start(launcher, ['--version'], {});
    expect(env.NODE_EXTRA_CA_CERTS).toBeUndefined();
    expect(env.STRATA_DEFERRED_EXTRA_CA_CERTS).toBeUndefined();
  });
});

it('takeDeferredCaCerts gives NODE_EXTRA_CA_CERTS back and drops the other name', () => {
  const env: NodeJS.ProcessEnv = { STRATA_DEFERRED_EXTRA_CA_CERTS: '/etc/extra.pem', PATH: '/bin' };
  expect(takeDeferredCaCerts(env)).toBe('/etc/extra.pem');
  expect(env).toEqual({ NODE_EXTRA_CA_CERTS: '/etc/extra.pem', PATH: '/bin' });
  const plain: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: '/etc/node-loaded.pem' };
  expect(takeDeferredCaCerts(plain)).toBeUndefined();
  expect(plain).toEqual({ NODE_EXTRA_CA_CERTS: '/etc/node-loaded.pem' });
});
