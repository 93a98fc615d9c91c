import type { Digest } from '../digest/index.js';
import type { Descriptor, LayerCompression } from '../oci/index.js';

/** The kinds of tar entry strata writes and reads; `hardlink` points at an earlier path of the same layer. */
export type LayerEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo' | 'char' | 'block';

/**
 * One path of a layer, as plain data. `path` is relative to the layer root, `/`-separated, with no leading `./`
 * or `/` and no trailing `/`. Content comes from `source` (a file on disk, streamed when the layer is written) or
 * from `data` (small generated content); neither means an empty file.
 */
export interface LayerEntry {
  path: string;
  type: LayerEntryType;
  /** Permission bits including setuid, setgid and sticky (masked to 0o7777). */
  mode: number;
  /** Bytes of content for files; 0 for everything else. */
  size: number;
  /** Seconds since the epoch (whole seconds: tar has no finer resolution without PAX). */
  mtime: number;
  uid: number;
  gid: number;
  /** Symlink target (as stored on disk) or, for a hardlink, the layer path of the entry it links to. */
  linkTarget?: string | undefined;
  /** Absolute path of the file whose bytes become this entry's content. */
  source?: string | undefined;
  data?: Uint8Array | undefined;
  devMajor?: number | undefined;
  devMinor?: number | undefined;
}

export interface MtimeOptions {
  /** SOURCE_DATE_EPOCH in seconds: every mtime later than it is clamped down to it. */
  sourceDateEpoch?: number | undefined;
  /** Without sourceDateEpoch, set every mtime to 0 (the epoch). */
  normalizeMtime?: boolean | undefined;
}

/** Layer compressions strata can write. zstd runs the `zstd` program (see zstd.ts) and needs OCI media types. */

export interface WriteLayerOptions extends MtimeOptions {
  compression?: LayerCompression | undefined;
  mediaTypeFamily?: 'oci' | 'docker' | undefined;
  /** `root` (default) writes uid/gid 0; `keep` writes the ids in the entries. Explicit uid/gid win over both. */
  ownership?: 'root' | 'keep' | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  /** zlib level 0-9 for every member; without it, zlib's default (6) with barely compressible members stored. */
  gzipLevel?: number | undefined;
  /** zstd level 1-19 (default 3) when `compression` is zstd. */
  zstdLevel?: number | undefined;
  /**
   * When given, the sha256 of each file read from a source path is recorded here under that path, so a
   * caller that also needs the files' digests (a cache key) gets them from the one read.
   */
  fileDigests?: Map<string, Digest> | undefined;
  /** Sees each entry, and the content it asks for, as the layer is written (see LayerTap). */
  tap?: LayerTap | undefined;
  signal?: AbortSignal | undefined;
}

export interface LayerResult {
  /** The blob as stored: its media type, and the digest and size of the (compressed) bytes. */
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar: the layer's identity in the image config's rootfs.diff_ids. */
  diffId: Digest;
  uncompressedSize: number;
}

export interface ImportTarLayerOptions {
  compression?: LayerCompression | undefined;
  mediaTypeFamily?: 'oci' | 'docker' | undefined;
  gzipLevel?: number | undefined;
  zstdLevel?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** A layer entry's header as read: cleaned path and the tar header fields, without content. */
export interface LayerEntryHeader {
  /** Normalized: relative, no `./` prefix, no trailing `/`; `.` for the root directory itself. */
  path: string;
  type: LayerEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink target as stored, or the (normalized) layer path a hardlink points at. */
  linkname?: string | undefined;
  devMajor: number;
  devMinor: number;
}

interface LayerReadHeader extends LayerEntryHeader {
  /**
   * The entry's bytes (empty unless a file). Read it, or don't: whatever is left unread is skipped when the next
   * entry is requested, so abandoning it midway is safe. It cannot be read after that.
   */
  content: AsyncIterable<Buffer>;
}

/** An ordinary entry. */
export interface LayerReadFile extends LayerReadHeader {
  kind: 'entry';
}

/** `.wh.NAME`: NAME (in `target`) is deleted from the layers below. */
export interface LayerReadWhiteout extends LayerReadHeader {
  kind: 'whiteout';
  target: string;
}

/** `.wh..wh..opq`: the directory `dir` hides everything below it from lower layers. */
export interface LayerReadOpaque extends LayerReadHeader {
  kind: 'opaque';
  dir: string;
}

export type LayerReadEntry = LayerReadFile | LayerReadWhiteout | LayerReadOpaque;

/** A read entry without its content: what a LayerTap is shown of each entry. */
export type LayerEntryView = Omit<LayerReadFile, 'content'> | Omit<LayerReadWhiteout, 'content'> | Omit<LayerReadOpaque, 'content'>;

/**
 * Watches a layer being written, entry by entry in layer order, seeing each as readLayer would read it
 * back from the finished blob (path, header fields, whiteouts). To read an entry's content it returns a
 * function taking it: the writer feeds it the bytes it writes, as it writes them, and waits for it to
 * finish before the next entry. The function may stop reading early; the writer then writes the rest.
 */
export interface LayerTap {
  entry(entry: LayerEntryView): ((content: AsyncIterable<Buffer>) => Promise<void>) | undefined;
}
