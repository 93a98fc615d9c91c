import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import type { BuildEventSink } from '../build/index.js';
import type { Descriptor, LayerCompression } from '../oci/index.js';
import type { CacheExportSpec, CacheImportSpec } from './cache-artifact.js';
import type { BuildOutputSpec } from './output-spec.js';

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
  /**
   * `--cache-ttl`, in ms: a cached step made longer ago than this before the build started is run again,
   * whichever cache holds it (imported registry or local caches, and the store's own, which keeps imported
   * hits). Default: no bound, as buildx.
   */
  cacheTtl?: number | undefined;
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
  /** The image config's digest; undefined for a multi-platform build, which has one per platform. */
  configDigest: string | undefined;
  /** What --iidfile gets, as buildx writes it: the config digest, or for a multi-platform build the index digest. */
  imageId: string;
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
  /** Blobs this build added to the local store (0 when every step was replayed and nothing new was stored). */
  blobsWritten: number;
}

/** The proxy variables set in the environment strata runs in, which RUN steps see (never recorded). */
export function proxyEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
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
 * transliteration tables is start-up work a tagged build does not need.
 */
export async function defaultRepository(contextDir: string): Promise<string> {
  // A name slugify gives back as it is (lowercase letters and digits, single dashes) needs no tables.
  const name = basename(contextDir);
  if (/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(name)) return name;
  const { default: slugify } = await import('@sindresorhus/slugify');
  return slugify(name);
}
