import { resolve } from 'node:path';
import { LayeredStepCache, LocalStepCache, runBuild } from '../build/index.js';
import type { Digest } from '../digest/index.js';
import { serializeImage } from '../image/index.js';
import type { LayerResult } from '../layer/index.js';
import { hostPlatform, type Descriptor } from '../oci/index.js';
import { annotateManifest, annotationsFor, needsIndex } from '../output/index.js';
import { createNodeFetch } from '../registry/index.js';
import { CompositeBlobReader, LocalStore, MemoryBlobReader, type BlobReader } from '../store/index.js';
import { isRegistryConnection, localImageName, type RegistryIo, type StrataContext } from '../transports/index.js';
import { AttestRecorder, attestBuilds, parseAttestTo, writeAttestationExtras, type AttestedImage } from './attest.js';
import { defaultRepository, proxyEnv, type BuildImageOptions, type BuildImageResult } from './build-options.js';
import { planBuild, type BuildPlan } from './build-plan.js';
import { BuildSources } from './build-sources.js';
import { exportBuildCache, importBuildCaches } from './cache-artifact.js';
import { indexOver, readDockerfile, type DockerfileSource, type PlatformBuild } from './inputs.js';
import type { RemoteContext } from './remote-context.js';
import { prepareSecrets, sshSockets, type PreparedSecrets } from './secrets.js';
import { writeBuildOutputs } from './sinks.js';
import { pushNames, uploadingIngester } from './uploads.js';

/** What every part of one build shares once its options are checked and its inputs opened. */
interface BuildJob {
  options: BuildImageOptions;
  ctx: StrataContext;
  io: RegistryIo;
  plan: BuildPlan;
  store: LocalStore;
  secrets: PreparedSecrets;
  sources: BuildSources;
  attest: AttestRecorder;
  /** Warnings about caches, reported with the build's own. */
  cacheWarnings: string[];
}

/** The context a build runs in once a remote one is made local: its directory, Dockerfile and names. */
interface ResolvedContext {
  dir: string;
  dockerfile: DockerfileSource;
  names: string[];
}

/**
 * A whole build: checks every option first (outputs, names, executor), runs the engine once per platform,
 * and only then writes outputs, attestations and the exported cache, so a failed build writes nothing and
 * moves no tag. The command around it (api/build.ts) bounds the cache and writes --iidfile/--metadata-file.
 */
export async function runBuildJob(given: BuildImageOptions, ctx: StrataContext, io: RegistryIo = {}): Promise<BuildImageResult> {
  const options = given.signal === undefined && ctx.signal !== undefined ? { ...given, signal: ctx.signal } : given;
  const plan = await planBuild(options, ctx, io);
  const attest = new AttestRecorder(plan.attestRequest);
  const attestTo = parseAttestTo(options.attestTo);
  const store = await LocalStore.open(ctx.storeRoot);
  const secrets = await prepareSecrets(options.secrets ?? [], options.env ?? {}, store);
  // Downloads share the registry connection's HTTP (its CAs and agents); without one, a plain adapter.
  const sources = new BuildSources(options, ctx, io, store, secrets, isRegistryConnection(io) ? io.fetch : createNodeFetch(), attest);
  const mainRemote = options.contextSource === undefined ? undefined : sources.mainContext(options.contextSource);
  const job: BuildJob = { options, ctx, io, plan, store, secrets, sources, attest, cacheWarnings: [] };
  try {
    const context = await resolveContext(job, mainRemote);
    // One instant for every platform: it dates the image and the directories a COPY creates, so the
    // platforms' identical COPY layers stay identical when their builds straddle a second.
    const startedAt = ctx.now();
    const layered = await openStepCaches(job, startedAt);
    const builds = await runPlatforms(job, context, layered, startedAt);
    const memory = new MemoryBlobReader();
    for (const b of builds) {
      memory.add(b.serialized.config.descriptor.digest, b.serialized.config.bytes).add(b.serialized.manifest.descriptor.digest, b.serialized.manifest.bytes);
    }
    const reader = new CompositeBlobReader([memory, store.blobs, ...builds.map((b) => b.reader)]);
    let top = builds.length === 1 && !needsIndex(plan.annotations) ? builds[0]!.serialized.manifest.descriptor : indexOver(builds, memory, plan.annotations);
    const attested = attest.wanted
      ? await attestBuilds(builds, reader, memory, {
          annotations: plan.annotations,
          request: attest.request,
          attestTo,
          strataVersion: options.strataVersion ?? 'unknown',
          dockerfile: context.dockerfile,
          contextDir: plan.contextDir,
          buildArgs: options.buildArgs ?? {},
          target: options.target,
          contexts: Object.keys(options.buildContexts ?? {}),
          sourceDateEpoch: ctx.sourceDateEpoch,
          startedAt,
          finishedAt: ctx.now(),
          names: context.names,
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
    const topAnnotations = annotationsFor(plan.annotations, 'index-descriptor');
    if (topAnnotations) top = { ...top, annotations: topAnnotations };
    const written = options.explainCache === true ? [] : await writeEverything(job, context.names, builds, { descriptor: top, reader }, attested, layered);
    return summarize(job, context.names, builds, top, written, attested);
  } finally {
    await sources.close();
    await secrets.cleanup();
    // The tags are written (or the build failed): its blobs need no lease any more.
    store.release();
  }
}

async function resolveContext(job: BuildJob, mainRemote: Promise<RemoteContext> | undefined): Promise<ResolvedContext> {
  const { options, plan } = job;
  const main = await mainRemote;
  const dir = main?.dir ?? plan.contextDir;
  const dockerfile =
    plan.localDockerfile ??
    (await readDockerfile(dir, {
      dockerfile: options.dockerfile === undefined ? undefined : resolve(dir, options.dockerfile),
      dockerfileText: options.dockerfileText ?? main?.dockerfileText,
    }));
  const names = main !== undefined && plan.defaultName ? [localImageName(`${(await defaultRepository(main.name)) || 'image'}:latest`)] : plan.names;
  return { dir, dockerfile, names };
}

/**
 * The step caches of a build with --cache-from, --cache-to or --cache-ttl: the local one layered over the
 * imported ones, outcomes older than the TTL (counted back from `startedAt`) left out.
 */
async function openStepCaches(job: BuildJob, startedAt: Date): Promise<LayeredStepCache | undefined> {
  const { options, plan, store, io } = job;
  const warn = (message: string): void => {
    job.cacheWarnings.push(message);
    options.events?.({ type: 'warning', message });
  };
  const imported = options.noCache ? [] : await importBuildCaches(plan.cacheImports, io, warn, options.signal);
  if (plan.cacheImports.length === 0 && plan.cacheExport === undefined && options.cacheTtl === undefined) return undefined;
  return new LayeredStepCache({
    local: LocalStepCache.forStore(store.root, store.blobs, { recordUse: options.explainCache !== true }),
    imported,
    reads: options.noCache !== true,
    writes: options.explainCache !== true,
    ttl: options.cacheTtl === undefined ? undefined : { ms: options.cacheTtl, now: startedAt },
  });
}

/**
 * One engine run per platform: each resolves its bases for its platform and sets the platform ARGs;
 * content-identical layers come out with the same digest and are stored and pushed once.
 */
async function runPlatforms(job: BuildJob, context: ResolvedContext, layered: LayeredStepCache | undefined, startedAt: Date): Promise<PlatformBuild[]> {
  const { options, ctx, io, plan, store, sources, attest } = job;
  // A build that pushes uploads each new layer while writing it. Across platforms a COPY layer that
  // would be the same bytes is written (and so sent) once: the platform builds share their writes.
  const layerIngester = uploadingIngester(store, pushNames(plan.outputs, context.names), io, options.signal);
  const sharedLayers = plan.platforms.length > 1 ? new Map<Digest, Promise<LayerResult>>() : undefined;
  const ssh = sshSockets(options.ssh ?? [], options.env ?? {});
  const builds: PlatformBuild[] = [];
  for (const platform of plan.platforms) {
    attest.forPlatform(platform);
    const outcome = await runBuild(
      {
        dockerfile: context.dockerfile,
        contextDir: context.dir,
        buildArgs: options.buildArgs ?? {},
        target: options.target,
        platform,
        buildPlatform: hostPlatform(),
        labels: options.labels ?? {},
        buildContexts: options.buildContexts ?? {},
        noCache: options.noCache === true,
        sourceDateEpoch: ctx.sourceDateEpoch,
        secrets: job.secrets.files,
        ssh,
        network: options.network ?? 'host',
        proxyEnv: proxyEnv(options.env ?? {}),
        compressionLevel: options.compressionLevel,
        compression: options.compression,
        explainOnly: options.explainCache === true,
      },
      {
        store,
        openImage: sources.openBase,
        openNamedContext: (name, value, p) => sources.openNamed(name, value, p, plan.contextDir),
        executor: plan.executor,
        now: () => startedAt,
        events: attest.events(options.events),
        signal: options.signal,
        privileged: ctx.privileged === true,
        scratchDir: ctx.scratchDir,
        snapshots: ctx.snapshots,
        overlay: ctx.overlay,
        layerIngester,
        sharedLayers,
        watchLayer: options.explainCache === true ? undefined : attest.layerWatch(store.root),
        remoteFetch: sources.fetch,
        recordSource: attest.sourceRecorder(),
        hostEnv: options.env,
        ...(layered ? { stepCache: layered, cacheReaders: layered.readers } : {}),
      },
    );
    const image = annotateManifest(outcome.image, plan.annotations);
    builds.push({
      platform,
      image,
      reader: outcome.reader,
      serialized: serializeImage(image),
      warnings: outcome.warnings,
      steps: outcome.steps,
      stages: outcome.stages,
      context: outcome.context,
    });
  }
  return builds;
}

/** Outputs first, then what goes beside them (referrers) and the exported cache; returns what was written, in words. */
async function writeEverything(
  job: BuildJob,
  names: string[],
  builds: readonly PlatformBuild[],
  content: { descriptor: Descriptor; reader: BlobReader },
  attested: AttestedImage | undefined,
  layered: LayeredStepCache | undefined,
): Promise<string[]> {
  const { options, ctx, io, plan, store } = job;
  const written = await writeBuildOutputs(
    plan.outputs,
    content,
    builds.map((b) => ({ platform: b.platform, image: b.image })),
    { store, names, ctx: { ...ctx, platform: plan.platforms[0] }, io, signal: options.signal },
  );
  if (attested) written.push(...(await writeAttestationExtras(attested, plan.outputs, names, content.reader, io, options.events, options.signal)));
  if (plan.cacheExport && layered) {
    const cacheWritten = await exportBuildCache(plan.cacheExport, {
      cache: layered,
      finals: builds.map((b) => b.image),
      reader: content.reader,
      io,
      strataVersion: options.strataVersion,
      warn: (message) => {
        job.cacheWarnings.push(message);
        options.events?.({ type: 'warning', message });
      },
      ingester: store.blobs,
    });
    if (cacheWritten) written.push(cacheWritten);
  }
  return written;
}

function summarize(
  job: BuildJob,
  names: string[],
  builds: readonly PlatformBuild[],
  top: Descriptor,
  written: string[],
  attested: AttestedImage | undefined,
): BuildImageResult {
  const size =
    top.size +
    builds.reduce(
      (n, b) => n + b.serialized.manifest.descriptor.size + b.serialized.config.descriptor.size + b.image.layers.reduce((m, l) => m + l.descriptor.size, 0),
      0,
    );
  const configDigest = builds.length === 1 ? builds[0]!.serialized.config.descriptor.digest : undefined;
  return {
    manifest: top,
    configDigest,
    imageId: configDigest ?? top.digest,
    names,
    written,
    defaultName: job.plan.defaultName,
    warnings: [...new Set([...job.cacheWarnings, ...builds.flatMap((b) => b.warnings), ...(attested?.warnings ?? [])])],
    steps: { total: builds.reduce((n, b) => n + b.steps.total, 0), cached: builds.reduce((n, b) => n + b.steps.cached, 0) },
    size,
    baseLayersRead: job.sources.baseLayersOpened,
    registryBase: job.sources.registryBase,
    executor: job.plan.executor.name,
    blobsWritten: job.store.blobs.written,
  };
}
