import { createHash } from 'node:crypto';
import { StrataError } from '../errors/index.js';
import { layerCompression, type Descriptor } from '../oci/index.js';
import { readLayer, type LayerEntryHeader, type LayerReadEntry } from '../layer/index.js';
import type { BlobReader } from '../store/index.js';

/** One path of an image's merged filesystem, as the last layer to write it left it. */
export interface TreeNode extends Omit<LayerEntryHeader, 'path'> {
  /** sha256 of a file's bytes (hard links: their target's), when content was hashed. */
  digest?: string | undefined;
  /** The layer (0-based) that wrote it, and the entry's position in that layer. */
  layer: number;
  ordinal: number;
}

export interface ReadTreeOptions {
  /** Hash every file's bytes (diff); off for flattening, which reads them again anyway. */
  hashContent?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Called with each layer's index before it is read. */
  onLayer?: ((index: number, descriptor: Descriptor) => void) | undefined;
}

/**
 * An image's merged root filesystem as metadata, built by streaming each layer once in order and applying
 * whiteouts and opaque directories as overlayfs would. Only metadata (and digests) is kept: a layer's bytes
 * pass through once and are dropped. Paths are the layers' normalized relative paths; the root is `.`.
 */
export class MergedTree {
  readonly nodes = new Map<string, TreeNode>();
  private readonly children = new Map<string, Set<string>>();

  static async read(layers: readonly Descriptor[], reader: BlobReader, options: ReadTreeOptions = {}): Promise<MergedTree> {
    const tree = new MergedTree();
    for (const [index, descriptor] of layers.entries()) {
      options.onLayer?.(index, descriptor);
      await tree.applyLayer(index, openLayerEntries(descriptor, reader, options.signal), options.hashContent === true);
    }
    return tree;
  }

  async applyLayer(layer: number, entries: AsyncIterable<LayerReadEntry>, hashContent: boolean): Promise<void> {
    let ordinal = 0;
    for await (const entry of entries) {
      const at = ordinal++;
      if (entry.kind === 'whiteout') {
        this.removeBelow(entry.target, layer);
        continue;
      }
      if (entry.kind === 'opaque') {
        for (const name of [...(this.children.get(entry.dir) ?? [])]) this.removeBelow(join(entry.dir, name), layer);
        continue;
      }
      const node: TreeNode = {
        type: entry.type,
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        size: entry.type === 'file' ? entry.size : 0,
        mtime: entry.mtime,
        devMajor: entry.devMajor,
        devMinor: entry.devMinor,
        layer,
        ordinal: at,
      };
      if (entry.type === 'symlink' || entry.type === 'hardlink') node.linkname = entry.linkname ?? '';
      if (entry.type === 'file' && hashContent) node.digest = await sha256Of(entry.content);
      if (entry.type === 'hardlink') {
        const target = this.nodes.get(entry.linkname ?? '');
        node.digest = target?.digest;
        node.size = target?.size ?? 0;
      }
      this.put(entry.path, node);
    }
  }

  get(path: string): TreeNode | undefined {
    return this.nodes.get(path);
  }

  /** Every path, sorted (so two trees can be walked side by side). */
  paths(): string[] {
    return [...this.nodes.keys()].sort();
  }

  private put(path: string, node: TreeNode): void {
    const existing = this.nodes.get(path);
    // A directory written again keeps its contents (the layer changed its metadata); anything else replaces.
    if (existing !== undefined && !(existing.type === 'dir' && node.type === 'dir')) this.remove(path);
    this.nodes.set(path, node);
    if (path === '.') return;
    const parent = parentOf(path);
    let names = this.children.get(parent);
    if (names === undefined) this.children.set(parent, (names = new Set()));
    names.add(baseOf(path));
  }

  /** A whiteout removes what lower layers wrote; what this layer wrote (before the marker) stays. */
  private removeBelow(path: string, layer: number): void {
    const node = this.nodes.get(path);
    if (node !== undefined && node.layer >= layer) {
      for (const name of [...(this.children.get(path) ?? [])]) this.removeBelow(join(path, name), layer);
      return;
    }
    this.remove(path);
  }

  private remove(path: string): void {
    for (const name of [...(this.children.get(path) ?? [])]) this.remove(join(path, name));
    this.children.delete(path);
    this.nodes.delete(path);
    this.children.get(parentOf(path))?.delete(baseOf(path));
  }
}

/** Streams a layer blob's entries (verified by the reader as they flow). */
export async function* openLayerEntries(descriptor: Descriptor, reader: BlobReader, signal?: AbortSignal): AsyncGenerator<LayerReadEntry> {
  const compression = layerCompression(descriptor.mediaType);
  const what = `layer ${descriptor.digest}`;
  if (compression === undefined) {
    throw new StrataError('E_LAYER_INVALID', `${what} has media type ${descriptor.mediaType}, which is not a layer strata can read`, {
      hint: 'strata reads tar, tar+gzip and tar+zstd layers',
    });
  }
  const stream = await reader.openBlob(descriptor, signal === undefined ? {} : { signal });
  yield* readLayer(stream, { compression, what, signal });
}

async function sha256Of(chunks: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of chunks) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

function join(dir: string, name: string): string {
  return dir === '.' ? name : `${dir}/${name}`;
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '.' : path.slice(0, slash);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
