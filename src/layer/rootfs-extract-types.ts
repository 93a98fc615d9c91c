/** What extractImageToDirectory counted, and the shapes the extractor (rootfs-extractor.ts) works with. */

export interface ExtractStats {
  layers: number;
  entries: number;
  files: number;
  directories: number;
  symlinks: number;
  hardlinks: number;
  fifos: number;
  devices: number;
  devicesSkipped: number;
  whiteouts: number;
  opaques: number;
  /** Bytes of file content written. */
  bytes: number;
}

export interface DirMeta {
  rel: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

/** An entry's parent directory, resolved and created: root-relative, and the group a file made in it gets. */
export interface ParentDir {
  rel: string;
  /** Undefined when it is not known (owners are then always set). */
  gid: number | undefined;
}

export interface ExtractorPolicy {
  privileged: boolean;
  keepOwnership: boolean;
  createDevices: boolean;
}

/** Counts of what an extraction did, all zero. */
export function emptyExtractStats(): ExtractStats {
  return {
    layers: 0,
    entries: 0,
    files: 0,
    directories: 0,
    symlinks: 0,
    hardlinks: 0,
    fifos: 0,
    devices: 0,
    devicesSkipped: 0,
    whiteouts: 0,
    opaques: 0,
    bytes: 0,
  };
}

/** The root-relative parent of `rel` (`''` is the root). */
export function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash === -1 ? '' : rel.slice(0, slash);
}

/** How many names `rel` has (the root has none). */
export function depth(rel: string): number {
  if (rel === '') return 0;
  let count = 1;
  for (const char of rel) if (char === '/') count += 1;
  return count;
}
