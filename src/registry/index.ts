export {
  RegistryClient,
  MANIFEST_ACCEPT,
  type RegistryClientOptions,
  type FetchedManifest,
  type ManifestHead,
  type TransferOptions,
} from './client.js';
export { RegistryTransport, type RegistryConnectionOptions } from './transport.js';
export { RegistryAuth, type RegistryCredential, type CredentialLookup } from './auth.js';
export { parseWwwAuthenticate, pickChallenge, type AuthChallenge } from './challenge.js';
export { repositoryScope, pullScopes, pushScopes, mergeScopes, scopesCover, type RepositoryAction } from './scopes.js';
export { createNodeFetch, type FetchLike, type FetchInit, type FetchResponse, type NodeFetchOptions } from './http.js';
export type { RetryOptions } from './retry.js';
export { DEFAULT_DEADLINES, DeadlineError, type DeadlineOptions, type RegistryDeadlines } from './deadlines.js';
export type { RetryInfo } from './send.js';
export type { RegistryErrorContext } from './errors.js';
export { blobSourceFromReader, type BlobSource, type UploadOptions, type BlobUploadCallOptions } from './upload.js';
export type { StreamedBlob, StreamBlobOptions } from './upload-stream.js';
export { pullImage, type PullImageOptions, type PulledImage, type PulledManifest } from './pull.js';
export { pushImage, type PushImageOptions, type PushedImage } from './push.js';
export { copyBetweenRegistries, registryImageReader, type CopyOptions, type RegistryLocation } from './copy.js';
export type { TransferEvent, ProgressListener } from './progress.js';
export { sendWithRetry, type SendOptions } from './send.js';
export { resolveRetry, backoffDelay, isCertificateCode, isRetryableError, isRetryableStatus, type ResolvedRetry } from './retry.js';
export { discardBody, readText } from './http.js';
export { proxySettingsFromEnv, proxyFor, proxyFailure, ProxyError, type ProxySettings } from './proxy.js';
export { BlobLocations } from './blob-locations.js';
export { convertToDockerV2s2 } from './v2s2.js';
