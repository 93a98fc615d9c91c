import { PassThrough, Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { StrataError } from '../errors/index.js';
import { digestAlgorithm, digestOf, isDigest, sizeMismatch, verifyBytes, VerifyingStream, type Digest } from '../digest/index.js';
import { MediaType, parseManifestOrIndex, type Descriptor, type Index, type ParsedManifest } from '../oci/index.js';
import type { BlobReader, ReadOptions } from '../store/types.js';
import { describeContext, type RegistryErrorContext } from './errors.js';
import { discardBody, readBytes, type FetchResponse } from './http.js';
import { pullScopes, pushScopes } from './scopes.js';
import { RegistryTransport, type RegistryConnectionOptions } from './transport.js';
import { uploadBlob, type BlobSource, type BlobUploadCallOptions, type UploadOptions } from './upload.js';
import { streamBlobUpload, type StreamBlobOptions, type StreamedBlob } from './upload-stream.js';

/** Every manifest type strata reads; without the list types Docker Hub down-converts indexes. */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', ');

/** Manifests are small documents; anything bigger is refused rather than buffered. */
const MANIFEST_MAX_BYTES = 8 * 1024 * 1024;

export interface FetchedManifest {
  /** The exact bytes received; their digest is the manifest's identity. */
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
  size: number;
  descriptor: Descriptor;
  parsed: ParsedManifest;
}

export interface ManifestHead {
  /** From `Docker-Content-Digest`; may be missing, and for a list may name the resolved manifest. */
  digest: Digest | undefined;
  mediaType: string | undefined;
  size: number | undefined;
}

export interface RegistryClientOptions extends RegistryConnectionOptions, UploadOptions {}

export interface TransferOptions {
  signal?: AbortSignal | undefined;
}

function stripParams(contentType: string | null): string | undefined {
  const value = contentType?.split(';')[0]?.trim();
  return value ? value : undefined;
}

function encodeRepo(repository: string): string {
  return repository.split('/').map(encodeURIComponent).join('/');
}

/** Counts bytes as they pass, for progress events. */
class ByteCounter extends Transform {
  private count = 0;
  constructor(private readonly onBytes: (total: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.byteLength;
    this.onBytes(this.count);
    cb(null, chunk);
  }
}

/**
 * Fails a body that stops flowing, with a retryable ETIMEDOUT: a stalled storage backend should
 * cost a retry, not hang the pull.
 */
class IdleTimeout extends Transform {
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly ms: number, private readonly message: string) {
    super();
    this.arm();
  }
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.destroy(Object.assign(new Error(this.message), { code: 'ETIMEDOUT' })), this.ms);
    this.timer.unref();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.arm();
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    clearTimeout(this.timer);
    cb();
  }
  override _destroy(error: Error | null, cb: (error: Error | null) => void): void {
    clearTimeout(this.timer);
    cb(error);
  }
}

/** Enforces a descriptor's size (early on overrun, at the end on a short body) without hashing. */
class SizeLimit extends Transform {
  private count = 0;
  constructor(private readonly expected: { digest: Digest; size: number; what: string }) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.byteLength;
    cb(this.count > this.expected.size ? sizeMismatch(this.expected, this.count) : null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    cb(this.count !== this.expected.size ? sizeMismatch(this.expected, this.count) : null);
  }
}

/**
 * A client for one registry (host[:port]), over the OCI distribution API. Repository arguments
 * are paths within that registry (`library/alpine`).
 */
export class RegistryClient {
  readonly transport: RegistryTransport;
  private readonly uploadOptions: UploadOptions;

  constructor(options: RegistryClientOptions) {
    this.transport = new RegistryTransport(options);
    this.uploadOptions = { monolithicMaxBytes: options.monolithicMaxBytes, chunkSize: options.chunkSize };
  }

  get registry(): string {
    return this.transport.registry;
  }

  /** Checks that the registry answers and learns its auth scheme; with `scopes`, also that the credentials get a token for them. */
  async ping(options: TransferOptions & { scopes?: readonly string[] } = {}): Promise<void> {
    await this.transport.ping(options.signal);
    if (options.scopes) await this.transport.auth.authorization(options.scopes, options.signal);
  }

  /**
   * Verifies the credentials (for `strata login`): a token without scopes from the token server,
   * or an authenticated `GET /v2/` for Basic registries. Returns an identity token when the token
   * server issued one, which can be stored instead of the password.
   */
  async checkCredentials(options: TransferOptions = {}): Promise<{ identityToken?: string }> {
    await this.transport.ping(options.signal);
    const result = await this.transport.auth.login(options.signal);
    const ctx = { registry: this.registry, what: 'login' };
    const response = await this.transport.send({ method: 'GET', url: '/v2/', scopes: [], ctx, signal: options.signal });
    if (response.status !== 200) throw await this.transport.fail(response, ctx);
    await discardBody(response);
    return result;
  }

  private ctx(repository: string, what?: string): RegistryErrorContext {
    return { registry: this.registry, repository, what };
  }

  /** GETs a manifest or index by tag or digest, verifying the bytes against every digest in play. */
  async getManifest(repository: string, reference: string, options: TransferOptions & { scopes?: readonly string[] } = {}): Promise<FetchedManifest> {
    const ctx = this.ctx(repository, `manifest ${reference}`);
    const response = await this.transport.send({
      method: 'GET',
      url: `/v2/${encodeRepo(repository)}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      scopes: options.scopes ?? pullScopes(repository),
      ctx,
      signal: options.signal,
    });
    if (response.status !== 200) throw await this.transport.fail(response, ctx);
    let bytes: Buffer;
    try {
      bytes = await readBytes(response, MANIFEST_MAX_BYTES, `manifest ${reference}`);
    } catch (cause) {
      throw new StrataError('E_MANIFEST_INVALID', `${describeContext(ctx)}: ${(cause as Error).message}`, { cause });
    }
    const what = `manifest ${reference} of ${this.registry}/${repository}`;
    const requested = isDigest(reference) ? (reference as Digest) : undefined;
    const digest = digestOf(bytes, requested ? digestAlgorithm(requested) : 'sha256');
    if (requested) verifyBytes(bytes, { digest: requested, what });
    const header = response.headers.get('docker-content-digest');
    if (header && isDigest(header) && digestAlgorithm(header as Digest) === digestAlgorithm(digest) && header !== digest) {
      throw new StrataError('E_DIGEST_MISMATCH', `${what} has digest ${digest}, but the registry says ${header}`, {
        hint: 'the registry or a proxy altered the manifest; it was refused',
      });
    }
    const parsed = parseManifestOrIndex(bytes, what, stripParams(response.headers.get('content-type')));
    const descriptor: Descriptor = { mediaType: parsed.mediaType, digest, size: bytes.byteLength };
    return { bytes, mediaType: parsed.mediaType, digest, size: bytes.byteLength, descriptor, parsed };
  }

  /** HEADs a manifest (not rate-limited on Docker Hub); undefined when it does not exist. */
  async headManifest(repository: string, reference: string, options: TransferOptions = {}): Promise<ManifestHead | undefined> {
    const ctx = this.ctx(repository, `manifest ${reference}`);
    const response = await this.transport.send({
      method: 'HEAD',
      url: `/v2/${encodeRepo(repository)}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      scopes: pullScopes(repository),
      ctx,
      signal: options.signal,
    });
    await discardBody(response);
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await this.transport.fail(response, ctx);
    const header = response.headers.get('docker-content-digest');
    const length = response.headers.get('content-length');
    return {
      digest: header && isDigest(header) ? (header as Digest) : undefined,
      mediaType: stripParams(response.headers.get('content-type')),
      size: length !== null && /^\d+$/.test(length) ? Number(length) : undefined,
    };
  }

  /**
   * Streams a blob, verified: the stream fails with E_DIGEST_MISMATCH / E_SIZE_MISMATCH when the
   * bytes are wrong, so nothing may be committed before it ends cleanly.
   */
  async openBlob(
    repository: string,
    descriptor: Pick<Descriptor, 'digest' | 'size'> & { mediaType?: string },
    options: TransferOptions & {
      onBytes?: ((total: number) => void) | undefined;
      /**
       * False skips hashing here (the size is still enforced) for callers that hand the stream to
       * a BlobSink, which verifies anyway: one sha256 pass per blob instead of two.
       */
      verify?: boolean | undefined;
    } = {},
  ): Promise<Readable> {
    const ctx = this.ctx(repository, `blob ${descriptor.digest}`);
    const response = await this.transport.send({
      method: 'GET',
      url: `/v2/${encodeRepo(repository)}/blobs/${descriptor.digest}`,
      scopes: pullScopes(repository),
      ctx,
      signal: options.signal,
    });
    if (response.status !== 200) throw await this.transport.fail(response, ctx);
    return this.verified(response, descriptor, ctx, options.onBytes, options.verify !== false);
  }

  private verified(response: FetchResponse, descriptor: Pick<Descriptor, 'digest' | 'size'>, ctx: RegistryErrorContext, onBytes: ((total: number) => void) | undefined, hash: boolean): Readable {
    const body = response.body;
    const source = body instanceof Readable ? body : Readable.from(body ?? []);
    const expected = { digest: descriptor.digest, size: descriptor.size, what: `blob ${descriptor.digest} of ${ctx.registry}/${ctx.repository ?? ''}` };
    const verifier = hash ? new VerifyingStream(expected) : new SizeLimit(expected);
    const stages: NodeJS.ReadWriteStream[] = [new IdleTimeout(this.transport.bodyIdleTimeoutMs, `${describeContext(ctx)}: no data for ${this.transport.bodyIdleTimeoutMs} ms`)];
    if (onBytes) stages.push(new ByteCounter(onBytes));
    const out = new PassThrough();
    pipeline([source, ...stages, verifier, out], (error) => {
      if (error && !out.destroyed) out.destroy(error);
    });
    return out;
  }

  /** Reads a small blob (a config) whole, verified. */
  async readBlob(repository: string, descriptor: Pick<Descriptor, 'digest' | 'size'>, options: TransferOptions = {}): Promise<Buffer> {
    const stream = await this.openBlob(repository, descriptor, options);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** A BlobReader over one repository of this registry (for copies and inspect). */
  blobReader(repository: string): BlobReader {
    return {
      openBlob: (descriptor: Descriptor, options?: ReadOptions) => this.openBlob(repository, descriptor, { signal: options?.signal }),
      readBlob: (descriptor: Descriptor, options?: ReadOptions) => this.readBlob(repository, descriptor, { signal: options?.signal }),
    };
  }

  /** HEAD on a blob: present or not. */
  async blobExists(repository: string, digest: Digest, options: TransferOptions & { scopes?: readonly string[] } = {}): Promise<boolean> {
    const ctx = this.ctx(repository, `blob ${digest}`);
    const response = await this.transport.send({
      method: 'HEAD',
      url: `/v2/${encodeRepo(repository)}/blobs/${digest}`,
      scopes: options.scopes ?? pullScopes(repository),
      ctx,
      signal: options.signal,
    });
    await discardBody(response);
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw await this.transport.fail(response, ctx);
  }

  /**
   * Asks the registry to link a blob from another repository. Returns `mounted`, or the upload
   * session the registry opened instead (202), or nothing when the mount failed outright.
   */
  async mountBlob(repository: string, digest: Digest, from: string, options: TransferOptions = {}): Promise<{ mounted: true } | { mounted: false; location?: string }> {
    const ctx = this.ctx(repository, `mount of blob ${digest} from ${from}`);
    const query = new URLSearchParams({ mount: digest, from });
    const response = await this.transport.send({
      method: 'POST',
      url: `/v2/${encodeRepo(repository)}/blobs/uploads/?${query.toString()}`,
      headers: { 'content-length': '0' },
      scopes: pushScopes(repository, [from]),
      ctx,
      signal: options.signal,
    });
    await discardBody(response);
    if (response.status === 201) return { mounted: true };
    const location = response.headers.get('location');
    if (response.status === 202 && location) return { mounted: false, location: new URL(location, this.transport.url('/')).toString() };
    // Any mount error (Quay, ECR, permissions on `from`): fall back to a plain upload.
    return { mounted: false };
  }

  /** Uploads a blob (monolithic when small, streamed or chunked when large), resuming or restarting on failure. */
  async uploadBlob(repository: string, descriptor: Descriptor, source: BlobSource, options: BlobUploadCallOptions = {}): Promise<void> {
    await uploadBlob(this.transport, encodeRepo(repository), repository, descriptor, source, { ...this.uploadOptions, ...options });
  }

  /** Uploads bytes as they are produced; their digest and size come back (see streamBlobUpload). */
  async streamBlob(repository: string, bytes: AsyncIterable<Uint8Array>, options: StreamBlobOptions = {}): Promise<StreamedBlob> {
    return streamBlobUpload(this.transport, encodeRepo(repository), repository, bytes, options);
  }

  /** PUTs a manifest under a tag or its digest; `Content-Type` is the manifest's own media type. */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: TransferOptions & { scopes?: readonly string[]; onHeaders?: (get: (name: string) => string | null) => void } = {},
  ): Promise<Digest> {
    const ctx = this.ctx(repository, `manifest ${reference}`);
    const digest = digestOf(bytes);
    if (isDigest(reference)) verifyBytes(bytes, { digest: reference as Digest, what: `manifest ${reference}` });
    const response = await this.transport.send({
      method: 'PUT',
      url: `/v2/${encodeRepo(repository)}/manifests/${reference}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) },
      body: () => bytes,
      scopes: options.scopes ?? pushScopes(repository),
      ctx,
      signal: options.signal,
    });
    if (response.status !== 201 && response.status !== 200) throw await this.transport.fail(response, ctx);
    await discardBody(response);
    options.onHeaders?.((name) => response.headers.get(name));
    const header = response.headers.get('docker-content-digest');
    if (header && isDigest(header) && header !== digest) {
      throw new StrataError('E_DIGEST_MISMATCH', `${describeContext(ctx)}: the registry stored the manifest as ${header}, strata sent ${digest}`, {
        hint: 'the registry rewrote the manifest (some convert media types); use a registry that keeps manifests as sent',
      });
    }
    return digest;
  }

  /**
   * The referrers of a manifest (`GET /v2/<name>/referrers/<digest>`, OCI distribution 1.1), as an
   * index; undefined when the registry has no referrers API (404), so the caller uses the tag schema.
   */
  async getReferrers(repository: string, digest: Digest, options: TransferOptions = {}): Promise<Index | undefined> {
    const ctx = this.ctx(repository, `referrers of ${digest}`);
    const response = await this.transport.send({
      method: 'GET',
      url: `/v2/${encodeRepo(repository)}/referrers/${digest}`,
      headers: { accept: MediaType.OciIndex },
      scopes: pullScopes(repository),
      ctx,
      signal: options.signal,
    });
    if (response.status === 404) {
      await discardBody(response);
      return undefined;
    }
    if (response.status !== 200) throw await this.transport.fail(response, ctx);
    const bytes = await readBytes(response, MANIFEST_MAX_BYTES, `referrers of ${digest}`);
    const parsed = parseManifestOrIndex(bytes, `referrers of ${digest} in ${this.registry}/${repository}`, MediaType.OciIndex);
    if (parsed.kind !== 'index') throw new StrataError('E_MANIFEST_INVALID', `${describeContext(ctx)}: the registry answered with a manifest, not an index`);
    return parsed.index;
  }

  /** Lists tags of a repository (`GET /v2/<name>/tags/list`), following `Link` pagination. */
  async listTags(repository: string, options: TransferOptions = {}): Promise<string[]> {
    const ctx = this.ctx(repository, 'tag list');
    const tags: string[] = [];
    let url: string | undefined = `/v2/${encodeRepo(repository)}/tags/list`;
    for (let page = 0; url !== undefined && page < 1000; page++) {
      const response: FetchResponse = await this.transport.send({ method: 'GET', url, scopes: pullScopes(repository), ctx, signal: options.signal });
      if (response.status !== 200) throw await this.transport.fail(response, ctx);
      const doc = JSON.parse((await readBytes(response, MANIFEST_MAX_BYTES, 'tag list')).toString('utf8')) as { tags?: unknown };
      if (Array.isArray(doc.tags)) tags.push(...doc.tags.filter((t): t is string => typeof t === 'string'));
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers.get('link') ?? '');
      url = link?.[1] ? new URL(link[1], this.transport.url('/')).toString() : undefined;
    }
    return tags;
  }
}
