import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StrataError, ioError } from '../errors/index.js';
import { digestFile, digestOf, parseDigest, type Digest } from '../digest/index.js';
import { MediaType, canonicalJsonBytes, type Descriptor, type Manifest } from '../oci/index.js';
import {
  FileMapBlobReader,
  LocalStore,
  MemoryBlobReader,
  CompositeBlobReader,
  OciLayout,
  extractImageArchive,
  isGzipFile,
  makeScratchDir,
  type BlobReader,
  type BlobStore,
} from '../store/index.js';
import type { StrataContext } from './context.js';
import { localImageName } from './names.js';
import { resolveImage, type ResolvedImage } from './resolve.js';
import { formatImageLocation, type ImageLocation } from './location.js';

export interface OpenedImage extends ResolvedImage {
  location: ImageLocation;
  /** How to name it in messages. */
  description: string;
  reader: BlobReader;
  /** Releases temp files (unpacked archives). */
  close(): Promise<void>;
}

export interface RegistryOpenOptions {
  /** Keep the manifests and config read in this store and read them from it next time (a build's bases). */
  keepMetadataIn?: BlobStore | undefined;
}

export type RegistryOpener = (ref: string, ctx: StrataContext, options?: RegistryOpenOptions) => Promise<OpenedImage>;

export interface OpenImageOptions {
  /** Opens `docker://` images; wired in by the registry layer. */
  openRegistry?: RegistryOpener;
}

export async function openImage(location: ImageLocation, ctx: StrataContext, options: OpenImageOptions = {}): Promise<OpenedImage> {
  const description = formatImageLocation(location);
  const noop = async (): Promise<void> => undefined;
  switch (location.transport) {
    case 'local': {
      const store = await LocalStore.open(ctx.storeRoot);
      try {
        const top = await findLocal(store, location.name);
        const resolved = await resolveImage(top, store.blobs, description, ctx.platform, ctx.signal);
        return { ...resolved, location, description, reader: store.blobs, close: async () => store.release() };
      } catch (cause) {
        store.release();
        throw cause;
      }
    }
    case 'oci': {
      const layout = await OciLayout.open(location.dir);
      const top = await layout.resolve(location.tag);
      const resolved = await resolveImage(top, layout.blobs, description, ctx.platform, ctx.signal);
      return { ...resolved, location, description, reader: layout.blobs, close: noop };
    }
    case 'oci-archive': {
      const tmp = await unpackTemp(ctx, location.file);
      try {
        const layout = await OciLayout.open(tmp);
        const top = await layout.resolve(location.tag);
        const resolved = await resolveImage(top, layout.blobs, description, ctx.platform, ctx.signal);
        return { ...resolved, location, description, reader: layout.blobs, close: () => rm(tmp, { recursive: true, force: true }) };
      } catch (cause) {
        await rm(tmp, { recursive: true, force: true });
        throw cause;
      }
    }
    case 'docker-archive': {
      const tmp = await unpackTemp(ctx, location.file);
      try {
        const opened = await openDockerArchiveDir(tmp, location.file, location.ref);
        const resolved = await resolveImage(opened.top, opened.reader, description, ctx.platform, ctx.signal);
        return { ...resolved, location, description, reader: opened.reader, close: () => rm(tmp, { recursive: true, force: true }) };
      } catch (cause) {
        await rm(tmp, { recursive: true, force: true });
        throw cause;
      }
    }
    case 'docker': {
      if (!options.openRegistry) throw new StrataError('E_TRANSPORT_INVALID', `${description}: registry access is not available here`);
      return options.openRegistry(location.ref, ctx);
    }
  }
}

async function findLocal(store: LocalStore, name: string): Promise<Descriptor> {
  if (/^sha256:[a-f0-9]{64}$/.test(name)) {
    const found = await store.lookupDigest(parseDigest(name));
    if (found) return found;
  }
  const full = localImageName(name);
  const found = await store.lookup(full);
  if (!found) {
    throw new StrataError('E_NOT_FOUND', `image "${name}" is not in the local store (${store.root})`, {
      hint: '`strata images` lists what is there; use oci:DIR, oci-archive:FILE, docker-archive:FILE or docker://REF for other places',
    });
  }
  return found;
}

async function unpackTemp(ctx: StrataContext, file: string): Promise<string> {
  const base = join(ctx.storeRoot, 'tmp');
  const tmp = await makeScratchDir(base, 'archive');
  try {
    await extractImageArchive(file, tmp);
  } catch (cause) {
    await rm(tmp, { recursive: true, force: true });
    if (cause instanceof StrataError) throw cause;
    throw ioError('read', file, cause);
  }
  return tmp;
}

interface DockerArchiveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/**
 * Reads an unpacked `docker save` archive: manifest.json names the config and the layer tars. The
 * archive has no manifest blob, so an OCI one is made here over the files as they are (gzip or plain
 * tar), as skopeo does when it copies such an archive into an OCI layout.
 */
async function openDockerArchiveDir(dir: string, file: string, ref: string | undefined): Promise<{ top: Descriptor; reader: BlobReader }> {
  let entries: DockerArchiveEntry[];
  try {
    entries = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as DockerArchiveEntry[];
  } catch (cause) {
    throw new StrataError('E_LAYOUT_INVALID', `${file} is not a docker-archive: manifest.json is missing or invalid`, { cause });
  }
  if (!Array.isArray(entries) || entries.length === 0) throw new StrataError('E_LAYOUT_INVALID', `${file}: manifest.json lists no image`);
  let entry: DockerArchiveEntry | undefined;
  if (ref === undefined) {
    if (entries.length > 1) throw new StrataError('E_USAGE', `${file} holds ${entries.length} images; name one as docker-archive:FILE:REF`);
    entry = entries[0];
  } else if (/^@\d+$/.test(ref)) {
    entry = entries[Number(ref.slice(1))];
  } else {
    const wanted = localImageName(ref);
    entry = entries.find((e) => (e.RepoTags ?? []).some((t) => localImageName(t) === wanted));
  }
  if (!entry) throw new StrataError('E_NOT_FOUND', `no image ${ref} in ${file}`);
  const reader = new FileMapBlobReader(file);
  const memory = new MemoryBlobReader();
  const memberPath = (name: string, what: string): string => {
    if (typeof name !== 'string' || name.startsWith('/') || name.split('/').includes('..')) {
      throw new StrataError('E_LAYER_UNSAFE', `${file}: manifest.json names ${what} "${name}" outside the archive`);
    }
    return join(dir, name);
  };
  const configPath = memberPath(entry.Config, 'a config');
  const config = await digestFile(configPath);
  reader.add(config.digest, configPath);
  const layers: Descriptor[] = [];
  for (const layer of entry.Layers) {
    const path = memberPath(layer, 'a layer');
    const { digest, size } = await digestFile(path);
    const gzip = await isGzipFile(path);
    reader.add(digest, path);
    layers.push({ mediaType: gzip ? MediaType.OciLayerGzip : MediaType.OciLayer, digest, size });
  }
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size },
    layers,
  };
  const bytes = canonicalJsonBytes(manifest);
  const digest: Digest = digestOf(bytes);
  memory.add(digest, bytes);
  return { top: { mediaType: MediaType.OciManifest, digest, size: bytes.byteLength }, reader: new CompositeBlobReader([memory, reader]) };
}
