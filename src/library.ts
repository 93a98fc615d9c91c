/**
 * The commands of strata as a library: what `strata build`, `pull`, `push`, `copy`, `inspect`, `append`,
 * `login` and `logout` do, with typed options instead of command-line syntax. Every function takes the
 * same {@link StrataOptions}: where the local store is, and what registry access may use. Nothing is read
 * from the process (environment, working directory, home) unless it is passed in.
 */
import { appendImage, type AppendLayerSpec, type AppendResult } from './api/append.js';
import { buildImage } from './api/build.js';
import type { ConfigEdits } from './api/config-edits.js';
import { copyImage } from './api/copy.js';
import { inspectImage, type InspectResult } from './api/inspect.js';
import { loginRegistry, logoutRegistry, type LoginResult } from './api/login.js';
import { pushFromLocation } from './api/push.js';
import type { BuildImageResult, BuildOutputSpec, CacheExportSpec, CacheImportSpec } from './pipeline/index.js';
import { createRegistryIo, pullToStore, type PullResult, type RegistryConnection, type StrataContext } from './transports/index.js';
import type { BuildEventSink } from './build/index.js';
import { StrataError } from './errors/index.js';
import { parsePlatform, type Descriptor, type LayerCompression } from './oci/index.js';
import type { ProgressListener } from './registry/index.js';

/** Where strata keeps its images and what registry access may use; shared by every command. */
export interface StrataOptions {
  /** Root of the local image store (the CLI uses `$STRATA_ROOT`, else `~/.local/share/strata`). */
  storeRoot: string;
  /**
   * The environment credentials (`DOCKER_CONFIG`, `REGISTRY_AUTH_FILE`, credential helpers on `PATH`),
   * `env=` secrets and `--ssh` agents come from. Default: empty, so no credentials at all.
   */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Home directory for `~/.docker/config.json`; default `env.HOME`. */
  homeDir?: string | undefined;
  /** SOURCE_DATE_EPOCH in seconds: fixes `created` times and clamps file mtimes, for reproducible digests. */
  sourceDateEpoch?: number | undefined;
  /** The platform to pick from multi-platform images (`linux/arm64`); default the host's. */
  platform?: string | undefined;
  /** Registries (`host[:port]`) that may speak plain HTTP; loopback registries may anyway. */
  insecureRegistries?: readonly string[] | undefined;
  /** PEM text of CA certificates to trust besides the well-known ones. */
  caCert?: string | undefined;
  /** Transfer progress of registry pulls and pushes. */
  progress?: ProgressListener | undefined;
  /** The clock for `created` times when `sourceDateEpoch` is not set; default `new Date()`. */
  now?: (() => Date) | undefined;
  /** Whether unpacked filesystems keep their owners (the process may chown): true when running as root. */
  privileged?: boolean | undefined;
  /** A world-traversable directory for RUN roots; default `/tmp`. */
  scratchDir?: string | undefined;
}

/** A build secret: a file, or a variable of {@link StrataOptions.env}. */
export type SecretSource = { id: string; file: string } | { id: string; env: string };

/** What `strata build` takes, typed. */
export interface BuildOptions {
  /** The build context directory. */
  context: string;
  /** The Dockerfile's path (default `<context>/Dockerfile`), or its text with `dockerfileText`. */
  dockerfile?: string | undefined;
  dockerfileText?: string | undefined;
  /** Local-store names (`app:1`, `registry.example/team/app:1`). */
  tags?: readonly string[] | undefined;
  buildArgs?: Readonly<Record<string, string>> | undefined;
  target?: string | undefined;
  /** One platform or several, comma-separated (`linux/amd64,linux/arm64`). */
  platforms?: string | undefined;
  labels?: Readonly<Record<string, string>> | undefined;
  /** `--build-context NAME=VALUE`: a directory, `docker-image://REF` or `oci-layout://DIR[:TAG]`. */
  buildContexts?: Readonly<Record<string, string>> | undefined;
  /** Where the image goes; default the local store under `tags`. `{ type: 'registry' }` pushes them. */
  outputs?: readonly BuildOutputSpec[] | undefined;
  noCache?: boolean | undefined;
  cacheFrom?: readonly CacheImportSpec[] | undefined;
  cacheTo?: CacheExportSpec | undefined;
  /**
   * `--cache-ttl` in milliseconds: a cached step made longer ago than this (before the build started, by
   * {@link StrataOptions.now}) is run again, whichever cache holds it. Default: no bound.
   */
  cacheTtl?: number | undefined;
  /** The RUN executor by name (`chroot`, `bwrap`, `runc`, …); default `none`, which refuses RUN. */
  executor?: string | undefined;
  secrets?: readonly SecretSource[] | undefined;
  /** ssh agent sockets for `RUN --mount=type=ssh`, by id (`default`). */
  ssh?: Readonly<Record<string, string>> | undefined;
  network?: 'none' | 'host' | undefined;
  compression?: LayerCompression | undefined;
  compressionLevel?: number | undefined;
  events?: BuildEventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** Builds a Dockerfile; nothing is written (no output, no tag moved) unless the whole build succeeds. */
export async function build(options: BuildOptions, strata: StrataOptions): Promise<BuildImageResult> {
  const io = registryAccess(strata);
  return buildImage(
    {
      contextDir: options.context,
      dockerfile: options.dockerfile,
      dockerfileText: options.dockerfileText,
      tags: options.tags ?? [],
      buildArgs: options.buildArgs ?? {},
      target: options.target,
      platform: options.platforms,
      labels: options.labels ?? {},
      buildContexts: options.buildContexts ?? {},
      outputs: options.outputs ?? [],
      noCache: options.noCache === true,
      cacheFrom: options.cacheFrom ?? [],
      cacheTo: options.cacheTo,
      cacheTtl: options.cacheTtl,
      executor: options.executor,
      secrets: (options.secrets ?? []).map(secretSpec),
      env: strata.env ?? {},
      ssh: Object.entries(options.ssh ?? {}).map(([id, socket]) => `${id}=${socket}`),
      ...(options.network !== undefined ? { network: options.network } : {}),
      compression: options.compression,
      compressionLevel: options.compressionLevel,
      events: options.events,
      signal: options.signal,
    },
    context(strata),
    io,
  );
}

/** Pulls an image (`alpine:3.20`, `registry.example/app@sha256:…`) from its registry into the local store. */
export function pull(ref: string, strata: StrataOptions, options: { allPlatforms?: boolean; name?: string } = {}): Promise<PullResult> {
  return pullToStore(ref, context(strata), registryAccess(strata), options);
}

/** Pushes a local-store image (or any location) to a registry reference; by default to its own name. */
export function push(source: string, strata: StrataOptions, destination?: string): Promise<{ destination: string; descriptor: Descriptor }> {
  return pushFromLocation(source, destination, context(strata), registryAccess(strata));
}

/**
 * Copies an image between any two locations: local-store names, `oci:DIR[:TAG]`, `oci-archive:FILE`,
 * `docker-archive:FILE`, `docker://REF`. Every blob is verified on the way.
 */
export function copy(source: string, destination: string, strata: StrataOptions, options: { allPlatforms?: boolean } = {}): Promise<Descriptor> {
  return copyImage(source, destination, context(strata), options, registryAccess(strata));
}

/** Reads an image's manifest, config and history from wherever it lives. */
export function inspect(image: string, strata: StrataOptions): Promise<InspectResult> {
  return inspectImage(image, context(strata), registryAccess(strata));
}

/** What `strata append` takes: a base, layers from directories or tarballs, and config edits. */
export interface AppendOptions extends ConfigEdits {
  /** Any image location; nothing (or `scratch`) for an empty base. */
  base?: string | undefined;
  layers: readonly AppendLayerSpec[];
  tags?: readonly string[] | undefined;
  /** Image locations to write to besides the tags (`oci:DIR:TAG`, `docker://REF`, …). */
  outputs?: readonly string[] | undefined;
  compression?: LayerCompression | undefined;
  format?: 'oci' | 'docker' | undefined;
}

/** Builds an image without a Dockerfile, as `crane append` and `crane mutate` do. */
export function append(options: AppendOptions, strata: StrataOptions): Promise<AppendResult> {
  const { tags, outputs, compression, format, ...rest } = options;
  return appendImage(
    { ...rest, ...(tags ? { tags } : {}), ...(outputs ? { outputs } : {}), ...(compression ? { compression } : {}), ...(format ? { format } : {}) },
    context(strata),
    registryAccess(strata),
  );
}

/** Checks the credentials against the registry, then stores them where docker's config keeps them. */
export function login(registry: string, username: string, password: string, strata: StrataOptions): Promise<LoginResult> {
  return loginRegistry(registry, username, password, registryAccess(strata));
}

/** Removes a registry's stored credentials. */
export function logout(registry: string, strata: StrataOptions): Promise<{ registry: string; removed: boolean }> {
  return logoutRegistry(registry, registryAccess(strata));
}

function context(strata: StrataOptions): StrataContext {
  return {
    storeRoot: strata.storeRoot,
    now: strata.now ?? (() => new Date()),
    sourceDateEpoch: strata.sourceDateEpoch,
    platform: strata.platform === undefined ? undefined : parsePlatform(strata.platform),
    privileged: strata.privileged,
    scratchDir: strata.scratchDir,
  };
}

function registryAccess(strata: StrataOptions): RegistryConnection {
  const env = { ...(strata.env ?? {}) };
  return createRegistryIo({
    env,
    homeDir: strata.homeDir ?? env.HOME ?? '',
    insecureRegistries: strata.insecureRegistries,
    caCert: strata.caCert,
    progress: strata.progress,
  });
}

function secretSpec(secret: SecretSource): string {
  if (secret.id.includes(',') || ('file' in secret ? secret.file : secret.env).includes(',')) {
    throw new StrataError('E_USAGE', `secret ${secret.id}: an id, file or variable name cannot hold a comma`);
  }
  return 'file' in secret ? `id=${secret.id},src=${secret.file}` : `id=${secret.id},env=${secret.env}`;
}
