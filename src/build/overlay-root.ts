import { chmod, chown, mkdir, rm, stat, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { isStrataError } from '../errors/index.js';
import {
  RUN_EXCLUDES,
  captureOverlayChanges,
  extractImageToDirectory,
  mountOverlay,
  overlayLayerOf,
  unmountOverlay,
  type OverlayLayer,
} from '../layer/index.js';
import { imageSnapshot, layerRecords } from './imagefs.js';
import type { RunRoot } from './run-root.js';
import type { BuildSession } from './session.js';
import type { OverlayStack, StageState } from './state.js';
import { MemoKind } from './memo.js';

/** Why this build cannot mount an overlay, once it has tried. */
const REFUSED = new MemoKind<string>('overlay-refused').key();

/**
 * A RUN root on overlayfs: the stage's layers so far are the lower directories (the unpacked base chain kept in
 * the store at the bottom, read-only to the step by construction), and a fresh upper directory takes what the step
 * writes, so preparing the root copies nothing and the change set is read from the upper directory alone. The
 * overlay is unmounted as soon as the changes are taken, and on every failure. `refused` when this process cannot
 * mount an overlay here (once refused, it is not tried again in the build): the caller copies the tree instead.
 */
export async function overlayRunRoot(state: StageState, session: BuildSession): Promise<RunRoot | { refused: string }> {
  const refused = await session.memo.peek(REFUSED);
  if (refused !== undefined) return { refused };
  let stack: OverlayStack;
  let step: MountedUpper;
  try {
    stack = await stageStack(state, session);
    step = await mountUpper(stack);
  } catch (error) {
    if (!isStrataError(error, 'E_RUN_UNSUPPORTED')) throw error;
    void session.memo.get(REFUSED, async () => error.message);
    if (state.rootfs?.kind === 'overlay') state.rootfs = undefined;
    return { refused: error.message };
  }
  let exclude: readonly string[] = [...RUN_EXCLUDES];
  let layer: OverlayLayer | undefined;
  let mounted = true;
  const unmount = async (keep: boolean): Promise<void> => {
    if (!mounted) return;
    mounted = false;
    await releaseUpper(stack, step, keep);
  };
  return {
    rootfs: step.merged,
    async begin(excluded) {
      exclude = excluded;
    },
    async capture(mountTargets) {
      const lowers = stack.lowers.map((l) => l.layer);
      const captured = await captureOverlayChanges(step.upper, lowers, {
        merged: step.merged,
        exclude: [...exclude, ...mountTargets],
        signal: session.deps.signal,
      });
      layer = captured.layer;
      // The layer is written from the upper directory; the mount is not needed for that.
      await unmount(true);
      return captured.entries;
    },
    async settle(committed) {
      const kept = committed ? layer : undefined;
      await unmount(kept !== undefined);
      if (kept === undefined) {
        await rm(step.upper, { recursive: true, force: true });
        return;
      }
      stack.lowers.unshift({ name: step.name, layer: kept });
      state.rootfs = { kind: 'overlay', stack, layers: state.image.layers.length };
    },
  };
}

/** The stage's lower directories, made on its first RUN (from the kept base chain) and brought up to date with its image. */
async function stageStack(state: StageState, session: BuildSession): Promise<OverlayStack> {
  const layers = state.image.layers;
  const current = state.rootfs;
  let stack: OverlayStack;
  let covered: number;
  if (current?.kind === 'overlay' && current.layers <= layers.length) {
    stack = current.stack;
    covered = current.layers;
  } else {
    const dir = await session.tempDir('strata-run-rootfs', { reachable: true });
    // A sandbox running as the step's (non-root) USER must be able to reach the root it runs in.
    await chmod(dir, 0o755);
    await mkdir(join(dir, 'm'));
    const base = Math.min(state.baseLayers ?? 0, layers.length);
    const snapshot = base > 0 ? await imageSnapshot(session, state.image, state.reader, base) : undefined;
    let bottom: OverlayLayer;
    if (snapshot === undefined) {
      await mkdir(join(dir, 'base'), { mode: 0o755 });
      bottom = { dir: join(dir, 'base'), entries: new Map(), opaque: new Set() };
      covered = 0;
    } else {
      await symlink(snapshot.root, join(dir, 'base'));
      bottom = { dir: snapshot.root, entries: snapshot.entries, opaque: new Set() };
      covered = base;
    }
    stack = { dir, lowers: [{ name: 'base', layer: bottom }], made: 0 };
    state.rootfs = { kind: 'overlay', stack, layers: covered };
  }
  if (covered < layers.length) await unpackOnTop(state, session, stack, covered);
  return stack;
}

/** The image's layers from `from` on (COPY, WORKDIR, a base without a kept chain) unpacked through a mount into one new lower directory. */
async function unpackOnTop(state: StageState, session: BuildSession, stack: OverlayStack, from: number): Promise<void> {
  const layers = state.image.layers;
  const records = await layerRecords(session, state.image);
  const step = await mountUpper(stack);
  let layer: OverlayLayer | undefined;
  try {
    await extractImageToDirectory(
      layers.slice(from).map((l) => l.descriptor),
      state.reader,
      step.merged,
      {
        privileged: session.deps.privileged === true,
        signal: session.deps.signal,
        records: { ...records, diffIds: records.diffIds.slice(from) },
      },
    );
    // Read while mounted: which directories are opaque is seen in the merged tree.
    layer = overlayLayerOf(
      step.upper,
      stack.lowers.map((l) => l.layer),
      step.merged,
      session.deps.signal,
    );
  } finally {
    await releaseUpper(stack, step, layer !== undefined);
  }
  stack.lowers.unshift({ name: step.name, layer });
  state.rootfs = { kind: 'overlay', stack, layers: layers.length };
}

interface MountedUpper {
  name: string;
  upper: string;
  merged: string;
}

/**
 * Mounts the stack with a new, empty upper directory at `dir/m`. The upper directory's root takes the mode,
 * owner and times of the top lower one's, since overlayfs shows the upper root's as `/`.
 */
async function mountUpper(stack: OverlayStack): Promise<MountedUpper> {
  const name = `l${++stack.made}`;
  const upper = join(stack.dir, name);
  const work = join(stack.dir, 'w');
  await mkdir(upper);
  try {
    await mkdir(work);
    const top = await stat(join(stack.dir, stack.lowers[0]!.name));
    await chown(upper, top.uid, top.gid);
    await chmod(upper, top.mode & 0o7777);
    await utimes(upper, top.atime, top.mtime);
    await mountOverlay({ cwd: stack.dir, lowers: stack.lowers.map((l) => l.name), upper: name, work: 'w', target: 'm' });
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    await rm(upper, { recursive: true, force: true });
    throw error;
  }
  return { name, upper, merged: join(stack.dir, 'm') };
}

/** Unmounts, removes the work directory, and removes the upper directory too unless it is kept as a layer. */
async function releaseUpper(stack: OverlayStack, step: MountedUpper, keep: boolean): Promise<void> {
  await unmountOverlay(step.merged);
  await rm(join(stack.dir, 'w'), { recursive: true, force: true });
  if (!keep) await rm(step.upper, { recursive: true, force: true });
}
