import { join, posix } from 'node:path';
import { StrataError } from '../errors/index.js';
import { compareLayerPaths } from './order.js';
import { normalizeExcludes, walkRootfs, type RootfsSnapshot, type SnapshotEntry } from './snapshot.js';
import type { LayerEntry } from './types.js';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX, whiteoutPath } from './whiteout.js';

/**
 * Paths every executor provides itself (kernel filesystems, device nodes, the files docker bind-mounts into
 * a container). What a command writes there belongs to the sandbox, never to the image.
 */
export const RUN_EXCLUDES: readonly string[] = ['/proc', '/sys', '/dev', '/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

export interface CaptureOptions {
  /** Container paths left out (with their subtrees), on top of those the snapshot left out: mount targets. */
  exclude?: readonly string[] | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The change set between `before` and the tree under `root` now, as layer entries (unsorted; writeLayer sorts):
 * new and changed paths with the content read from disk when the layer is written, `.wh.NAME` for the top-most
 * deleted paths, `.wh..wh..opq` plus the full contents for a directory that was replaced (new inode), changed
 * paths' parent directories with their current metadata, and files sharing an inode as one file plus hard links.
 *
 * A path counts as changed when any lstat field that a change must move differs: type, mode, owner, size,
 * mtime, ctime, inode, device number or link target. mtime alone is not enough: `touch -d`, `cp -p` and tar
 * set it back to an old value, and a same-size rewrite then looks untouched. ctime cannot be set from user
 * space: every write, chmod, chown, rename or link moves it to the current time, so comparing it catches
 * those, as long as nothing but the step changes the tree between the snapshot and the capture.
 */
export async function captureChanges(root: string, before: RootfsSnapshot, options: CaptureOptions = {}): Promise<LayerEntry[]> {
  const excludeList = normalizeExcludes([...before.exclude, ...(options.exclude ?? [])]);
  const exclude = new Set(excludeList);
  const excluded = (path: string): boolean => underExcluded(path, exclude);
  const after = walkRootfs(root, exclude, options.signal);
  const old = before.entries;

  // A directory with a new inode was removed and made again (or another moved over it): nothing below it
  // survives from the lower layers. When the filesystem hands the new directory the old inode number, the
  // deleted children show up one by one instead and become whiteouts: a longer layer, the same result.
  const replaced = new Set<string>();
  for (const [path, now] of after) {
    const was = old.get(path);
    if (now.type === 'dir' && was?.type === 'dir' && (now.ino !== was.ino || now.dev !== was.dev)) replaced.add(path);
  }
  const underReplaced = (path: string): boolean => {
    for (let p = posix.dirname(path); p !== '.'; p = posix.dirname(p)) if (replaced.has(p)) return true;
    return false;
  };

  const out = new Map<string, LayerEntry>();
  for (const [path, now] of after) {
    const was = old.get(path);
    if (now.type === 'socket') {
      // A tar layer cannot hold a socket (docker leaves them out too); what it replaced must still disappear.
      if (was !== undefined && was.type !== 'socket') {
        out.set(whiteoutPath(path), whiteoutEntry(whiteoutPath(path)));
      }
      continue;
    }
    if (was !== undefined && !underReplaced(path) && !replaced.has(path) && !differs(now, was)) continue;
    refuseWhiteoutName(path);
    out.set(path, toLayerEntry(root, path, now));
    if (replaced.has(path)) out.set(`${path}/${OPAQUE_WHITEOUT}`, whiteoutEntry(`${path}/${OPAQUE_WHITEOUT}`));
  }

  for (const path of old.keys()) {
    if (after.has(path) || excluded(path)) continue;
    const parent = posix.dirname(path);
    if (parent !== '.') {
      // Only the top-most deleted path: below a deleted, replaced or retyped parent the lower paths are gone anyway.
      if (after.get(parent)?.type !== 'dir' || replaced.has(parent) || underReplaced(parent)) continue;
    }
    out.set(whiteoutPath(path), whiteoutEntry(whiteoutPath(path)));
  }

  // OCI change sets carry the parents of every changed path (an extractor creates missing ones with guessed
  // metadata otherwise); they are written with their metadata as it is now.
  for (const path of [...out.keys()]) {
    for (let p = posix.dirname(path); p !== '.' && !out.has(p); p = posix.dirname(p)) {
      const now = after.get(p);
      if (now !== undefined) out.set(p, toLayerEntry(root, p, now));
    }
  }

  linkSharedInodes(out, after);
  return [...out.values()];
}

/** Whether `path` or a directory above it is in `exclude` (layer paths). */
export function underExcluded(path: string, exclude: ReadonlySet<string>): boolean {
  for (let p = path; p !== '.'; p = posix.dirname(p)) if (exclude.has(p)) return true;
  return false;
}

/** A step cannot leave a file whose name a layer reads as a deletion. */
export function refuseWhiteoutName(path: string): void {
  if (!posix.basename(path).startsWith(WHITEOUT_PREFIX)) return;
  throw new StrataError('E_LAYER_INVALID', `the step created /${path}, and a layer cannot hold a name starting with ${WHITEOUT_PREFIX}`, {
    hint: `names starting with ${WHITEOUT_PREFIX} mean deletions in OCI layers; rename the file`,
  });
}

function differs(a: SnapshotEntry, b: SnapshotEntry): boolean {
  return (
    a.type !== b.type ||
    a.mode !== b.mode ||
    a.uid !== b.uid ||
    a.gid !== b.gid ||
    a.size !== b.size ||
    a.mtimeNs !== b.mtimeNs ||
    a.ctimeNs !== b.ctimeNs ||
    a.ino !== b.ino ||
    a.dev !== b.dev ||
    a.rdev !== b.rdev ||
    a.linkTarget !== b.linkTarget
  );
}

/**
 * Paths of one inode in the change set become one file (the first in layer order, so it precedes its links in
 * the tar) and hard links to it. An inode's ctime moves for every path of it together, so when one of its
 * paths changed, all of them are in the change set.
 */
export function linkSharedInodes(out: Map<string, LayerEntry>, after: ReadonlyMap<string, SnapshotEntry>): void {
  const groups = new Map<string, string[]>();
  for (const [path, entry] of out) {
    if (entry.type !== 'file') continue;
    const st = after.get(path);
    if (st === undefined || st.nlink < 2) continue;
    const key = `${st.dev}:${st.ino}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [path]);
    else group.push(path);
  }
  for (const paths of groups.values()) {
    if (paths.length < 2) continue;
    paths.sort(compareLayerPaths);
    const [first, ...rest] = paths;
    for (const path of rest) {
      const entry = out.get(path);
      if (entry === undefined || first === undefined) continue;
      out.set(path, { ...entry, type: 'hardlink', size: 0, source: undefined, linkTarget: first });
    }
  }
}

export function toLayerEntry(root: string, path: string, st: SnapshotEntry): LayerEntry {
  const entry: LayerEntry = {
    path,
    type: st.type === 'socket' ? 'file' : st.type,
    mode: st.mode,
    size: st.type === 'file' ? st.size : 0,
    mtime: Number(st.mtimeNs / 1_000_000_000n),
    uid: st.uid,
    gid: st.gid,
  };
  if (st.type === 'file') entry.source = join(root, path);
  if (st.type === 'symlink') entry.linkTarget = st.linkTarget;
  if (st.type === 'char' || st.type === 'block') {
    // glibc's major()/minor() for the 64-bit dev_t encoding.
    entry.devMajor = Number(((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & ~0xfffn));
    entry.devMinor = Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn));
  }
  return entry;
}

export function whiteoutEntry(path: string): LayerEntry {
  return { path, type: 'file', mode: 0, size: 0, mtime: 0, uid: 0, gid: 0, data: new Uint8Array(0) };
}
