import { createReadStream } from 'node:fs';
import { Transform, type Duplex, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Extract, Header } from 'tar-stream';
import { Hasher, type Digest } from '../digest/index.js';
import { StrataError, errnoCode, ioError, isStrataError } from '../errors/index.js';
import { quotedName } from '../fsname/index.js';
import { layerMediaType } from '../oci/index.js';
import { isGzipFile, type BlobIngester } from '../store/index.js';
import { ParallelGzip } from './gzip.js';
import { safeEntryPath } from './safe-path.js';
import { tarExtract, tarName } from './tar-extract.js';
import type { ImportTarLayerOptions, LayerResult } from './types.js';
import { checkZstdFamily } from './write.js';
import { ZSTD_DEFAULT_LEVEL, createZstdCompress } from './zstd.js';

const ENTRY_TYPES: ReadonlySet<Header['type']> = new Set([
  'file',
  'contiguous-file',
  'link',
  'symlink',
  'directory',
  'character-device',
  'block-device',
  'fifo',
]);

/**
 * Uses a user's .tar or .tar.gz (gzip is recognised by its magic bytes, not its name) as a layer. The
 * uncompressed bytes are kept exactly, so the diffID is their sha256; on their way to the store they are checked
 * entry by entry, and an archive that could write outside the root when extracted (absolute names, `..`
 * escapes, hard links pointing out) is refused with E_LAYER_UNSAFE. The check finishes before the store
 * commits the blob, so a refused archive leaves nothing behind.
 */
export async function importTarLayer(path: string, options: ImportTarLayerOptions, store: BlobIngester): Promise<LayerResult> {
  const what = `tarball layer ${path}`;
  const gzipped = await sniffGzip(path);
  const compression = options.compression ?? 'gzip';
  checkZstdFamily(compression, options.mediaTypeFamily);
  const input = createReadStream(path);
  const validator = new TarValidator(what);
  const stages: Duplex[] = [];
  if (gzipped) stages.push(createGunzip());
  stages.push(validator);
  if (compression === 'gzip') stages.push(new ParallelGzip(options.gzipLevel));
  else if (compression === 'zstd') stages.push(createZstdCompress(options.zstdLevel ?? ZSTD_DEFAULT_LEVEL, what));
  const last = stages[stages.length - 1] ?? validator;

  const onAbort = (): void => {
    input.destroy(new StrataError('E_ABORTED', `importing ${what} was aborted`));
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();
  const piping = pipeline([input, ...stages]);
  const ingesting = store.ingestBlob(last, options.signal === undefined ? {} : { signal: options.signal }).catch((error: unknown) => {
    input.destroy(error instanceof Error ? error : new Error(String(error)));
    throw error;
  });
  const [piped, ingested] = await Promise.allSettled([piping, ingesting]);
  options.signal?.removeEventListener('abort', onAbort);

  if (validator.failure !== undefined) throw validator.failure;
  if (piped.status === 'rejected') throw importError(piped.reason, what, path);
  if (ingested.status === 'rejected') throw importError(ingested.reason, what, path);
  const { diffId, size } = validator.result();
  return {
    descriptor: {
      mediaType: layerMediaType(compression, options.mediaTypeFamily ?? 'oci'),
      digest: ingested.value.digest,
      size: ingested.value.size,
    },
    diffId,
    uncompressedSize: size,
  };
}

async function sniffGzip(path: string): Promise<boolean> {
  try {
    return await isGzipFile(path);
  } catch (cause) {
    throw ioError('read layer tarball', path, isStrataError(cause) && cause.cause !== undefined ? cause.cause : cause);
  }
}

/**
 * Passes the uncompressed tar through unchanged while hashing it and parsing it with tar-stream. It holds the
 * end of the stream until the parser has seen every entry, so a bad entry fails the stream before the store
 * can commit it.
 */
class TarValidator extends Transform {
  failure: StrataError | undefined;
  private readonly hasher = new Hasher('sha256');
  private readonly tar: Extract;
  private readonly parsed: Promise<void>;

  constructor(private readonly what: string) {
    super();
    this.tar = tarExtract();
    this.tar.on('entry', (header, stream, next) => {
      // Destroying the parser destroys the current entry stream with the same error; it is reported once, below.
      stream.on('error', () => undefined);
      const problem = this.check(header);
      if (problem !== undefined) {
        this.failure = problem;
        this.tar.destroy(problem);
        return;
      }
      stream.on('end', () => next());
      stream.resume();
    });
    this.parsed = new Promise<void>((resolve, reject) => {
      let error: Error | undefined;
      this.tar.on('error', (e) => {
        error = e;
      });
      this.tar.on('close', () => (error === undefined ? resolve() : reject(error)));
    });
    this.parsed.catch(() => undefined);
  }

  private check(header: Header): StrataError | undefined {
    const name = tarName(header.name);
    const linkname = tarName(header.linkname ?? '');
    try {
      if (!ENTRY_TYPES.has(header.type)) {
        return new StrataError('E_LAYER_INVALID', `${this.what}: entry ${quotedName(name)} has an unsupported tar type (${String(header.type)})`, {
          hint: 'use regular files, directories, links, fifos and devices only (no sparse or multi-volume entries)',
        });
      }
      safeEntryPath(name, this.what);
      if (header.type === 'link') {
        try {
          safeEntryPath(linkname, this.what);
        } catch {
          return new StrataError('E_LAYER_UNSAFE', `${this.what}: hard link ${quotedName(name)} points outside the layer (${quotedName(linkname)})`, {
            hint: 'hard link targets must be paths inside the archive',
          });
        }
      }
      return undefined;
    } catch (error) {
      return isStrataError(error) ? error : new StrataError('E_LAYER_INVALID', `${this.what}: ${String(error)}`);
    }
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.failure !== undefined) {
      callback(this.failure);
      return;
    }
    this.hasher.update(chunk);
    if (this.tar.write(chunk)) {
      callback(null, chunk);
      return;
    }
    const done = (): void => {
      this.tar.off('drain', done);
      this.tar.off('close', done);
      callback(this.failure ?? null, chunk);
    };
    this.tar.on('drain', done);
    this.tar.on('close', done);
  }

  override _flush(callback: TransformCallback): void {
    this.tar.end(undefined);
    this.parsed.then(
      () => callback(this.failure ?? null),
      (error: unknown) => callback(this.failure ?? importError(error, this.what, undefined)),
    );
  }

  result(): { diffId: Digest; size: number } {
    return { diffId: this.hasher.digest(), size: this.hasher.size };
  }
}

function importError(error: unknown, what: string, path: string | undefined): StrataError {
  if (isStrataError(error)) return error;
  const code = errnoCode(error) ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (code.startsWith('Z_') || code === 'ERR_ZLIB') {
    return new StrataError('E_LAYER_INVALID', `${what} is not valid gzip: ${message}`, {
      cause: error,
      hint: 'the file is corrupt or truncated; re-create it',
    });
  }
  // errno codes (ENOENT, EIO, EISDIR ...) are file-system failures, not a malformed archive.
  if (path !== undefined && /^E[A-Z]+$/.test(code)) return ioError('read', path, error);
  return new StrataError('E_LAYER_INVALID', `${what} is not a valid tar archive: ${message}`, {
    cause: error,
    hint: 'give a .tar or .tar.gz file (the layer is used as-is)',
  });
}
