import { basename, resolve } from 'node:path';
import { StrataError } from '../errors/index.js';
import { LayeredStepCache, LocalStepCache, runBuild, type BaseImage, type BuildEventSink } from '../build/index.js';
import type { Digest } from '../digest/index.js';
import { serializeImage } from '../image/index.js';
import type { LayerResult } from '../layer/index.js';
import { hostPlatform, type Descriptor, type Platform } from '../oci/index.js';
import { CompositeBlobReader, LocalStore, MemoryBlobReader, writeFileAtomic, type BlobReader } from '../store/index.js';
import type { RegistryIo } from './append.js';
import { checkCacheSpecs, exportBuildCache, importBuildCaches, parseCacheExport, parseCacheImport } from './build-cache.js';
import { indexOver, openBaseImage, openNamedContext, parsePlatforms, pickExecutor, readDockerfile, type PlatformBuild } from './build-inputs.js';
import { parseAttestOptions } from '../attest/index.js';
import { annotateManifest, annotationsFor, needsIndex, parseAnnotation } from './annotations.js';
import { AttestRecorder, attestBuilds, parseAttestTo, writeAttestationExtras } from './build-attest.js';
import { parseBuildOutput, type BuildOutputSpec } from './build-output.js';
import { prepareSecrets, sshSockets } from './build-secrets.js';
import { writeBuildOutputs } from './build-sinks.js';
import { pushNames, uploadingIngester } from './build-uploads.js';
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
  /** gzip level 0-9 for new layers (`--compression-level`); default 6 with barely compressible parts stored. */
  compressionLevel?: number | undefined;
  /** Compression of new layers (`--compression`); default gzip. zstd runs the `zstd` program. */
  compression?: 'gzip' | 'zstd' | 'none' | undefined;
  iidFile?: string | undefined;
  metadataFile?: string | undefined;
  /** `--sbom`, `--provenance`, `--attest` and `--attest-to`, as buildx takes them (see attest/options.ts). */
  sbom?: string | undefined;
  provenance?: string | undefined;
  attest?: readonly string[] | undefined;
  attestTo?: string | undefined;
  /** `--annotation [TYPE[,TYPE][PLATFORM]:]KEY=VALUE`, as buildx takes it (see annotations.ts). */
  annotations?: readonly string[] | undefined;
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
  /** How many times a base image's layer blob was opened (0 for a registry-level build). */
  baseLayersRead: number;
  /** Whether a base came from a registry (so a registry-level build was possible). */
  registryBase: boolean;
}

/**
 * `strata build`: checks every option first (outputs, names, executor), runs the build engine,
 * and only then writes outputs, so a failed build writes nothing and moves no tag.
 */
export async function buildImage(options: BuildImageOptions, ctx: StrataContext, io: RegistryIo = {}): Promise<BuildImageResult> {
  const contextDir = resolve(options.contextDir);
  const outputs: BuildOutputSpec[] = (options.outputs ?? []).map(parseBuildOutput);
  // --push is type=registry, as in buildx: pushed, not also copied into the local store (which would
  // download a registry base's layers for nothing).
  if (options.push) outputs.push({ type: 'registry' });
  if (outputs.length === 0) outputs.push({ type: 'image', push: false });
  const tagged = (options.tags ?? []).map(localImageName);
  const defaultName = tagged.length === 0;
  const names = defaultName ? [localImageName(`${(await defaultRepository(contextDir)) || 'image'}:latest`)] : tagged;
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
  if (options.compression === 'zstd' && outputs.some((o) => o.type === 'docker')) {
    throw new StrataError('E_USAGE', '--output type=docker cannot hold zstd layers (Docker\'s format has no zstd layer type)', {
      hint: 'use --output type=oci, or --compression gzip',
    });
  }
  const dockerfile = await readDockerfile(contextDir, options);
  const attest = new AttestRecorder(parseAttestOptions(options));
  const attestTo = parseAttestTo(options.attestTo);
  const annotations = (options.annotations ?? []).map(parseAnnotation);

  const store = await LocalStore.open(ctx.storeRoot);
  const secrets = await prepareSecrets(options.secrets ?? [], options.env ?? {}, store);
  const opened: OpenedImage[] = [];
  // Base layers read for any reason (a COPY's look at the base, RUN, an output elsewhere), counted
  // so the summary can say when a build never downloaded one.
  const baseLayers = { opened: 0, fromRegistry: false };
  const track = (image: OpenedImage): BaseImage => {
    opened.push(image);
    if (image.location.transport === 'docker') baseLayers.fromRegistry = true;
    const layerDigests = new Set(image.image.layers.map((l) => l.descriptor.digest));
    const reader: BlobReader = {
      openBlob: (d, o) => {
        if (layerDigests.has(d.digest)) baseLayers.opened++;
        return image.reader.openBlob(d, o);
      },
      readBlob: (d, o) => image.reader.readBlob(d, o),
    };
    return { image: image.image, reader, description: image.description };
  };
  const openBase = async (ref: string, p: Platform): Promise<BaseImage> => {
    const base = await openBaseImage(ref, { ...ctx, platform: p }, store, io);
    attest.base(ref, p, base);
    return track(base);
  };
  const openLayout = async (dirAndTag: string, p: Platform): Promise<BaseImage> => {
    const base = await openImage(parseImageLocation(`oci:${dirAndTag}`), { ...ctx, platform: p }, io);
    attest.base(dirAndTag, p, base);
    return track(base);
  };
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
    // A build that pushes uploads each new layer while writing it. Across platforms a COPY layer that
    // would be the same bytes is written (and so sent) once: the platform builds share their writes.
    const layerIngester = uploadingIngester(store, pushNames(outputs, names), io, options.signal);
    const sharedLayers = platforms.length > 1 ? new Map<Digest, Promise<LayerResult>>() : undefined;
    // One instant for every platform: it dates the image and the directories a COPY creates, so the
    // platforms' identical COPY layers stay identical when their builds straddle a second.
    const startedAt = ctx.now();
    const builds: PlatformBuild[] = [];
    // One engine run per platform: each resolves its bases for its platform and sets the platform
    // ARGs; content-identical layers come out with the same digest and are stored and pushed once.
    for (const platform of platforms) {
      attest.forPlatform(platform);
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
          compressionLevel: options.compressionLevel,
          compression: options.compression,
        },
        {
          store,
          openImage: openBase,
          openNamedContext: (name, value, p) => openNamedContext(name, value, p, openBase, openLayout, contextDir),
          executor,
          now: () => startedAt,
          events: attest.events(options.events),
          signal: options.signal,
          privileged: ctx.privileged === true,
          scratchDir: ctx.scratchDir,
          layerIngester,
          sharedLayers,
          ...(layered ? { stepCache: layered, cacheReaders: layered.readers } : {}),
        },
      );
      const image = annotateManifest(outcome.image, annotations);
      builds.push({ platform, image, reader: outcome.reader, serialized: serializeImage(image), warnings: outcome.warnings, steps: outcome.steps });
    }
    const memory = new MemoryBlobReader();
    for (const b of builds) {
      memory.add(b.serialized.config.descriptor.digest, b.serialized.config.bytes).add(b.serialized.manifest.descriptor.digest, b.serialized.manifest.bytes);
    }
    const reader = new CompositeBlobReader([memory, store.blobs, ...builds.map((b) => b.reader)]);
    let top = builds.length === 1 && !needsIndex(annotations) ? builds[0]!.serialized.manifest.descriptor : indexOver(builds, memory, annotations);
    const attested = attest.wanted
      ? await attestBuilds(builds, reader, memory, {
        annotations,
        request: attest.request, attestTo, strataVersion: options.strataVersion ?? 'unknown', dockerfile, contextDir,
        buildArgs: options.buildArgs ?? {}, target: options.target, contexts: Object.keys(options.buildContexts ?? {}),
        sourceDateEpoch: ctx.sourceDateEpoch, startedAt, finishedAt: ctx.now(), names, materials: attest.materials,
        steps: attest.steps, storeRoot: store.root, signal: options.signal,
      })
      : undefined;
    if (attested) {
      top = attested.top;
      for (const w of attested.warnings) options.events?.({ type: 'warning', message: w });
    }
    const topAnnotations = annotationsFor(annotations, 'index-descriptor');
    if (topAnnotations) top = { ...top, annotations: topAnnotations };
    const content = { descriptor: top, reader };
    const written = await writeBuildOutputs(outputs, content, builds.map((b) => ({ platform: b.platform, image: b.image })), { store, names, ctx: { ...ctx, platform: platforms[0] }, io, signal: options.signal });
    if (attested) written.push(...(await writeAttestationExtras(attested, outputs, names, reader, io, options.events, options.signal)));
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
      warnings: [...new Set([...cacheWarnings, ...builds.flatMap((b) => b.warnings), ...(attested?.warnings ?? [])])],
      steps: { total: builds.reduce((n, b) => n + b.steps.total, 0), cached: builds.reduce((n, b) => n + b.steps.cached, 0) },
      size,
      baseLayersRead: baseLayers.opened,
      registryBase: baseLayers.fromRegistry,
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

/**
 * The name of an untagged build, from the context directory. slugify is loaded only here: building its
 * transliteration tables costs ~10 ms of start-up that a tagged build does not need.
 */
async function defaultRepository(contextDir: string): Promise<string> {
  const { default: slugify } = await import('@sindresorhus/slugify');
  return slugify(basename(contextDir));
}
