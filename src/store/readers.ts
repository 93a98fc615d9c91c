import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { StrataError, isStrataError, ioError } from '../errors/index.js';
import { VerifyingStream, verifyBytes, type Digest } from '../digest/index.js';
import type { Descriptor } from '../oci/index.js';
import type { BlobReader, ReadOptions } from './types.js';

/**
 * How much of a blob file one read takes (Node's default is 64 KiB). Every read is a trip through libuv's thread
 * pool, and so is every chunk a gunzip is given: unpacking a 100 MiB layer read in 64 KiB pieces spent a quarter of
 * its time on those trips.
 */
export const BLOB_READ_CHUNK = 1024 * 1024;

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function notFound(descriptor: Descriptor, where: string): StrataError {
  return new StrataError('E_NOT_FOUND', `blob ${descriptor.digest} is missing from ${where}`);
}

/** Small blobs held in memory: the config and manifest of an image being assembled. */
export class MemoryBlobReader implements BlobReader {
  private readonly blobs = new Map<string, Buffer>();

  add(digest: Digest, bytes: Buffer): this {
    this.blobs.set(digest, bytes);
    return this;
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    return Readable.from([await this.readBlob(descriptor)]);
  }

  async readBlob(descriptor: Descriptor): Promise<Buffer> {
    const bytes = this.blobs.get(descriptor.digest);
    if (!bytes) throw notFound(descriptor, 'memory');
    verifyBytes(bytes, { digest: descriptor.digest, size: descriptor.size, what: `blob ${descriptor.digest}` });
    return bytes;
  }
}

/** Blobs that live in files under other names (the members of an unpacked docker-archive). */
export class FileMapBlobReader implements BlobReader {
  private readonly files = new Map<string, string>();

  constructor(private readonly where: string) {}

  add(digest: Digest, path: string): this {
    this.files.set(digest, path);
    return this;
  }

  async openBlob(descriptor: Descriptor, options: ReadOptions = {}): Promise<Readable> {
    const path = this.files.get(descriptor.digest);
    if (!path) throw notFound(descriptor, this.where);
    const verifier = new VerifyingStream({ digest: descriptor.digest, size: descriptor.size, what: `${path} in ${this.where}` });
    const file = createReadStream(path, { highWaterMark: BLOB_READ_CHUNK, ...(options.signal ? { signal: options.signal } : {}) });
    file.on('error', (cause) => verifier.destroy(ioError('read', path, cause)));
    return file.pipe(verifier);
  }

  async readBlob(descriptor: Descriptor, options: ReadOptions = {}): Promise<Buffer> {
    return readAll(await this.openBlob(descriptor, options));
  }
}

/** Reads each blob from the first reader that has it. */
export class CompositeBlobReader implements BlobReader {
  constructor(private readonly readers: readonly BlobReader[]) {}

  async openBlob(descriptor: Descriptor, options: ReadOptions = {}): Promise<Readable> {
    return this.first(descriptor, (r) => r.openBlob(descriptor, options));
  }

  async readBlob(descriptor: Descriptor, options: ReadOptions = {}): Promise<Buffer> {
    return this.first(descriptor, (r) => r.readBlob(descriptor, options));
  }

  private async first<T>(descriptor: Descriptor, read: (r: BlobReader) => Promise<T>): Promise<T> {
    for (const reader of this.readers) {
      try {
        return await read(reader);
      } catch (cause) {
        // A registry answers 404 for a blob another source holds (a layer of an imported build cache is
        // not in the base's repository): the next source is asked, as for a missing local blob.
        if (!isStrataError(cause, 'E_NOT_FOUND') && !isStrataError(cause, 'E_REGISTRY_NOT_FOUND')) throw cause;
      }
    }
    throw notFound(descriptor, 'any source of this image');
  }
}
