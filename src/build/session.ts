import type { Image } from '../image/index.js';
import type { LayerCompression, Platform } from '../oci/index.js';
import type { LocalStore, BlobIngester, BlobReader } from '../store/index.js';
import type { Executor } from '../exec/index.js';
import type { ParsedDockerfile } from '../dockerfile/index.js';
import type { BuildEventSink } from './events.js';
import type { StepCache } from './cache.js';
import type { CacheExplainer } from './cache-explain.js';
import type { ContextStatCache } from '../context/index.js';
import type { Digest } from '../digest/index.js';
import type { LayerResult, LayerTap } from '../layer/index.js';
import type { FetchLike } from '../registry/index.js';
import type { FetchedSource } from '../remote/index.js';
import type { BuildMemo } from './memo.js';

/** What watches one layer write: its tap, and what to call with the written layer. */
export interface LayerWatch {
  tap: LayerTap;
  written(layer: LayerResult['descriptor']): Promise<void>;
}

/** An image the build starts from: its value and where its blobs can be read. */
export interface BaseImage {
  image: Image;
  reader: BlobReader;
  description: string;
}

/** Named `--build-context` values, opened: a directory, or an image. */
export type NamedContext = { kind: 'dir'; dir: string } | { kind: 'image'; base: BaseImage };

export interface BuildDeps {
  store: LocalStore;
  /** Opens a FROM or COPY --from image reference (local store, registry) for a platform. */
  openImage(ref: string, platform: Platform): Promise<BaseImage>;
  /** Opens a `--build-context NAME=VALUE`. */
  openNamedContext(name: string, value: string, platform: Platform): Promise<NamedContext>;
  executor: Executor;
  now: () => Date;
  events?: BuildEventSink | undefined;
  signal?: AbortSignal | undefined;
  /** The process may chown and create devices when unpacking (it runs as root). */
  privileged?: boolean | undefined;
  /** How many unpacked base chains the store keeps for RUN roots (cache/unpacked); 0 or unset: none. */
  snapshots?: number | undefined;
  /**
   * RUN roots on overlayfs when privileged and the mount works (the default); false: each stage's root is a
   * private copy of the unpacked layers (STRATA_OVERLAY=off).
   */
  overlay?: boolean | undefined;
  /**
   * A world-traversable directory (like /tmp) for RUN roots: a sandbox that runs as the step's
   * non-root USER must reach its root, which a store under a private home cannot offer.
   */
  scratchDir?: string | undefined;
  /**
   * Layers the other platform builds of the same build wrote, by layerContentKey: a COPY whose layer would
   * be the same bytes takes the blob already written instead of reading and compressing it again.
   */
  sharedLayers?: Map<Digest, Promise<LayerResult>> | undefined;
  /** Replaces the store's own step cache (a LayeredStepCache over imported caches); used even with noCache. */
  stepCache?: StepCache | undefined;
  /** Where imported caches' layer blobs are read from, lazily; searched after the store and the base. */
  cacheReaders?: readonly BlobReader[] | undefined;
  /**
   * Where layer steps write new layers; default the store's blobs. A build that pushes passes one that
   * also uploads each layer while it is written. It must leave every blob it ingests in the store.
   */
  layerIngester?: BlobIngester | undefined;
  /**
   * Watches each layer a step writes, as it is written (an SBOM scan of the new layers), and is told
   * the layer's blob once it is written. Called once per layer write.
   */
  watchLayer?: (() => LayerWatch) | undefined;
  /** HTTP for `ADD <url>` (the registry client's, so its TLS trust and retries apply); without it a URL is refused. */
  remoteFetch?: FetchLike | undefined;
  /** The environment `git` runs in for `ADD <git>` (PATH, HOME, proxies). */
  hostEnv?: Readonly<Record<string, string | undefined>> | undefined;
  /** Told of each `ADD <url>`/`ADD <git>` source the build used, with its digest or commit (for provenance). */
  recordSource?: ((source: FetchedSource) => void) | undefined;
}

export interface BuildInput {
  dockerfile: { file: string; text: string };
  contextDir: string;
  buildArgs: Readonly<Record<string, string>>;
  target?: string | undefined;
  platform: Platform;
  buildPlatform: Platform;
  labels: Readonly<Record<string, string>>;
  buildContexts: Readonly<Record<string, string>>;
  noCache: boolean;
  sourceDateEpoch?: number | undefined;
  /** `--secret id=ID,src=FILE`: host files RUN --mount=type=secret can read; never in a layer or history. */
  secrets?: Readonly<Record<string, string>> | undefined;
  /** `--ssh ID=SOCKET`: agent sockets RUN --mount=type=ssh forwards (`default` when no id is given). */
  ssh?: Readonly<Record<string, string>> | undefined;
  /** The default network for RUN steps (`--network`); the host's unless the user asks, as in docker. */
  network?: 'none' | 'host' | undefined;
  /**
   * Proxy variables (HTTP_PROXY, no_proxy, …) of the environment strata runs in: RUN steps see them, as docker
   * passes them; they stay out of the config, the history and the cache key.
   */
  proxyEnv?: Readonly<Record<string, string>> | undefined;
  /** gzip level 0-9 for new layers; default: zlib's 6, with members that barely compress stored. */
  compressionLevel?: number | undefined;
  /** Compression of new layers; default gzip. zstd layers get OCI media types whatever the base used. */
  compression?: LayerCompression | undefined;
  /**
   * `--explain-cache`: look every step up and explain each miss, but run nothing and write nothing
   * (no layer, no cache record, no stat cache); a step after a miss misses because of it.
   */
  explainOnly?: boolean | undefined;
}

export interface BuildOutcome {
  image: Image;
  /** Reads every blob of the image: the store's new layers and the bases' layers. */
  reader: BlobReader;
  warnings: string[];
  steps: { total: number; cached: number };
  parsed: ParsedDockerfile;
  /** The other stages the target needed, in the order they were planned, each as it ended. */
  stages: BuiltStage[];
  /** What an SBOM of the build context needs: BUILDKIT_SBOM_SCAN_CONTEXT and what the build read of the context. */
  context: BuildContextReads;
}

/** The build context as the target's build read it. */
export interface BuildContextReads {
  /** The target stage's name, or its index when it has none. */
  stage: string;
  /** `BUILDKIT_SBOM_SCAN_CONTEXT` as the target stage sees it (its own ARG, else the global one), when declared. */
  sbomScanContext?: string | undefined;
  /** The context's paths COPY, ADD and RUN bind mounts matched (relative, '' for all of it), sorted. */
  reads: string[];
}

/** A stage other than the target, as it ended: for an SBOM of a build stage. */
export interface BuiltStage {
  /** The stage's name, or its index when it has none. */
  name: string;
  image: Image;
  reader: BlobReader;
  /** `BUILDKIT_SBOM_SCAN_STAGE` as the stage sees it (its own ARG, else the global one), when declared. */
  sbomScanStage?: string | undefined;
}

/** Shared by the handlers of one build. */
export interface BuildSession {
  deps: BuildDeps;
  input: BuildInput;
  cache: StepCache | undefined;
  /** Records the components of step keys per instruction line and explains misses; undefined under --no-cache. */
  explainer: CacheExplainer | undefined;
  /** Content digests of context files by stat data, kept in the store so an unchanged file is not reread. */
  statCache: ContextStatCache;
  created: string;
  warn(message: string, at?: string): void;
  /** A scratch directory on the store's file system, removed when the build ends. */
  tempDir(prefix: string, options?: { reachable?: boolean }): Promise<string>;
  /** Runs `release` when the build ends, after its scratch directories are removed (ends the build's hold on kept trees). */
  onEnd(release: () => Promise<void>): void;
  /** Work done once per build and shared (unpacked images, filesystem indexes, the context). */
  memo: BuildMemo;
}
