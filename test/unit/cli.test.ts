import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliContext } from '../../cli/context.js';
import { parseCompressionLevel } from '../../cli/options.js';
import { runCli } from '../../cli/run.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process against a store under the test's temp directory. */
async function strata(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const ctx: CliContext = {
    stdin: new PassThrough(),
    stdout,
    stderr,
    env: { STRATA_ROOT: join(dir, 'store'), HOME: join(dir, 'home'), SOURCE_DATE_EPOCH: '1700000000', ...env },
    cwd: dir,
    isTty: false,
  };
  const code = await runCli(args, ctx);
  await new Promise((resolve) => setImmediate(resolve));
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

async function layerDir(): Promise<string> {
  const root = join(dir, 'rootfs');
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'greeting'), 'hello\n');
  await writeFile(join(root, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  return root;
}

describe('strata CLI: program', () => {
  it('--version prints the package version and exits 0', async () => {
    const run = await strata(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('--help lists the commands and exits 0', async () => {
    const run = await strata(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['append', 'inspect', 'images', 'rmi', 'tag', 'copy']) expect(run.stdout).toContain(command);
  });

  it('an unknown command is a usage error (exit 2)', async () => {
    const run = await strata(['frobnicate']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('frobnicate');
  });

  it('an unknown option is a usage error (exit 2)', async () => {
    const run = await strata(['images', '--no-such-option']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--no-such-option');
  });

  it('a missing argument is a usage error (exit 2)', async () => {
    expect((await strata(['inspect'])).code).toBe(2);
  });
});

describe('strata CLI: errors', () => {
  it('a missing --layer path exits 1 with one line naming the path, no stack', async () => {
    const missing = join(dir, 'no-such-dir');
    const run = await strata(['append', '--layer', missing, '-t', 'x']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^strata: /);
    expect(lines[0]).toContain(missing);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('with --debug the stack follows the message', async () => {
    const missing = join(dir, 'no-such-dir');
    const run = await strata(['--debug', 'append', '--layer', missing, '-t', 'x']);
    expect(run.code).toBe(1);
    expect(run.stderr.split('\n')[0]).toContain(missing);
    expect(run.stderr).toMatch(/\n\s+at /);
  });

  it('--debug after the command name works too', async () => {
    const missing = join(dir, 'no-such-dir');
    const run = await strata(['append', '--layer', missing, '--debug']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/\n\s+at /);
  });

  it('a bad option value is a usage error with the flag named', async () => {
    const run = await strata(['append', '--layer', await layerDir(), '--compression', 'brotli']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--compression');
  });

  it('inspecting a name the store does not have exits 1 with a hint', async () => {
    const run = await strata(['inspect', 'nothing-here']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('"nothing-here"');
    expect(run.stderr).toContain('hint: ');
  });

  it('rmi of an unknown name exits 1', async () => {
    expect((await strata(['rmi', 'ghost'])).code).toBe(1);
  });
});

describe('strata CLI: local store', () => {
  it('images on an empty store prints only the header', async () => {
    const run = await strata(['images']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    expect(run.stdout).toMatch(/^NAME\s+DIGEST\s+MEDIA TYPE/);
    expect(JSON.parse((await strata(['images', '--format', 'json'])).stdout)).toEqual([]);
  });

  it('append -t, then images, tag, inspect, rmi', async () => {
    const root = await layerDir();
    const appended = await strata([
      'append',
      '--platform',
      'linux/amd64',
      '--layer',
      `${root}:/app`,
      '--set-env',
      'MODE=prod',
      '--set-cmd',
      '["/app/run.sh"]',
      '-t',
      'x',
    ]);
    expect(appended.stderr).toBe('');
    expect(appended.code).toBe(0);
    const digest = appended.stdout.trim();
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);

    // Same inputs, same SOURCE_DATE_EPOCH: the same digest.
    expect(
      (
        await strata(['append', '--platform', 'linux/amd64', '--layer', `${root}:/app`, '--set-env', 'MODE=prod', '--set-cmd', '["/app/run.sh"]', '-t', 'x'])
      ).stdout.trim(),
    ).toBe(digest);

    const listed = await strata(['images']);
    expect(listed.stdout).toContain('x:latest');
    expect(listed.stdout).toContain(digest.slice(0, 19));
    const json = JSON.parse((await strata(['images', '--format', 'json'])).stdout) as Array<{ name: string; fullName: string; digest: string }>;
    expect(json).toEqual([expect.objectContaining({ name: 'x:latest', fullName: 'docker.io/library/x:latest', digest })]);
    expect((await strata(['images', '-q'])).stdout).toBe(`${digest}\n`);

    const tagged = await strata(['tag', 'x', 'y:2']);
    expect(tagged.code).toBe(0);
    expect(tagged.stdout.trim()).toBe(digest);
    expect((await strata(['images', '--format', 'json'])).stdout).toContain('y:2');

    const inspected = await strata(['inspect', '--format', 'json', 'y:2']);
    expect(inspected.code).toBe(0);
    const report = JSON.parse(inspected.stdout) as {
      digest: string;
      platform: string;
      config: { env: string[]; cmd: string[] };
      layers: unknown[];
      history: Array<{ createdBy: string; emptyLayer: boolean }>;
      created: string;
    };
    expect(report.digest).toBe(digest);
    expect(report.platform).toBe('linux/amd64');
    expect(report.config.env).toContain('MODE=prod');
    expect(report.config.cmd).toEqual(['/app/run.sh']);
    expect(report.layers).toHaveLength(1);
    expect(report.created).toBe('2023-11-14T22:13:20Z');
    expect(report.history.map((h) => h.emptyLayer)).toEqual([false, true]);

    const raw = await strata(['inspect', '--raw', 'config', 'x']);
    const config = JSON.parse(raw.stdout) as { architecture: string; rootfs: { diff_ids: string[] } };
    expect(config.architecture).toBe('amd64');
    expect(config.rootfs.diff_ids).toHaveLength(1);
    expect((await strata(['inspect', '--raw', 'index', 'x'])).code).toBe(1);
    expect((await strata(['inspect', '--raw', 'bogus', 'x'])).code).toBe(2);

    const text = await strata(['inspect', 'x']);
    expect(text.stdout).toContain('Platform:     linux/amd64');

    const removed = await strata(['rmi', 'x']);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain('Untagged docker.io/library/x:latest');
    // y:2 still names the image: nothing was freed and it still inspects.
    expect(removed.stdout).not.toContain('freed');
    expect((await strata(['inspect', '--raw', 'manifest', 'y:2'])).code).toBe(0);

    const last = await strata(['rmi', 'y:2']);
    expect(last.stdout).toMatch(/freed /);
    expect((await strata(['images', '-q'])).stdout).toBe('');
  });

  it('append writes to an OCI layout with -o', async () => {
    const root = await layerDir();
    const run = await strata(['append', '--platform', 'linux/arm64', '--layer', root, '-o', `oci:${join(dir, 'layout')}:v1`]);
    expect(run.code).toBe(0);
    const inspected = await strata(['inspect', '--format', 'json', `oci:${join(dir, 'layout')}:v1`]);
    expect(inspected.code).toBe(0);
    expect((JSON.parse(inspected.stdout) as { platform: string }).platform).toBe('linux/arm64');
    expect((await strata(['images', '-q'])).stdout).toBe('');
  });
});

describe('--compression-level', () => {
  it('takes a gzip level 0-9 and refuses anything else with a usage error', () => {
    expect(parseCompressionLevel(undefined)).toBeUndefined();
    expect(parseCompressionLevel('0')).toBe(0);
    expect(parseCompressionLevel('9')).toBe(9);
    for (const bad of ['10', '-1', 'fast', '', '1.5']) expect(() => parseCompressionLevel(bad)).toThrow(/--compression-level must be a gzip level from 0/);
  });
});
