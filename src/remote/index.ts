export {
  isGitSource,
  isHttpSource,
  parseGitSource,
  redactUrl,
  redactUrlsIn,
  fetchedSource,
  sourceUri,
  type GitSource,
  type FetchedSource,
} from './source.js';
export { downloadUrl, type DownloadOptions, type DownloadProgress, type DownloadedFile, type NotModified, type Validators } from './download.js';
export { HttpDownloadCache, type FetchedUrl } from './http-cache.js';
export { fetchGit, resolveGitRef, type GitCheckout, type GitFetchOptions } from './git.js';
export { unpackArchiveFile, type UnpackOptions } from './tar-context.js';
export { GitTreeCache, type GitTreeRecord } from './git-cache.js';
