import type { MergedTree, TreeNode } from './tree.js';

/** What about a path differs between two trees. */
export type FileField = 'type' | 'content' | 'mode' | 'owner' | 'mtime' | 'link' | 'device';

export interface FileSummary {
  type: TreeNode['type'];
  /** Octal permission and special bits, `0755`. */
  mode: string;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string | undefined;
  digest?: string | undefined;
  /** 1-based index of the layer that wrote it. */
  layer: number;
}

export interface FileChange {
  /** Absolute image path: `/etc/passwd`. */
  path: string;
  change: 'added' | 'removed' | 'changed';
  /** For `changed`: what differs. */
  fields?: FileField[] | undefined;
  a?: FileSummary | undefined;
  b?: FileSummary | undefined;
}

export function summarize(node: TreeNode): FileSummary {
  const summary: FileSummary = {
    type: node.type,
    mode: (node.mode & 0o7777).toString(8).padStart(4, '0'),
    uid: node.uid,
    gid: node.gid,
    size: node.size,
    mtime: node.mtime,
    layer: node.layer + 1,
  };
  if (node.linkname !== undefined) summary.linkname = node.linkname;
  if (node.digest !== undefined) summary.digest = node.digest;
  return summary;
}

/** The fields that differ between two versions of one path; empty when they are the same. */
export function changedFields(a: TreeNode, b: TreeNode): FileField[] {
  const fields: FileField[] = [];
  // A hard link and the file it shares bytes with are the same content to a reader of the tree.
  const kind = (n: TreeNode): string => (n.type === 'hardlink' ? 'file' : n.type);
  if (kind(a) !== kind(b)) fields.push('type');
  else if (a.digest !== b.digest || a.size !== b.size) fields.push('content');
  if ((a.mode & 0o7777) !== (b.mode & 0o7777)) fields.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) fields.push('owner');
  if (a.mtime !== b.mtime) fields.push('mtime');
  if (a.type === 'symlink' && b.type === 'symlink' && a.linkname !== b.linkname) fields.push('link');
  if ((a.type === 'char' || a.type === 'block') && (a.devMajor !== b.devMajor || a.devMinor !== b.devMinor)) fields.push('device');
  return fields;
}

/** Walks both trees' sorted paths side by side: added, removed and changed paths, in path order. */
export function compareTrees(a: MergedTree, b: MergedTree): FileChange[] {
  const changes: FileChange[] = [];
  const pa = a.paths();
  const pb = b.paths();
  let i = 0;
  let j = 0;
  const abs = (p: string): string => (p === '.' ? '/' : `/${p}`);
  while (i < pa.length || j < pb.length) {
    const x = pa[i];
    const y = pb[j];
    if (y === undefined || (x !== undefined && x < y)) {
      changes.push({ path: abs(x!), change: 'removed', a: summarize(a.get(x!)!) });
      i++;
    } else if (x === undefined || y < x) {
      changes.push({ path: abs(y), change: 'added', b: summarize(b.get(y)!) });
      j++;
    } else {
      const na = a.get(x)!;
      const nb = b.get(y)!;
      const fields = changedFields(na, nb);
      if (fields.length > 0) changes.push({ path: abs(x), change: 'changed', fields, a: summarize(na), b: summarize(nb) });
      i++;
      j++;
    }
  }
  return changes;
}
