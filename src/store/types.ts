import type { Readable } from 'node:stream';
import type { Digest } from '../digest/index.js';
import type { Descriptor } from '../oci/index.js';

export interface ReadOptions {
  signal?: AbortSignal | undefined;
}

/**
 * Anything blobs can be read from: a blob directory, an OCI layout, a registry repository.
 * Every implementation verifies: the stream it returns fails with E_DIGEST_MISMATCH (or
 * E_SIZE_MISMATCH) when the bytes do not match the descriptor, so consumers must commit nothing
 * until the stream has ended cleanly.
 */
export interface BlobReader {
  openBlob(descriptor: Descriptor, options?: ReadOptions): Promise<Readable>;
  /** Reads a small blob (manifest, config) whole, verified. */
  readBlob(descriptor: Descriptor, options?: ReadOptions): Promise<Buffer>;
}

export interface PutOptions extends ReadOptions {
  /**
   * The data is a stream from a `BlobReader`, which fails the stream itself when the bytes do not
   * match: the sink then checks only the size instead of hashing a second time.
   */
  sourceVerified?: boolean | undefined;
}

/** Somewhere blobs can be written to; `putBlob` verifies before the blob becomes visible. */
export interface BlobSink {
  hasBlob(descriptor: Pick<Descriptor, 'digest'>): Promise<boolean>;
  putBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>, data: Readable | AsyncIterable<Uint8Array> | Uint8Array, options?: PutOptions): Promise<void>;
}

/** A store that can also take bytes whose digest is not known in advance (a layer being written). */
export interface BlobIngester {
  /** Streams the bytes to a temp file while hashing them, then moves them into place. */
  ingestBlob(data: Readable | AsyncIterable<Uint8Array>, options?: ReadOptions): Promise<{ digest: Digest; size: number }>;
}

export interface BlobStore extends BlobReader, BlobSink, BlobIngester {}
