/**
 * A Map-backed BlobStore for registry tests, plus builders for tiny images (gzip tar layer,
 * config, manifest, index) whose bytes the tests control. putBlob verifies before anything
 * becomes visible, like the real store.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import type { Digest } from '../../src/digest/index.js';
import { MediaType, type Descriptor, type Platform } from '../../src/oci/index.js';
import type { BlobStore, ReadOptions } from '../../src/store/types.js';
import { StrataError } from '../../src/errors/index.js';

export function sha256(data: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export class MemoryBlobStore implements BlobStore {
  readonly blobs = new Map<string, Buffer>();
  /** putBlob calls that failed (the blob was refused). */
  failedPuts = 0;

  async hasBlob(d: Pick<Descriptor, 'digest'>): Promise<boolean> {
    return this.blobs.has(d.digest);
  }

  async putBlob(d: Pick<Descriptor, 'digest' | 'size'>, data: Readable | AsyncIterable<Uint8Array> | Uint8Array, _options?: ReadOptions): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      if (data instanceof Uint8Array) chunks.push(Buffer.from(data));
      else for await (const chunk of data) chunks.push(Buffer.from(chunk as Uint8Array));
    } catch (error) {
      this.failedPuts++;
      throw error;
    }
    const bytes = Buffer.concat(chunks);
    const actual = sha256(bytes);
    if (actual !== d.digest || bytes.byteLength !== d.size) {
      this.failedPuts++;
      throw new StrataError('E_DIGEST_MISMATCH', `memory store: ${d.digest} got ${actual} (${bytes.byteLength} bytes)`);
    }
    this.blobs.set(d.digest, bytes);
  }

  async ingestBlob(data: Readable | AsyncIterable<Uint8Array>): Promise<{ digest: Digest; size: number }> {
    const chunks: Buffer[] = [];
    for await (const chunk of data) chunks.push(Buffer.from(chunk as Uint8Array));
    const bytes = Buffer.concat(chunks);
    const digest = sha256(bytes);
    this.blobs.set(digest, bytes);
    return { digest, size: bytes.byteLength };
  }

  async openBlob(d: Descriptor): Promise<Readable> {
    const bytes = this.get(d.digest);
    // Several chunks, so streaming code paths are exercised.
    const parts: Buffer[] = [];
    for (let i = 0; i < bytes.byteLength; i += 64 * 1024) parts.push(bytes.subarray(i, i + 64 * 1024));
    return Readable.from(parts);
  }

  async readBlob(d: Descriptor): Promise<Buffer> {
    return this.get(d.digest);
  }

  /** Adds bytes directly and returns their descriptor. */
  add(bytes: Buffer, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
    const digest = sha256(bytes);
    this.blobs.set(digest, bytes);
    return { mediaType, digest, size: bytes.byteLength, ...extra };
  }

  get(digest: string): Buffer {
    const bytes = this.blobs.get(digest);
    if (!bytes) throw new StrataError('E_NOT_FOUND', `memory store: no blob ${digest}`);
    return bytes;
  }
}

export async function tarOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    p.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, content);
  }
  p.finalize();
  return done;
}

export interface TestImageOptions {
  files?: Record<string, string | Buffer> | undefined;
  /** Extra layers of the given sizes, pseudo-random bytes (so they do not compress). */
  randomLayers?: number[] | undefined;
  platform?: Platform | undefined;
  format?: 'oci' | 'docker' | undefined;
  /** Content that makes the config (hence digest) unique per test. */
  label?: string | undefined;
}

export interface TestImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
}

/** Builds a single-platform image into the store. */
export async function addTestImage(store: MemoryBlobStore, options: TestImageOptions = {}): Promise<TestImage> {
  const docker = options.format === 'docker';
  const layerType = docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip;
  const tars: Buffer[] = [await tarOf(options.files ?? { 'hello.txt': `hello ${options.label ?? ''}\n` })];
  for (const size of options.randomLayers ?? []) {
    const bytes = randomBytes(size);
    tars.push(await tarOf({ 'random.bin': bytes }));
  }
  const layers: Descriptor[] = [];
  const diffIds: Digest[] = [];
  for (const tar of tars) {
    diffIds.push(sha256(tar));
    // Random-ish data barely compresses; level 1 keeps big test layers fast.
    layers.push(store.add(gzipSync(tar, { level: 1 }), layerType));
  }
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const configDoc = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Labels: { 'test.label': options.label ?? '' } },
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  const config = store.add(Buffer.from(JSON.stringify(configDoc)), docker ? MediaType.DockerConfig : MediaType.OciConfig);
  const manifestDoc = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
    config,
    layers,
  };
  const manifest = store.add(Buffer.from(JSON.stringify(manifestDoc, null, 2)), manifestDoc.mediaType);
  return { manifest, config, layers };
}

/** Builds an index over per-platform images (plus an attestation entry when asked). */
export async function addTestIndex(
  store: MemoryBlobStore,
  platforms: Platform[],
  options: { format?: 'oci' | 'docker'; label?: string; attestation?: boolean } = {},
): Promise<{ index: Descriptor; images: TestImage[] }> {
  const docker = options.format === 'docker';
  const images: TestImage[] = [];
  for (const platform of platforms) {
    images.push(
      await addTestImage(store, { platform, format: options.format, label: `${options.label ?? ''}-${platform.architecture}${platform.variant ?? ''}` }),
    );
  }
  const manifests: Descriptor[] = images.map((img, i) => ({ ...img.manifest, platform: platforms[i] as Platform }));
  if (options.attestation) {
    const att = await addTestImage(store, { platform: { os: 'unknown', architecture: 'unknown' }, label: `${options.label ?? ''}-att` });
    manifests.push({
      ...att.manifest,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    });
  }
  const mediaType = docker ? MediaType.DockerManifestList : MediaType.OciIndex;
  const index = store.add(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests })), mediaType);
  return { index, images };
}
