import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError, type StrataError } from '../../src/errors/index.js';
import { createExecutor, type CommandRunDescription, type RunRequest } from '../../src/exec/index.js';

/** `command:PATH` needs nothing but a program; this one is a host shell script standing in for a remote sandbox. */
describe('command:PATH executor', () => {
  let dir: string;
  let rootfs: string;
  let program: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-exec-command-'));
    rootfs = join(dir, 'rootfs');
    await mkdir(rootfs);
    program = join(dir, 'sandbox.sh');
    // Saves the JSON description, writes into the rootfs it was given, talks on both streams and exits with
    // the code the step's first argument names.
    await writeFile(
      program,
      [
        '#!/bin/sh',
        'cat > "$0.json"',
        'echo "made by the sandbox" > "$1/made"',
        'echo "to stdout"',
        'echo "to stderr" >&2',
        'code=$(sed -n \'s/.*"args":\\["\\([0-9]*\\)".*/\\1/p\' "$0.json")',
        'exit "${code:-0}"',
      ].join('\n'),
    );
    await chmod(program, 0o755);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function request(args: string[]): RunRequest {
    return {
      rootfs,
      args,
      env: ['A=1'],
      user: { uid: 1000, gid: 1000 },
      workdir: '/w',
      mounts: [{ type: 'cache', source: join(dir, 'cache'), target: '/cache' }],
      network: 'none',
      platform: { os: 'linux', architecture: 'amd64' },
      where: 'Dockerfile:9',
    };
  }

  it('gives the program the rootfs and the step as JSON, streams its output and succeeds on exit 0', async () => {
    const chunks: Array<[string, string]> = [];
    const executor = createExecutor(`command:${program}`);
    expect(await executor.available()).toEqual({ ok: true });
    const result = await executor.run({ ...request(['0']), onOutput: (stream, chunk) => chunks.push([stream, chunk.toString()]) });
    expect(result.exitCode).toBe(0);
    expect(await readFile(join(rootfs, 'made'), 'utf8')).toBe('made by the sandbox\n');
    const description = JSON.parse(await readFile(`${program}.json`, 'utf8')) as CommandRunDescription;
    expect(description).toMatchObject({ version: 1, rootfs, args: ['0'], env: ['A=1'], user: { uid: 1000, gid: 1000 }, workdir: '/w', network: 'none' });
    expect(description.mounts).toEqual([{ type: 'cache', source: join(dir, 'cache'), target: '/cache' }]);
    expect(chunks).toContainEqual(['stdout', 'to stdout\n']);
    expect(chunks).toContainEqual(['stderr', 'to stderr\n']);
  });

  it('turns a non-zero exit into E_RUN_FAILED with the code and the last lines', async () => {
    const error = (await createExecutor(`command:${program}`)
      .run(request(['7']))
      .catch((e: unknown) => e)) as StrataError;
    expect(isStrataError(error, 'E_RUN_FAILED')).toBe(true);
    expect(error.message).toBe('Dockerfile:9: RUN 7 exited with code 7');
    expect(error.hint).toContain('to stderr');
  });

  it('says what to do when the program is missing or relative', async () => {
    expect(await createExecutor(`command:${join(dir, 'nope')}`).available()).toMatchObject({ ok: false });
    expect(await createExecutor('command:relative/prog').available()).toMatchObject({ ok: false, reason: expect.stringContaining('absolute path') });
    const error = await createExecutor('command:relative/prog')
      .run(request(['0']))
      .catch((e: unknown) => e);
    expect(isStrataError(error, 'E_RUN_UNSUPPORTED')).toBe(true);
  });
});
