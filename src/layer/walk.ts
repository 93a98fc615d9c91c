import { fileTypeOf } from './file-type.js';
import type { Stats } from 'node:fs';
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import { decodeName, fsPath } from '../fsname/index.js';
import { join, posix } from 'node:path';
import { StrataError, errnoCode, ioError } from '../errors/index.js';
import { sortLayerEntries } from './order.js';
import type { LayerEntry, LayerEntryType } from './types.js';

export interface WalkLayerTreeOptions {
  /** Where the tree's contents go in the image, like `/app`; its missing parents are emitted as 0755 dirs. */
  dest?: string | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Lists every path under `root` as layer entries, sorted in layer order. Symlinks inside the tree are recorded,
 * never followed; `root` itself is followed when it is a symlink (the COPY source rule). Ids and mtimes are
 * as on disk: the writer decides what to keep. Files sharing an inode become one file (the first in layer
 * order) plus hardlink entries. Unreadable files fail here, before any blob is written.
 */
export async function walkLayerTree(root: string, options: WalkLayerTreeOptions = {}): Promise<LayerEntry[]> {
  let rootStats: Stats;
  try {
    rootStats = await stat(root);
  } catch (cause) {
    throw ioError('read layer directory', root, cause);
  }
  if (!rootStats.isDirectory()) {
    throw new StrataError('E_USAGE', `layer source ${root} is not a directory`, {
      hint: 'give a directory (its contents become the layer) or a .tar/.tar.gz file',
    });
  }
  const dest = normalizeDest(options.dest);
  const entries: LayerEntry[] = [];
  if (dest !== '') {
    const parts = dest.split('/');
    for (let i = 1; i < parts.length; i++) {
      entries.push({ path: parts.slice(0, i).join('/'), type: 'dir', mode: 0o755, size: 0, mtime: seconds(rootStats), uid: 0, gid: 0 });
    }
    entries.push(toEntry(dest, root, rootStats, 'dir'));
  }

  const inodes = new Map<string, LayerEntry[]>();
  const pending: Array<{ dir: string; layerDir: string }> = [{ dir: root, layerDir: dest }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (options.signal?.aborted === true) throw new StrataError('E_ABORTED', `listing ${root} was aborted`);
    let names: string[];
    try {
      names = (await readdir(fsPath(next.dir), { encoding: 'buffer' })).map(decodeName);
    } catch (cause) {
      throw ioError('read directory', next.dir, cause);
    }
    for (const name of names) {
      const full = join(next.dir, name);
      const layerPath = next.layerDir === '' ? name : `${next.layerDir}/${name}`;
      let st: Stats;
      try {
        st = await lstat(fsPath(full));
      } catch (cause) {
        throw ioError('stat', full, cause);
      }
      const entry = await entryAt(layerPath, full, st);
      if (entry.type === 'dir') pending.push({ dir: full, layerDir: layerPath });
      if (entry.type !== 'dir' && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const group = inodes.get(key);
        if (group === undefined) inodes.set(key, [entry]);
        else group.push(entry);
      }
      entries.push(entry);
    }
  }

  const sorted = sortLayerEntries(entries);
  linkHardlinks(sorted, inodes);
  return sorted;
}

/** The entry of one path: a symlink with its target, a file checked readable now (before any blob is written). */
async function entryAt(layerPath: string, full: string, st: Stats): Promise<LayerEntry> {
  const type = entryType(st);
  if (type === undefined) {
    throw new StrataError('E_LAYER_INVALID', `cannot put ${full} in a layer: it is a socket`, {
      hint: 'sockets cannot be stored in a tar layer; exclude the path',
    });
  }
  const entry = toEntry(layerPath, full, st, type);
  if (type === 'symlink') {
    try {
      entry.linkTarget = decodeName(await readlink(fsPath(full), { encoding: 'buffer' }));
    } catch (cause) {
      throw ioError('read symlink', full, cause);
    }
  } else if (type === 'file') {
    // open(2), unlike access(2), checks with the effective ids: the ones the write will use.
    try {
      await (await open(fsPath(full), 'r')).close();
    } catch (cause) {
      throw new StrataError('E_IO', `cannot read ${full}: ${describe(cause)}`, {
        cause,
        hint: 'make the file readable (chmod u+r) or exclude it from the layer',
      });
    }
  }
  return entry;
}

function linkHardlinks(sorted: LayerEntry[], inodes: Map<string, LayerEntry[]>): void {
  const position = new Map<LayerEntry, number>();
  for (const [i, entry] of sorted.entries()) position.set(entry, i);
  for (const group of inodes.values()) {
    if (group.length < 2) continue;
    group.sort((a, b) => (position.get(a) ?? 0) - (position.get(b) ?? 0));
    const [first, ...rest] = group;
    if (first === undefined) continue;
    for (const entry of rest) {
      entry.type = 'hardlink';
      entry.linkTarget = first.path;
      entry.size = 0;
      delete entry.source;
    }
  }
}

/** `/app/` ⇒ `app`; `..` cannot climb above `/`, as in a Dockerfile COPY destination. */
function normalizeDest(dest: string | undefined): string {
  if (dest === undefined) return '';
  return posix.normalize(`/${dest}`).replace(/^\/+|\/+$/g, '');
}

function entryType(st: Stats): LayerEntryType | undefined {
  const type = fileTypeOf(st);
  return type === 'socket' ? undefined : type;
}

function seconds(st: Stats): number {
  return Math.floor(st.mtimeMs / 1000);
}

function toEntry(path: string, full: string, st: Stats, type: LayerEntryType): LayerEntry {
  const entry: LayerEntry = {
    path,
    type,
    mode: st.mode & 0o7777,
    size: type === 'file' ? st.size : 0,
    mtime: seconds(st),
    uid: st.uid,
    gid: st.gid,
  };
  if (type === 'file') entry.source = full;
  if (type === 'char' || type === 'block') {
    // Linux's dev_t split (glibc's gnu_dev_major/minor), which is what tar stores.
    const rdev = st.rdev;
    entry.devMajor = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
    entry.devMinor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
  }
  return entry;
}

function describe(cause: unknown): string {
  const code = errnoCode(cause);
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return cause instanceof Error ? cause.message : String(cause);
}
