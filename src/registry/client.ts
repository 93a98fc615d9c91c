import { Readable } from 'node:stream';
import { StrataError } from '../errors/index.js';
import { digestAlgorithm, digestOf, isDigest, verifyBytes, type Digest } from '../digest/index.js';
import { MediaType, parseManifestOrIndex, type Descriptor, type Index, type ParsedManifest } from '../oci/index.js';
import type { BlobReader, ReadOptions } from '../store/types.js';
import { findDeadline } from './deadlines.js';
import { describeContext, redactUrl, stallError, type RegistryErrorContext } from './errors.js';
import { discardBody, readBytes, type FetchResponse } from './http.js';
import { isRetryableError } from './retry.js';
import { pullScopes, pushScopes, repositoryScope } from './scopes.js';
import { RegistryTransport, type RegistryConnectionOptions } from './transport.js';
import { BodyFailure, resumingBody, verifiedBody, withBodyRetries } from './blob-body.js';
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

/** A repository path with each component URL-encoded. */
export function encodeRepository(repository: string): string {
  return repository.split('/').map(encodeURIComponent).join('/');
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
    const path = `/v2/${encodeRepository(repository)}/manifests/${reference}`;
    const { response, bytes } = await withBodyRetries(this.transport, path, options.signal, async () => {
      const response = await this.transport.send({
        method: 'GET',
        url: path,
        headers: { accept: MANIFEST_ACCEPT },
        scopes: options.scopes ?? pullScopes(repository),
        ctx,
        signal: options.signal,
      });
      if (response.status !== 200) throw await this.transport.fail(response, ctx);
      try {
        return { response, bytes: await readBytes(response, MANIFEST_MAX_BYTES, `manifest ${reference}`) };
      } catch (cause) {
        const deadline = findDeadline(cause);
        if (deadline) throw new BodyFailure(stallError(ctx, 'GET', this.transport.url(path), deadline));
        if (isRetryableError(cause)) {
          const why = (cause as { code?: string }).code ?? (cause as Error).message;
          throw new BodyFailure(
            new StrataError('E_REGISTRY_UNREACHABLE', `${describeContext(ctx)}: GET ${redactUrl(this.transport.url(path))}: the response broke off: ${why}`, {
              cause,
            }),
          );
        }
        throw new StrataError('E_MANIFEST_INVALID', `${describeContext(ctx)}: ${(cause as Error).message}`, { cause });
      }
    });
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
      url: `/v2/${encodeRepository(repository)}/manifests/${reference}`,
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
    const path = `/v2/${encodeRepository(repository)}/blobs/${descriptor.digest}`;
    const response = await this.transport.send({ method: 'GET', url: path, scopes: pullScopes(repository), ctx, signal: options.signal });
    if (response.status !== 200) throw await this.transport.fail(response, ctx);
    const source = Readable.from(resumingBody(this.transport, response, path, repository, descriptor, ctx, options.signal), { objectMode: false });
    return verifiedBody(source, descriptor, ctx, this.transport.url(path), options.onBytes, options.verify !== false);
  }

  /** Reads a small blob (a config) whole, verified; a body cut short or stalled is asked for again. */
  async readBlob(repository: string, descriptor: Pick<Descriptor, 'digest' | 'size'>, options: TransferOptions = {}): Promise<Buffer> {
    return withBodyRetries(this.transport, `/v2/${encodeRepository(repository)}/blobs/${descriptor.digest}`, options.signal, async () => {
      const stream = await this.openBlob(repository, descriptor, options);
      const chunks: Buffer[] = [];
      try {
        for await (const chunk of stream) chunks.push(chunk as Buffer);
      } catch (error) {
        throw new BodyFailure(error);
      }
      return Buffer.concat(chunks);
    });
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
      url: `/v2/${encodeRepository(repository)}/blobs/${digest}`,
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
  async mountBlob(
    repository: string,
    digest: Digest,
    from: string,
    options: TransferOptions = {},
  ): Promise<{ mounted: true } | { mounted: false; location?: string }> {
    const ctx = this.ctx(repository, `mount of blob ${digest} from ${from}`);
    const query = new URLSearchParams({ mount: digest, from });
    const response = await this.transport.send({
      method: 'POST',
      url: `/v2/${encodeRepository(repository)}/blobs/uploads/?${query.toString()}`,
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
    await uploadBlob(this.transport, encodeRepository(repository), repository, descriptor, source, { ...this.uploadOptions, ...options });
  }

  /** Uploads bytes as they are produced; their digest and size come back (see streamBlobUpload). */
  async streamBlob(repository: string, bytes: AsyncIterable<Uint8Array>, options: StreamBlobOptions = {}): Promise<StreamedBlob> {
    return streamBlobUpload(this.transport, encodeRepository(repository), repository, bytes, options);
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
      url: `/v2/${encodeRepository(repository)}/manifests/${reference}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) },
      body: () => bytes,
      scopes: options.scopes ?? pushScopes(repository),
      ctx,
      signal: options.signal,
    });
    if (response.status === 415 && (mediaType === MediaType.OciManifest || mediaType === MediaType.OciIndex)) {
      await discardBody(response);
      throw new StrataError('E_REGISTRY_UNSUPPORTED', `${describeContext(ctx)}: the registry refuses OCI media types (HTTP 415 for ${mediaType})`, {
        hint: 'push with Docker schema 2 manifests: `strata push --format v2s2`, `strata copy --format v2s2`, or `-o type=registry,oci-mediatypes=false` for a build (the image digest changes)',
      });
    }
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
      url: `/v2/${encodeRepository(repository)}/referrers/${digest}`,
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

  /**
   * Deletes a manifest by digest (`DELETE /v2/<name>/manifests/<digest>`). Registries that refuse
   * deletes answer 405 (distribution without `storage.delete.enabled`); that becomes one clear error.
   */
  async deleteManifest(repository: string, digest: Digest, options: TransferOptions = {}): Promise<void> {
    const ctx = this.ctx(repository, `manifest ${digest}`);
    const response = await this.transport.send({
      method: 'DELETE',
      url: `/v2/${encodeRepository(repository)}/manifests/${digest}`,
      scopes: [repositoryScope(repository, ['delete', 'pull'])],
      ctx,
      signal: options.signal,
    });
    if (response.status === 202 || response.status === 200 || response.status === 204) {
      await discardBody(response);
      return;
    }
    if (response.status === 405) {
      await discardBody(response);
      throw new StrataError('E_REGISTRY_UNSUPPORTED', `${describeContext(ctx)}: the registry does not allow deleting manifests (HTTP 405)`, {
        hint: 'deletes must be enabled on the registry (distribution: storage.delete.enabled, or REGISTRY_STORAGE_DELETE_ENABLED=true); some registries delete only through their own web UI or API',
      });
    }
    throw await this.transport.fail(response, ctx);
  }

  /**
   * Lists tags of a repository (`GET /v2/<name>/tags/list`), following `Link` pagination. `pageSize`
   * asks for pages of that many tags (`?n=`); without it the registry picks.
   */
  async listTags(repository: string, options: TransferOptions & { pageSize?: number | undefined } = {}): Promise<string[]> {
    const ctx = this.ctx(repository, 'tag list');
    const tags: string[] = [];
    let url: string | undefined = `/v2/${encodeRepository(repository)}/tags/list${options.pageSize !== undefined ? `?n=${options.pageSize}` : ''}`;
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
