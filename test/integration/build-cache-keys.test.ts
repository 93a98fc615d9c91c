/**
 * Step keys from what each step reads (issue 18): a LABEL or ENV that a COPY does not expand leaves
 * the COPY a hit (no layer written, the image differing only in what changed); a RUN after a changed
 * ENV misses; a COPY whose destination expands the changed variable misses; a RUN is keyed by its
 * executor's result class, so chroot and bwrap (as root) replay each other's steps and proot does not.
 * Built through the library with a busybox base and the chroot executor (root).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalStore, bwrapExecutor, chrootExecutor, prootExecutor, type Image } from '../../src/internals.js';
import { busyboxImage } from '../helpers/busybox-image.js';
import { AMD64, blobCount, layerFiles, libraryBuild, manifestDigest, type LibraryBuildOptions } from '../helpers/library-build.js';
import { describeAsRoot, needExecutor } from '../helpers/tools.js';
import { writeContext } from '../unit/build/harness.js';

let work: string;
let base: Image;
let context: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-cache-keys-'));
  const baseStore = await LocalStore.open(join(work, 'base-store'));
  base = await busyboxImage(baseStore, AMD64);
  context = await writeContext(work, {
    'deps/package.json': '{"name":"x"}\n',
    'deps/lock': 'lock\n',
    'src/a.ts': 'a\n',
    'src/b.ts': 'b\n',
    'a.txt': 'one\n',
    'b.txt': 'two\n',
  });
}, 60_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function setup(name: string): Promise<LibraryBuildOptions> {
  const store = await LocalStore.open(join(work, name));
  const copy = await busyboxImage(store, AMD64);
  expect(manifestDigest(copy)).toBe(manifestDigest(base));
  return { store, bases: new Map([['busybox', copy]]), executor: chrootExecutor(), contextDir: context, scratchDir: work };
}

/** The config without labels and the LABEL history entries: what must not differ when only a label did. */
function withoutLabels(image: Image): unknown {
  const { Labels: _labels, ...config } = image.config.config ?? {};
  return { ...image.config, config, history: (image.config.history ?? []).filter((h) => !(h.created_by ?? '').startsWith('LABEL ')) };
}

describeAsRoot('cache keys from what each step reads', () => {
  it('a changed revision LABEL at the top replays both COPY steps: no layer written, only the label differs', async () => {
    const o = await setup('store-label');
    const text = 'FROM busybox\nARG GIT_SHA\nLABEL org.opencontainers.image.revision=$GIT_SHA\nCOPY deps/ /app/deps/\nCOPY src/ /app/src/\n';
    const first = await libraryBuild(o, text, { buildArgs: { GIT_SHA: 'aaaa' } });
    expect(first.states).toEqual(['metadata', 'metadata', 'done', 'done']);
    const blobs = await blobCount(o.store);
    const second = await libraryBuild(o, text, { buildArgs: { GIT_SHA: 'bbbb' } });
    expect(second.steps).toEqual({ total: 4, cached: 2 });
    expect(second.states).toEqual(['metadata', 'metadata', 'cached', 'cached']);
    expect(await blobCount(o.store)).toBe(blobs);
    expect(second.image.layers.map((l) => l.descriptor.digest)).toEqual(first.image.layers.map((l) => l.descriptor.digest));
    expect(second.image.config.config?.Labels).toEqual({ 'org.opencontainers.image.revision': 'bbbb' });
    expect(withoutLabels(second.image)).toEqual(withoutLabels(first.image));
    // And the image is the one a cold store builds.
    const cold = await libraryBuild(await setup('store-label-cold'), text, { buildArgs: { GIT_SHA: 'bbbb' } });
    expect(manifestDigest(second.image)).toBe(manifestDigest(cold.image));
  }, 60_000);

  it('a changed ENV between two COPYs that neither expands replays both', async () => {
    const o = await setup('store-env');
    const first = await libraryBuild(o, 'FROM busybox\nCOPY a.txt /a\nENV APP_VERSION=1\nCOPY b.txt /b\n');
    const blobs = await blobCount(o.store);
    const second = await libraryBuild(o, 'FROM busybox\nCOPY a.txt /a\nENV APP_VERSION=2\nCOPY b.txt /b\n');
    expect(second.states).toEqual(['cached', 'metadata', 'cached']);
    expect(await blobCount(o.store)).toBe(blobs);
    expect(second.image.layers.map((l) => l.diffId)).toEqual(first.image.layers.map((l) => l.diffId));
    expect(second.image.config.config?.Env).toContain('APP_VERSION=2');
  }, 60_000);

  it('a RUN after a changed ENV misses; a RUN after a changed LABEL does not', async () => {
    const o = await setup('store-run');
    const text = (env: string, label: string): string =>
      `FROM busybox\nCOPY a.txt /a\nLABEL l=${label}\nENV NODE_ENV=${env}\nRUN echo "$NODE_ENV" > /env.txt\n`;
    const first = await libraryBuild(o, text('production', 'x'));
    expect(first.states).toEqual(['done', 'metadata', 'metadata', 'done']);
    const relabelled = await libraryBuild(o, text('production', 'y'));
    expect(relabelled.states).toEqual(['cached', 'metadata', 'metadata', 'cached']);
    expect(relabelled.image.layers.map((l) => l.diffId)).toEqual(first.image.layers.map((l) => l.diffId));
    const changed = await libraryBuild(o, text('development', 'y'));
    expect(changed.states).toEqual(['cached', 'metadata', 'metadata', 'done']);
    expect(changed.image.layers[2]!.diffId).not.toBe(first.image.layers[2]!.diffId);
    expect(changed.image.layers.slice(0, 2).map((l) => l.diffId)).toEqual(first.image.layers.slice(0, 2).map((l) => l.diffId));
  }, 60_000);

  it('COPY --link replays onto a changed base; with --chown by name, only while the user databases stay the same', async () => {
    const o = await setup('store-link');
    const store = o.store;
    const extra = await busyboxImage(store, AMD64, [
      { path: 'extra', type: 'file', mode: 0o644, size: 1, mtime: 1_700_000_000, uid: 0, gid: 0, data: Buffer.from('x') },
    ]);
    const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001:app:/home/app:/bin/sh\n';
    const moved = await busyboxImage(store, AMD64, [
      { path: 'etc/passwd', type: 'file', mode: 0o644, size: passwd.length, mtime: 1_700_000_000, uid: 0, gid: 0, data: Buffer.from(passwd) },
    ]);
    const bases = new Map([
      ['busybox', base],
      ['extra', extra],
      ['moved', moved],
    ]);
    const text = (from: string): string => `FROM ${from}\nCOPY --link --chown=app a.txt /a\n`;
    const first = await libraryBuild({ ...o, bases }, text('busybox'));
    const rebased = await libraryBuild({ ...o, bases }, text('extra'));
    expect(rebased.states).toEqual(['cached']);
    expect(rebased.image.layers[1]!.diffId).toBe(first.image.layers[1]!.diffId);
    const cold = await libraryBuild({ ...(await setup('store-link-cold')), bases, baseReader: store.blobs }, text('extra'));
    expect(manifestDigest(rebased.image)).toBe(manifestDigest(cold.image));
    const renumbered = await libraryBuild({ ...o, bases }, text('moved'));
    expect(renumbered.states).toEqual(['done']);
    expect(renumbered.image.layers[1]!.diffId).not.toBe(first.image.layers[1]!.diffId);
  }, 60_000);

  it('a RUN made with chroot replays under bwrap (both run it as real root); under proot it runs again, saying why', async (ctx) => {
    const bwrap = bwrapExecutor();
    const proot = prootExecutor();
    const bwrapState = await bwrap.available();
    needExecutor(ctx, 'bwrap', bwrapState.ok ? undefined : bwrapState.reason);
    const prootState = await proot.available();
    needExecutor(ctx, 'proot', prootState.ok ? undefined : prootState.reason);
    const o = await setup('store-executors');
    const text = 'FROM busybox\nCOPY a.txt /a\nRUN mkdir /made && cp /a /made/a && chown 1:1 /made/a\nRUN echo two > /made/two\n';
    const first = await libraryBuild(o, text);
    expect(first.states).toEqual(['done', 'done', 'done']);
    const blobs = await blobCount(o.store);
    const replayed = await libraryBuild({ ...o, executor: bwrap }, text);
    expect(replayed.states).toEqual(['cached', 'cached', 'cached']);
    expect(await blobCount(o.store)).toBe(blobs);
    expect(manifestDigest(replayed.image)).toBe(manifestDigest(first.image));
    const traced = await libraryBuild({ ...o, executor: proot }, text);
    expect(traced.states).toEqual(['cached', 'done', 'done']);
    const misses = traced.events.flatMap((e) => (e.type === 'step' && e.miss !== undefined ? [e.miss.reason] : []));
    expect(misses[0]).toBe(`RUN missed: executor class changed (root → ${proot.resultClass})`);
  }, 60_000);

  it('a COPY whose destination expands the changed variable misses; the COPY before it does not', async () => {
    const o = await setup('store-dest');
    const text = (dir: string): string => `FROM busybox\nCOPY a.txt /a\nENV DEST=${dir}\nCOPY b.txt $DEST/\n`;
    const first = await libraryBuild(o, text('/one'));
    const second = await libraryBuild(o, text('/two'));
    expect(second.states).toEqual(['cached', 'metadata', 'done']);
    expect(second.image.layers[1]!.diffId).toBe(first.image.layers[1]!.diffId);
    expect(second.image.layers[2]!.diffId).not.toBe(first.image.layers[2]!.diffId);
  }, 60_000);

  it('a RUN bind mount of the context or a named context shows the step only what .dockerignore keeps, as its key reads', async () => {
    const ctx = await writeContext(work, { '.dockerignore': '**/*.env\n', 'app.txt': 'app\n', 'sub/keep.txt': 'kept\n', 'sub/drop.env': 'A=1\n' });
    const named = await writeContext(work, { '.dockerignore': 'private/\n', 'lib.txt': 'lib\n', 'private/key': 'k\n' });
    const o = { ...(await setup('store-binds')), contextDir: ctx, namedContexts: { extra: named } };
    const text =
      'FROM busybox\nRUN --mount=type=bind,target=/src find /src | sort > /main.txt\nRUN --mount=type=bind,from=extra,target=/x find /x | sort > /named.txt\n';
    const first = await libraryBuild(o, text);
    const files = new Map((await layerFiles(o.store, first.image)).flatMap((l) => [...l]));
    expect(files.get('main.txt')).toBe('/src\n/src/.dockerignore\n/src/app.txt\n/src/sub\n/src/sub/keep.txt\n');
    expect(files.get('named.txt')).toBe('/x\n/x/.dockerignore\n/x/lib.txt\n');
    // What the steps cannot see does not key them.
    await writeFile(join(ctx, 'sub', 'drop.env'), 'A=2\n');
    await writeFile(join(named, 'private', 'key'), 'changed\n');
    expect((await libraryBuild(o, text)).states).toEqual(['cached', 'cached']);
  }, 60_000);
});
