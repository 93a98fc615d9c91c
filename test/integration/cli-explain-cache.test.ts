/**
 * The CLI side of misses explained: `--progress plain` prints one line per miss saying why,
 * `--progress json` carries it as fields, and `--explain-cache` prints only the report (stdout) and
 * writes nothing: no image name, no store change. Needs the built CLI.
 */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, strata } from '../helpers/cli.js';
import { writeContext } from '../unit/build/harness.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-cli-explain-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const s = await stat(p);
      if (s.isDirectory()) await walk(p);
      else out.push(`${relative(dir, p)} ${s.size} ${s.mtimeMs}`);
    }
  };
  await walk(dir);
  return out;
}

describe('strata build: misses explained', () => {
  it('plain names the changed files, json carries the fields, --explain-cache reports and writes nothing', async () => {
    const ctx = await writeContext(work, {
      Dockerfile: 'FROM scratch\nARG GIT_SHA\nLABEL org.opencontainers.image.revision=$GIT_SHA\nCOPY deps/ /app/deps/\nCOPY src/ /app/src/\n',
      'deps/lock': 'l\n',
      'src/a.ts': 'a\n',
      'src/b.ts': 'b\n',
    });
    const env = { STRATA_ROOT: join(work, 'store'), SOURCE_DATE_EPOCH: '1700000000' };
    ok(await strata(['build', ctx, '-t', 'app:1', '--build-arg', 'GIT_SHA=1', '--progress', 'plain'], env));
    // Only the label changed: both COPYs replay.
    const relabelled = await strata(['build', ctx, '-t', 'app:2', '--build-arg', 'GIT_SHA=2', '--progress', 'plain'], env);
    expect(relabelled.stderr).toContain('2/4 steps cached');
    expect(relabelled.stderr).not.toContain('missed');

    await writeFile(join(ctx, 'src/a.ts'), 'a2\n');
    await writeFile(join(ctx, 'src/b.ts'), 'b2\n');
    const before = await tree(join(work, 'store'));
    const dry = await strata(['build', ctx, '-t', 'app:3', '--build-arg', 'GIT_SHA=3', '--explain-cache'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toBe('#4/4 COPY src/ missed: 2 files changed (src/a.ts, src/b.ts)\n1/4 steps cached\n');
    expect(dry.stderr).toBe('');
    expect(await tree(join(work, 'store'))).toEqual(before);
    expect((await strata(['inspect', 'app:3'], env)).code).not.toBe(0);

    const plain = await strata(['build', ctx, '-t', 'app:3', '--build-arg', 'GIT_SHA=3', '--progress', 'plain'], env);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toContain('\n#4 COPY src/ missed: 2 files changed (src/a.ts, src/b.ts)\n');

    await writeFile(join(ctx, 'src/a.ts'), 'a3\n');
    const json = await strata(['build', ctx, '-t', 'app:4', '--progress', 'json'], env);
    expect(json.code, json.stderr).toBe(0);
    const steps = json.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { type: string; step?: number; miss?: unknown });
    expect(steps.find((e) => e.type === 'step' && e.step === 4)?.miss).toEqual({
      reason: 'COPY src/ missed: 1 file changed (src/a.ts)',
      changes: [{ kind: 'files', changed: ['src/a.ts'], added: [], removed: [] }],
    });
  }, 60_000);
});
