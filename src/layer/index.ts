export type {
  LayerEntry,
  LayerEntryType,
  LayerResult,
  LayerWriteCompression,
  WriteLayerOptions,
  ImportTarLayerOptions,
  MtimeOptions,
  LayerReadEntry,
  LayerReadFile,
  LayerReadWhiteout,
  LayerReadOpaque,
} from './types.js';
export { walkLayerTree, type WalkLayerTreeOptions } from './walk.js';
export { writeLayer } from './write.js';
export { importTarLayer } from './import.js';
export { readLayer, type ReadLayerOptions } from './read.js';
export { safeEntryPath } from './safe-path.js';
export { clampMtime } from './mtime.js';
export { compareLayerPaths, sortLayerEntries } from './order.js';
export { classifyWhiteout, OPAQUE_WHITEOUT, WHITEOUT_PREFIX, type WhiteoutKind } from './whiteout.js';
export { isGzipMagic } from './gzip.js';
export { extractImageToDirectory, type ExtractOptions, type ExtractStats } from './rootfs.js';
export {
  indexImageFilesystem,
  MAX_CAPTURED_CONTENT,
  type ImageFsIndex,
  type IndexEntry,
  type IndexEntryType,
  type IndexImageOptions,
} from './fs-index.js';
export { MAX_SYMLINKS, resolveSync, resolveAsync, type PathLookup, type ResolveOutcome, type ResolveOptions } from './secure-join.js';
