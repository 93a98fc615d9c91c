import { resolve } from 'node:path';
import { parseAttestOptions, type AttestRequest } from '../attest/index.js';
import { StrataError } from '../errors/index.js';
import type { Executor } from '../exec/index.js';
import type { Platform } from '../oci/index.js';
import { parseAnnotation, type AnnotationSpec } from '../output/index.js';
import { localImageName, type RegistryIo, type StrataContext } from '../transports/index.js';
import { defaultRepository, type BuildImageOptions } from './build-options.js';
import { checkCacheSpecs, parseCacheExport, parseCacheImport, type CacheExportSpec, type CacheImportSpec } from './cache-artifact.js';
import { parsePlatforms, pickExecutor, readDockerfile, type DockerfileSource } from './inputs.js';
import { parseBuildOutput, type BuildOutputSpec } from './output-spec.js';

/** Everything a build decided from its options before it opens anything: a bad option fails here, having written nothing. */
export interface BuildPlan {
  contextDir: string;
  outputs: BuildOutputSpec[];
  /** Local-store names (full references); from the context's name when no -t was given. */
  names: string[];
  defaultName: boolean;
  cacheImports: CacheImportSpec[];
  cacheExport: CacheExportSpec | undefined;
  executor: Executor;
  platforms: Platform[];
  /** The Dockerfile of a local context, read now; a remote context's is read once it is fetched. */
  localDockerfile: DockerfileSource | undefined;
  attestRequest: AttestRequest;
  annotations: AnnotationSpec[];
}

/** Checks every option (outputs, names, cache specs, executor, platforms) before the build opens anything. */
export async function planBuild(options: BuildImageOptions, ctx: StrataContext, io: RegistryIo): Promise<BuildPlan> {
  const contextDir = resolve(options.contextDir);
  const outputs: BuildOutputSpec[] = (options.outputs ?? []).map((o) => (typeof o === 'string' ? parseBuildOutput(o) : o));
  // --push is type=registry, as in buildx: pushed, not also copied into the local store (which would
  // download a registry base's layers for nothing).
  if (options.push) outputs.push({ type: 'registry' });
  if (outputs.length === 0) outputs.push({ type: 'image', push: false });
  const tagged = (options.tags ?? []).map(localImageName);
  const defaultName = tagged.length === 0;
  const names = defaultName && options.contextSource === undefined ? [localImageName(`${(await defaultRepository(contextDir)) || 'image'}:latest`)] : tagged;
  if (outputs.some((o) => o.type === 'registry' || (o.type === 'image' && o.push)) && defaultName) {
    throw new StrataError('E_USAGE', 'pushing needs a name: give -t REGISTRY/REPOSITORY:TAG');
  }
  const cacheImports = (options.cacheFrom ?? []).map((s) => (typeof s === 'string' ? parseCacheImport(s, options.cwd) : s));
  const cacheExport = typeof options.cacheTo === 'string' ? parseCacheExport(options.cacheTo, options.cwd) : options.cacheTo;
  checkCacheSpecs([...cacheImports, ...(cacheExport ? [cacheExport] : [])], io);
  if (options.cacheTtl !== undefined && !(Number.isFinite(options.cacheTtl) && options.cacheTtl >= 0)) {
    throw new StrataError('E_USAGE', `--cache-ttl must be a duration of 0 or more, got ${options.cacheTtl} ms`);
  }
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
  checkOutputsHold(outputs, platforms, options);
  return {
    contextDir,
    outputs,
    names,
    defaultName,
    cacheImports,
    cacheExport,
    executor,
    platforms,
    localDockerfile: options.contextSource === undefined ? await readDockerfile(contextDir, options) : undefined,
    attestRequest: parseAttestOptions(options),
    annotations: (options.annotations ?? []).map(parseAnnotation),
  };
}

/** docker-archive output holds one platform and gzip layers only. */
function checkOutputsHold(outputs: readonly BuildOutputSpec[], platforms: readonly Platform[], options: BuildImageOptions): void {
  if (platforms.length > 1 && outputs.some((o) => o.type === 'docker')) {
    throw new StrataError('E_USAGE', '--output type=docker holds one platform; build one --platform at a time for it, or use type=oci');
  }
  if (options.compression === 'zstd' && outputs.some((o) => o.type === 'docker')) {
    throw new StrataError('E_USAGE', "--output type=docker cannot hold zstd layers (Docker's format has no zstd layer type)", {
      hint: 'use --output type=oci, or --compression gzip',
    });
  }
}
