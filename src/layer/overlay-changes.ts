import { lchownSync, lstatSync } from 'node:fs';
import { join, posix } from 'node:path';
import { errnoCode, ioError } from '../errors/index.js';
import { fsPath } from '../fsname/index.js';
import { linkSharedInodes, refuseWhiteoutName, toLayerEntry, underExcluded, whiteoutEntry } from './changes.js';
import { normalizeExcludes, walkRootfs, type SnapshotEntry } from './snapshot.js';
import type { LayerEntry } from './types.js';
import { OPAQUE_WHITEOUT, whiteoutPath } from './whiteout.js';

/**
 * One lower directory of an overlay, as the walk saw it: every path with its lstat data, and the directories that
 * are opaque among those that have a directory below them (no other mark changes a lookup; see finishUpper). An
 * upper directory becomes the next step's lower one as it is, whiteouts (0/0 character devices) and all.
 */
export interface OverlayLayer {
  dir: string;
  entries: ReadonlyMap<string, SnapshotEntry>;
  opaque: ReadonlySet<string>;
}

/** A path as the layers below a step show it: the entry and the layer it comes from. */
interface LowerHit {
  layer: OverlayLayer;
  entry: SnapshotEntry;
}

export function isOverlayWhiteout(entry: SnapshotEntry): boolean {
  return entry.type === 'char' && entry.rdev === 0n;
}

/**
 * What `path` is in the merged view of `lowers` (the top one first), by overlayfs's lookup: the first layer
 * holding it wins; a whiteout or a non-directory on the way hides it, and an opaque directory on the way hides
 * the layers under the one that has it.
 */
export function lowerLookup(lowers: readonly OverlayLayer[], path: string): LowerHit | undefined {
  const parts = path.split('/');
  for (const layer of lowers) {
    let hidesBelow = false;
    let complete = true;
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const entry = layer.entries.get(prefix);
      if (entry === undefined) {
        complete = false;
        break;
      }
      if (entry.type !== 'dir') return undefined;
      if (layer.opaque.has(prefix)) hidesBelow = true;
    }
    if (complete) {
      const entry = layer.entries.get(path);
      if (entry !== undefined) return isOverlayWhiteout(entry) ? undefined : { layer, entry };
    }
    if (hidesBelow) return undefined;
  }
  return undefined;
}

export interface OverlayCaptureOptions {
  /** The merged tree, still mounted: hard-link siblings are copied up through it. */
  merged: string;
  /** Container paths (with their subtrees) left out of the change set. */
  exclude?: readonly string[] | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The change set of a step that ran on an overlay, from its upper directory alone (no walk of the lower tree):
 * every path there is new or changed (a copy-up keeps a file whole, so a chmod's file is written with its
 * content, as docker writes it), a 0/0 character device is a whiteout, and an opaque directory that has a
 * directory below it becomes `.wh..wh..opq` plus its contents. A copied-up directory whose metadata is as it
 * was below and that holds no change is left out, as the snapshot comparison leaves it out.
 *
 * Hard links: with the inode index, a lower file with several names stays one file for the step when one name
 * is written, but only that name is in the upper directory. Its other names are copied up here (a chown to the
 * owner they have, through the merged tree), so the layer has them as hard links, as from a copied tree, and the
 * upper directory, which becomes a lower one, holds them too.
 */
export async function captureOverlayChanges(
  upper: string,
  lowers: readonly OverlayLayer[],
  options: OverlayCaptureOptions,
): Promise<{ entries: LayerEntry[]; layer: OverlayLayer }> {
  let walked = walkRootfs(upper, new Set(), options.signal);
  if (linkUpSiblings(walked, lowers, options.merged)) walked = walkRootfs(upper, new Set(), options.signal);
  const layer = finishUpper(upper, walked, lowers, options.merged);
  const exclude = new Set(normalizeExcludes(options.exclude ?? []));
  const out = new Map<string, LayerEntry>();
  for (const [path, st] of walked) {
    if (underExcluded(path, exclude)) continue;
    if (isOverlayWhiteout(st) || (st.type === 'socket' && lowerLookup(lowers, path) !== undefined)) {
      // A tar layer cannot hold a socket (docker leaves them out too); what it replaced must still disappear.
      out.set(whiteoutPath(path), whiteoutEntry(whiteoutPath(path)));
      continue;
    }
    if (st.type === 'socket') continue;
    refuseWhiteoutName(path);
    out.set(path, toLayerEntry(upper, path, st));
    if (layer.opaque.has(path)) out.set(`${path}/${OPAQUE_WHITEOUT}`, whiteoutEntry(`${path}/${OPAQUE_WHITEOUT}`));
  }
  dropUnchangedDirs(out, walked, lowers, layer.opaque);
  linkSharedInodes(out, walked);
  return { entries: [...out.values()], layer };
}

/**
 * An upper directory done with (a step's, or one that layers were unpacked into through a mount) as a lower
 * layer, taken while the overlay is still mounted at `merged`.
 *
 * Which of its directories are opaque is read from what the merged tree shows, not from overlayfs's xattr (Node
 * reads no xattrs, and the tools that do are not on every system): a directory that has a directory below it is
 * opaque when a name the layers below show there, and that the upper directory does not hold, is missing from
 * the merged tree. When the upper directory holds every such name, the mark changes nothing at that level, and a
 * subdirectory it hides is found opaque the same way; so the marks found give the same lookups as the kernel's.
 */
export function finishUpper(upper: string, walked: ReadonlyMap<string, SnapshotEntry>, lowers: readonly OverlayLayer[], merged: string): OverlayLayer {
  const opaque = new Set<string>();
  const upperNames = childNames(walked);
  for (const [path, st] of walked) {
    if (st.type !== 'dir' || lowerLookup(lowers, path)?.entry.type !== 'dir') continue;
    const hidden = firstLowerNameNotIn(lowers, path, new Set(upperNames.get(path) ?? []));
    if (hidden !== undefined && !presentNoFollow(join(merged, path, hidden))) opaque.add(path);
  }
  return { dir: upper, entries: walked, opaque };
}

/** Walks an upper directory and finishes it (see finishUpper); the overlay must still be mounted at `merged`. */
export function overlayLayerOf(upper: string, lowers: readonly OverlayLayer[], merged: string, signal?: AbortSignal): OverlayLayer {
  return finishUpper(upper, walkRootfs(upper, new Set(), signal), lowers, merged);
}

/** Names directly under each directory of a walk (`''` for the root). */
function childNames(entries: ReadonlyMap<string, SnapshotEntry>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const path of entries.keys()) {
    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? '' : path.slice(0, slash);
    const names = out.get(parent);
    if (names === undefined) out.set(parent, [path.slice(slash + 1)]);
    else names.push(path.slice(slash + 1));
  }
  return out;
}

const layerChildren = new WeakMap<OverlayLayer, Map<string, string[]>>();

/** A name the layers below show in `dir` that is not in `except`, or undefined. */
function firstLowerNameNotIn(lowers: readonly OverlayLayer[], dir: string, except: ReadonlySet<string>): string | undefined {
  for (const layer of lowers) {
    let children = layerChildren.get(layer);
    if (children === undefined) {
      children = childNames(layer.entries);
      layerChildren.set(layer, children);
    }
    for (const name of children.get(dir) ?? []) {
      if (!except.has(name) && lowerLookup(lowers, `${dir}/${name}`) !== undefined) return name;
    }
  }
  return undefined;
}

function presentNoFollow(path: string): boolean {
  try {
    lstatSync(fsPath(path));
    return true;
  } catch (cause) {
    if (errnoCode(cause) === 'ENOENT') return false;
    throw ioError('inspect', path, cause);
  }
}

/**
 * Copies up, through the merged tree, the names a copied-up file shares its lower inode with; true when it did.
 * A name the step replaced is in the upper directory already and is left alone.
 */
function linkUpSiblings(walked: ReadonlyMap<string, SnapshotEntry>, lowers: readonly OverlayLayer[], merged: string): boolean {
  let linked = false;
  const inodes = new Map<OverlayLayer, Map<bigint, string[]>>();
  for (const [path, st] of walked) {
    if (st.type !== 'file') continue;
    const hit = lowerLookup(lowers, path);
    if (hit === undefined || hit.entry.type !== 'file' || hit.entry.nlink < 2) continue;
    let byInode = inodes.get(hit.layer);
    if (byInode === undefined) {
      byInode = new Map();
      for (const [p, e] of hit.layer.entries) {
        if (e.type !== 'file' || e.nlink < 2) continue;
        const paths = byInode.get(e.ino);
        if (paths === undefined) byInode.set(e.ino, [p]);
        else paths.push(p);
      }
      inodes.set(hit.layer, byInode);
    }
    for (const sibling of byInode.get(hit.entry.ino) ?? []) {
      if (sibling === path || walked.has(sibling)) continue;
      const seen = lowerLookup(lowers, sibling);
      if (seen?.layer !== hit.layer || seen.entry.ino !== hit.entry.ino) continue;
      const abs = join(merged, sibling);
      try {
        const now = lstatSync(fsPath(abs));
        lchownSync(fsPath(abs), now.uid, now.gid);
      } catch (cause) {
        throw ioError('copy up the hard link', abs, cause);
      }
      linked = true;
    }
  }
  return linked;
}

/**
 * Removes copied-up directories that hold no change and whose mode, owner and mtime are what the layers below
 * have: overlayfs copies a directory up to make or remove anything under it, also a mount point an executor
 * made and removed again.
 */
function dropUnchangedDirs(
  out: Map<string, LayerEntry>,
  walked: ReadonlyMap<string, SnapshotEntry>,
  lowers: readonly OverlayLayer[],
  opaque: ReadonlySet<string>,
): void {
  // Every directory between a change and the root is in the upper directory, so counting direct children is
  // enough; the deepest go first, so a parent left with nothing goes too.
  const children = new Map<string, number>();
  for (const path of out.keys()) children.set(posix.dirname(path), (children.get(posix.dirname(path)) ?? 0) + 1);
  const dirs = [...out.values()].filter((e) => e.type === 'dir' && !opaque.has(e.path)).map((e) => e.path);
  dirs.sort((a, b) => b.split('/').length - a.split('/').length);
  for (const path of dirs) {
    if ((children.get(path) ?? 0) > 0) continue;
    const now = walked.get(path);
    const below = lowerLookup(lowers, path)?.entry;
    if (now === undefined || below?.type !== 'dir') continue;
    if (now.mode !== below.mode || now.uid !== below.uid || now.gid !== below.gid || now.mtimeNs !== below.mtimeNs) continue;
    out.delete(path);
    const parent = posix.dirname(path);
    children.set(parent, (children.get(parent) ?? 1) - 1);
  }
}
