import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { StrataError, ioError } from '../errors/index.js';

/** `algorithm:encoded`, as the OCI image spec defines a digest. */
export type Digest = `${string}:${string}`;
export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const ALGORITHM_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*$/;
const ENCODED_RE = /^[a-zA-Z0-9=_-]+$/;

export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** Validates a digest string; only the registered algorithms (sha256, sha512) are accepted. */
export function parseDigest(value: string): Digest {
  const colon = value.indexOf(':');
  const algorithm = colon < 0 ? '' : value.slice(0, colon);
  const encoded = colon < 0 ? '' : value.slice(colon + 1);
  if (colon < 0 || !ALGORITHM_RE.test(algorithm) || !ENCODED_RE.test(encoded)) {
    throw new StrataError('E_DIGEST_INVALID', `invalid digest "${value}": expected algorithm:hex, like sha256:<64 hex digits>`);
  }
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new StrataError('E_DIGEST_INVALID', `unsupported digest algorithm "${algorithm}" in "${value}"`);
  }
  if (encoded.length !== ENCODED_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(encoded)) {
    throw new StrataError('E_DIGEST_INVALID', `invalid digest "${value}": ${algorithm} needs ${ENCODED_LENGTH[algorithm]} lowercase hex digits`);
  }
  return value as Digest;
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** A running hash plus byte count, for hashing bytes as they flow past. */
export class Hasher {
  readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;
  private count = 0;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.count += chunk.byteLength;
  }

  get size(): number {
    return this.count;
  }

  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/** A pass-through stream that hashes and counts; read `result()` after it has finished. */
export class DigestingStream extends Transform {
  private readonly hasher: Hasher;
  private final: { digest: Digest; size: number } | undefined;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    super();
    this.hasher = new Hasher(algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hasher.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.final = { digest: this.hasher.digest(), size: this.hasher.size };
    callback();
  }

  result(): { digest: Digest; size: number } {
    if (!this.final) throw new StrataError('E_INTERNAL', 'digest read before the stream finished');
    return this.final;
  }
}

export interface Expected {
  digest: Digest;
  /** When known, a stream longer than this fails as soon as it overruns, not at the end. */
  size?: number | undefined;
  /** What the bytes are, for the error message: "blob sha256:… of docker.io/library/alpine". */
  what?: string | undefined;
}

export function digestMismatch(expected: Expected, actual: Digest): StrataError {
  return new StrataError('E_DIGEST_MISMATCH', `${expected.what ?? 'content'} has digest ${actual}, expected ${expected.digest}`, {
    hint: 'the source is corrupt or was tampered with; the content was refused',
  });
}

export function sizeMismatch(expected: Expected, actual: number): StrataError {
  return new StrataError('E_SIZE_MISMATCH', `${expected.what ?? `content ${expected.digest}`} is ${actual} bytes, expected ${expected.size}`, {
    hint: 'the source is corrupt or was truncated; the content was refused',
  });
}

/**
 * Passes bytes through and fails the stream if they do not hash to the expected digest (or overrun
 * the expected size). Consumers must treat data as untrusted until the stream ends without error.
 */
export class VerifyingStream extends Transform {
  private readonly hasher: Hasher;

  constructor(private readonly expected: Expected) {
    super();
    this.hasher = new Hasher(digestAlgorithm(expected.digest));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hasher.update(chunk);
    if (this.expected.size !== undefined && this.hasher.size > this.expected.size) {
      callback(sizeMismatch(this.expected, this.hasher.size));
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expected.size !== undefined && this.hasher.size !== this.expected.size) {
      callback(sizeMismatch(this.expected, this.hasher.size));
      return;
    }
    const actual = this.hasher.digest();
    callback(actual === this.expected.digest ? null : digestMismatch(this.expected, actual));
  }
}

/** Verifies a whole in-memory value (a manifest, a config) against its descriptor. */
export function verifyBytes(data: Uint8Array, expected: Expected): void {
  if (expected.size !== undefined && data.byteLength !== expected.size) throw sizeMismatch(expected, data.byteLength);
  const actual = digestOf(data, digestAlgorithm(expected.digest));
  if (actual !== expected.digest) throw digestMismatch(expected, actual);
}

export async function digestFile(path: string, algorithm: DigestAlgorithm = 'sha256'): Promise<{ digest: Digest; size: number }> {
  const hasher = new Hasher(algorithm);
  try {
    for await (const chunk of createReadStream(path)) hasher.update(chunk as Buffer);
  } catch (cause) {
    throw ioError('read', path, cause);
  }
  return { digest: hasher.digest(), size: hasher.size };
}
