/**
 * RUN --mount=type=bind with each real executor. A writable bind (`rw`, `readwrite`, `rw=true`) shows the step a
 * private copy of its source, thrown away after the step, as BuildKit does ("Written data will be discarded"):
 * the build context and a named context on disk, a stage's unpacked root (which a later bind or COPY --from reads)
 * and an image's stay as they were, the step sees its own writes, and the layer holds nothing of the mount. A
 * read-only bind cannot be written: chroot, bwrap, runc and crun fail the step (EROFS, as BuildKit); proot, which
 * has no read-only bind, writes into a private copy that is thrown away.
 * Built through the library with a busybox base (root).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalStore, createExecutor, isStrataError } from '../../src/internals.js';
import { describeTree } from '../helpers/tree.js';
import { busyboxImage } from '../helpers/busybox-image.js';
import { AMD64, layerFiles, libraryBuild, type LibraryBuildOptions } from '../helpers/library-build.js';
import { describeAsRoot, describeWithTools, needExecutor } from '../helpers/tools.js';
import { writeContext } from '../unit/build/harness.js';

const CASES = [
  { name: 'chroot', tools: ['unshare', 'chroot', 'mount'], readonly: true },
  { name: 'bwrap', tools: ['bwrap'], readonly: true },
  { name: 'runc', tools: ['runc'], readonly: true },
  { name: 'crun', tools: ['crun'], readonly: true },
  // proot has no read-only bind: the step writes into a private copy.
  { name: 'proot', tools: ['proot'], readonly: false },
] as const;

/** The few tools the steps use: a base of a dozen entries unpacks at once. */
const APPLETS = ['sh', 'cat', 'echo', 'ls', 'mkdir', 'rm'];

const STAGE = 'FROM busybox AS src\nRUN mkdir /data && echo orig > /data/a.txt && echo b > /data/b.txt\n';

const WRITABLE =
  STAGE +
  'FROM busybox\n' +
  'RUN --mount=type=bind,rw,target=/ctx rm /ctx/gone.txt && rm -r /ctx/sub && echo added > /ctx/added.txt && echo more >> /ctx/keep.txt' +
  ' && cat /ctx/added.txt /ctx/keep.txt > /seen-ctx.txt && ls /ctx >> /seen-ctx.txt\n' +
  'RUN --mount=type=bind,readwrite,source=keep.txt,target=/k.txt echo more >> /k.txt && cat /k.txt > /seen-file.txt\n' +
  'RUN --mount=type=bind,from=extra,target=/x,rw=true rm /x/lib.txt && echo new > /x/new && ls -A /x > /seen-named.txt\n' +
  'RUN --mount=type=bind,from=src,source=/data,target=/d,rw rm /d/b.txt && echo w > /d/a.txt && cat /d/a.txt > /seen-stage.txt && ls /d >> /seen-stage.txt\n' +
  'RUN --mount=type=bind,from=busybox,target=/b,rw rm /b/etc/passwd && ls /b/etc > /seen-image.txt\n' +
  // What later steps read of the stage and the image is what they were.
  'RUN --mount=type=bind,from=src,source=/data,target=/d cat /d/a.txt /d/b.txt > /after-stage.txt\n' +
  'RUN --mount=type=bind,from=busybox,target=/b cat /b/etc/passwd > /after-image.txt\n' +
  'COPY --from=src /data /copied\n';

let work: string;
let context: string;
let named: string;
let before: { context: unknown; named: unknown };

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-run-binds-'));
  context = await writeContext(work, { 'keep.txt': 'keep\n', 'gone.txt': 'gone\n', 'sub/deep.txt': 'deep\n' });
  // A named context with a .dockerignore: its writable bind is the listed view, copied.
  named = await writeContext(work, { '.dockerignore': 'secret.txt\n', 'lib.txt': 'lib\n', 'secret.txt': 'hidden\n' });
  before = { context: await describeTree(context), named: await describeTree(named) };
}, 60_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function setup(name: string, executor: string): Promise<LibraryBuildOptions> {
  const store = await LocalStore.open(join(work, `store-${name}-${executor}`));
  return {
    store,
    bases: new Map([['busybox', await busyboxImage(store, AMD64, [], APPLETS)]]),
    executor: createExecutor(executor),
    contextDir: context,
    namedContexts: { extra: named },
    scratchDir: work,
  };
}

describeAsRoot('RUN bind mounts', () => {
  for (const c of CASES) {
    describeWithTools([...c.tools], `--executor ${c.name}`, () => {
      it('a writable bind of the context, a named context, a stage and an image is a private copy, discarded after the step', async (ctx) => {
        const o = await setup('rw', c.name);
        const usable = await o.executor.available();
        needExecutor(ctx, c.name, usable.ok ? undefined : usable.reason);
        const built = await libraryBuild(o, WRITABLE, { noCache: true });
        const layers = await layerFiles(o.store, built.image);
        // The base, then one layer per RUN and the COPY: each RUN's layer holds its own file only.
        const runLayers = layers.slice(1, 8).map((l) => [...l.keys()]);
        expect(runLayers).toEqual([
          ['seen-ctx.txt'],
          ['seen-file.txt'],
          ['seen-named.txt'],
          ['seen-stage.txt'],
          ['seen-image.txt'],
          ['after-stage.txt'],
          ['after-image.txt'],
        ]);
        const files = new Map(layers.flatMap((l) => [...l]));
        expect(files.get('seen-ctx.txt')).toBe('added\nkeep\nmore\nadded.txt\nkeep.txt\n');
        expect(files.get('seen-file.txt')).toBe('keep\nmore\n');
        expect(files.get('seen-named.txt')).toBe('.dockerignore\nnew\n');
        expect(files.get('seen-stage.txt')).toBe('w\na.txt\n');
        expect(files.get('seen-image.txt')).toBe('group\n');
        expect(files.get('after-stage.txt')).toBe('orig\nb\n');
        expect(files.get('after-image.txt')).toMatch(/^root:x:0:0:/);
        expect(files.get('copied/a.txt')).toBe('orig\n');
        expect(files.get('copied/b.txt')).toBe('b\n');
        expect(await describeTree(context)).toEqual(before.context);
        expect(await describeTree(named)).toEqual(before.named);
      }, 120_000);

      it(c.readonly ? 'a read-only bind cannot be written: the step fails (EROFS)' : 'a write to a read-only bind goes to a private copy only', async (ctx) => {
        const o = await setup('ro', c.name);
        const usable = await o.executor.available();
        needExecutor(ctx, c.name, usable.ok ? undefined : usable.reason);
        const attempts = [
          'FROM busybox\nRUN --mount=type=bind,target=/ctx echo x > /ctx/new.txt\n',
          'FROM busybox\nRUN --mount=type=bind,source=keep.txt,target=/k.txt echo x >> /k.txt\n',
          `${STAGE}FROM busybox\nRUN --mount=type=bind,from=src,source=/data,target=/d,ro rm /d/a.txt\nCOPY --from=src /data /copied\n`,
        ];
        for (const text of attempts) {
          const outcome = await libraryBuild(o, text, { noCache: true }).then(
            (built) => ({ built, error: undefined }),
            (error: unknown) => ({ built: undefined, error }),
          );
          if (c.readonly) {
            expect(outcome.error, text).toBeDefined();
            const error = outcome.error;
            expect(isStrataError(error, 'E_RUN_FAILED'), String(error)).toBe(true);
            expect(isStrataError(error) ? `${error.message}\n${error.hint ?? ''}` : '').toMatch(/Read-only file system/);
          } else {
            expect(outcome.error, text).toBeUndefined();
            if (text.includes('COPY')) expect((await layerFiles(o.store, outcome.built!.image)).at(-1)?.get('copied/a.txt')).toBe('orig\n');
          }
        }
        expect(await describeTree(context)).toEqual(before.context);
      }, 120_000);
    });
  }
});
