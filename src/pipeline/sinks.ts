import { chmod, mkdtemp, rename, rm, stat, readdir, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StrataError } from '../errors/index.js';
import type { Image } from '../image/index.js';
import { formatPlatform, type Platform } from '../oci/index.js';
import { convertToDockerV2s2 } from '../registry/index.js';
import { extractImageToDirectory, walkLayerTree, writeLayer } from '../layer/index.js';
import { writeToLocalStore, writeToOciLayout, writeOciArchive, type ImageContent } from '../output/index.js';
import { FileBlobStore, makeScratchDir, moveFileAtomic, type LocalStore } from '../store/index.js';
import { type RegistryIo, type StrataContext, writeImage, familiarImageName } from '../transports/index.js';
import type { BuildOutputSpec } from './output-spec.js';

export interface SinkContext {
  store: LocalStore;
  /** Full local-store names (`docker.io/library/app:latest`). */
  names: readonly string[];
  ctx: StrataContext;
  io: RegistryIo;
  signal?: AbortSignal | undefined;
}

/** Writes a built image to every `--output`; returns what was written, in words. */
export interface PlatformImage {
  platform: Platform;
  image: Image;
}

export async function writeBuildOutputs(
  outputs: readonly BuildOutputSpec[],
  content: ImageContent,
  images: readonly PlatformImage[],
  sc: SinkContext,
): Promise<string[]> {
  const written: string[] = [];
  for (const out of outputs) {
    switch (out.type) {
      case 'image': {
        const names = out.names ?? sc.names;
        await writeToLocalStore(sc.store, content, names, sc.signal);
        written.push(...names.map((n) => `local store ${familiarImageName(n)}`));
        if (out.push) written.push(...(await push(names, content, sc, out.ociMediaTypes !== false)));
        break;
      }
      case 'registry':
        written.push(...(await push(out.names ?? sc.names, content, sc, out.ociMediaTypes !== false)));
        break;
      case 'oci': {
        const tag = firstTag(sc.names);
        // Blobs the store holds are hard-linked where the file system allows, not copied.
        const linkFrom = { linkFrom: sc.store.blobs, signal: sc.signal };
        if (out.tar !== false) await writeOciArchive(out.dest, content, tag, join(sc.store.root, 'tmp'), linkFrom);
        else await writeToOciLayout(out.dest, content, tag, linkFrom);
        written.push(`${out.tar !== false ? 'oci-archive' : 'oci layout'} ${out.dest}`);
        break;
      }
      case 'docker':
        await writeImage({ transport: 'docker-archive', file: out.dest }, content, sc.ctx, { defaultRepoTags: sc.names.map(familiarImageName) });
        written.push(`docker-archive ${out.dest}`);
        break;
      case 'local':
      case 'tar':
        // Several platforms go to one subdirectory each (linux_amd64/, linux_arm64/), as buildx does.
        for (const { platform, image } of images) {
          const dest = images.length === 1 ? out.dest : join(out.dest, formatPlatform(platform).replace(/\//g, '_'));
          if (out.type === 'local') await writeRootfsDirectory(dest, image, content, sc);
          else await writeRootfsTar(images.length === 1 ? dest : `${dest}.tar`, image, content, sc);
          written.push(`root filesystem${out.type === 'tar' ? ' tar' : ''} ${dest}`);
        }
        break;
    }
  }
  return written;
}

function firstTag(names: readonly string[]): string | undefined {
  const name = names[0];
  if (!name) return undefined;
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
}

/** `ociMediaTypes` false (buildx's `oci-mediatypes=false`): Docker schema 2 manifests over the same blobs. */
async function push(names: readonly string[], image: ImageContent, sc: SinkContext, ociMediaTypes: boolean): Promise<string[]> {
  if (!sc.io.writeRegistry) throw new StrataError('E_TRANSPORT_INVALID', 'registry access is not available here');
  const content = ociMediaTypes ? image : await convertToDockerV2s2(image.descriptor, image.reader);
  const out: string[] = [];
  for (const name of names) {
    await sc.io.writeRegistry(name, content, sc.ctx);
    out.push(`registry ${name}`);
  }
  return out;
}

/** The final root filesystem in a directory: unpacked beside it, then renamed into place. */
async function writeRootfsDirectory(dest: string, image: Image, content: ImageContent, sc: SinkContext): Promise<void> {
  const existing = await readdir(dest).catch(() => undefined);
  if (existing && existing.length > 0)
    throw new StrataError('E_EXISTS', `--output type=local,dest=${dest}: the directory is not empty`, { hint: 'give a new or empty directory' });
  await mkdir(dirname(dest), { recursive: true });
  const tmp = await mkdtemp(join(dirname(dest), '.strata-rootfs-'));
  try {
    // mkdtemp makes 0700; a root filesystem's top is 0755 unless a layer says otherwise.
    await chmod(tmp, 0o755);
    await extractImageToDirectory(
      image.layers.map((l) => l.descriptor),
      content.reader,
      tmp,
      {
        privileged: sc.ctx.privileged === true,
        signal: sc.signal,
      },
    );
    if (existing) await rm(dest, { recursive: true, force: true });
    await rename(tmp, dest);
  } catch (cause) {
    await rm(tmp, { recursive: true, force: true });
    throw cause;
  }
}

/** The final root filesystem as one reproducible tar (the layer writer's rules, uncompressed). */
async function writeRootfsTar(dest: string, image: Image, content: ImageContent, sc: SinkContext): Promise<void> {
  const work = await makeScratchDir(join(sc.store.root, 'tmp'), 'rootfs-tar');
  try {
    const root = join(work, 'rootfs');
    await mkdir(root);
    await extractImageToDirectory(
      image.layers.map((l) => l.descriptor),
      content.reader,
      root,
      {
        privileged: sc.ctx.privileged === true,
        signal: sc.signal,
      },
    );
    const blobs = new FileBlobStore(join(work, 'blobs'));
    const layer = await writeLayer(await walkLayerTree(root), { compression: 'none', ownership: 'keep', sourceDateEpoch: sc.ctx.sourceDateEpoch }, blobs);
    await mkdir(dirname(dest), { recursive: true });
    await moveFileAtomic(blobs.blobPath(layer.descriptor.digest), dest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  await stat(dest);
}
