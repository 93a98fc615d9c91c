import { posix } from 'node:path';
import { StrataError } from '../errors/index.js';
import { layerCompression, type Descriptor } from '../oci/index.js';
import type { BlobReader } from '../store/types.js';
import type { Digest } from '../digest/index.js';
import type { LayerIndexCache } from './layer-index-store.js';
import { RECORDED_CONTENT_NAMES, emptyRecord, recordEntries, replayEntry, type LayerRecord } from './layer-record.js';
import { LayerWrites } from './layer-writes.js';
import { readLayer } from './read.js';
import { joinRel, layerPathToRel, resolveSync, whiteoutName, type PathLookup, type ResolveOutcome } from './secure-join.js';
import type { LayerReadEntry } from './types.js';

/** Largest file whose bytes `wantContent` captures; larger ones are indexed without content. */
export const MAX_CAPTURED_CONTENT = 1024 * 1024;

/** A hard link is indexed as the file it shares an inode with (`hardlinkOf` names it). */
export type ImageFsEntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block';

export interface ImageFsEntry {
  type: ImageFsEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** A symlink's target, as stored. */
  linkTarget?: string | undefined;
  /** For a hard link: the absolute image path of the entry it was linked to. */
  hardlinkOf?: string | undefined;
  devMajor?: number | undefined;
  devMinor?: number | undefined;
}

export interface IndexImageOptions {
  /** Absolute image paths (`/etc/passwd`) whose final bytes to keep; files over 1 MiB are not kept. */
  wantContent?: readonly string[] | undefined;
  signal?: AbortSignal | undefined;
  /** Layer records by diffID: a recorded layer is replayed instead of read; a layer read is recorded. */
  records?: LayerRecords | undefined;
}

/** Where layer records live, and the diffID of each layer passed (same order). */
export interface LayerRecords {
  cache: LayerIndexCache;
  diffIds: readonly Digest[];
}

/**
 * An image's merged filesystem as metadata, without unpacking it. Paths are absolute image paths; symlinks in
 * them are resolved inside the image (absolute targets from the image root, `..` stopping at the root), as they
 * would be for a process chrooted into it.
 */
export interface ImageFsIndex {
  /** lstat: parents resolved, the last component not followed. */
  get(path: string): ImageFsEntry | undefined;
  has(path: string): boolean;
  /**
   * The canonical absolute path `path` names. The last component need not exist (nor what follows a missing
   * component, taken literally). Undefined when a symlink loop (over 40 links) or a non-directory is in the way.
   */
  resolve(path: string, options: { followFinal: boolean }): string | undefined;
  /** The captured bytes of a `wantContent` file (symlinks followed), if it exists and was small enough. */
  content(path: string): Buffer | undefined;
  /** Sorted names in a directory (symlinks followed), or undefined when it is not a directory. */
  listDir(path: string): string[] | undefined;
  /** Every path and its entry, sorted, the root (`/`) first. */
  entries(): Array<[string, ImageFsEntry]>;
}

/**
 * Streams each layer once, in order, applying whiteouts and opaque directories exactly as
 * `extractImageToDirectory` does, and keeps only metadata (plus the bytes of the few files asked for). Blobs are
 * verified as they stream; a mismatch fails the whole call.
 */
export async function indexImageFilesystem(layers: readonly Descriptor[], reader: BlobReader, options: IndexImageOptions = {}): Promise<ImageFsIndex> {
  return extendImageFilesystem(new IndexTree(options.wantContent ?? []), layers, reader, options);
}

/**
 * The index of `base`'s layers plus `layers` on top, without reading `base`'s layers again: a build
 * indexes its base once, then each step's new layer. `base` is left as it was. The files captured are
 * those `base` was made to capture.
 */
export async function extendImageFilesystem(
  base: ImageFsIndex,
  layers: readonly Descriptor[],
  reader: BlobReader,
  options: Pick<IndexImageOptions, 'signal' | 'records'> = {},
): Promise<ImageFsIndex> {
  if (!(base instanceof IndexTree)) throw new StrataError('E_INTERNAL', 'extendImageFilesystem takes an index made by indexImageFilesystem');
  const tree = base.clone();
  for (const [i, descriptor] of layers.entries()) {
    if (options.signal?.aborted === true) throw new StrataError('E_ABORTED', 'indexing the image filesystem was aborted');
    const what = `layer ${descriptor.digest}`;
    const diffId = options.records?.diffIds[i];
    const cache = diffId === undefined ? undefined : options.records?.cache;
    if (cache !== undefined && diffId !== undefined && tree.replayable()) {
      const record = await cache.load(diffId);
      if (record !== undefined) {
        tree.replay(record, what);
        continue;
      }
    }
    const compression = layerCompression(descriptor.mediaType);
    if (compression === undefined) {
      throw new StrataError('E_LAYER_INVALID', `${what} has media type ${descriptor.mediaType}, which is not a layer strata can read`, {
        hint: 'strata reads tar, tar+gzip and tar+zstd layers',
      });
    }
    const stream = await reader.openBlob(descriptor, options.signal === undefined ? {} : { signal: options.signal });
    if (cache === undefined || diffId === undefined) {
      await tree.layer(readLayer(stream, { compression, what, signal: options.signal }), what);
      continue;
    }
    const record = emptyRecord();
    let read: Digest | undefined;
    await tree.layer(recordEntries(readLayer(stream, { compression, what, signal: options.signal, onDiffId: (d) => (read = d) }), record), what);
    if (read === diffId) await cache.save(diffId, record);
  }
  return tree;
}

const IMPLICIT_DIR: ImageFsEntry = { type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 };

function toAbs(rel: string): string {
  return `/${rel}`;
}

function toRel(path: string): string {
  return path.replace(/^\/+/, '');
}

class IndexTree implements ImageFsIndex {
  private readonly nodes = new Map<string, ImageFsEntry>([['', { ...IMPLICIT_DIR }]]);
  private readonly children = new Map<string, Set<string>>([['', new Set()]]);
  private readonly contents = new Map<string, Buffer>();
  private readonly wanted: Set<string>;
  private readonly wantedNames: Set<string>;
  private readonly writes = new LayerWrites();
  /**
   * Entry parent (as named in the layer) → its resolved directory, for this layer. Siblings share a parent, so
   * this saves most of the resolution work; removing anything or making a symlink empties it.
   */
  private readonly parents = new Map<string, string>();
  private what = 'layer';

  constructor(private readonly want: readonly string[]) {
    this.wanted = new Set(want.map((path) => toRel(posix.normalize(`/${path}`))));
    this.wantedNames = new Set([...this.wanted].map((rel) => posix.basename(rel)));
  }

  /** An independent copy to apply more layers to (entries are copied; captured bytes are never mutated). */
  clone(): IndexTree {
    const copy = new IndexTree(this.want);
    copy.nodes.clear();
    for (const [rel, entry] of this.nodes) copy.nodes.set(rel, { ...entry });
    copy.children.clear();
    for (const [rel, names] of this.children) copy.children.set(rel, new Set(names));
    for (const [rel, bytes] of this.contents) copy.contents.set(rel, bytes);
    return copy;
  }

  /** A record keeps only the bytes of RECORDED_CONTENT_NAMES: replaying one serves only an index that wants no others. */
  replayable(): boolean {
    return [...this.wantedNames].every((name) => RECORDED_CONTENT_NAMES.has(name));
  }

  async layer(entries: AsyncIterable<LayerReadEntry>, what: string): Promise<void> {
    this.what = what;
    this.writes.clear();
    this.parents.clear();
    for await (const entry of entries) {
      const bytes =
        entry.kind === 'entry' && entry.type === 'file' && entry.size <= MAX_CAPTURED_CONTENT && this.wantedNames.has(posix.basename(entry.path))
          ? await collect(entry.content)
          : undefined;
      this.apply(entry, bytes);
    }
  }

  /** Applies a recorded layer: the same as reading it, without a promise per entry. */
  replay(record: LayerRecord, what: string): void {
    this.what = what;
    this.writes.clear();
    this.parents.clear();
    for (const [index, recorded] of record.entries.entries()) this.apply(replayEntry(recorded), record.contents.get(index));
  }

  get(path: string): ImageFsEntry | undefined {
    const resolved = this.resolveRel(toRel(path), false);
    return resolved.ok && !resolved.missing ? this.nodes.get(resolved.path) : undefined;
  }

  has(path: string): boolean {
    return this.get(path) !== undefined;
  }

  resolve(path: string, options: { followFinal: boolean }): string | undefined {
    const resolved = this.resolveRel(toRel(path), options.followFinal);
    return resolved.ok ? toAbs(resolved.path) : undefined;
  }

  content(path: string): Buffer | undefined {
    const resolved = this.resolveRel(toRel(path), true);
    return resolved.ok && !resolved.missing ? this.contents.get(resolved.path) : undefined;
  }

  listDir(path: string): string[] | undefined {
    const resolved = this.resolveRel(toRel(path), true);
    if (!resolved.ok || resolved.missing) return undefined;
    const names = this.children.get(resolved.path);
    return names === undefined ? undefined : [...names].sort();
  }

  entries(): Array<[string, ImageFsEntry]> {
    const out: Array<[string, ImageFsEntry]> = [];
    for (const [rel, entry] of this.nodes) out.push([toAbs(rel), entry]);
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  private resolveRel(rel: string, followFinal: boolean): ResolveOutcome {
    return resolveSync(rel, { followFinal }, (at) => this.lookup(at));
  }

  private lookup(rel: string): PathLookup {
    const node = this.nodes.get(rel);
    if (node === undefined) return { kind: 'missing' };
    if (node.type === 'dir') return { kind: 'dir' };
    if (node.type === 'symlink') return { kind: 'symlink', target: node.linkTarget ?? '' };
    return { kind: 'other' };
  }

  /** `bytes`: the content of a file whose name is wanted, read by the caller. */
  private apply(entry: LayerReadEntry, bytes: Buffer | undefined): void {
    if (entry.kind === 'whiteout') {
      const name = whiteoutName(entry.target, entry.path, this.what);
      const parent = this.existingDir(posix.dirname(entry.target), entry.path);
      if (parent !== undefined) this.removeLower(joinRel(parent, name));
      return;
    }
    if (entry.kind === 'opaque') {
      const dir = this.existingDir(entry.dir, entry.path);
      if (dir === undefined) return;
      for (const name of [...(this.children.get(dir) ?? [])]) this.removeLower(joinRel(dir, name));
      return;
    }
    const rel = layerPathToRel(entry.path);
    const meta: ImageFsEntry = { type: 'dir', mode: entry.mode, uid: entry.uid, gid: entry.gid, size: 0, mtime: entry.mtime };
    if (rel === '') {
      if (entry.type !== 'dir') throw this.invalid(entry.path, `the root of the image must be a directory, not a ${entry.type}`);
      this.nodes.set('', meta);
      return;
    }
    const dir = posix.dirname(rel);
    let parent = this.parents.get(dir);
    if (parent === undefined) {
      parent = this.ensureParent(dir, entry.path);
      this.parents.set(dir, parent);
    }
    const target = joinRel(parent, posix.basename(rel));
    switch (entry.type) {
      case 'dir': {
        const existing = this.nodes.get(target);
        if (existing?.type !== 'dir') this.put(target, meta);
        else this.nodes.set(target, meta);
        break;
      }
      case 'file':
        this.put(target, { ...meta, type: 'file', size: entry.size });
        if (bytes !== undefined && this.wants(target)) this.contents.set(target, bytes);
        break;
      case 'symlink':
        this.parents.clear();
        this.put(target, { ...meta, type: 'symlink', linkTarget: entry.linkname ?? '' });
        break;
      case 'hardlink': {
        const linkname = entry.linkname ?? '';
        const source = this.resolveRel(layerPathToRel(linkname), false);
        if (!source.ok) throw this.unresolvable(entry.path, linkname, source.reason, source.at);
        const original = source.missing ? undefined : this.nodes.get(source.path);
        if (original === undefined) {
          throw this.invalid(
            entry.path,
            `is a hard link to ${JSON.stringify(linkname)}, which does not exist in the image`,
            'a hard link must point at a path written earlier in the same layer or below',
          );
        }
        if (original.type === 'dir') throw this.invalid(entry.path, `is a hard link to the directory ${JSON.stringify(linkname)}`);
        if (source.path === target) return;
        // Both names share one inode: the link has the original's metadata, not its own header's.
        this.put(target, { ...original, hardlinkOf: toAbs(source.path) });
        const bytes = this.contents.get(source.path);
        if (bytes !== undefined) this.contents.set(target, bytes);
        break;
      }
      case 'fifo':
      case 'char':
      case 'block':
        this.put(target, { ...meta, type: entry.type, devMajor: entry.devMajor, devMinor: entry.devMinor });
        break;
    }
    this.writes.add(target);
  }

  /** Wanted by path, or by name: a wanted path may reach this file through a symlink made in a later layer. */
  private wants(rel: string): boolean {
    return this.wanted.has(rel) || this.wantedNames.has(posix.basename(rel));
  }

  private put(rel: string, entry: ImageFsEntry): void {
    if (this.nodes.has(rel)) this.remove(rel);
    this.nodes.set(rel, entry);
    if (entry.type === 'dir') this.children.set(rel, new Set());
    const parent = parentOf(rel);
    this.children.get(parent)?.add(posix.basename(rel));
  }

  private remove(rel: string): void {
    this.parents.clear();
    const names = this.children.get(rel);
    if (names !== undefined) {
      for (const name of [...names]) this.remove(joinRel(rel, name));
      this.children.delete(rel);
    }
    this.nodes.delete(rel);
    this.contents.delete(rel);
    this.children.get(parentOf(rel))?.delete(posix.basename(rel));
  }

  private removeLower(rel: string): void {
    if (this.writes.has(rel)) return;
    const node = this.nodes.get(rel);
    if (node === undefined) return;
    if (!this.writes.hasBelow(rel) || node.type !== 'dir') {
      this.remove(rel);
      return;
    }
    for (const name of [...(this.children.get(rel) ?? [])]) this.removeLower(joinRel(rel, name));
  }

  private ensureParent(dir: string, entryPath: string): string {
    const resolved = this.resolveRel(layerPathToRel(dir), true);
    if (!resolved.ok) throw this.unresolvable(entryPath, dir, resolved.reason, resolved.at);
    if (resolved.missing) {
      let at = '';
      for (const part of resolved.path.split('/')) {
        at = joinRel(at, part);
        const node = this.nodes.get(at);
        if (node === undefined) this.put(at, { ...IMPLICIT_DIR });
        else if (node.type !== 'dir') throw this.unresolvable(entryPath, dir, 'notdir', at);
      }
    } else if (this.nodes.get(resolved.path)?.type !== 'dir') {
      throw this.unresolvable(entryPath, dir, 'notdir', resolved.path);
    }
    return resolved.path;
  }

  private existingDir(dir: string, entryPath: string): string | undefined {
    const resolved = this.resolveRel(layerPathToRel(dir), true);
    if (!resolved.ok) {
      if (resolved.reason === 'notdir') return undefined;
      throw this.unresolvable(entryPath, dir, resolved.reason, resolved.at);
    }
    if (resolved.missing || this.nodes.get(resolved.path)?.type !== 'dir') return undefined;
    return resolved.path;
  }

  private unresolvable(entryPath: string, path: string, reason: 'loop' | 'notdir', at: string): StrataError {
    if (reason === 'loop') {
      return new StrataError(
        'E_LAYER_UNSAFE',
        `${this.what}: entry ${JSON.stringify(entryPath)} goes through ${JSON.stringify(path)}, whose symlinks loop at ${toAbs(at)}`,
        {
          hint: 'the layer could write outside the directory it is unpacked into; it was refused',
        },
      );
    }
    return this.invalid(entryPath, `goes through ${JSON.stringify(toAbs(at))}, which is not a directory`);
  }

  private invalid(entryPath: string, why: string, hint = 'the layer is malformed; rebuild it'): StrataError {
    return new StrataError('E_LAYER_INVALID', `${this.what}: entry ${JSON.stringify(entryPath)} ${why}`, { hint });
  }
}

function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash === -1 ? '' : rel.slice(0, slash);
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}
