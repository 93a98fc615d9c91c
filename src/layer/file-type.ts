import type { BigIntStats, Stats } from 'node:fs';

export type FileTypeName = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';

/** The kind of file an lstat result describes, in layer terms. */
export function fileTypeOf(st: Stats | BigIntStats): FileTypeName {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'socket';
}
