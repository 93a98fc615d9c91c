import { basename, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { boundStoreCache } from './prune.js';
import { StrataError } from '../errors/index.js';
import { LayeredStepCache, LocalStepCache, runBuild, type BaseImage, type BuildEventSink } from '../build/index.js';
import type { Digest } from '../digest/index.js';
import { serializeImage } from '../image/index.js';
import type { LayerResult } from '../layer/index.js';
import { hostPlatform, type Descriptor, type LayerCompression, type Platform } from '../oci/index.js';
import { CompositeBlobReader, LocalStore, MemoryBlobReader, writeFileAtomic, type BlobReader } from '../store/index.js';
import type { RegistryIo } from './append.js';
import {
  checkCacheSpecs,
  exportBuildCache,
  importBuildCaches,
  parseCacheExport,
  parseCacheImport,
  type CacheExportSpec,
  type CacheImportSpec,
} from './build-cache.js';
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
import { isRegistryConnection } from './registry-target.js';
import { openRemoteContext, type RemoteContext } from './remote-context.js';
import { redactUrl } from '../remote/index.js';
import { createNodeFetch } from '../registry/index.js';

export interface BuildImageOptions {
  contextDir: string;
  /**
   * A context that is no directory: a git repository (`URL#ref:subdir`), an http(s) URL of a tar archive
   * (or of a Dockerfile), or `-` for a tar archive on `stdin`. `contextDir` is then ignored and a relative
   * `dockerfile` is taken inside the context.
   */
  contextSource?: string | undefined;
  /** Where a `-` context is read from. */
  stdin?: Readable | undefined;
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
  /** `--output` values, as buildx's syntax (`type=oci,dest=out.tar`) or typed. */
  outputs?: readonly (string | BuildOutputSpec)[];
  push?: boolean;
  noCache?: boolean;
  /** `--cache-from` specs (`type=registry,ref=REF`, `type=local,src=DIR`, or a bare REF), or typed. */
  cacheFrom?: readonly (string | CacheImportSpec)[];
  /** `--cache-to` spec (`type=registry,ref=REPO:TAG[,mode=min|max]`, `type=local,dest=DIR[,mode=…]`), or typed. */
  cacheTo?: string | CacheExportSpec | undefined;
  /** Relative `type=local` cache directories are resolved against it (default: the process's). */
  cwd?: string | undefined;
  /** Recorded in an exported cache's annotations. */
  strataVersion?: string | undefined;
  /**
   * The bound on the store's cache applied after a build that wrote something (see boundStoreCache):
   * bytes, or 'off'; default a tenth of the free space of the store's disk.
   */
  cacheLimit?: number | 'off' | undefined;
  executor?: string | undefined;
  /** `--secret` values: `id=ID,src=FILE` or `id=ID,env=VAR` (read from `env`). */
  secrets?: readonly string[];
  /** The environment `env=` secrets are read from. */
  env?: Readonly<Record<string, string | undefined>>;
  /** `--ssh` values: `default`, `ID`, or `ID=SOCKET` (the socket defaults to $SSH_AUTH_SOCK in `env`). */
  ssh?: readonly string[];
  /** Default network for RUN steps: the host's (docker's default) unless `none`. */
  network?: 'none' | 'host';
  /** `inplace` only: run where no container is seen (`--force`). */
  force?: boolean;
  /** `inplace` only: more paths of `/` to leave alone (`--ignore-path`). */
  ignorePaths?: readonly string[];
  /** gzip level 0-9 for new layers (`--compression-level`); default 6 with barely compressible parts stored. */
  compressionLevel?: number | undefined;
  /** Compression of new layers (`--compression`); default gzip. zstd runs the `zstd` program. */
  compression?: LayerCompression | undefined;
  iidFile?: string | undefined;
  metadataFile?: string | undefined;
  /** `--explain-cache`: look every step up and explain the misses; run nothing, write no output, cache or file. */
  explainCache?: boolean | undefined;
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
  /** The executor RUN steps had (`auto` resolved to the one that works here). */
  executor: string;
}

/**
 * `strata build`: checks every option first (outputs, names, executor), runs the build engine,
 * and only then writes outputs, so a failed build writes nothing and moves no tag.
 */
export async function buildImage(given: BuildImageOptions, ctx: StrataContext, io: RegistryIo = {}): Promise<BuildImageResult> {
  const options = given.signal === undefined && ctx.signal !== undefined ? { ...given, signal: ctx.signal } : given;
  const contextDir = resolve(options.contextDir);
  const outputs: BuildOutputSpec[] = (options.outputs ?? []).map((o) => (typeof o === 'string' ? parseBuildOutput(o) : o));
  // --push is type=registry, as in buildx: pushed, not also copied into the local store (which would
  // download a registry base's layers for nothing).
  if (options.push) outputs.push({ type: 'registry' });
  if (outputs.length === 0) outputs.push({ type: 'image', push: false });
  const tagged = (options.tags ?? []).map(localImageName);
  const defaultName = tagged.length === 0;
  let names = defaultName && options.contextSource === undefined ? [localImageName(`${(await defaultRepository(contextDir)) || 'image'}:latest`)] : tagged;
  if (outputs.some((o) => o.type === 'registry' || (o.type === 'image' && o.push)) && defaultName) {
    throw new StrataError('E_USAGE', 'pushing needs a name: give -t REGISTRY/REPOSITORY:TAG');
  }
  const cacheImports = (options.cacheFrom ?? []).map((s) => (typeof s === 'string' ? parseCacheImport(s, options.cwd) : s));
  const cacheExport = typeof options.cacheTo === 'string' ? parseCacheExport(options.cacheTo, options.cwd) : options.cacheTo;
  checkCacheSpecs([...cacheImports, ...(cacheExport ? [cacheExport] : [])], io);
  const { executor, refused } = await pickExecutor(options.executor, options.env ?? {}, {
    inplace: {
      force: options.force === true,
      // strata's own files: its store and the build context, with what the caller adds (its install directory).
      ignorePaths: [ctx.storeRoot, contextDir, ...(options.ignorePaths ?? [])],
      env: options.env ?? {},
    },
  });
  options.events?.({ type: 'executor', name: executor.name, refused });
  const platforms = parsePlatforms(options.platform, ctx.platform);
  if (platforms.length > 1 && outputs.some((o) => o.type === 'docker')) {
    throw new StrataError('E_USAGE', '--output type=docker holds one platform; build one --platform at a time for it, or use type=oci');
  }
  if (options.compression === 'zstd' && outputs.some((o) => o.type === 'docker')) {
    throw new StrataError('E_USAGE', "--output type=docker cannot hold zstd layers (Docker's format has no zstd layer type)", {
      hint: 'use --output type=oci, or --compression gzip',
    });
  }
  const localDockerfile = options.contextSource === undefined ? await readDockerfile(contextDir, options) : undefined;
  const attest = new AttestRecorder(parseAttestOptions(options));
  const attestTo = parseAttestTo(options.attestTo);
  const annotations = (options.annotations ?? []).map(parseAnnotation);

  const store = await LocalStore.open(ctx.storeRoot);
  const secrets = await prepareSecrets(options.secrets ?? [], options.env ?? {}, store);
  // Downloads share the registry connection's HTTP (its CAs and agents); without one, a plain adapter.
  const httpFetch = isRegistryConnection(io) ? io.fetch : createNodeFetch();
  // `--build-context NAME=<git or http(s) URL>`: made local once for every platform, removed at the end.
  const remoteContexts = new Map<string, Promise<RemoteContext>>();
  const openRemote = (value: string): Promise<string> => {
    let opened = remoteContexts.get(value);
    if (opened === undefined) {
      opened = openRemoteContext(value, {
        scratchDir: join(store.root, 'tmp'),
        fetch: httpFetch,
        secrets: secrets.files,
        ssh: sshSockets(options.ssh ?? [], options.env ?? {}),
        env: options.env,
        signal: options.signal,
      });
      remoteContexts.set(value, opened);
    }
    return opened.then((r) => {
      if (r.dockerfileText !== undefined) throw new StrataError('E_USAGE', `--build-context ${redactUrl(value)}: not a tar archive or git repository`);
      return r.dir;
    });
  };
  const opened: OpenedImage[] = [];
  const mainRemote =
    options.contextSource === undefined
      ? undefined
      : openRemoteContext(options.contextSource, {
          scratchDir: join(store.root, 'tmp'),
          fetch: httpFetch,
          stdin: options.stdin,
          secrets: secrets.files,
          ssh: sshSockets(options.ssh ?? [], options.env ?? {}),
          env: options.env,
          signal: options.signal,
        });
  if (mainRemote !== undefined) remoteContexts.set('\0main', mainRemote);
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
    const main = await mainRemote;
    const buildContextDir = main?.dir ?? contextDir;
    const dockerfile =
      localDockerfile ??
      (await readDockerfile(buildContextDir, {
        dockerfile: options.dockerfile === undefined ? undefined : resolve(buildContextDir, options.dockerfile),
        dockerfileText: options.dockerfileText ?? main?.dockerfileText,
      }));
    if (main !== undefined && defaultName) names = [localImageName(`${(await defaultRepository(main.name)) || 'image'}:latest`)];
    const cacheWarnings: string[] = [];
    const warnCache = (message: string): void => {
      cacheWarnings.push(message);
      options.events?.({ type: 'warning', message });
    };
    const imported = options.noCache ? [] : await importBuildCaches(cacheImports, io, warnCache, options.signal);
    const layered =
      cacheImports.length || cacheExport
        ? new LayeredStepCache({
            local: LocalStepCache.forStore(store.root, store.blobs, { recordUse: options.explainCache !== true }),
            imported,
            reads: options.noCache !== true,
            writes: options.explainCache !== true,
          })
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
          contextDir: buildContextDir,
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
          network: options.network ?? 'host',
          proxyEnv: proxyEnv(options.env ?? {}),
          compressionLevel: options.compressionLevel,
          compression: options.compression,
          explainOnly: options.explainCache === true,
        },
        {
          store,
          openImage: openBase,
          openNamedContext: (name, value, p) => openNamedContext(name, value, p, openBase, openLayout, contextDir, openRemote),
          executor,
          now: () => startedAt,
          events: attest.events(options.events),
          signal: options.signal,
          privileged: ctx.privileged === true,
          scratchDir: ctx.scratchDir,
          snapshots: ctx.snapshots,
          overlay: ctx.overlay,
          layerIngester,
          sharedLayers,
          remoteFetch: httpFetch,
          hostEnv: options.env,
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
          request: attest.request,
          attestTo,
          strataVersion: options.strataVersion ?? 'unknown',
          dockerfile,
          contextDir,
          buildArgs: options.buildArgs ?? {},
          target: options.target,
          contexts: Object.keys(options.buildContexts ?? {}),
          sourceDateEpoch: ctx.sourceDateEpoch,
          startedAt,
          finishedAt: ctx.now(),
          names,
          materials: attest.materials,
          steps: attest.steps,
          storeRoot: store.root,
          signal: options.signal,
        })
      : undefined;
    if (attested) {
      top = attested.top;
      for (const w of attested.warnings) options.events?.({ type: 'warning', message: w });
    }
    const topAnnotations = annotationsFor(annotations, 'index-descriptor');
    if (topAnnotations) top = { ...top, annotations: topAnnotations };
    const content = { descriptor: top, reader };
    const written =
      options.explainCache === true
        ? []
        : await writeBuildOutputs(
            outputs,
            content,
            builds.map((b) => ({ platform: b.platform, image: b.image })),
            { store, names, ctx: { ...ctx, platform: platforms[0] }, io, signal: options.signal },
          );
    if (attested && options.explainCache !== true)
      written.push(...(await writeAttestationExtras(attested, outputs, names, reader, io, options.events, options.signal)));
    if (cacheExport && layered && options.explainCache !== true) {
      const cacheWritten = await exportBuildCache(cacheExport, {
        cache: layered,
        finals: builds.map((b) => b.image),
        reader,
        io,
        strataVersion: options.strataVersion,
        warn: warnCache,
        ingester: store.blobs,
      });
      if (cacheWritten) written.push(cacheWritten);
    }
    const size =
      top.size +
      builds.reduce(
        (n, b) => n + b.serialized.manifest.descriptor.size + b.serialized.config.descriptor.size + b.image.layers.reduce((m, l) => m + l.descriptor.size, 0),
        0,
      );
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
      executor: executor.name,
    };
    if (options.explainCache === true) return result;
    if (options.cacheLimit !== 'off' && store.blobs.written > 0) {
      // Only a build that wrote a blob can have grown the cache; a fully cached one skips the walk.
      await boundStoreCache(ctx, options.cacheLimit);
    }
    if (options.iidFile) await writeFileAtomic(options.iidFile, result.configDigest);
    if (options.metadataFile) {
      await writeFileAtomic(
        options.metadataFile,
        `${JSON.stringify(
          {
            'containerimage.config.digest': result.configDigest,
            'containerimage.digest': result.manifest.digest,
            'containerimage.descriptor': result.manifest,
            'image.name': names.map(familiarImageName).join(','),
            'strata.executor': executor.name,
          },
          null,
          2,
        )}\n`,
      );
    }
    return result;
  } finally {
    await Promise.all(opened.map((o) => o.close()));
    await Promise.all(
      [...remoteContexts.values()].map((r) =>
        r.then(
          (c) => c.cleanup(),
          () => undefined,
        ),
      ),
    );
    await secrets.cleanup();
    // The tags are written (or the build failed): its blobs need no lease any more.
    store.release();
  }
}

/** The proxy variables set in the environment strata runs in, which RUN steps see (never recorded). */
function proxyEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROXY_VARIABLES) {
    const value = env[name];
    if (value !== undefined && value !== '') out[name] = value;
  }
  return out;
}

const PROXY_VARIABLES = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/**
 * The name of an untagged build, from the context directory. slugify is loaded only here: building its
 * transliteration tables costs ~10 ms of start-up that a tagged build does not need.
 */
async function defaultRepository(contextDir: string): Promise<string> {
  // A name slugify gives back as it is (lowercase letters and digits, single dashes) needs no tables.
  const name = basename(contextDir);
  if (/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(name)) return name;
  const { default: slugify } = await import('@sindresorhus/slugify');
  return slugify(name);
}
