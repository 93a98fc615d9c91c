import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { StrataError } from '../errors/index.js';
import { digestHex, type Digest } from '../digest/index.js';
import { canonicalJsonBytes, layerCompression, type Descriptor, type Manifest } from '../oci/index.js';
import { writeDeterministicTar, type ArchiveMember, type BlobReader } from '../store/index.js';

export interface DockerArchiveImage {
  manifest: Manifest;
  configBytes: Buffer;
  diffIds: readonly Digest[];
  reader: BlobReader;
  /** Familiar names for RepoTags (`app:latest`). */
  repoTags: readonly string[];
}

/**
 * Writes the tarball `docker load` reads: manifest.json, the config as `<hex>.json`, each layer
 * uncompressed as `<diffID hex>.tar`, and the legacy `repositories` file. Layers are decompressed
 * twice (once to learn the size the tar header needs, once to write) so nothing is held in memory
 * or spilled to disk.
 */
export async function writeDockerArchive(file: string, image: DockerArchiveImage): Promise<void> {
  const configName = `${digestHex(image.manifest.config.digest)}.json`;
  const layerNames: string[] = [];
  const members: ArchiveMember[] = [{ name: configName, size: image.configBytes.byteLength, open: async () => Readable.from([image.configBytes]) }];
  for (const [i, layer] of image.manifest.layers.entries()) {
    const diffId = image.diffIds[i];
    if (!diffId) throw new StrataError('E_CONFIG_INVALID', `config lists fewer diff_ids than the manifest has layers`);
    const name = `${digestHex(diffId)}.tar`;
    layerNames.push(name);
    if (members.some((m) => m.name === name)) continue;
    const size = await uncompressedSize(layer, image.reader);
    members.push({ name, size, open: () => openUncompressed(layer, image.reader) });
  }
  const manifestJson = [{ Config: configName, RepoTags: image.repoTags.length ? [...image.repoTags] : null, Layers: layerNames }];
  const manifestBytes = Buffer.from(JSON.stringify(manifestJson));
  members.push({ name: 'manifest.json', size: manifestBytes.byteLength, open: async () => Readable.from([manifestBytes]) });
  const repositories: Record<string, Record<string, string>> = {};
  const top = image.diffIds.length ? digestHex(image.diffIds[image.diffIds.length - 1]!) : digestHex(image.manifest.config.digest);
  for (const tag of image.repoTags) {
    const colon = tag.lastIndexOf(':');
    if (colon <= 0 || tag.slice(colon).includes('/')) continue;
    (repositories[tag.slice(0, colon)] ??= {})[tag.slice(colon + 1)] = top;
  }
  if (Object.keys(repositories).length) {
    const bytes = canonicalJsonBytes(repositories);
    members.push({ name: 'repositories', size: bytes.byteLength, open: async () => Readable.from([bytes]) });
  }
  await writeDeterministicTar(file, members);
}

async function openUncompressed(layer: Descriptor, reader: BlobReader): Promise<Readable> {
  const compression = layerCompression(layer.mediaType);
  const blob = await reader.openBlob(layer);
  if (compression === 'none') return blob;
  if (compression !== 'gzip') {
    blob.destroy();
    throw new StrataError('E_LAYER_INVALID', `layer ${layer.digest} is ${layer.mediaType}; docker-archive output supports gzip and plain tar layers`);
  }
  const gunzip = createGunzip();
  blob.on('error', (e) => gunzip.destroy(e));
  return blob.pipe(gunzip);
}

async function uncompressedSize(layer: Descriptor, reader: BlobReader): Promise<number> {
  if (layerCompression(layer.mediaType) === 'none') return layer.size;
  let size = 0;
  await pipeline(
    await openUncompressed(layer, reader),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        size += chunk.byteLength;
        cb();
      },
    }),
  );
  return size;
}
