/**
 * Writes a tiny single-layer OCI image layout by hand (no strata code), so registry tests have
 * an image that an independent tool (skopeo) can push.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tarOf } from './memory-blobs.js';

export interface TinyImage {
  dir: string;
  tag: string;
  manifestDigest: string;
  configDigest: string;
  /** Digest of the gzip blob; `diffId` is the uncompressed tar's. */
  layerDigest: string;
  diffId: string;
  layerSize: number;
  manifest: Buffer;
  config: Buffer;
  layer: Buffer;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function writeBlob(dir: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), data);
  return digest;
}

/** `content` varies the layer so two images do not share blobs. */
export async function writeTinyOciLayout(dir: string, options: { tag?: string; content?: string } = {}): Promise<TinyImage> {
  const tag = options.tag ?? 'latest';
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const tar = await tarOf({ 'hello.txt': options.content ?? 'hello from the strata test harness\n' });
  const diffId = sha256(tar);
  // gzip, because skopeo compresses uncompressed layers on the way to a registry, which would change digests.
  const layer = gzipSync(tar);
  const layerDigest = await writeBlob(dir, layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/hello.txt'] },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created_by: 'strata test harness' }],
    }),
  );
  const configDigest = await writeBlob(dir, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
    }),
  );
  const manifestDigest = await writeBlob(dir, manifest);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: manifestDigest,
        size: manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': tag },
      },
    ],
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { dir, tag, manifestDigest, configDigest, layerDigest, diffId, layerSize: layer.length, manifest, config, layer };
}
