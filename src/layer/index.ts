export type {
  LayerEntry,
  LayerEntryType,
  LayerResult,
  WriteLayerOptions,
  ImportTarLayerOptions,
  MtimeOptions,
  LayerEntryHeader,
  LayerReadEntry,
  LayerReadFile,
  LayerReadWhiteout,
  LayerReadOpaque,
  LayerEntryView,
  LayerTap,
} from './types.js';
export { walkLayerTree, type WalkLayerTreeOptions } from './walk.js';
export { writeLayer } from './write.js';
export { rawPaxHeaders, type PackHeader } from './tar-header.js';
export { layerContentKey } from './content-key.js';
export { importTarLayer } from './import.js';
export { readLayer, type ReadLayerOptions } from './read.js';
export { cleanEntryPath, safeEntryPath } from './safe-path.js';
export { clampMtime } from './mtime.js';
export { compareLayerPaths, sortLayerEntries } from './order.js';
export { classifyWhiteout, OPAQUE_WHITEOUT, WHITEOUT_PREFIX, type WhiteoutKind } from './whiteout.js';
export { isGzipMagic } from './gzip.js';
export { extractImageToDirectory, type ExtractImageOptions, type ExtractStats } from './rootfs.js';
export {
  indexImageFilesystem,
  extendImageFilesystem,
  MAX_CAPTURED_CONTENT,
  type ImageFsIndex,
  type ImageFsEntry,
  type ImageFsEntryType,
  type IndexImageOptions,
  type LayerRecords,
} from './fs-index.js';
export { LayerIndexStore, layerIndexDir, type LayerIndexCache } from './layer-index-store.js';
export type { LayerRecord, RecordedEntry } from './layer-record.js';
export { UnpackedStore, copyUnpacked, unpackedDir, unpackedKey, type UnpackedTree } from './unpacked-store.js';
export { OVERLAY_OPTIONS, OVERLAY_SOURCE, mountOverlay, unmountOverlay, type OverlayMount } from './overlay-mount.js';
export { captureOverlayChanges, isOverlayWhiteout, lowerLookup, overlayLayerOf, type OverlayCaptureOptions, type OverlayLayer } from './overlay-changes.js';
export {
  MAX_SYMLINKS,
  resolveSync as resolveInRootSync,
  resolveAsync as resolveInRootAsync,
  type PathLookup as RootPathLookup,
  type ResolveOutcome as RootResolveOutcome,
  type ResolveOptions as RootResolveOptions,
} from './secure-join.js';
export { snapshotRootfs, type RootfsSnapshot, type SnapshotEntry, type SnapshotOptions } from './snapshot.js';
export { captureChanges, RUN_EXCLUDES, type CaptureOptions } from './changes.js';
export { decompressFileWith } from './decompress-program.js';
export { isTarHeader, sniffArchive, sniffFile, type ArchiveKind } from './archive-kind.js';
