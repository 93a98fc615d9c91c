/**
 * strata's public API: the commands as functions with typed options, the errors they throw, and the
 * types they take and give. Everything else is in `strata/internals` and may change. See README's
 * "Using strata from code".
 */
export { append, build, copy, inspect, login, logout, pull, push } from './library.js';
export type { AppendOptions, BuildOptions, SecretSource, StrataOptions } from './library.js';

export type { AppendLayerSpec, AppendResult } from './api/append.js';
export type { BuildImageResult as BuildResult } from './pipeline/index.js';
export type { CacheExportSpec, CacheImportSpec, CacheMode } from './pipeline/index.js';
export type { BuildOutputSpec } from './pipeline/index.js';
export type { InspectResult } from './api/inspect.js';
export type { LoginResult } from './api/login.js';
export type { PullResult } from './transports/index.js';
export type { InspectReport } from './inspect/index.js';

export { StrataError, isStrataError } from './errors/index.js';
export type { ErrorCode } from './errors/index.js';

export type { BuildEvent, BuildEventSink } from './build/index.js';
export type { ProgressListener, TransferEvent } from './registry/index.js';
export type { Executor, RunRequest, RunResult } from './exec/index.js';

export { parseDigest } from './digest/index.js';
export type { Digest } from './digest/index.js';
export { formatReference, parseImageReference } from './ref/index.js';
export type { ImageReference } from './ref/index.js';
export { MediaType, formatPlatform, parsePlatform } from './oci/index.js';
export type { Descriptor, ImageConfig, Index, Manifest, Platform } from './oci/index.js';
export { defaultStoreRoot } from './store/index.js';
