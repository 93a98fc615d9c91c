import { createReadStream, createWriteStream, mkdirSync, renameSync } from 'node:fs';
import { link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { DigestingStream, VerifyingStream, digestAlgorithm, digestHex, parseDigest, sizeMismatch, type Digest } from '../digest/index.js';
import { StrataError, errnoCode, ioError, isStrataError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import { tempPathFor } from './atomic.js';
import { BLOB_READ_CHUNK, readAll } from './readers.js';
import type { BlobStore, PutOptions, ReadOptions } from './types.js';

// Large writes: socket reads arrive in small chunks, and batching them (writev) halves the syscalls.
const WRITE_BUFFER = 4 * 1024 * 1024;

type BlobData = Readable | AsyncIterable<Uint8Array> | Uint8Array;

function toReadable(data: BlobData): Readable {
  if (data instanceof Readable) return data;
  if (data instanceof Uint8Array) return Readable.from([data]);
  return Readable.from(data);
}

/**
 * Blobs as files named by digest (`<dir>/<algorithm>/<hex>`), the layout an OCI image layout uses.
 * Writes go to a temp file beside the final name and are renamed only once the bytes are verified.
 */
export interface BlobLease {
  /** Records that this process uses `digest`, before the blob is looked at (see Lease). */
  touch(digest: string): Promise<void>;
}

export interface FileBlobStoreOptions {
  /** Held on every blob this store looks at or writes, so a collector in another process keeps them. */
  lease?: BlobLease | undefined;
  /**
   * Where blobs being written wait for their digest (on the same file system): by default beside
   * the blobs. The local store keeps them apart so a sweep for leftovers need not list every blob.
   */
  tempDir?: string | undefined;
  /**
   * Where a stored blob whose bytes fail their digest or size is moved when a read finds it, so the
   * next pull or build fetches it again instead of finding it "already there". Unset: left in place.
   */
  quarantineDir?: string | undefined;
}

export class FileBlobStore implements BlobStore {
  /** Blobs this handle has added to the store (not those it found there): whether a run wrote anything. */
  written = 0;

  constructor(
    readonly dir: string,
    private readonly options: FileBlobStoreOptions = {},
  ) {}

  blobPath(digest: Digest): string {
    parseDigest(digest);
    return join(this.dir, digestAlgorithm(digest), digestHex(digest));
  }

  async hasBlob(descriptor: Pick<Descriptor, 'digest'>): Promise<boolean> {
    await this.options.lease?.touch(descriptor.digest);
    try {
      return (await stat(this.blobPath(descriptor.digest))).isFile();
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') return false;
      throw ioError('stat', this.blobPath(descriptor.digest), cause);
    }
  }

  async openBlob(descriptor: Descriptor, options: ReadOptions = {}): Promise<Readable> {
    const path = this.blobPath(descriptor.digest);
    await this.options.lease?.touch(descriptor.digest);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') {
        throw new StrataError('E_NOT_FOUND', `blob ${descriptor.digest} is missing from ${this.dir}`, { cause });
      }
      throw ioError('read', path, cause);
    }
    const what = `blob ${descriptor.digest} in ${this.dir}`;
    if (size !== descriptor.size) {
      // A size that differs from the descriptor's may be the descriptor's fault (another image's
      // claim): the blob is moved aside only when its own bytes are wrong, which its name tells.
      throw new StrataError('E_SIZE_MISMATCH', `${what} is ${size} bytes, expected ${descriptor.size}`, {
        hint: 'the store or the manifest naming it is corrupt; `strata verify --repair` checks every blob',
      });
    }
    const verifier = new VerifyingStream({ digest: descriptor.digest, size: descriptor.size, what });
    if (this.options.quarantineDir) {
      verifier.on('error', (error) => {
        if (isStrataError(error, 'E_DIGEST_MISMATCH')) this.quarantine(descriptor.digest, error);
      });
    }
    const file = createReadStream(path, { highWaterMark: BLOB_READ_CHUNK, ...(options.signal ? { signal: options.signal } : {}) });
    file.on('error', (cause) => verifier.destroy(ioError('read', path, cause)));
    return file.pipe(verifier);
  }

  /**
   * Whether the blob is there with the right bytes (read and hashed whole). A wrong one is moved to
   * quarantineDir (when set) and reported absent, so it is fetched again.
   */
  async hasIntactBlob(descriptor: Pick<Descriptor, 'digest'>, options: ReadOptions = {}): Promise<boolean> {
    if (!(await this.hasBlob(descriptor))) return false;
    const size = await stat(this.blobPath(descriptor.digest)).then(
      (i) => i.size,
      () => -1,
    );
    if (size < 0) return false;
    try {
      const stream = await this.openBlob({ digest: descriptor.digest, size, mediaType: 'application/octet-stream' }, options);
      for await (const _chunk of stream) {
        // reading is the check
      }
      return true;
    } catch (cause) {
      if (isStrataError(cause, 'E_DIGEST_MISMATCH')) return this.hasBlob(descriptor);
      throw cause;
    }
  }

  async readBlob(descriptor: Descriptor, options: ReadOptions = {}): Promise<Buffer> {
    return readAll(await this.openBlob(descriptor, options));
  }

  async putBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>, data: BlobData, options: PutOptions = {}): Promise<void> {
    const finalPath = this.blobPath(descriptor.digest);
    if (await this.hasBlob(descriptor)) {
      // Already present (content addressing makes it the same bytes); drain nothing, just release the source.
      if (data instanceof Readable) data.destroy();
      return;
    }
    const check =
      options.sourceVerified && data instanceof Readable
        ? new SizeCheck(descriptor)
        : new VerifyingStream({ digest: descriptor.digest, size: descriptor.size });
    await this.writeThrough(finalPath, data, check, options);
  }

  async ingestBlob(data: Readable | AsyncIterable<Uint8Array>, options: ReadOptions = {}): Promise<{ digest: Digest; size: number }> {
    await mkdir(join(this.dir, 'sha256'), { recursive: true });
    const hasher = new DigestingStream('sha256');
    const tmp = tempPathFor(join(this.options.tempDir ?? join(this.dir, 'sha256'), 'ingest'));
    await this.pipeToFile(tmp, data, hasher, options);
    const result = hasher.result();
    try {
      await this.options.lease?.touch(result.digest);
      await rename(tmp, this.blobPath(result.digest));
      this.written++;
    } catch (cause) {
      await rm(tmp, { force: true });
      throw ioError('write', this.blobPath(result.digest), cause);
    }
    return result;
  }

  /** Every blob digest in the store (for garbage collection). */
  async listBlobs(): Promise<Digest[]> {
    const out: Digest[] = [];
    for (const algorithm of ['sha256', 'sha512']) {
      let names: string[];
      try {
        names = await readdir(join(this.dir, algorithm));
      } catch (cause) {
        if (errnoCode(cause) === 'ENOENT') continue;
        throw ioError('list', join(this.dir, algorithm), cause);
      }
      for (const name of names) if (!name.startsWith('.')) out.push(`${algorithm}:${name}`);
    }
    return out;
  }

  /**
   * Moves a blob whose bytes were found wrong out of the store (into quarantineDir, for a post-mortem),
   * and says so in the error's hint. Synchronous: it runs in the failing stream's error handler, before
   * the consumer can look for the blob again.
   */
  private quarantine(digest: Digest, error: StrataError): void {
    const dir = this.options.quarantineDir!;
    try {
      mkdirSync(dir, { recursive: true });
      const aside = join(dir, `${digestHex(digest)}-${Date.now()}`);
      renameSync(this.blobPath(digest), aside);
      Object.assign(error, {
        hint: `the stored blob was corrupt and has been moved to ${aside}; pull the image again (or \`strata verify --repair\`) and it is fetched anew`,
      });
    } catch {
      // Gone already (another reader moved it): nothing more to do.
    }
  }

  /**
   * Puts `digest` in place as a hard link to `source`'s file of it, copying no bytes (the source verified them
   * when it wrote the file); false when it cannot: another file system, no such blob, links refused.
   */
  async linkFrom(source: FileBlobStore, digest: Digest): Promise<boolean> {
    if (!(await source.hasBlob({ digest }))) return false;
    const finalPath = this.blobPath(digest);
    const tmp = tempPathFor(finalPath);
    try {
      await mkdir(dirname(finalPath), { recursive: true });
      await link(source.blobPath(digest), tmp);
      await rename(tmp, finalPath);
    } catch {
      await rm(tmp, { force: true });
      return false;
    }
    this.written++;
    return true;
  }

  async removeBlob(digest: Digest): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  private async writeThrough(finalPath: string, data: BlobData, check: Transform, options: ReadOptions): Promise<void> {
    const tmp = this.options.tempDir ? tempPathFor(join(this.options.tempDir, basename(finalPath))) : tempPathFor(finalPath);
    await this.pipeToFile(tmp, data, check, options);
    try {
      await rename(tmp, finalPath);
      this.written++;
    } catch (cause) {
      await rm(tmp, { force: true });
      throw ioError('write', finalPath, cause);
    }
  }

  private async pipeToFile(tmp: string, data: BlobData, through: Transform, options: ReadOptions): Promise<void> {
    await mkdir(join(tmp, '..'), { recursive: true });
    const out = createWriteStream(tmp, { flags: 'wx', highWaterMark: WRITE_BUFFER });
    try {
      await pipeline(toReadable(data), through, out, options.signal ? { signal: options.signal } : {});
    } catch (cause) {
      // An abort can reject before the file is even opened: wait for the stream to close, or the
      // temp file could appear after it was removed.
      if (!out.closed) await once(out, 'close').catch(() => undefined);
      await rm(tmp, { force: true });
      if (cause instanceof StrataError) throw cause;
      if (cause instanceof Error && cause.name === 'AbortError') throw new StrataError('E_ABORTED', 'operation aborted', { cause });
      throw ioError('write', tmp, cause);
    }
  }
}

/** Counts bytes against the descriptor's size: the digest is the verified source's job. */
class SizeCheck extends Transform {
  private seen = 0;

  constructor(private readonly descriptor: Pick<Descriptor, 'digest' | 'size'>) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.byteLength;
    if (this.seen > this.descriptor.size) {
      callback(sizeMismatch({ digest: this.descriptor.digest, size: this.descriptor.size }, this.seen));
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    callback(this.seen === this.descriptor.size ? null : sizeMismatch({ digest: this.descriptor.digest, size: this.descriptor.size }, this.seen));
  }
}
