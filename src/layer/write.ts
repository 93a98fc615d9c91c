import { once } from 'node:events';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { fsPath } from '../fsname/index.js';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack, type Pack } from 'tar-stream';
import { Hasher, digestOf, type Digest } from '../digest/index.js';
import { StrataError, errnoCode, isStrataError } from '../errors/index.js';
import { layerMediaType, type LayerCompression } from '../oci/index.js';
import type { BlobIngester } from '../store/index.js';
import { ParallelGzip } from './gzip.js';
import { sortLayerEntries } from './order.js';
import { contentOf, entryView, teeChunks } from './tap.js';
import { safeEntryPath } from './safe-path.js';
import { rawPaxHeaders, toTarHeader } from './tar-header.js';
import type { LayerEntry, LayerResult, WriteLayerOptions } from './types.js';
import { ZSTD_DEFAULT_LEVEL, createZstdCompress } from './zstd.js';

const CHUNK = 1024 * 1024;
/** A source swapped for a symlink after it was listed must not lead the read out of its tree. */
const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

/**
 * Writes entries as one reproducible tar layer into the store. Entries are sorted (see compareLayerPaths) and
 * checked first; the tar bytes then flow once through the diffID hash, gzip and the store's ingester, which
 * hashes and counts the compressed bytes. File contents are read one file at a time, so memory stays flat.
 * Any failure (an unreadable or changed file, a full disk, an abort) rejects, and the ingester then keeps
 * nothing of the half-written blob.
 */
export async function writeLayer(entries: readonly LayerEntry[], options: WriteLayerOptions, store: BlobIngester): Promise<LayerResult> {
  const sorted = sortLayerEntries(entries);
  checkEntries(sorted);
  const compression = options.compression ?? 'gzip';
  checkZstdFamily(compression, options.mediaTypeFamily);
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(options.signal?.reason);
  if (options.signal?.aborted === true) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const packer = pack();
  const diff = new Hasher('sha256');
  async function* tarBytes(): AsyncGenerator<Buffer> {
    for await (const chunk of packer) {
      const bytes = chunk as Buffer;
      diff.update(bytes);
      yield bytes;
    }
  }

  let compressed: Readable | AsyncIterable<Buffer>;
  let piping: Promise<void> = Promise.resolve();
  if (compression === 'gzip') {
    const gz = new ParallelGzip(options.gzipLevel);
    piping = pipeline(tarBytes(), gz);
    compressed = gz;
  } else if (compression === 'zstd') {
    const zst = createZstdCompress(options.zstdLevel ?? ZSTD_DEFAULT_LEVEL);
    piping = pipeline(tarBytes(), zst);
    compressed = zst;
  } else {
    compressed = tarBytes();
  }

  const producing = produce(packer, sorted, options, controller.signal).catch((error: unknown) => {
    packer.destroy(asError(error));
    throw error;
  });
  const ingesting = store.ingestBlob(compressed, { signal: controller.signal }).catch((error: unknown) => {
    controller.abort(error);
    packer.destroy(asError(error));
    throw error;
  });
  const [produced, ingested, piped] = await Promise.allSettled([producing, ingesting, piping]);
  options.signal?.removeEventListener('abort', onAbort);

  // A store that failed (ENOSPC, EIO) aborted the producer, whose abort is only the echo of it.
  if (ingested.status === 'rejected' && options.signal?.aborted !== true && controller.signal.reason === ingested.reason)
    throw layerError(ingested.reason, options.signal);
  // Otherwise the producer's error says what went wrong (which file); the others are its echo down the pipeline.
  if (produced.status === 'rejected') throw layerError(produced.reason, options.signal);
  if (ingested.status === 'rejected') throw layerError(ingested.reason, options.signal);
  if (piped.status === 'rejected') throw layerError(piped.reason, options.signal);
  const blob = ingested.value;
  return {
    descriptor: { mediaType: layerMediaType(compression, options.mediaTypeFamily ?? 'oci'), digest: blob.digest, size: blob.size },
    diffId: diff.digest(),
    uncompressedSize: diff.size,
  };
}

/**
 * Docker's manifest format has no zstd layer type. BuildKit forces OCI media types for zstd; strata refuses
 * here and lets the caller choose (a build switches to OCI, append asks for --format oci).
 */
export function checkZstdFamily(compression: LayerCompression, family: 'oci' | 'docker' | undefined): void {
  if (compression !== 'zstd' || family !== 'docker') return;
  throw new StrataError('E_USAGE', 'zstd layers need OCI media types, and this image uses the Docker format', {
    hint: 'use --format oci (Docker manifests have no zstd layer type), or --compression gzip',
  });
}

function checkEntries(sorted: readonly LayerEntry[]): void {
  const seen = new Map<string, LayerEntry>();
  for (const entry of sorted) {
    let normalized: string;
    try {
      normalized = safeEntryPath(entry.path, 'layer');
    } catch (cause) {
      throw new StrataError('E_LAYER_INVALID', `layer entry ${JSON.stringify(entry.path)} is not a relative path inside the layer`, { cause });
    }
    if (normalized !== entry.path || normalized === '.') {
      throw new StrataError('E_LAYER_INVALID', `layer entry ${JSON.stringify(entry.path)} is not normalized (expected ${JSON.stringify(normalized)})`);
    }
    if (entry.type === 'hardlink') {
      const target = entry.linkTarget === undefined ? undefined : seen.get(entry.linkTarget);
      if (target === undefined || target.type === 'dir' || target.type === 'hardlink') {
        throw new StrataError(
          'E_LAYER_INVALID',
          `hard link ${entry.path} points at ${String(entry.linkTarget)}, which is not an earlier file of the same layer`,
          {
            hint: 'a hard link target must come before the link in the same layer',
          },
        );
      }
    }
    if (entry.type === 'file' && entry.source === undefined && (entry.data?.byteLength ?? 0) !== entry.size) {
      throw new StrataError('E_LAYER_INVALID', `layer entry ${entry.path} says ${entry.size} bytes but has ${entry.data?.byteLength ?? 0}`);
    }
    seen.set(entry.path, entry);
  }
}

/**
 * Small files are read with plain blocking calls: from the page cache that costs a quarter of the
 * CPU of promise-based open/stat/read/close, and the main thread is what a layer of many small files
 * waits on (compression runs on the thread pool meanwhile). Large files stream in chunks.
 */
async function produce(packer: Pack, sorted: readonly LayerEntry[], options: WriteLayerOptions, signal: AbortSignal): Promise<void> {
  for (const entry of sorted) {
    signal.throwIfAborted();
    let header = toTarHeader(entry, options);
    const take = options.tap?.entry(entryView(entry, header));
    const raw = rawPaxHeaders(header);
    if (raw !== undefined) {
      // Between entries (each is awaited to its end), so the block lands right before its entry.
      packer.push(raw.bytes);
      header = raw.entry;
    }
    if (entry.type === 'file' && entry.source !== undefined && entry.size <= CHUNK) {
      const body = readSmallFile(entry, entry.source);
      options.fileDigests?.set(entry.source, digestOf(body));
      if (take !== undefined) await take(contentOf(body));
      await new Promise<void>((resolve, reject) => packer.entry(header, body, (error) => (error ? reject(error) : resolve())));
    } else if (entry.type === 'file' && entry.source !== undefined) {
      await addFile(packer, header, entry, entry.source, { signal, digests: options.fileDigests, take });
    } else {
      const body = entry.type === 'file' && entry.data !== undefined ? Buffer.from(entry.data) : undefined;
      if (take !== undefined) await take(contentOf(body));
      await new Promise<void>((resolve, reject) => {
        const done = (error?: Error | null): void => (error ? reject(error) : resolve());
        if (body === undefined) packer.entry(header, done).end(undefined);
        else packer.entry(header, body, done);
      });
    }
  }
  packer.finalize();
}

/** A whole small file, checked against what the listing said it was. */
function readSmallFile(entry: LayerEntry, source: string): Buffer {
  let fd: number;
  try {
    fd = openSync(fsPath(source), NO_FOLLOW);
  } catch (cause) {
    throw fileError(source, cause);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== entry.size) throw changed(source, entry.size, st.size);
    const body = Buffer.allocUnsafe(entry.size);
    for (let position = 0; position < entry.size; ) {
      const bytesRead = readSync(fd, body, position, entry.size - position, position);
      if (bytesRead === 0) throw changed(source, entry.size, position);
      position += bytesRead;
    }
    return body;
  } catch (cause) {
    throw isStrataError(cause) ? cause : fileError(source, cause);
  } finally {
    closeSync(fd);
  }
}

async function addFile(
  packer: Pack,
  header: ReturnType<typeof toTarHeader>,
  entry: LayerEntry,
  source: string,
  how: { signal: AbortSignal; digests: Map<string, Digest> | undefined; take: ((content: AsyncIterable<Buffer>) => Promise<void>) | undefined },
): Promise<void> {
  let finished: (error?: Error | null) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    finished = (error) => (error ? reject(error) : resolve());
  });
  done.catch(() => undefined);
  const sink = packer.entry(header, finished);
  // A failed read destroys the packer, and with it this entry's sink, which then emits 'error': the
  // failure reaches `finished` (and the caller) already, and an 'error' event no one listens to crashes.
  sink.on('error', () => undefined);
  const hasher = how.digests === undefined ? undefined : new Hasher('sha256');
  const write = async (chunk: Buffer): Promise<void> => {
    hasher?.update(chunk);
    if (!sink.write(chunk)) await once(sink, 'drain', { signal: how.signal });
  };
  const chunks = listedFileChunks(entry, source, CHUNK);
  if (how.take === undefined) for await (const chunk of chunks) await write(chunk);
  else await teeChunks(chunks, write, how.take);
  sink.end(undefined);
  await done;
  if (hasher !== undefined) how.digests?.set(source, hasher.digest());
}

/**
 * The bytes of a file as it was listed, in chunks of at most `chunk` bytes: a file that is no longer
 * a regular file of the listed size, or that shrinks while it is read, fails with E_IO naming it.
 */
async function* listedFileChunks(entry: LayerEntry, source: string, chunk: number): AsyncGenerator<Buffer> {
  let handle: FileHandle;
  try {
    handle = await open(fsPath(source), NO_FOLLOW);
  } catch (cause) {
    throw fileError(source, cause);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size !== entry.size) throw changed(source, entry.size, st.size);
    for (let position = 0; position < entry.size; ) {
      const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(chunk, entry.size - position)));
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, 0, buffer.length, position));
      } catch (cause) {
        throw fileError(source, cause);
      }
      if (bytesRead === 0) throw changed(source, entry.size, position);
      position += bytesRead;
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function fileError(path: string, cause: unknown): StrataError {
  const code = errnoCode(cause);
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? 'permission denied'
      : code === 'ENOENT'
        ? 'it disappeared while the layer was written'
        : cause instanceof Error
          ? cause.message
          : String(cause);
  return new StrataError('E_IO', `cannot read ${path} into the layer: ${why}`, {
    cause,
    hint: 'make the file readable and keep the tree unchanged while the layer is written',
  });
}

function changed(path: string, expected: number, actual: number): StrataError {
  return new StrataError('E_IO', `${path} changed while the layer was written (${expected} bytes when listed, ${actual} now)`, {
    hint: 'keep the source tree unchanged while strata writes the layer',
  });
}

function layerError(error: unknown, signal: AbortSignal | undefined): StrataError {
  if (isStrataError(error)) return error;
  if (signal?.aborted === true) return new StrataError('E_ABORTED', 'writing the layer was aborted', { cause: error });
  return new StrataError('E_IO', `cannot write the layer: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
