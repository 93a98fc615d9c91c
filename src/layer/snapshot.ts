import { fileTypeOf } from './file-type.js';
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { decodeName, fsPath } from '../fsname/index.js';
import { join } from 'node:path';
import { StrataError, ioError } from '../errors/index.js';
import type { LayerEntryType } from './types.js';

/** What a path looked like, from lstat alone: enough to tell whether it changed without reading its content. */
export interface SnapshotEntry {
  type: LayerEntryType | 'socket';
  /** Permission bits including setuid, setgid and sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
  nlink: number;
  rdev: bigint;
  linkTarget?: string | undefined;
}

/**
 * The state of a root filesystem at one moment. Keys are layer paths (relative, `/`-separated, no leading
 * `./`); the root itself is not recorded (a layer cannot hold it).
 */
export interface RootfsSnapshot {
  root: string;
  entries: Map<string, SnapshotEntry>;
  /** Container paths (`/proc`) whose subtrees were not walked. */
  exclude: readonly string[];
}

export interface SnapshotOptions {
  /** Absolute container paths (`/proc`, `/etc/hosts`) left out, with everything below them. */
  exclude?: readonly string[] | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Records every path under `root` with lstat only (no content is read, no symlink is followed), so that
 * `captureChanges` can later tell what a RUN step changed by comparing stat data.
 */
export async function snapshotRootfs(root: string, options: SnapshotOptions = {}): Promise<RootfsSnapshot> {
  const exclude = normalizeExcludes(options.exclude ?? []);
  const entries = walkRootfs(root, new Set(exclude), options.signal);
  return { root, entries, exclude };
}

/** `/proc/` and `proc` both become `proc`: the layer-path form the walk compares against. */
export function normalizeExcludes(paths: readonly string[]): string[] {
  const out = new Set<string>();
  for (const path of paths) {
    const parts = path.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) throw new StrataError('E_USAGE', `exclude path ${JSON.stringify(path)} must not contain ..`);
    if (parts.length > 0) out.add(parts.join('/'));
  }
  return [...out].sort();
}

/**
 * The walk both sides of the comparison share. It is synchronous per directory on purpose: thousands of small
 * lstat calls are several times faster without a promise each, and the signal is checked between directories.
 */
export function walkRootfs(root: string, exclude: ReadonlySet<string>, signal?: AbortSignal): Map<string, SnapshotEntry> {
  const entries = new Map<string, SnapshotEntry>();
  const pending: string[] = [''];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    if (signal?.aborted === true) throw new StrataError('E_ABORTED', `scanning ${root} was aborted`);
    const absDir = dir === '' ? root : join(root, dir);
    let names: string[];
    try {
      names = readdirSync(fsPath(absDir), { encoding: 'buffer' }).map(decodeName);
    } catch (cause) {
      throw ioError('read directory', absDir, cause);
    }
    for (const name of names) {
      const path = dir === '' ? name : `${dir}/${name}`;
      if (exclude.has(path)) continue;
      const abs = join(root, path);
      let st: BigIntStats;
      try {
        st = lstatSync(fsPath(abs), { bigint: true });
      } catch (cause) {
        throw ioError('stat', abs, cause);
      }
      const entry = toSnapshotEntry(st);
      if (entry.type === 'symlink') {
        try {
          entry.linkTarget = decodeName(readlinkSync(fsPath(abs), { encoding: 'buffer' }));
        } catch (cause) {
          throw ioError('read symlink', abs, cause);
        }
      }
      entries.set(path, entry);
      if (entry.type === 'dir') pending.push(path);
    }
  }
  return entries;
}

function toSnapshotEntry(st: BigIntStats): SnapshotEntry {
  return {
    type: typeOf(st),
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: st.isFile() ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    dev: st.dev,
    nlink: Number(st.nlink),
    rdev: st.rdev,
  };
}

function typeOf(st: BigIntStats): SnapshotEntry['type'] {
  return fileTypeOf(st);
}
