import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack, type Header } from 'tar-stream';
import { StrataError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import { rawPaxHeaders, type LayerReadFile, type PackHeader } from '../layer/index.js';
import type { BlobReader } from '../store/index.js';
import { MergedTree, openLayerEntries, type TreeNode } from './tree.js';

export interface FlattenOptions {
  signal?: AbortSignal | undefined;
  /** False leaves `out` open at the end (standard output). */
  endOutput?: boolean | undefined;
}

export interface FlattenStats {
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
  /** Hard links whose target a later layer replaced or deleted: not written (their bytes are gone by then). */
  droppedLinks: string[];
}

const TAR_TYPES: Record<TreeNode['type'], Header['type']> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  fifo: 'fifo',
  char: 'character-device',
  block: 'block-device',
};

/**
 * Writes an image's flattened root filesystem as one tar stream: whiteouts and opaque directories applied,
 * every path once, as the last layer to write it left it. Two passes over the layers, never unpacking to
 * disk: the first learns which entry of which layer survives for each path (metadata only), the second
 * streams those entries' bytes through, in layer order, so a hard link still follows its target.
 */
export async function flattenImage(layers: readonly Descriptor[], reader: BlobReader, out: Writable, options: FlattenOptions = {}): Promise<FlattenStats> {
  const tree = await MergedTree.read(layers, reader, { signal: options.signal });
  const stats: FlattenStats = { entries: 0, bytes: 0, droppedLinks: [] };
  const packer = pack();
  const writing = pipeline(packer, out, { end: options.endOutput !== false });
  writing.catch(() => undefined);
  try {
    for (const [index, descriptor] of layers.entries()) {
      let ordinal = 0;
      for await (const entry of openLayerEntries(descriptor, reader, options.signal)) {
        const at = ordinal++;
        if (entry.kind !== 'entry') continue;
        const node = tree.get(entry.path);
        if (node === undefined || node.layer !== index || node.ordinal !== at) continue;
        if (entry.type === 'hardlink') {
          // The target must be written already: the surviving entry of the same layer, earlier on.
          const target = tree.get(entry.linkname ?? '');
          if (target === undefined || target.layer !== index || target.ordinal >= at || target.type !== 'file') {
            stats.droppedLinks.push(`/${entry.path}`);
            continue;
          }
        }
        await writeEntry(packer, entry, node, stats);
      }
    }
    packer.finalize();
    await writing;
  } catch (error) {
    packer.destroy(error instanceof Error ? error : new Error(String(error)));
    await writing.catch(() => undefined);
    throw error;
  }
  return stats;
}

async function writeEntry(packer: ReturnType<typeof pack>, entry: LayerReadFile, node: TreeNode, stats: FlattenStats): Promise<void> {
  let header: PackHeader = {
    name: entry.path === '.' ? './' : entry.path,
    type: TAR_TYPES[node.type],
    mode: node.mode,
    uid: node.uid,
    gid: node.gid,
    mtime: new Date(node.mtime * 1000),
    uname: '',
    gname: '',
    size: 0,
    linkname: node.type === 'symlink' || node.type === 'hardlink' ? (node.linkname ?? '') : '',
    devmajor: node.type === 'char' || node.type === 'block' ? node.devMajor : 0,
    devminor: node.type === 'char' || node.type === 'block' ? node.devMinor : 0,
  };
  stats.entries++;
  // A name that is not UTF-8 goes out as its bytes, in PAX records, as the layer writer writes it.
  const raw = rawPaxHeaders(header);
  if (raw !== undefined) {
    packer.push(raw.bytes);
    header = raw.entry;
  }
  if (node.type !== 'file') {
    await new Promise<void>((resolve, reject) => packer.entry(header, (error) => (error ? reject(error) : resolve())));
    return;
  }
  const sink = packer.entry({ ...header, size: entry.size });
  let written = 0;
  await pipeline(
    entry.content,
    async function* count(chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        written += chunk.byteLength;
        yield chunk;
      }
    },
    sink,
  );
  if (written !== entry.size) throw new StrataError('E_LAYER_INVALID', `/${entry.path}: the layer holds ${written} bytes, its header says ${entry.size}`);
  stats.bytes += written;
}
