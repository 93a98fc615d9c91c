import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Stats } from 'node:fs';
import * as fs from 'node:fs';
import { rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { StrataError, errnoCode, ioError, isStrataError } from '../errors/index.js';
import { displayName, fsPath, quotedName as quoted } from '../fsname/index.js';
import { LayerWrites } from './layer-writes.js';
import { CreateOwner } from './create-owner.js';
import { RootDir } from './rootfs-dir.js';
import { depth, emptyExtractStats, parentOf, type DirMeta, type ExtractStats, type ExtractorPolicy, type ParentDir } from './rootfs-extract-types.js';
import { joinRel, layerPathToRel, resolveAsync, whiteoutName } from './secure-join.js';
import type { LayerReadEntry } from './types.js';

const run = promisify(execFile);

const FILE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/**
 * Applies layers, one after the other, to a root directory (see extractImageToDirectory for the rules it
 * keeps). Names are strata's strings; RootDir gives them to the file system as their bytes.
 */
export class Extractor extends RootDir {
  readonly stats: ExtractStats = emptyExtractStats();
  private readonly writes = new LayerWrites();
  private dirMeta: DirMeta[] = [];
  /** Lower-layer directories made writable for this layer (unprivileged only), with the mode to put back. */
  private readonly restoreModes = new Map<string, number>();
  /**
   * Entry parent (as named in the layer) → its resolved, created, checked directory. Siblings share a parent, so
   * this saves most of the resolution work; anything that removes a directory or a symlink empties it.
   */
  private readonly parents = new Map<string, ParentDir>();
  /** Who a created entry belongs to before any chown. */
  private readonly creator: CreateOwner;

  constructor(
    root: string,
    private readonly policy: ExtractorPolicy,
  ) {
    super(root);
    this.creator = new CreateOwner(policy.keepOwnership);
  }

  async layer(entries: AsyncIterable<LayerReadEntry>, what: string, signal: AbortSignal | undefined): Promise<void> {
    this.what = what;
    this.writes.clear();
    this.parents.clear();
    this.dirMeta = [];
    try {
      for await (const entry of entries) {
        if (signal?.aborted === true) throw new StrataError('E_ABORTED', `extracting ${what} was aborted`);
        this.stats.entries += 1;
        await this.apply(entry);
      }
    } catch (error) {
      if (signal?.aborted === true && !isStrataError(error)) throw new StrataError('E_ABORTED', `extracting ${what} was aborted`, { cause: error });
      throw error;
    }
    await this.finishLayer();
    this.stats.layers += 1;
  }

  private async apply(entry: LayerReadEntry): Promise<void> {
    if (entry.kind === 'whiteout') {
      this.stats.whiteouts += 1;
      const name = whiteoutName(entry.target, entry.path, this.what);
      const parent = await this.resolveExistingDir(posix.dirname(entry.target), entry.path);
      if (parent !== undefined) await this.removeLower(joinRel(parent, name));
      return;
    }
    if (entry.kind === 'opaque') {
      this.stats.opaques += 1;
      const dir = await this.resolveExistingDir(entry.dir, entry.path);
      if (dir === undefined) return;
      for (const name of await this.readdir(dir)) await this.removeLower(joinRel(dir, name));
      return;
    }
    const rel = layerPathToRel(entry.path);
    if (rel === '') {
      if (entry.type !== 'dir') throw this.invalid(entry.path, `the root of the image must be a directory, not a ${entry.type}`);
      this.dirMeta.push({ rel: '', mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime });
      return;
    }
    const dir = posix.dirname(rel);
    let parent = this.parents.get(dir);
    if (parent === undefined) {
      parent = await this.ensureParent(dir, entry.path);
      this.parents.set(dir, parent);
    }
    const target = joinRel(parent.rel, posix.basename(rel));
    // Files, directories and links are created first, and what is in the way looked at only when the name is taken.
    switch (entry.type) {
      case 'dir':
        await this.placeDir(target, entry);
        break;
      case 'file':
        await this.placeFile(target, parent, entry);
        break;
      case 'symlink':
        await this.placeSymlink(target, parent, entry);
        break;
      case 'hardlink':
        await this.placeHardlink(target, entry);
        break;
      case 'fifo':
        await this.clear(target, await this.lstat(target));
        await this.placeSpecial(target, entry, ['mkfifo', (path) => ['-m', '0600', '--', path]]);
        this.stats.fifos += 1;
        break;
      case 'char':
      case 'block':
        // The path is the device now, whether or not it can be made: what was below is gone either way.
        await this.clear(target, await this.lstat(target));
        if (!this.policy.createDevices) {
          this.stats.devicesSkipped += 1;
          return;
        }
        await this.placeSpecial(target, entry, [
          'mknod',
          (path) => ['-m', '0600', '--', path, entry.type === 'char' ? 'c' : 'b', String(entry.devMajor), String(entry.devMinor)],
        ]);
        this.stats.devices += 1;
        break;
    }
    this.writes.add(target);
  }

  /**
   * Runs `make`, which creates `target` and fails with EEXIST when anything has that name (an O_EXCL open, mkdir,
   * symlink, link: none follows a symlink there); only then is what is in the way looked at, removed, and `make`
   * run again. Most entries land on a free name, so most cost no lstat.
   */
  private async create<T>(action: string, target: string, make: () => T): Promise<T> {
    try {
      return make();
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw this.failure(action, target, error);
    }
    await this.clear(target, await this.lstat(target));
    return this.ioSync(action, target, make);
  }

  private async placeDir(target: string, entry: LayerReadEntry): Promise<void> {
    // Writable by this process alone until the layer ends (its entries are written into it, and no one else may
    // add to it meanwhile); the entry's mode is set then, unless the directory was made with it (0755 mostly).
    const mkdir = (): void => fs.mkdirSync(this.at(target), { mode: (entry.mode & 0o755) | 0o700 });
    try {
      mkdir();
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw this.failure('create directory', target, error);
      const existing = await this.lstat(target);
      if (existing?.isDirectory() === true) await this.makeWritable(target);
      else {
        await this.clear(target, existing);
        this.ioSync('create directory', target, mkdir);
      }
    }
    // Mode, owner and mtime wait for the end of the layer: children written later would change the mtime, and a
    // read-only mode would stop an unprivileged extractor from writing them.
    this.dirMeta.push({ rel: target, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime });
    this.stats.directories += 1;
  }

  private async placeFile(target: string, parent: ParentDir, entry: LayerReadEntry): Promise<void> {
    const path = this.at(target);
    const fd = await this.create('create file', target, () => fs.openSync(path, FILE_FLAGS, 0o600));
    try {
      for await (const chunk of entry.content) {
        let offset = 0;
        while (offset < chunk.length) offset += this.ioSync('write', target, () => fs.writeSync(fd, chunk, offset, chunk.length - offset));
        this.stats.bytes += chunk.length;
      }
      if (this.creator.unchecked)
        this.creator.check(
          this.ioSync('inspect', target, () => fs.fstatSync(fd)),
          parent.gid,
        );
      // chown before chmod: chown clears setuid/setgid.
      if (this.needsChown(parent, entry)) this.ioSync('chown', target, () => fs.fchownSync(fd, entry.uid, entry.gid));
      this.ioSync('chmod', target, () => fs.fchmodSync(fd, entry.mode));
      this.ioSync('set times of', target, () => fs.futimesSync(fd, entry.mtime, entry.mtime));
    } finally {
      fs.closeSync(fd);
    }
    this.stats.files += 1;
  }

  private async placeSymlink(target: string, parent: ParentDir, entry: LayerReadEntry): Promise<void> {
    const path = this.at(target);
    await this.create('create symlink', target, () => fs.symlinkSync(fsPath(entry.linkname ?? ''), path));
    if (this.needsChown(parent, entry)) this.ioSync('chown', target, () => fs.lchownSync(path, entry.uid, entry.gid));
    this.ioSync('set times of', target, () => fs.lutimesSync(path, entry.mtime, entry.mtime));
    this.stats.symlinks += 1;
  }

  /** Whether an entry just created in `parent` must be chowned: owners are kept and it did not get them by being made. */
  private needsChown(parent: ParentDir, entry: LayerReadEntry): boolean {
    return this.policy.keepOwnership && !this.creator.gives(entry.uid, entry.gid, parent.gid);
  }

  private async placeHardlink(target: string, entry: LayerReadEntry): Promise<void> {
    const linkname = entry.linkname ?? '';
    const resolved = await resolveAsync(layerPathToRel(linkname), { followFinal: false }, (rel) => this.lookup(rel));
    if (!resolved.ok) throw this.unresolvable(entry.path, linkname, resolved.reason, resolved.at);
    const source = resolved.path;
    const sourceStat = resolved.missing ? undefined : await this.lstat(source);
    if (sourceStat === undefined) {
      throw this.invalid(
        entry.path,
        `is a hard link to ${quoted(linkname)}, which does not exist in the image`,
        'a hard link must point at a path written earlier in the same layer or below',
      );
    }
    if (sourceStat.isDirectory()) throw this.invalid(entry.path, `is a hard link to the directory ${quoted(linkname)}`);
    if (source === target) return;
    await this.assertInside(posix.dirname(source));
    await this.create('create hard link', target, () => fs.linkSync(this.at(source), this.at(target)));
    this.stats.hardlinks += 1;
  }

  private async placeSpecial(target: string, entry: LayerReadEntry, [command, args]: [string, (path: string) => string[]]): Promise<void> {
    const path = this.at(target);
    // A program's arguments are strings: a name that is not UTF-8 is made under a temporary name at the
    // root, then renamed to its bytes.
    const made = typeof path === 'string' ? path : this.abs(`.strata-node-${randomUUID()}`);
    try {
      await run(command, args(made));
      if (made !== path) await this.io('rename', target, () => fs.renameSync(made, path));
    } catch (error) {
      if (isStrataError(error)) throw error;
      throw new StrataError(
        'E_IO',
        `${this.what}: cannot create ${entry.type} ${displayName(entry.path)} with ${command}: ${error instanceof Error ? error.message : String(error)}`,
        {
          cause: error,
          hint: errnoCode(error) === 'ENOENT' ? `install ${command} (coreutils)` : 'creating special files needs privileges the extractor may not have',
        },
      );
    }
    // The node was just made by us at a path whose parents are checked; chmod does not open it.
    if (this.policy.keepOwnership) await this.io('chown', target, () => fs.lchownSync(path, entry.uid, entry.gid));
    await this.io('chmod', target, () => fs.chmodSync(path, entry.mode));
    await this.io('set times of', target, () => fs.lutimesSync(path, entry.mtime, entry.mtime));
  }

  private async finishLayer(): Promise<void> {
    for (const [rel, mode] of this.restoreModes) {
      const stat = await this.lstat(rel);
      if (stat?.isDirectory() === true) await this.io('chmod', rel, () => fs.chmodSync(this.at(rel), mode));
    }
    this.restoreModes.clear();
    // Deepest first, so setting a parent's mtime comes after every change inside it.
    const metas = [...this.dirMeta].sort((a, b) => depth(b.rel) - depth(a.rel));
    for (const meta of metas) {
      const stat = await this.lstat(meta.rel);
      if (stat?.isDirectory() !== true) continue;
      const path = this.at(meta.rel);
      // What the directory already has is not set again (its stat is taken here anyway).
      const chown = this.policy.keepOwnership && (stat.uid !== meta.uid || stat.gid !== meta.gid);
      if (chown) this.ioSync('chown', meta.rel, () => fs.lchownSync(path, meta.uid, meta.gid));
      if (chown || (stat.mode & 0o7777) !== meta.mode) this.ioSync('chmod', meta.rel, () => fs.chmodSync(path, meta.mode));
      this.ioSync('set times of', meta.rel, () => fs.utimesSync(path, meta.mtime, meta.mtime));
    }
    this.dirMeta = [];
  }

  /** Removes what lower layers put at `rel`, keeping whatever this layer itself wrote there or below. */
  private async removeLower(rel: string): Promise<void> {
    if (this.writes.has(rel)) return;
    const stat = await this.lstat(rel);
    if (stat === undefined) return;
    if (!this.writes.hasBelow(rel) || !stat.isDirectory()) {
      await this.clear(rel, stat);
      return;
    }
    for (const name of await this.readdir(rel)) await this.removeLower(joinRel(rel, name));
  }

  /** Removes whatever is at `rel` (never following it), so that something else can take its place. */
  private async clear(rel: string, existing: Stats | undefined): Promise<void> {
    if (existing === undefined) return;
    if (!existing.isFile()) this.parents.clear();
    await this.makeWritable(parentOf(rel));
    const path = this.at(rel);
    if (!existing.isDirectory()) {
      await this.io('remove', rel, () => fs.unlinkSync(path));
      return;
    }
    try {
      await rm(path, { recursive: true, force: true });
    } catch (error) {
      const code = errnoCode(error);
      if (this.policy.privileged || (code !== 'EACCES' && code !== 'EPERM')) throw ioError('remove', displayName(this.abs(rel)), error);
      await this.openUp(rel);
      await this.io('remove', rel, () => rm(path, { recursive: true, force: true }));
    }
  }

  /** Unprivileged removal of a tree with read-only directories: make every directory in it ours to empty. */
  private async openUp(rel: string): Promise<void> {
    if ((await this.lstat(rel))?.isDirectory() !== true) return;
    try {
      fs.chmodSync(this.at(rel), 0o700);
    } catch {
      // The retried removal reports what is still in the way.
    }
    for (const name of await this.readdir(rel)) await this.openUp(joinRel(rel, name));
  }

  /** Unprivileged only: lets this process add to or remove from a lower layer's read-only directory until the layer ends. */
  private async makeWritable(rel: string): Promise<void> {
    if (this.policy.privileged || this.restoreModes.has(rel)) return;
    const stat = await this.lstat(rel);
    if (stat === undefined || !stat.isDirectory() || (stat.mode & 0o300) === 0o300) return;
    try {
      fs.chmodSync(this.at(rel), (stat.mode & 0o7777) | 0o700);
      this.restoreModes.set(rel, stat.mode & 0o7777);
    } catch {
      // Not ours to change: the write that needed it fails with its own, clearer error.
    }
  }

  /** Resolves an entry's parent inside the root and creates what is missing of it; returns it root-relative. */
  private async ensureParent(dir: string, entryPath: string): Promise<ParentDir> {
    const resolved = await resolveAsync(layerPathToRel(dir), { followFinal: true }, (rel) => this.lookup(rel));
    if (!resolved.ok) throw this.unresolvable(entryPath, dir, resolved.reason, resolved.at);
    if (resolved.missing) {
      let at = '';
      for (const part of resolved.path.split('/')) {
        at = joinRel(at, part);
        const stat = await this.lstat(at);
        if (stat?.isDirectory() === true) continue;
        if (stat !== undefined) throw this.unsafe(entryPath, `its parent ${at} changed while it was being resolved`);
        await this.makeWritable(parentOf(at));
        const path = this.at(at);
        await this.io('create directory', at, () => fs.mkdirSync(path, { mode: 0o755 }));
        // Implicit parents get 0755 whatever the umask, as docker's unpacker gives them.
        await this.io('chmod', at, () => fs.chmodSync(path, 0o755));
      }
    } else if (resolved.path !== '' && (await this.lstat(resolved.path))?.isDirectory() !== true) {
      throw this.unresolvable(entryPath, dir, 'notdir', resolved.path);
    }
    await this.assertInside(resolved.path);
    await this.makeWritable(resolved.path);
    // The group a file made here gets, while this layer runs (directory modes change only when it ends).
    const gid = this.policy.keepOwnership ? this.creator.groupIn(await this.lstat(resolved.path)) : undefined;
    return { rel: resolved.path, gid };
  }

  /** The root-relative directory a whiteout or opaque marker refers to, or undefined when there is none. */
  private async resolveExistingDir(dir: string, entryPath: string): Promise<string | undefined> {
    const resolved = await resolveAsync(layerPathToRel(dir), { followFinal: true }, (rel) => this.lookup(rel));
    if (!resolved.ok) {
      if (resolved.reason === 'notdir') return undefined;
      throw this.unresolvable(entryPath, dir, resolved.reason, resolved.at);
    }
    if (resolved.missing) return undefined;
    const stat = await this.lstat(resolved.path);
    if (stat?.isDirectory() !== true) return undefined;
    await this.assertInside(resolved.path);
    return resolved.path;
  }
}
