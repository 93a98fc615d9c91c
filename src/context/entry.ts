import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { decodeName, fsPath } from '../fsname/index.js';
import { errnoCode, ioError } from '../errors/index.js';
import type { ContextEntry, ContextEntryType } from './types.js';

export function entryType(st: Stats): ContextEntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'socket';
}

/** Builds an entry from lstat results; reads the link target of a symlink (a blocking call, as lstat). */
export function makeEntry(relPath: string, absPath: string, st: Stats): ContextEntry {
  const type = entryType(st);
  const entry: ContextEntry = {
    relPath,
    absPath,
    type,
    mode: st.mode & 0o7777,
    size: type === 'file' ? st.size : 0,
    mtimeMs: st.mtimeMs,
    uid: st.uid,
    gid: st.gid,
    rdev: st.rdev,
    dev: st.dev,
    ino: st.ino,
    nlink: st.nlink,
  };
  if (type === 'symlink') {
    try {
      entry.linkTarget = decodeName(readlinkSync(fsPath(absPath), { encoding: 'buffer' }));
    } catch (cause) {
      throw ioError('read symlink', absPath, cause);
    }
  }
  return entry;
}

/**
 * lstat that says "not there" (undefined) for ENOENT and ENOTDIR and fails on anything else. A blocking
 * lstat: walking a tree of thousands of files is otherwise bound by one promise round trip per file.
 */
export function lstatOrMissing(absPath: string): Stats | undefined {
  try {
    return lstatSync(fsPath(absPath), { throwIfNoEntry: false });
  } catch (cause) {
    const code = errnoCode(cause);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw ioError('stat', absPath, cause);
  }
}
