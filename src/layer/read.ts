import { createHash, type Hash } from 'node:crypto';
import type { Duplex, Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import type { Extract, Header } from 'tar-stream';
import type { Digest } from '../digest/index.js';
import { StrataError, isStrataError } from '../errors/index.js';
import type { LayerCompression } from '../oci/index.js';
import { quotedName } from '../fsname/index.js';
import { cleanEntryPath } from './safe-path.js';
import { tarExtract, tarName } from './tar-extract.js';
import type { LayerEntryType, LayerReadEntry } from './types.js';
import { classifyWhiteout } from './whiteout.js';
import { createZstdDecompress } from './zstd.js';

export interface ReadLayerOptions {
  compression: LayerCompression;
  /** Names the layer in errors: a file path or a digest. */
  what?: string | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Hash the uncompressed bytes and call this with their digest once the whole layer was read: what the image
   * config's diffID must be. Anything kept by diffID (a layer record) is kept only when they match.
   */
  onDiffId?: ((diffId: Digest) => void) | undefined;
}

const TYPES: Partial<Record<Header['type'], LayerEntryType>> = {
  file: 'file',
  'contiguous-file': 'file',
  link: 'hardlink',
  symlink: 'symlink',
  directory: 'dir',
  'character-device': 'char',
  'block-device': 'block',
  fifo: 'fifo',
};

/**
 * Streams the entries of a layer blob. Paths are cleaned as containerd cleans them (a leading `/` or `./` is
 * dropped, the root is `.`) and refused (E_LAYER_UNSAFE) when they still escape with `..`; hard link targets
 * likewise. Whiteouts and opaque markers come out as their own kinds.
 * Only one entry's content is live at a time: asking for the next entry skips what is left of the current one.
 * Malformed input (bad gzip or zstd, bad tar, truncation) fails with E_LAYER_INVALID.
 */
export async function* readLayer(stream: Readable, options: ReadLayerOptions): AsyncGenerator<LayerReadEntry> {
  const what = options.what ?? 'layer';
  const tar = tarExtract();
  const onAbort = (): void => {
    tar.destroy(new StrataError('E_ABORTED', `reading ${what} was aborted`));
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();
  const fed: FedBytes = { total: 0, trailingZeros: 0 };
  const feeding = feed(stream, options.compression, tar, what, fed, options.onDiffId === undefined ? undefined : createHash('sha256'));
  let current: { drain: () => Promise<void> } | undefined;
  let last: { start: number; size: number } | undefined;
  let completed = false;
  const entries = tar[Symbol.asyncIterator]();
  try {
    for (;;) {
      // The previous entry's bytes must be gone before asking for the next header, or the parser stalls.
      if (current !== undefined) await current.drain();
      let next: Awaited<ReturnType<typeof entries.next>>;
      try {
        next = await entries.next();
      } catch (error) {
        if (!endsAfterLastEntry(error, fed, last)) throw error;
        break;
      }
      if (next.done === true) break;
      const header: Header & { byteOffset?: number } = next.value.header;
      last = { start: header.byteOffset ?? -1, size: header.size ?? 0 };
      const entry = toReadEntry(next.value.header, next.value, what);
      current = entry.content;
      yield entry.value;
    }
    const hash = await feeding;
    if (hash !== undefined) options.onDiffId?.(`sha256:${hash.digest('hex')}`);
    completed = true;
  } catch (error) {
    throw invalid(error, what);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    if (!completed) {
      tar.destroy();
      stream.destroy();
      await feeding.catch(() => undefined);
    }
  }
}

interface FedBytes {
  /** Uncompressed bytes given to the tar parser. */
  total: number;
  /** How many of the last of them are zero. */
  trailingZeros: number;
}

/**
 * Go's archive/tar (so containerd, docker, buildah, umoci) takes an archive that stops right after the last
 * entry's content, without its padding or the two zero blocks that end a tar; umoci 0.4 `insert` writes such
 * layers. tar-stream calls that an unexpected end. It is one only when the data stops inside the last entry's
 * content, or after its padding with anything but zeros (a partial header).
 */
function endsAfterLastEntry(error: unknown, fed: FedBytes, last: { start: number; size: number } | undefined): boolean {
  if (!(error instanceof Error) || error.message !== 'Unexpected end of data' || last === undefined || last.start < 0) return false;
  const contentEnd = last.start + last.size;
  const paddedEnd = contentEnd + ((512 - (last.size % 512)) % 512);
  if (fed.total < contentEnd) return false;
  if (fed.total <= paddedEnd) return true;
  return fed.total - paddedEnd <= fed.trailingZeros;
}

async function feed(
  stream: Readable,
  compression: LayerCompression,
  tar: Extract,
  what: string,
  fed: FedBytes,
  hash: Hash | undefined,
): Promise<Hash | undefined> {
  let decompress: Duplex | undefined;
  try {
    let bytes: AsyncIterable<unknown> = stream;
    if (compression === 'gzip' || compression === 'zstd') {
      decompress = decompressor(compression, what);
      // Not pipeline(): it would destroy the blob stream with a decompression error, and that error is
      // often only the first sign of a blob whose bytes are wrong (see blobFailure).
      const target = decompress;
      stream.once('error', (error) => target.destroy(error));
      // A blob stream closed before its end (the reader was abandoned) ends the decompressor too.
      stream.once('close', () => {
        if (!stream.readableEnded && !target.destroyed) target.destroy(new StrataError('E_ABORTED', `reading ${what} was abandoned`));
      });
      stream.pipe(target);
      bytes = target;
    }
    for await (const chunk of bytes) {
      if (tar.destroying) return undefined;
      count(fed, chunk as Buffer);
      hash?.update(chunk as Buffer);
      if (!tar.write(chunk)) await drained(tar);
    }
    tar.end(undefined);
    return hash;
  } catch (error) {
    tar.destroy(invalid((decompress !== undefined && !isStrataError(error) ? await blobFailure(stream, decompress) : undefined) ?? error, what));
    return undefined;
  }
}

/**
 * A layer that does not decompress may be a good layer whose stored bytes were damaged: a verifying blob
 * reader can only tell at the blob's end. Reads the rest of the blob and returns the reader's own error (a
 * digest mismatch, with what the store did about it), or undefined when the blob itself is intact.
 */
async function blobFailure(stream: Readable, decompress: Duplex): Promise<unknown> {
  if (stream.destroyed || stream.readableEnded) return undefined;
  stream.unpipe(decompress);
  try {
    for await (const _chunk of stream) {
      // reading to the end is the check
    }
    return undefined;
  } catch (error) {
    return isStrataError(error) ? error : undefined;
  }
}

function count(fed: FedBytes, chunk: Buffer): void {
  fed.total += chunk.length;
  let zeros = 0;
  while (zeros < chunk.length && chunk[chunk.length - 1 - zeros] === 0) zeros += 1;
  fed.trailingZeros = zeros === chunk.length ? fed.trailingZeros + zeros : zeros;
}

function drained(tar: Extract): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      tar.off('drain', done);
      tar.off('close', done);
      resolve();
    };
    tar.on('drain', done);
    tar.on('close', done);
  });
}

function decompressor(compression: Exclude<LayerCompression, 'none'>, what: string): Duplex {
  // 256 KiB output chunks instead of zlib's 16 KiB: a quarter of the CPU of reading a big layer went to
  // per-chunk callbacks and garbage collection of the small buffers.
  if (compression === 'gzip') return zlib.createGunzip({ chunkSize: 256 * 1024 });
  // Node gained zstd in 22.15 / 23.8; strata supports Node 20, so without it the zstd program does the work.
  const fromNode: unknown = Reflect.get(zlib, 'createZstdDecompress');
  if (typeof fromNode === 'function') return Reflect.apply(fromNode, zlib, []) as Duplex;
  return createZstdDecompress(what);
}

function toReadEntry(header: Header, source: AsyncIterable<unknown>, what: string): { value: LayerReadEntry; content: { drain: () => Promise<void> } } {
  const type = TYPES[header.type];
  const name = tarName(header.name);
  if (type === undefined) {
    throw new StrataError('E_LAYER_INVALID', `${what}: entry ${quotedName(name)} has an unsupported tar type (${String(header.type)})`, {
      hint: 'strata reads regular files, directories, links, fifos and devices; sparse and multi-volume entries are not supported',
    });
  }
  const path = cleanEntryPath(name, what);
  const pax = (header.pax ?? {}) as Record<string, string | undefined>;
  let linkname: string | undefined;
  const target = header.linkname ?? undefined;
  if (type === 'hardlink') linkname = cleanEntryPath(tarName(target ?? ''), what);
  else if (type === 'symlink' && target !== undefined) linkname = tarName(target);

  const iterator = source[Symbol.asyncIterator]();
  let finished = false;
  async function* content(): AsyncGenerator<Buffer> {
    while (!finished) {
      let next: IteratorResult<unknown>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw invalid(error, what);
      }
      if (next.done === true) {
        finished = true;
        return;
      }
      yield next.value as Buffer;
    }
  }
  const drain = async (): Promise<void> => {
    while (!finished) {
      const next = await iterator.next();
      if (next.done === true) finished = true;
    }
  };

  const base = {
    path,
    type,
    mode: header.mode & 0o7777,
    uid: paxNumber(pax['uid']) ?? header.uid,
    gid: paxNumber(pax['gid']) ?? header.gid,
    size: type === 'file' ? header.size : 0,
    mtime: paxNumber(pax['mtime']) ?? Math.floor(header.mtime.getTime() / 1000),
    linkname,
    devMajor: header.devmajor,
    devMinor: header.devminor,
    content: { [Symbol.asyncIterator]: content },
  };
  const whiteout = classifyWhiteout(path);
  const value: LayerReadEntry =
    whiteout.kind === 'opaque'
      ? { kind: 'opaque', dir: whiteout.dir, ...base }
      : whiteout.kind === 'whiteout'
        ? { kind: 'whiteout', target: whiteout.target, ...base }
        : { kind: 'entry', ...base };
  return { value, content: { drain } };
}

function paxNumber(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = Math.floor(Number(value));
  return Number.isFinite(parsed) ? parsed : undefined;
}

function invalid(error: unknown, what: string): StrataError {
  if (isStrataError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StrataError('E_LAYER_INVALID', `${what} is not a valid layer: ${message}`, {
    cause: error,
    hint: 'the archive is corrupt, truncated, or not the compression its media type says',
  });
}
