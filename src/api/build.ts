import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import slugify from '@sindresorhus/slugify';
import { StrataError, ioError, isStrataError } from '../errors/index.js';
import { LocalStepCache, runBuild, type BaseImage, type BuildEventSink, type NamedContext } from '../build/index.js';
import { LayeredStepCache } from '../build/index.js';
import { createExecutor, detectExecutors, type Executor } from '../exec/index.js';
import { imagePlatform, serializeImage, type Image, type SerializedImage } from '../image/index.js';
import { MediaType, canonicalJsonBytes, formatPlatform, hostPlatform, parsePlatform, type Descriptor, type Index, type Platform } from '../oci/index.js';
import { digestOf } from '../digest/index.js';
import { CompositeBlobReader, LocalStore, MemoryBlobReader, writeFileAtomic, type BlobReader } from '../store/index.js';
import type { RegistryIo } from './append.js';
import { parseBuildOutput, type BuildOutputSpec } from './build-output.js';
import { checkCacheSpecs, exportBuildCache, importBuildCaches, parseCacheExport, parseCacheImport } from './build-cache.js';
import { writeBuildOutputs } from './build-sinks.js';
import type { StrataContext } from './context.js';
import { familiarImageName, localImageName } from './names.js';
import { openImage, type OpenedImage } from './sources.js';
import { parseImageLocation } from './transport.js';

export interface BuildImageOptions {
  contextDir: string;
  /** Path of the Dockerfile (default `<context>/Dockerfile`); with `dockerfileText`, only its name. */
  dockerfile?: string | undefined;
  /** The Dockerfile's text when it does not come from a file (`-f -`). */
  dockerfileText?: string | undefined;
  tags?: readonly string[];
  buildArgs?: Readonly<Record<string, string>>;
  target?: string | undefined;
  platform?: string | undefined;
  labels?: Readonly<Record<string, string>>;
  buildContexts?: Readonly<Record<string, string>>;
  outputs?: readonly string[];
  push?: boolean;
  noCache?: boolean;
  /** `--cache-from` specs (`type=registry,ref=REF`, `type=local,src=DIR`, or a bare REF). */
  cacheFrom?: readonly string[];
  /** `--cache-to` spec (`type=registry,ref=REPO:TAG[,mode=min|max]`, `type=local,dest=DIR[,mode=…]`). */
  cacheTo?: string | undefined;
  /** Relative `type=local` cache directories are resolved against it (default: the process's). */
  cwd?: string | undefined;
  /** Recorded in an exported cache's annotations. */
  strataVersion?: string | undefined;
  executor?: string | undefined;
  /** `--secret` values: `id=ID,src=FILE` or `id=ID,env=VAR` (read from `env`). */
  secrets?: readonly string[];
  /** The environment `env=` secrets are read from. */
  env?: Readonly<Record<string, string | undefined>>;
  /** `--ssh` values: `default`, `ID`, or `ID=SOCKET` (the socket defaults to $SSH_AUTH_SOCK in `env`). */
  ssh?: readonly string[];
  /** Default network for RUN steps. */
  network?: 'none' | 'host';
  iidFile?: string | undefined;
  metadataFile?: string | undefined;
  events?: BuildEventSink | undefined;
  signal?: AbortSignal | undefined;
}

export interface BuildImageResult {
  manifest: Descriptor;
  configDigest: string;
  /** Local-store names the image got (full references). */
  names: string[];
  /** Where it was written, in words (`local store app:latest`, `oci-archive out.tar`, …). */
  written: string[];
  /** True when the names came from the context directory because no -t was given. */
  defaultName: boolean;
  warnings: string[];
  steps: { total: number; cached: number };
  size: number;
}

/**
 * `strata build`: checks every option first (outputs, names, executor), runs the build engine,
 * and only then writes outputs, so a failed build writes nothing and moves no tag.
 */
export async function buildImage(options: BuildImageOptions, ctx: StrataContext, io: RegistryIo = {}): Promise<BuildImageResult> {
  const contextDir = resolve(options.contextDir);
  const outputs: BuildOutputSpec[] = (options.outputs ?? []).map(parseBuildOutput);
  if (options.push) outputs.push({ type: 'image', push: true });
  if (outputs.length === 0) outputs.push({ type: 'image', push: false });
  const tagged = (options.tags ?? []).map(localImageName);
  const defaultName = tagged.length === 0;
  const names = defaultName ? [localImageName(`${slugify(basename(contextDir)) || 'image'}:latest`)] : tagged;
  if (outputs.some((o) => o.type === 'registry' || (o.type === 'image' && o.push)) && defaultName) {
    throw new StrataError('E_USAGE', 'pushing needs a name: give -t REGISTRY/REPOSITORY:TAG');
  }
  const cacheImports = (options.cacheFrom ?? []).map((s) => parseCacheImport(s, options.cwd));
  const cacheExport = options.cacheTo ? parseCacheExport(options.cacheTo, options.cwd) : undefined;
  checkCacheSpecs([...cacheImports, ...(cacheExport ? [cacheExport] : [])], io);
  const executor = await pickExecutor(options.executor, options.env ?? {});
  const platforms = parsePlatforms(options.platform, ctx.platform);
  if (platforms.length > 1 && outputs.some((o) => o.type === 'docker')) {
    throw new StrataError('E_USAGE', '--output type=docker holds one platform; build one --platform at a time for it, or use type=oci');
  }
  const dockerfile = await readDockerfile(contextDir, options);

  const store = await LocalStore.open(ctx.storeRoot);
  const secrets = await prepareSecrets(options.secrets ?? [], options.env ?? {}, store);
  const opened: OpenedImage[] = [];
  const track = (image: OpenedImage): BaseImage => {
    opened.push(image);
    return { image: image.image, reader: image.reader, description: image.description };
  };
  const openBase = async (ref: string, p: Platform): Promise<BaseImage> => track(await openBaseImage(ref, { ...ctx, platform: p }, store, io));
  const openLayout = async (dirAndTag: string, p: Platform): Promise<BaseImage> =>
    track(await openImage(parseImageLocation(`oci:${dirAndTag}`), { ...ctx, platform: p }, io));
  try {
    const cacheWarnings: string[] = [];
    const warnCache = (message: string): void => {
      cacheWarnings.push(message);
      options.events?.({ type: 'warning', message });
    };
    const imported = options.noCache ? [] : await importBuildCaches(cacheImports, io, warnCache, options.signal);
    const layered = cacheImports.length || cacheExport
      ? new LayeredStepCache({ local: LocalStepCache.forStore(store.root, store.blobs), imported, reads: options.noCache !== true })
      : undefined;
    const builds: PlatformBuild[] = [];
    // One engine run per platform: each resolves its bases for its platform and sets the platform
    // ARGs; content-identical layers come out with the same digest and are stored and pushed once.
    for (const platform of platforms) {
      const outcome = await runBuild(
        {
          dockerfile,
          contextDir,
          buildArgs: options.buildArgs ?? {},
          target: options.target,
          platform,
          buildPlatform: hostPlatform(),
          labels: options.labels ?? {},
          buildContexts: options.buildContexts ?? {},
          noCache: options.noCache === true,
          sourceDateEpoch: ctx.sourceDateEpoch,
          secrets: secrets.files,
          ssh: sshSockets(options.ssh ?? [], options.env ?? {}),
          network: options.network ?? 'none',
        },
        {
          store,
          openImage: openBase,
          openNamedContext: (name, value, p) => openNamedContext(name, value, p, openBase, openLayout, contextDir),
          executor,
          now: ctx.now,
          events: options.events,
          signal: options.signal,
          privileged: ctx.privileged === true,
          scratchDir: ctx.scratchDir,
          ...(layered ? { stepCache: layered, cacheReaders: layered.readers } : {}),
        },
      );
      builds.push({ platform, image: outcome.image, reader: outcome.reader, serialized: serializeImage(outcome.image), warnings: outcome.warnings, steps: outcome.steps });
    }
    const memory = new MemoryBlobReader();
    for (const b of builds) {
      memory.add(b.serialized.config.descriptor.digest, b.serialized.config.bytes).add(b.serialized.manifest.descriptor.digest, b.serialized.manifest.bytes);
    }
    const reader = new CompositeBlobReader([memory, store.blobs, ...builds.map((b) => b.reader)]);
    const top = builds.length === 1 ? builds[0]!.serialized.manifest.descriptor : indexOver(builds, memory);
    const content = { descriptor: top, reader };
    const written = await writeBuildOutputs(outputs, content, builds.map((b) => ({ platform: b.platform, image: b.image })), { store, names, ctx: { ...ctx, platform: platforms[0] }, io, signal: options.signal });
    if (cacheExport && layered) {
      const cacheWritten = await exportBuildCache(cacheExport, { cache: layered, finals: builds.map((b) => b.image), reader, io, strataVersion: options.strataVersion, warn: warnCache });
      if (cacheWritten) written.push(cacheWritten);
    }
    const size = top.size + builds.reduce((n, b) => n + b.serialized.manifest.descriptor.size + b.serialized.config.descriptor.size + b.image.layers.reduce((m, l) => m + l.descriptor.size, 0), 0);
    const result: BuildImageResult = {
      manifest: top,
      // For a multi-platform build the index stands for the image, as buildx writes it.
      configDigest: builds.length === 1 ? builds[0]!.serialized.config.descriptor.digest : top.digest,
      names,
      written,
      defaultName,
      warnings: [...new Set([...cacheWarnings, ...builds.flatMap((b) => b.warnings)])],
      steps: { total: builds.reduce((n, b) => n + b.steps.total, 0), cached: builds.reduce((n, b) => n + b.steps.cached, 0) },
      size,
    };
    if (options.iidFile) await writeFileAtomic(options.iidFile, result.configDigest);
    if (options.metadataFile) {
      await writeFileAtomic(options.metadataFile, `${JSON.stringify({
        'containerimage.config.digest': result.configDigest,
        'containerimage.digest': result.manifest.digest,
        'containerimage.descriptor': result.manifest,
        'image.name': names.map(familiarImageName).join(','),
      }, null, 2)}\n`);
    }
    return result;
  } finally {
    await Promise.all(opened.map((o) => o.close()));
    await secrets.cleanup();
  }
}

function sshSockets(specs: readonly string[], env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const id = eq < 0 ? spec : spec.slice(0, eq);
    const socket = eq < 0 ? env.SSH_AUTH_SOCK : resolve(spec.slice(eq + 1));
    if (!id || !socket) throw new StrataError('E_USAGE', `--ssh ${spec}: no agent socket (set SSH_AUTH_SOCK or give ${id || 'default'}=SOCKET)`);
    out[id] = socket;
  }
  return out;
}

/**
 * `--secret id=ID,src=FILE` is used in place; `env=VAR` is written to a private file (mode 0600) for
 * the build's duration. Secret values never reach the engine's keys, history or layers.
 */
async function prepareSecrets(specs: readonly string[], env: Readonly<Record<string, string | undefined>>, store: LocalStore): Promise<{ files: Record<string, string>; cleanup: () => Promise<void> }> {
  const files: Record<string, string> = {};
  let dir: string | undefined;
  for (const spec of specs) {
    const fields = new Map(spec.split(',').map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? [p, ''] as const : [p.slice(0, eq), p.slice(eq + 1)] as const;
    }));
    const id = fields.get('id');
    if (!id) throw new StrataError('E_USAGE', `--secret ${spec.replace(/=.*/, '=…')}: needs id=ID`);
    const src = fields.get('src') ?? fields.get('source');
    const envName = fields.get('env');
    if (src) {
      files[id] = resolve(src);
      await stat(files[id]).catch((cause: unknown) => {
        throw ioError(`read --secret ${id}`, files[id]!, cause);
      });
    } else {
      const name = envName ?? id;
      const value = env[name];
      if (value === undefined) throw new StrataError('E_USAGE', `--secret id=${id}: environment variable ${name} is not set`);
      if (!dir) {
        await mkdir(store.tmpDir, { recursive: true });
        dir = await mkdtemp(join(store.tmpDir, 'secrets-'));
      }
      const file = join(dir, id.replace(/[^A-Za-z0-9._-]/g, '_'));
      await writeFile(file, value, { mode: 0o600 });
      files[id] = file;
    }
  }
  return { files, cleanup: async () => { if (dir) await rm(dir, { recursive: true, force: true }); } };
}

interface PlatformBuild {
  platform: Platform;
  image: Image;
  reader: BlobReader;
  serialized: SerializedImage;
  warnings: string[];
  steps: { total: number; cached: number };
}

/** `--platform linux/amd64,linux/arm64`: each one normalized; the host's when none is given. */
function parsePlatforms(text: string | undefined, fallback: Platform | undefined): Platform[] {
  if (!text) return [fallback ?? hostPlatform()];
  const seen = new Map<string, Platform>();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const p = parsePlatform(part);
    seen.set(formatPlatform(p), p);
  }
  if (seen.size === 0) throw new StrataError('E_USAGE', `--platform "${text}" names no platform`);
  return [...seen.values()];
}

/** An OCI index over the per-platform manifests, each entry carrying its platform. */
function indexOver(builds: readonly PlatformBuild[], memory: MemoryBlobReader): Descriptor {
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: builds.map((b) => ({ ...b.serialized.manifest.descriptor, platform: imagePlatform(b.image) })),
  };
  const bytes = canonicalJsonBytes(index);
  const descriptor: Descriptor = { mediaType: MediaType.OciIndex, digest: digestOf(bytes), size: bytes.byteLength };
  memory.add(descriptor.digest, bytes);
  return descriptor;
}

/** `--executor`: none (the default), chroot, bwrap, runc, crun or command:PATH. Checked before the build. */
async function pickExecutor(name: string | undefined, env: Readonly<Record<string, string | undefined>>): Promise<Executor> {
  const executor = createExecutor(name ?? 'none', { commandEnv: env });
  const available = await executor.available();
  if (!available.ok) {
    throw new StrataError('E_RUN_UNSUPPORTED', `executor ${executor.name} cannot run here: ${available.reason}`, {
      hint: `executors available on this machine: ${(await detectExecutors()).join(', ') || 'none'}`,
    });
  }
  return executor;
}

async function readDockerfile(contextDir: string, options: BuildImageOptions): Promise<{ file: string; text: string }> {
  if (options.dockerfileText !== undefined) return { file: options.dockerfile ?? 'Dockerfile', text: options.dockerfileText };
  const path = options.dockerfile === undefined ? join(contextDir, 'Dockerfile') : isAbsolute(options.dockerfile) ? options.dockerfile : resolve(options.dockerfile);
  try {
    return { file: path, text: await readFile(path, 'utf8') };
  } catch (cause) {
    throw ioError('read Dockerfile', path, cause);
  }
}

/** A FROM image: the local store when it has the name, else the registry. */
async function openBaseImage(ref: string, ctx: StrataContext, store: LocalStore, io: RegistryIo): Promise<OpenedImage> {
  const name = localImageName(ref);
  if (await store.lookup(name)) return openImage({ transport: 'local', name: ref }, ctx, io);
  if (!io.openRegistry) throw new StrataError('E_NOT_FOUND', `base image ${ref} is not in the local store and registry access is not configured`);
  return io.openRegistry(ref, ctx);
}

type Opener = (ref: string, platform: Platform) => Promise<BaseImage>;

/** `--build-context NAME=VALUE`: `docker-image://REF`, `oci-layout://DIR[:TAG]`, or a directory. */
async function openNamedContext(name: string, value: string, platform: Platform, openRef: Opener, openLayout: Opener, contextDir: string): Promise<NamedContext> {
  if (value.startsWith('docker-image://')) return { kind: 'image', base: await openRef(value.slice('docker-image://'.length), platform) };
  if (value.startsWith('oci-layout://')) return { kind: 'image', base: await openLayout(value.slice('oci-layout://'.length), platform) };
  const dir = isAbsolute(value) ? value : resolve(contextDir, value);
  try {
    if (!(await stat(dir)).isDirectory()) throw new StrataError('E_USAGE', `--build-context ${name}=${value}: not a directory`);
  } catch (cause) {
    if (isStrataError(cause)) throw cause;
    throw ioError(`open --build-context ${name}`, dir, cause);
  }
  return { kind: 'dir', dir };
}
