import { posix } from 'node:path';
import type { ContextEntry } from '../../context/index.js';
import type { ImageFsIndex, LayerEntry } from '../../layer/index.js';

/** What one COPY puts in its layer, before it is written: entries keyed by image path. */
export class CopyPlan {
  private readonly entries = new Map<string, LayerEntry>();
  /** dev:ino of files already placed, so later names of the same inode become hard links. */
  private readonly inodes = new Map<string, string>();

  constructor(
    private readonly fs: ImageFsIndex | undefined,
    /** The --chown ids, or `keep` for the sources' own (an ADDed archive's members). */
    private readonly owner: { uid: number; gid: number } | 'keep',
    private readonly chmod: ((mode: number, isDir: boolean) => number) | undefined,
    private readonly dirMtime: number,
  ) {}

  /** Missing parents of `path` become directories; existing ones are left alone so they keep their owner and mode. */
  ensureParents(path: string): void {
    const parts = path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.entries.has(dir) || this.fs?.has(`/${dir}`) === true) continue;
      const ids = this.owner === 'keep' ? { uid: 0, gid: 0 } : this.owner;
      this.entries.set(dir, { path: dir, type: 'dir', mode: 0o755, size: 0, mtime: this.dirMtime, ...ids });
    }
  }

  /** Adds a source entry at `path` (relative to the image root, no leading slash). */
  add(path: string, entry: ContextEntry, options: { keepExistingDir?: boolean; keepOwner?: boolean } = {}): void {
    this.ensureParents(path);
    const isDir = entry.type === 'dir';
    if (isDir && options.keepExistingDir && this.fs?.get(`/${path}`)?.type === 'dir') return;
    const mode = this.chmod && entry.type !== 'symlink' ? this.chmod(entry.mode, isDir) : entry.mode;
    const ids = this.owner === 'keep' || options.keepOwner ? { uid: entry.uid, gid: entry.gid } : this.owner;
    const base = { path, mode, mtime: Math.floor(entry.mtimeMs / 1000), ...ids };
    switch (entry.type) {
      case 'dir':
        this.entries.set(path, { ...base, type: 'dir', size: 0 });
        return;
      case 'symlink':
        this.entries.set(path, { ...base, mode: 0o777, type: 'symlink', size: 0, linkTarget: entry.linkTarget ?? '' });
        return;
      case 'file': {
        const key = `${entry.dev}:${entry.ino}`;
        const first = entry.nlink > 1 ? this.inodes.get(key) : undefined;
        if (first !== undefined && first !== path) {
          this.entries.set(path, { ...base, type: 'hardlink', size: 0, linkTarget: first });
          return;
        }
        if (entry.nlink > 1) this.inodes.set(key, path);
        this.entries.set(path, { ...base, type: 'file', size: entry.size, source: entry.absPath });
        return;
      }
      case 'fifo':
        this.entries.set(path, { ...base, type: 'fifo', size: 0 });
        return;
      default:
        // Sockets and device nodes are not copied, as BuildKit skips them.
        return;
    }
  }

  addData(path: string, data: Uint8Array, mode: number, mtime: number): void {
    this.ensureParents(path);
    const finalMode = this.chmod ? this.chmod(mode, false) : mode;
    const ids = this.owner === 'keep' ? { uid: 0, gid: 0 } : this.owner;
    this.entries.set(path, { path, type: 'file', mode: finalMode, size: data.byteLength, mtime, ...ids, data });
  }

  list(): LayerEntry[] {
    return [...this.entries.values()];
  }
}

/** Joins an absolute destination and a relative path into a layer path (no leading slash). */
export function layerPath(absDir: string, rel: string): string {
  return posix.join(absDir, rel).replace(/^\/+/, '').replace(/\/+$/, '');
}
