import { execFile } from 'node:child_process';
import type { Stats } from 'node:fs';
import * as fs from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { StrataError, errnoCode, ioError, isStrataError } from '../errors/index.js';
import { layerCompression, type Descriptor } from '../oci/index.js';
import type { BlobReader } from '../store/types.js';
import type { Digest } from '../digest/index.js';
import type { LayerRecords } from './fs-index.js';
import { emptyRecord, recordEntries } from './layer-record.js';
import { LayerWrites } from './layer-writes.js';
import { readLayer } from './read.js';
import { joinRel, layerPathToRel, resolveAsync, whiteoutName, type PathLookup } from './secure-join.js';
import type { LayerReadEntry } from './types.js';

const run = promisify(execFile);

export interface ExtractImageOptions {
  /** The process may chown and create devices (it runs as root). Default false. */
  privileged?: boolean | undefined;
  /** `keep` applies the uid/gid of the entries; default: `keep` when privileged, else `ignore`. */
  ownership?: 'keep' | 'ignore' | undefined;
  /** Device nodes are skipped unless `create` and privileged. */
  devices?: 'skip' | 'create' | undefined;
  signal?: AbortSignal | undefined;
  /** Records each layer read under its diffID (when none is kept yet), so indexing it later reads nothing. */
  records?: LayerRecords | undefined;
}

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

interface DirMeta {
  rel: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

/**
 * Unpacks an image's layers, in order, into `rootDir` (which must exist and should be empty and private to
 * this call), applying whiteouts and opaque directories as the OCI layer spec says.
 *
 * Nothing is ever written outside `rootDir`: every parent path is resolved inside the root (symlinks followed with
 * absolute targets taken relative to the root, `..` stopped at the root) and checked with realpath before use; the
 * last component is never followed (an entry is made with O_EXCL|O_NOFOLLOW, mkdir or symlink, and whatever is in
 * the way is removed and the entry made again); hardlink targets are resolved inside the root too. A symlink loop in a path fails with E_LAYER_UNSAFE.
 *
 * Blobs are verified as they stream, but a mismatch is only known at the end of a layer: when this throws, the
 * content of `rootDir` is undefined and the caller must discard it.
 */
export async function extractImageToDirectory(
  layers: readonly Descriptor[],
  reader: BlobReader,
  rootDir: string,
  options: ExtractImageOptions = {},
): Promise<ExtractStats> {
  const privileged = options.privileged === true;
  let realRoot: string;
  try {
    realRoot = fs.realpathSync.native(rootDir);
  } catch (error) {
    throw ioError('extract into', rootDir, error);
  }
  const extractor = new Extractor(realRoot, {
    privileged,
    keepOwnership: (options.ownership ?? (privileged ? 'keep' : 'ignore')) === 'keep',
    createDevices: options.devices === 'create' && privileged,
  });
  for (const [i, descriptor] of layers.entries()) {
    if (options.signal?.aborted === true) throw new StrataError('E_ABORTED', `extracting into ${rootDir} was aborted`);
    const compression = layerCompression(descriptor.mediaType);
    const what = `layer ${descriptor.digest}`;
    if (compression === undefined) {
      throw new StrataError('E_LAYER_INVALID', `${what} has media type ${descriptor.mediaType}, which is not a layer strata can unpack`, {
        hint: 'strata unpacks tar, tar+gzip and tar+zstd layers',
      });
    }
    const stream = await reader.openBlob(descriptor, options.signal === undefined ? {} : { signal: options.signal });
    const diffId = options.records?.diffIds[i];
    const cache = diffId === undefined ? undefined : options.records?.cache;
    if (cache === undefined || diffId === undefined || (await cache.load(diffId)) !== undefined) {
      await extractor.layer(readLayer(stream, { compression, what, signal: options.signal }), what, options.signal);
      continue;
    }
    const record = emptyRecord();
    let read: Digest | undefined;
    await extractor.layer(
      recordEntries(readLayer(stream, { compression, what, signal: options.signal, onDiffId: (d) => (read = d) }), record),
      what,
      options.signal,
    );
    if (read === diffId) await cache.save(diffId, record);
  }
  return extractor.stats;
}

interface ExtractorPolicy {
  privileged: boolean;
  keepOwnership: boolean;
  createDevices: boolean;
}

class Extractor {
  readonly stats: ExtractStats = {
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
  private readonly writes = new LayerWrites();
  private dirMeta: DirMeta[] = [];
  /** Lower-layer directories made writable for this layer (unprivileged only), with the mode to put back. */
  private readonly restoreModes = new Map<string, number>();
  /**
   * Entry parent (as named in the layer) → its resolved, created, checked directory. Siblings share a parent, so
   * this saves most of the resolution work; anything that removes a directory or a symlink empties it.
   */
  private readonly parents = new Map<string, string>();
  private what = 'layer';

  constructor(
    private readonly root: string,
    private readonly policy: ExtractorPolicy,
  ) {}

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

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
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
    const target = joinRel(parent, posix.basename(rel));
    // Directories, files and symlinks are made first and looked at only when something is in the way (EEXIST),
    // as tar does: into a fresh root that saves an lstat per entry.
    switch (entry.type) {
      case 'dir':
        await this.placeDir(target, entry);
        break;
      case 'file':
        await this.placeFile(target, entry);
        break;
      case 'symlink':
        await this.placeSymlink(target, entry);
        break;
      case 'hardlink':
        await this.placeHardlink(target, await this.lstat(target), entry);
        break;
      case 'fifo':
        await this.clear(target, await this.lstat(target));
        await this.placeSpecial(target, entry, ['mkfifo', ['-m', '0600', '--', this.abs(target)]]);
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
          ['-m', '0600', '--', this.abs(target), entry.type === 'char' ? 'c' : 'b', String(entry.devMajor), String(entry.devMinor)],
        ]);
        this.stats.devices += 1;
        break;
    }
    this.writes.add(target);
  }

  private async placeDir(target: string, entry: LayerReadEntry): Promise<void> {
    const make = (): void => fs.mkdirSync(this.abs(target), { mode: 0o700 });
    if ((await this.create('create directory', target, make)) === undefined) {
      const existing = await this.lstat(target);
      if (existing?.isDirectory() === true) {
        await this.makeWritable(target);
      } else {
        await this.clear(target, existing);
        await this.io('create directory', target, make);
      }
    }
    // Mode, owner and mtime wait for the end of the layer: children written later would change the mtime, and a
    // read-only mode would stop an unprivileged extractor from writing them.
    this.dirMeta.push({ rel: target, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime });
    this.stats.directories += 1;
  }

  private async placeFile(target: string, entry: LayerReadEntry): Promise<void> {
    const path = this.abs(target);
    const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
    const open = (): number => fs.openSync(path, flags, 0o600);
    let fd = (await this.create('create file', target, open))?.made;
    if (fd === undefined) {
      await this.clear(target, await this.lstat(target));
      fd = await this.io('create file', target, open);
    }
    try {
      for await (const chunk of entry.content) {
        let offset = 0;
        while (offset < chunk.length) offset += await this.io('write', target, () => fs.writeSync(fd, chunk, offset, chunk.length - offset));
        this.stats.bytes += chunk.length;
      }
      // chown before chmod: chown clears setuid/setgid.
      if (this.policy.keepOwnership) await this.io('chown', target, () => fs.fchownSync(fd, entry.uid, entry.gid));
      await this.io('chmod', target, () => fs.fchmodSync(fd, entry.mode));
      await this.io('set times of', target, () => fs.futimesSync(fd, entry.mtime, entry.mtime));
    } finally {
      fs.closeSync(fd);
    }
    this.stats.files += 1;
  }

  private async placeSymlink(target: string, entry: LayerReadEntry): Promise<void> {
    const path = this.abs(target);
    const make = (): void => fs.symlinkSync(entry.linkname ?? '', path);
    if ((await this.create('create symlink', target, make)) === undefined) {
      await this.clear(target, await this.lstat(target));
      await this.io('create symlink', target, make);
    }
    if (this.policy.keepOwnership) await this.io('chown', target, () => fs.lchownSync(path, entry.uid, entry.gid));
    await this.io('set times of', target, () => fs.lutimesSync(path, entry.mtime, entry.mtime));
    this.stats.symlinks += 1;
  }

  private async placeHardlink(target: string, existing: Stats | undefined, entry: LayerReadEntry): Promise<void> {
    const linkname = entry.linkname ?? '';
    const resolved = await resolveAsync(layerPathToRel(linkname), { followFinal: false }, (rel) => this.lookup(rel));
    if (!resolved.ok) throw this.unresolvable(entry.path, linkname, resolved.reason, resolved.at);
    const source = resolved.path;
    const sourceStat = resolved.missing ? undefined : await this.lstat(source);
    if (sourceStat === undefined) {
      throw this.invalid(
        entry.path,
        `is a hard link to ${JSON.stringify(linkname)}, which does not exist in the image`,
        'a hard link must point at a path written earlier in the same layer or below',
      );
    }
    if (sourceStat.isDirectory()) throw this.invalid(entry.path, `is a hard link to the directory ${JSON.stringify(linkname)}`);
    if (source === target) return;
    await this.assertInside(posix.dirname(source));
    await this.clear(target, existing);
    await this.io('create hard link', target, () => fs.linkSync(this.abs(source), this.abs(target)));
    this.stats.hardlinks += 1;
  }

  private async placeSpecial(target: string, entry: LayerReadEntry, [command, args]: [string, string[]]): Promise<void> {
    const path = this.abs(target);
    try {
      await run(command, args);
    } catch (error) {
      throw new StrataError(
        'E_IO',
        `${this.what}: cannot create ${entry.type} ${entry.path} with ${command}: ${error instanceof Error ? error.message : String(error)}`,
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
      if (stat?.isDirectory() === true) await this.io('chmod', rel, () => fs.chmodSync(this.abs(rel), mode));
    }
    this.restoreModes.clear();
    // Deepest first, so setting a parent's mtime comes after every change inside it.
    const metas = [...this.dirMeta].sort((a, b) => depth(b.rel) - depth(a.rel));
    for (const meta of metas) {
      const stat = await this.lstat(meta.rel);
      if (stat?.isDirectory() !== true) continue;
      const path = this.abs(meta.rel);
      if (this.policy.keepOwnership) await this.io('chown', meta.rel, () => fs.lchownSync(path, meta.uid, meta.gid));
      await this.io('chmod', meta.rel, () => fs.chmodSync(path, meta.mode));
      await this.io('set times of', meta.rel, () => fs.utimesSync(path, meta.mtime, meta.mtime));
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
    const path = this.abs(rel);
    if (!existing.isDirectory()) {
      await this.io('remove', rel, () => fs.unlinkSync(path));
      return;
    }
    try {
      await rm(path, { recursive: true, force: true });
    } catch (error) {
      const code = errnoCode(error);
      if (this.policy.privileged || (code !== 'EACCES' && code !== 'EPERM')) throw ioError('remove', path, error);
      await this.openUp(path);
      await this.io('remove', rel, () => rm(path, { recursive: true, force: true }));
    }
  }

  /** Unprivileged removal of a tree with read-only directories: make every directory in it ours to empty. */
  private async openUp(path: string): Promise<void> {
    if (!fs.lstatSync(path).isDirectory()) return;
    try {
      fs.chmodSync(path, 0o700);
    } catch {
      // The retried removal reports what is still in the way.
    }
    for (const name of fs.readdirSync(path)) await this.openUp(join(path, name));
  }

  /** Unprivileged only: lets this process add to or remove from a lower layer's read-only directory until the layer ends. */
  private async makeWritable(rel: string): Promise<void> {
    if (this.policy.privileged || this.restoreModes.has(rel)) return;
    const stat = await this.lstat(rel);
    if (stat === undefined || !stat.isDirectory() || (stat.mode & 0o300) === 0o300) return;
    try {
      fs.chmodSync(this.abs(rel), (stat.mode & 0o7777) | 0o700);
      this.restoreModes.set(rel, stat.mode & 0o7777);
    } catch {
      // Not ours to change: the write that needed it fails with its own, clearer error.
    }
  }

  /** Resolves an entry's parent inside the root and creates what is missing of it; returns it root-relative. */
  private async ensureParent(dir: string, entryPath: string): Promise<string> {
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
        const path = this.abs(at);
        await this.io('create directory', at, () => fs.mkdirSync(path, { mode: 0o755 }));
        // Implicit parents get 0755 whatever the umask, as docker's unpacker gives them.
        await this.io('chmod', at, () => fs.chmodSync(path, 0o755));
      }
    } else if (resolved.path !== '' && (await this.lstat(resolved.path))?.isDirectory() !== true) {
      throw this.unresolvable(entryPath, dir, 'notdir', resolved.path);
    }
    await this.assertInside(resolved.path);
    await this.makeWritable(resolved.path);
    return resolved.path;
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

  /** Belt and braces: the resolved directory really is where the resolution says, inside the root. */
  private async assertInside(rel: string): Promise<void> {
    const expected = this.abs(rel);
    const real = await this.io('resolve', rel, () => fs.realpathSync.native(expected));
    if (real !== expected) throw this.unsafe(rel, `resolves to ${real}, outside ${this.root}`);
  }

  private async lookup(rel: string): Promise<PathLookup> {
    const stat = await this.lstat(rel);
    if (stat === undefined) return { kind: 'missing' };
    if (stat.isDirectory()) return { kind: 'dir' };
    if (stat.isSymbolicLink()) return { kind: 'symlink', target: await this.io('read link', rel, () => fs.readlinkSync(this.abs(rel))) };
    return { kind: 'other' };
  }

  private async lstat(rel: string): Promise<Stats | undefined> {
    try {
      return fs.lstatSync(this.abs(rel));
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw ioError('inspect', this.abs(rel), error);
    }
  }

  private async readdir(rel: string): Promise<string[]> {
    return this.io('list', rel, () => fs.readdirSync(this.abs(rel)));
  }

  /** What `work` (which makes `rel`) returns, or undefined when something is already there (EEXIST). */
  private async create<T>(action: string, rel: string, work: () => T): Promise<{ made: T } | undefined> {
    try {
      return { made: work() };
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') return undefined;
      return this.io(action, rel, () => {
        throw error;
      });
    }
  }

  private async io<T>(action: string, rel: string, work: () => T | Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isStrataError(error)) throw error;
      const wrapped = ioError(action, this.abs(rel), error);
      throw new StrataError(wrapped.code, `${this.what}: ${wrapped.message}`, {
        cause: error,
        hint: 'the root directory must be private to this extraction; unprivileged extraction cannot set owners or make devices',
      });
    }
  }

  private unresolvable(entryPath: string, path: string, reason: 'loop' | 'notdir', at: string): StrataError {
    if (reason === 'loop') return this.unsafe(entryPath, `goes through ${JSON.stringify(path)}, whose symlinks loop at ${at}`);
    return this.invalid(
      entryPath,
      `goes through ${JSON.stringify(at)}, which is not a directory`,
      'the layer writes below a path that a lower layer made a file; the image is malformed',
    );
  }

  private unsafe(entryPath: string, why: string): StrataError {
    return new StrataError('E_LAYER_UNSAFE', `${this.what}: entry ${JSON.stringify(entryPath)} ${why}`, {
      hint: 'the layer could write outside the directory it is unpacked into; it was refused',
    });
  }

  private invalid(entryPath: string, why: string, hint = 'the layer is malformed; rebuild it'): StrataError {
    return new StrataError('E_LAYER_INVALID', `${this.what}: entry ${JSON.stringify(entryPath)} ${why}`, { hint });
  }
}

function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash === -1 ? '' : rel.slice(0, slash);
}

function depth(rel: string): number {
  if (rel === '') return 0;
  let count = 1;
  for (const char of rel) if (char === '/') count += 1;
  return count;
}
