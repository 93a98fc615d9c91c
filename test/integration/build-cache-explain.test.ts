/**
 * Misses explained (issue 18): each step that misses carries one line naming what differs from the
 * closest recorded key of its instruction line, and --explain-cache (BuildInput.explainOnly) reports
 * the same without running or writing anything. Library builds on a busybox base, chroot executor (root).
 */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalStore, chrootExecutor, type BuildEvent, type Image } from '../../src/internals.js';
import { busyboxImage } from '../helpers/busybox-image.js';
import { AMD64, libraryBuild, type LibraryBuildOptions } from '../helpers/library-build.js';
import { describeAsRoot } from '../helpers/tools.js';
import { writeContext } from '../unit/build/harness.js';

let work: string;
let baseStore: LocalStore;
let base: Image;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-cache-explain-'));
  baseStore = await LocalStore.open(join(work, 'bases'));
  base = await busyboxImage(baseStore, AMD64, [], ['sh', 'echo', 'cat']);
}, 60_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function setup(name: string, files: Record<string, string>): Promise<LibraryBuildOptions> {
  return {
    store: await LocalStore.open(join(work, name)),
    bases: new Map([['busybox', base]]),
    baseReader: baseStore.blobs,
    executor: chrootExecutor(),
    contextDir: await writeContext(work, files),
    scratchDir: work,
  };
}

function misses(events: readonly BuildEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'step' && e.miss ? [e.miss.reason] : []));
}

/** Every file under `dir` with its size and mtime: what "writes nothing" is checked against. */
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

const TEXT = (env: string): string =>
  `FROM busybox\nCOPY deps/ /app/deps/\nCOPY src/ /app/src/\nENV NODE_ENV=${env}\nRUN echo "$NODE_ENV" > /env\nRUN cat /app/src/a.ts > /copy\n`;

describeAsRoot('misses explained', () => {
  it('names the changed files, the changed ENV and the step whose new layer a RUN sits on', async () => {
    const o = await setup('store', { 'deps/p.json': '{}\n', 'src/a.ts': 'a\n', 'src/b.ts': 'b\n', 'src/c.ts': 'c\n' });
    const first = await libraryBuild(o, TEXT('production'));
    expect(misses(first.events)).toEqual([
      'COPY deps/ missed: no cached step of this instruction',
      'COPY src/ missed: no cached step of this instruction',
      'RUN missed: no cached step of this instruction',
      'RUN missed: no cached step of this instruction',
    ]);
    await writeFile(join(o.contextDir, 'src/a.ts'), 'a2\n');
    await writeFile(join(o.contextDir, 'src/b.ts'), 'b2\n');
    const second = await libraryBuild(o, TEXT('production'));
    expect(second.states).toEqual(['cached', 'done', 'metadata', 'done', 'done']);
    expect(misses(second.events)).toEqual([
      'COPY src/ missed: 2 files changed (src/a.ts, src/b.ts)',
      'RUN missed: parent layer changed (step 2)',
      'RUN missed: parent layer changed (step 4)',
    ]);
    const step = second.events.find((e) => e.type === 'step' && e.miss !== undefined);
    expect(step?.type === 'step' && step.miss?.changes).toEqual([{ kind: 'files', changed: ['src/a.ts', 'src/b.ts'], added: [], removed: [] }]);

    const third = await libraryBuild(o, TEXT('development'));
    expect(third.states).toEqual(['cached', 'cached', 'metadata', 'done', 'done']);
    // The second RUN sees NODE_ENV too: both differences are named.
    expect(misses(third.events)).toEqual(['RUN missed: ENV NODE_ENV changed', 'RUN missed: parent layer changed (step 4); ENV NODE_ENV changed']);
  }, 60_000);

  it('--explain-cache reports the misses a build would have, runs nothing and writes nothing', async () => {
    const o = await setup('store-dry', { 'deps/p.json': '{}\n', 'src/a.ts': 'a\n', 'src/b.ts': 'b\n' });
    await libraryBuild(o, TEXT('production'));
    await writeFile(join(o.contextDir, 'src/b.ts'), 'b2\n');
    await writeFile(join(o.contextDir, 'src/new.ts'), 'n\n');
    const before = await tree(o.store.root);
    const dry = await libraryBuild(o, TEXT('development'), { explainOnly: true });
    expect(await tree(o.store.root)).toEqual(before);
    expect(dry.states).toEqual(['cached', 'done', 'metadata', 'done', 'done']);
    expect(misses(dry.events)).toEqual([
      'COPY src/ missed: 1 file changed (src/b.ts), 1 file added (src/new.ts)',
      'RUN missed: parent layer changed (step 2)',
      'RUN missed: parent layer changed (step 2)',
    ]);
    // The real build then misses where the report said.
    const real = await libraryBuild(o, TEXT('development'));
    expect(real.states).toEqual(dry.states);
  }, 60_000);
});
