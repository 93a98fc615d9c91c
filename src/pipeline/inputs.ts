import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { StrataError, ioError, isStrataError } from '../errors/index.js';
import type { BaseImage, BuildContextReads, BuiltStage, NamedContext } from '../build/index.js';
import { digestOf } from '../digest/index.js';
import { chooseExecutor, createExecutor, detectExecutors, type CreateExecutorOptions, type Executor, type ExecutorRefusal } from '../exec/index.js';
import type { Image, SerializedImage } from '../image/index.js';
import { MediaType, canonicalJsonBytes, formatPlatform, hostPlatform, parsePlatform, type Descriptor, type Index, type Platform } from '../oci/index.js';
import type { BlobReader, LocalStore, MemoryBlobReader } from '../store/index.js';
import { type RegistryIo, type StrataContext, localImageName, pullToStore, isRegistryConnection, openImage, type OpenedImage } from '../transports/index.js';
import { annotationsFor, indexEntry, type AnnotationSpec } from '../output/index.js';
import { isRemoteContext } from './remote-context.js';

/** What `strata build` resolves before the engine runs: the Dockerfile, executor, platforms, bases and named contexts. */
export interface PlatformBuild {
  platform: Platform;
  image: Image;
  reader: BlobReader;
  serialized: SerializedImage;
  warnings: string[];
  steps: { total: number; cached: number };
  /** The other stages the image needed, as they ended (for SBOMs of build stages). */
  stages: BuiltStage[];
  /** What the build read of its context (for an SBOM of the context). */
  context: BuildContextReads;
}

/** `--platform linux/amd64,linux/arm64`: each one normalized; the host's when none is given. */
export function parsePlatforms(text: string | undefined, fallback: Platform | undefined): Platform[] {
  if (!text) return [fallback ?? hostPlatform()];
  const seen = new Map<string, Platform>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const p = parsePlatform(part);
    seen.set(formatPlatform(p), p);
  }
  if (seen.size === 0) throw new StrataError('E_USAGE', `--platform "${text}" names no platform`);
  return [...seen.values()];
}

/** An OCI index over the per-platform manifests, each entry carrying its platform (and `--annotation`s for it). */
export function indexOver(builds: readonly PlatformBuild[], memory: MemoryBlobReader, annotations: readonly AnnotationSpec[] = []): Descriptor {
  const indexAnnotations = annotationsFor(annotations, 'index');
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: builds.map((b) => indexEntry(b.serialized.manifest.descriptor, b.image, annotations)),
    ...(indexAnnotations ? { annotations: indexAnnotations } : {}),
  };
  const bytes = canonicalJsonBytes(index);
  const descriptor: Descriptor = { mediaType: MediaType.OciIndex, digest: digestOf(bytes), size: bytes.byteLength };
  memory.add(descriptor.digest, bytes);
  return descriptor;
}

/** `--executor`: none (the default), chroot, bwrap, runc, crun or command:PATH. Checked before the build. */
export async function pickExecutor(
  name: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  options: CreateExecutorOptions = {},
): Promise<{ executor: Executor; refused: ExecutorRefusal[] }> {
  // auto: the first that works, found by trying; a RUN-free build still builds when none does.
  if ((name ?? 'auto') === 'auto') return chooseExecutor();
  const executor = createExecutor(name ?? 'auto', { commandEnv: env, ...options });
  const available = await executor.available();
  if (!available.ok) {
    throw new StrataError('E_RUN_UNSUPPORTED', `executor ${executor.name} cannot run here: ${available.reason}`, {
      hint: `executors available on this machine: ${(await detectExecutors()).join(', ') || 'none'}`,
    });
  }
  return { executor, refused: [] };
}

export async function readDockerfile(
  contextDir: string,
  options: { dockerfile?: string | undefined; dockerfileText?: string | undefined },
): Promise<DockerfileSource> {
  if (options.dockerfileText !== undefined) return { file: options.dockerfile ?? 'Dockerfile', text: options.dockerfileText };
  const path =
    options.dockerfile === undefined ? join(contextDir, 'Dockerfile') : isAbsolute(options.dockerfile) ? options.dockerfile : resolve(options.dockerfile);
  try {
    return { file: path, text: await readFile(path, 'utf8') };
  } catch (cause) {
    throw ioError('read Dockerfile', path, cause);
  }
}

/**
 * A FROM image: the local store when it has the name, else the registry. A stored image that lost a
 * blob (moved aside as corrupt when a read found it wrong) is pulled again by digest from where it was
 * pulled, when strata recorded that and the registry can be reached.
 */
export async function openBaseImage(ref: string, ctx: StrataContext, store: LocalStore, io: RegistryIo): Promise<OpenedImage> {
  const name = localImageName(ref);
  const found = await store.lookup(name);
  if (found) {
    let opened: OpenedImage | undefined;
    let failure: unknown;
    try {
      opened = await openImage({ transport: 'local', name: ref }, ctx, io);
      const blobs = [opened.manifest.value.config, ...opened.manifest.value.layers];
      if ((await Promise.all(blobs.map((d) => store.blobs.hasBlob(d)))).every(Boolean)) return opened;
    } catch (cause) {
      if (!isStrataError(cause, 'E_NOT_FOUND') && !isStrataError(cause, 'E_DIGEST_MISMATCH') && !isStrataError(cause, 'E_SIZE_MISMATCH')) throw cause;
      failure = cause;
    }
    const source = await store.sourceOf(found.digest);
    if (!source || !isRegistryConnection(io)) {
      if (opened) return opened;
      throw failure;
    }
    await opened?.close();
    await pullToStore(`docker://${source.repository}@${found.digest}`, ctx, io, { name, allPlatforms: source.allPlatforms });
    return openImage({ transport: 'local', name: ref }, ctx, io);
  }
  if (!io.openRegistry) throw new StrataError('E_NOT_FOUND', `base image ${ref} is not in the local store and registry access is not configured`);
  return io.openRegistry(ref, ctx, { keepMetadataIn: store.blobs });
}

/** A Dockerfile's text and the path it was read from (its name alone when it came as text). */
export interface DockerfileSource {
  file: string;
  text: string;
}

export type Opener = (ref: string, platform: Platform) => Promise<BaseImage>;

/**
 * `--build-context NAME=VALUE`: `docker-image://REF`, `oci-layout://DIR[:TAG]`, a git repository or
 * http(s) tar archive (made local by `openRemote`), or a directory.
 */
export async function openNamedContext(
  name: string,
  value: string,
  platform: Platform,
  openRef: Opener,
  openLayout: Opener,
  contextDir: string,
  openRemote?: (value: string) => Promise<string>,
): Promise<NamedContext> {
  if (value.startsWith('docker-image://')) return { kind: 'image', base: await openRef(value.slice('docker-image://'.length), platform) };
  if (value.startsWith('oci-layout://')) return { kind: 'image', base: await openLayout(value.slice('oci-layout://'.length), platform) };
  if (openRemote !== undefined && value !== '-' && isRemoteContext(value)) return { kind: 'dir', dir: await openRemote(value) };
  const dir = isAbsolute(value) ? value : resolve(contextDir, value);
  try {
    if (!(await stat(dir)).isDirectory()) throw new StrataError('E_USAGE', `--build-context ${name}=${value}: not a directory`);
  } catch (cause) {
    if (isStrataError(cause)) throw cause;
    throw ioError(`open --build-context ${name}`, dir, cause);
  }
  return { kind: 'dir', dir };
}
