import {
  chmodSync,
  copyFileSync,
  constants,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  type Stats,
} from 'node:fs';
import { join, posix } from 'node:path';
import { decodeName, fsPath as at } from '../fsname/index.js';

/**
 * Paths `inplace` leaves alone on `/`: the ignored subtrees, and every directory above one (so `/work` stays
 * when `/work/ctx` is ignored, whether or not the image has a `/work`).
 */
export class IgnoreSet {
  private readonly paths: Set<string>;
  private readonly ancestors = new Set<string>();

  /** `paths` are left alone with what is below them; in each `prefixed` directory, the names with that prefix. */
  constructor(
    paths: readonly string[],
    readonly prefixed: ReadonlyArray<{ dir: string; prefix: string }> = [],
  ) {
    this.paths = new Set(paths.map(clean).filter((p) => p !== '/'));
    for (const p of [...this.paths, ...prefixed.map((x) => `${clean(x.dir)}/${x.prefix}`)]) {
      for (let a = posix.dirname(p); a !== '/'; a = posix.dirname(a)) this.ancestors.add(a);
    }
  }

  /** `/a/b` is ignored, or under an ignored path. */
  ignored(path: string): boolean {
    for (let p = path; p !== '/'; p = posix.dirname(p)) {
      if (this.paths.has(p)) return true;
      const dir = posix.dirname(p);
      const name = posix.basename(p);
      if (this.prefixed.some((x) => clean(x.dir) === dir && name.startsWith(x.prefix))) return true;
    }
    return false;
  }

  /** Above an ignored path: kept as a directory, never removed. */
  holdsIgnored(path: string): boolean {
    return this.ancestors.has(path);
  }

  list(): string[] {
    return [...this.paths];
  }
}

function clean(path: string): string {
  return posix.normalize(`/${path}`).replace(/\/+$/, '') || '/';
}

export interface SyncOptions {
  ignore: IgnoreSet;
  /** Set owners as in the source (needs CAP_CHOWN); otherwise files belong to this process. */
  owners: boolean;
  /** Paths (`/a/b`) copied even when their stat data match: what a step rewrote in place. */
  force?: ReadonlySet<string>;
  /**
   * Whether a directory above an ignored path is made when the target lacks it: yes when laying a stage onto /
   * (its /etc must be there), no when copying back (/work of /work/ctx is not the image's).
   */
  makeHolders: boolean;
}

/**
 * Makes the tree at `to` equal to the tree at `from` (types, content, modes, owners when allowed, mtimes, link
 * targets), leaving ignored paths alone on both sides. A file whose type, size, mtime, mode and owner already match
 * is not copied again, so laying a stage down twice in a row costs a walk. Device nodes and fifos are skipped.
 */
export function syncTree(from: string, to: string, options: SyncOptions): void {
  syncDir(from, to, '/', options, new Map());
}

/** `links` maps a multiply linked source inode to the first target path made for it, so the rest link to it. */
function syncDir(from: string, to: string, path: string, options: SyncOptions, links: Map<string, string>): void {
  const { ignore } = options;
  const src = join(from, path);
  const dst = join(to, path);
  const names = new Set(list(src));
  for (const name of list(dst)) {
    const child = posix.join(path, name);
    if (names.has(name) || ignore.ignored(child) || ignore.holdsIgnored(child)) continue;
    rmSync(at(join(dst, name)), { recursive: true, force: true });
  }
  for (const name of [...names].sort()) {
    const child = posix.join(path, name);
    if (ignore.ignored(child)) continue;
    const s = lstatSync(at(join(src, name)));
    const target = join(dst, name);
    const d = statOrUndefined(target);
    if (ignore.holdsIgnored(child)) {
      // Kept as the directory it must be (never removed); the image's content below it still comes down.
      const isDir = d?.isDirectory() === true;
      if (!s.isDirectory() || (!isDir && !options.makeHolders)) continue;
      // Not a directory here, so nothing ignored lies below it: safe to replace.
      if (d !== undefined && !isDir) rmSync(at(target), { force: true });
      if (!isDir) mkdirSync(at(target), { mode: 0o700 });
      chmodSync(at(target), 0o700 | (s.mode & 0o7777));
      syncDir(from, to, child, options, links);
      setMeta(target, s, options.owners);
      continue;
    }
    if (s.isDirectory()) {
      if (d !== undefined && !d.isDirectory()) rmSync(at(target), { recursive: true, force: true });
      if (d === undefined || !d.isDirectory()) mkdirSync(at(target), { mode: 0o700 });
      // Writable while its children come down; its own mode goes on after.
      chmodSync(at(target), 0o700 | (s.mode & 0o7777));
      syncDir(from, to, child, options, links);
      setMeta(target, s, options.owners);
    } else if (s.isSymbolicLink()) {
      const link = readlinkSync(at(join(src, name)), { encoding: 'buffer' });
      if (d?.isSymbolicLink() && readlinkSync(at(target), { encoding: 'buffer' }).equals(link) && !options.force?.has(child)) continue;
      if (d !== undefined) rmSync(at(target), { recursive: true, force: true });
      symlinkSync(link, at(target));
      if (options.owners) lchownSync(at(target), s.uid, s.gid);
    } else if (s.isFile()) {
      const inode = s.nlink > 1 ? `${s.dev}:${s.ino}` : undefined;
      const first = inode === undefined ? undefined : links.get(inode);
      if (first !== undefined) {
        if (d !== undefined && d.ino === lstatSync(at(first)).ino) continue;
        if (d !== undefined) rmSync(at(target), { recursive: true, force: true });
        linkSync(at(first), at(target));
        continue;
      }
      if (inode !== undefined) links.set(inode, target);
      if (d !== undefined && d.nlink === 1 && sameFile(s, d, options.owners) && !options.force?.has(child)) continue;
      if (d !== undefined) rmSync(at(target), { recursive: true, force: true });
      copyFileSync(at(join(src, name)), at(target), constants.COPYFILE_FICLONE);
      setMeta(target, s, options.owners);
    }
  }
}

function setMeta(path: string, s: Stats, owners: boolean): void {
  // chown before chmod: chown clears setuid and setgid.
  if (owners) lchownSync(at(path), s.uid, s.gid);
  chmodSync(at(path), s.mode & 0o7777);
  utimesSync(at(path), s.atime, s.mtime);
}

function sameFile(a: Stats, b: Stats, owners: boolean): boolean {
  // utimes from Node keeps about a microsecond: a copy's mtime is within a millisecond of its source's.
  return (
    b.isFile() &&
    a.size === b.size &&
    Math.abs(a.mtimeMs - b.mtimeMs) < 1 &&
    (a.mode & 0o7777) === (b.mode & 0o7777) &&
    (!owners || (a.uid === b.uid && a.gid === b.gid))
  );
}

/** The names in a directory (strata's strings: bytes that are not UTF-8 escaped, see fsname). */
function list(dir: string): string[] {
  return readdirSync(at(dir), { encoding: 'buffer' }).map(decodeName);
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(at(path));
  } catch {
    return undefined;
  }
}
