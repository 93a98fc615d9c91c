import { digestOf, type Digest } from '../digest/index.js';
import type { LayerEntry, WriteLayerOptions } from './types.js';

/**
 * What decides a written layer's bytes, as one digest: the entries (paths, metadata, the files or data
 * their content comes from) and the options that shape the tar and its compression. Two writes with the
 * same key give the same blob, so the second need not happen. Files are named by path, not content: the
 * key holds only while those files stay as they are, as within one build, which reads its context once.
 */
export function layerContentKey(entries: readonly LayerEntry[], options: WriteLayerOptions): Digest {
  const shape = [
    options.compression ?? 'gzip',
    options.gzipLevel ?? null,
    options.zstdLevel ?? null,
    options.mediaTypeFamily ?? 'oci',
    options.ownership ?? 'root',
    options.uid ?? null,
    options.gid ?? null,
    options.sourceDateEpoch ?? null,
    options.normalizeMtime ?? false,
  ];
  const rows = entries.map((e) => [
    e.path,
    e.type,
    e.mode,
    e.size,
    e.mtime,
    e.uid,
    e.gid,
    e.linkTarget ?? null,
    e.source ?? null,
    e.data === undefined ? null : digestOf(e.data),
    e.devMajor ?? null,
    e.devMinor ?? null,
  ]);
  return digestOf(JSON.stringify(['strata-layer-content/1', shape, rows]));
}
