import { chmod } from 'node:fs/promises';
import { posix } from 'node:path';
import {
  captureChanges,
  copyUnpacked,
  extractImageToDirectory,
  snapshotRootfs,
  type ImageFsIndex,
  type LayerEntry,
  type RootfsSnapshot,
} from '../layer/index.js';
import { imageFilesystem, imageSnapshot, layerRecords } from './imagefs.js';
import { overlayRunRoot } from './overlay-root.js';
import type { BuildEvent } from './events.js';
import type { BuildSession } from './session.js';
import type { StageState } from './state.js';
import { MemoKind } from './memo.js';

/**
 * The root one RUN step runs in, and how its changes are taken. The engine calls, in order: `begin` (just before
 * the command, with the paths to leave out), the executor, `capture` (after a zero exit), then `settle` with
 * whether the step's layer was committed; `settle` runs on every path, failures and aborts included.
 */
export interface RunRoot {
  /** The directory the executor runs the step in. */
  rootfs: string;
  begin(exclude: readonly string[]): Promise<void>;
  /** The step's change set; `mountTargets` (container paths) are left out with everything under them. */
  capture(mountTargets: readonly string[], user: { uid: number; gid: number }): Promise<LayerEntry[]>;
  settle(committed: boolean): Promise<void>;
}

/**
 * An overlay mount over the stage's layers where the process may mount one (root with CAP_SYS_ADMIN: it is tried,
 * not assumed), so nothing is copied and the kept base is never written; else the stage's private copy.
 */
export async function openRunRoot(state: StageState, session: BuildSession): Promise<RunRoot> {
  let refused: string;
  if (session.deps.overlay === false) refused = 'STRATA_OVERLAY=off';
  else if (session.deps.privileged !== true) refused = 'overlay mounts need root with CAP_SYS_ADMIN';
  else {
    const overlay = await overlayRunRoot(state, session);
    if (!('refused' in overlay)) {
      tell(session, { type: 'run-root', kind: 'overlay' });
      return overlay;
    }
    refused = overlay.refused;
  }
  tell(session, { type: 'run-root', kind: 'copy', reason: refused });
  return copyRunRoot(state, session);
}

/** Whether this build has said how its RUN roots are made. */
const TOLD = new MemoKind<boolean>('run-root-told').key();

/** The first RUN root of a build says how roots are made; later ones say nothing. */
function tell(session: BuildSession, event: BuildEvent): void {
  if (session.memo.peek(TOLD) !== undefined) return;
  void session.memo.get(TOLD, async () => true);
  session.deps.events?.(event);
}

async function copyRunRoot(state: StageState, session: BuildSession): Promise<RunRoot> {
  const rootfs = await privateRootfs(state, session);
  let before: RootfsSnapshot | undefined;
  return {
    rootfs,
    async begin(exclude) {
      before = await snapshotRootfs(rootfs, { exclude, signal: session.deps.signal });
    },
    async capture(mountTargets, user) {
      const was = before ?? (await snapshotRootfs(rootfs, { signal: session.deps.signal }));
      const captured = await captureChanges(rootfs, was, { exclude: mountTargets, signal: session.deps.signal });
      if (session.deps.privileged === true) return captured;
      return mapOwners(captured, was, await imageFilesystem(session, state.image, state.reader), user);
    },
    async settle(committed) {
      // A failed step may have left the root half changed; the next step unpacks a fresh one.
      state.rootfs = committed ? { kind: 'copy', dir: rootfs, layers: state.image.layers.length } : undefined;
    },
  };
}

/** The stage's own unpacked root, brought up to date with the image (never shared with another stage). */
async function privateRootfs(state: StageState, session: BuildSession): Promise<string> {
  const layers = state.image.layers;
  const privileged = session.deps.privileged === true;
  const records = await layerRecords(session, state.image);
  const current = state.rootfs;
  if (current?.kind === 'copy' && current.layers <= layers.length) {
    const missing = layers.slice(current.layers).map((l) => l.descriptor);
    if (missing.length) {
      await extractImageToDirectory(missing, state.reader, current.dir, {
        privileged,
        signal: session.deps.signal,
        records: { ...records, diffIds: records.diffIds.slice(current.layers) },
      });
      current.layers = layers.length;
    }
    return current.dir;
  }
  const dir = await session.tempDir('strata-run-rootfs', { reachable: true });
  // A sandbox running as the step's (non-root) USER must be able to reach the root it runs in.
  await chmod(dir, 0o755);
  // The FROM image's layers come from the store's unpacked copy when it keeps one; the step writes into a copy.
  const base = Math.min(state.baseLayers ?? 0, layers.length);
  const snapshot = base > 0 ? await imageSnapshot(session, state.image, state.reader, base) : undefined;
  const from = snapshot === undefined ? 0 : base;
  if (snapshot !== undefined) await copyUnpacked(snapshot.root, dir, privileged);
  if (from < layers.length) {
    await extractImageToDirectory(
      layers.slice(from).map((l) => l.descriptor),
      state.reader,
      dir,
      { privileged, signal: session.deps.signal, records: { ...records, diffIds: records.diffIds.slice(from) } },
    );
  }
  state.rootfs = { kind: 'copy', dir, layers: layers.length };
  return dir;
}

/**
 * Unprivileged, everything in the stage's root belongs on disk to whoever runs strata (the base was unpacked
 * without owners, and the step's files are made by that uid). Owners are recorded as docker would have them: a
 * path the step changed but did not chown keeps the owner the image gave it; what the step made (or chowned to
 * itself) belongs to the step's user, as rootless buildah and podman map the invoking uid (to 0 for a root
 * step). A chown to a third user cannot be made here at all, so it is not in the layer.
 */
function mapOwners(entries: LayerEntry[], before: RootfsSnapshot, image: ImageFsIndex, user: { uid: number; gid: number }): LayerEntry[] {
  const uid = typeof process.geteuid === 'function' ? process.geteuid() : 0;
  const gid = typeof process.getegid === 'function' ? process.getegid() : 0;
  return entries.map((e) => {
    if (posix.basename(e.path).startsWith('.wh.')) return e;
    const was = before.entries.get(e.path);
    const inImage = image.get(`/${e.path}`);
    if (was !== undefined && inImage !== undefined && was.uid === e.uid && was.gid === e.gid && (was.type === e.type || e.type === 'hardlink')) {
      return { ...e, uid: inImage.uid, gid: inImage.gid };
    }
    return { ...e, uid: e.uid === uid ? user.uid : e.uid, gid: e.gid === gid ? user.gid : e.gid };
  });
}
