import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StrataError, ioError } from '../errors/index.js';
import type { FetchLike } from '../registry/index.js';
import {
  downloadUrl,
  fetchGit,
  fetchedSource,
  isGitSource,
  parseGitSource,
  redactUrl,
  unpackArchiveFile,
  type DownloadProgress,
  type FetchedSource,
} from '../remote/index.js';
import { sniffFile } from '../layer/index.js';

/** `strata build CONTEXT` where CONTEXT is not a directory: a git repository, an http(s) URL, or `-` (stdin). */
export function isRemoteContext(spec: string): boolean {
  return spec === '-' || /^https?:\/\//i.test(spec) || isGitSource(spec);
}

export interface RemoteContextOptions {
  /** Scratch space; the context is made in a directory of its own under it. */
  scratchDir: string;
  fetch?: FetchLike | undefined;
  /** Where `-` reads the archive from. */
  stdin?: Readable | undefined;
  /** Build secrets by id (`GIT_AUTH_TOKEN[.<host>]`), ssh agent sockets by id, the environment git runs in. */
  secrets?: Readonly<Record<string, string>> | undefined;
  ssh?: Readonly<Record<string, string>> | undefined;
  env?: Readonly<Record<string, string | undefined>> | undefined;
  signal?: AbortSignal | undefined;
  /** An http(s) context's download, as ADD's are told. */
  onProgress?: ((progress: DownloadProgress) => void) | undefined;
}

export interface RemoteContext {
  /** The context directory, on local disk until `cleanup`. */
  dir: string;
  /** A URL that is no archive is the Dockerfile itself, as docker takes it; the context is then empty. */
  dockerfileText?: string | undefined;
  /** A name for the image when none is given: the repository's or the file's. */
  name: string;
  /** The repository's commit or the download's digest (none for stdin), for provenance. */
  source?: FetchedSource | undefined;
  cleanup(): Promise<void>;
}

/** A Dockerfile behind a URL is small; anything larger is not one. */
const DOCKERFILE_LIMIT = 4 * 1024 * 1024;

/**
 * Makes a remote context local, as docker and kaniko take them: a git repository (`#ref:subdir`) is
 * checked out (shallow, the subdirectory is the context), an http(s) tar archive (plain, gzip, bzip2, xz,
 * zstd; told by content) or a tar on stdin is unpacked with the base-layer extractor (no entry escapes),
 * and an http(s) file that is no archive is the Dockerfile. The .dockerignore in it then applies as in
 * any context directory.
 */
export async function openRemoteContext(spec: string, options: RemoteContextOptions): Promise<RemoteContext> {
  await mkdir(options.scratchDir, { recursive: true });
  const work = await mkdtemp(join(options.scratchDir, 'remote-context-'));
  const cleanup = (): Promise<void> => rm(work, { recursive: true, force: true });
  try {
    if (spec === '-') return { ...(await fromStdin(work, options)), cleanup };
    if (isGitSource(spec)) {
      const source = parseGitSource(spec);
      const checkout = await fetchGit(source, { dir: join(work, 'git'), secrets: options.secrets, ssh: options.ssh, env: options.env, signal: options.signal });
      const name = basename(source.subdir || source.remote.replace(/\.git$/, '').replace(/[:/]+$/, '')) || 'context';
      return { dir: checkout.dir, name, source: fetchedSource(spec, { commit: checkout.commit }), cleanup };
    }
    return { ...(await fromUrl(spec, work, options)), cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function fromStdin(work: string, options: RemoteContextOptions): Promise<Omit<RemoteContext, 'cleanup'>> {
  if (options.stdin === undefined) throw new StrataError('E_USAGE', 'the context is - but there is no stdin to read it from');
  const archive = join(work, 'stdin.tar');
  try {
    await pipeline(options.stdin, createWriteStream(archive, { flags: 'wx', mode: 0o600 }), { signal: options.signal });
  } catch (cause) {
    throw ioError('read the context from stdin into', archive, cause);
  }
  if ((await stat(archive)).size === 0)
    throw new StrataError('E_USAGE', 'the context is - but stdin was empty', { hint: 'pipe a tar archive: tar -C DIR -c . | strata build -' });
  return { dir: await unpackInto(archive, work, 'tar context from stdin', options), name: 'context' };
}

async function fromUrl(url: string, work: string, options: RemoteContextOptions): Promise<Omit<RemoteContext, 'cleanup'>> {
  if (options.fetch === undefined) throw new StrataError('E_USAGE', `cannot download ${redactUrl(url)}: no HTTP access was given`);
  const downloaded = await downloadUrl(url, { fetch: options.fetch, dir: work, signal: options.signal, onProgress: options.onProgress });
  if (downloaded.kind !== 'downloaded') throw new StrataError('E_INTERNAL', `download of ${redactUrl(url)} answered 304 unasked`);
  const name = basename(new URL(url).pathname).replace(/\.(tar(\.\w+)?|tgz|tbz2?|txz)$/, '') || 'context';
  const source = fetchedSource(url, { digest: downloaded.digest });
  if ((await sniffFile(downloaded.path)) !== undefined) {
    return { dir: await unpackInto(downloaded.path, work, `tar context ${redactUrl(url)}`, options), name, source };
  }
  if (downloaded.size > DOCKERFILE_LIMIT) {
    throw new StrataError('E_USAGE', `${redactUrl(url)} is neither a tar archive nor a Dockerfile (${downloaded.size} bytes of something else)`);
  }
  const dir = join(work, 'context');
  await mkdir(dir);
  return { dir, dockerfileText: await readFile(downloaded.path, 'utf8'), name, source };
}

async function unpackInto(archive: string, work: string, what: string, options: RemoteContextOptions): Promise<string> {
  const dir = join(work, 'context');
  await mkdir(dir);
  const scratch = join(work, 'scratch');
  await mkdir(scratch);
  await unpackArchiveFile(archive, dir, { scratchDir: scratch, what, signal: options.signal });
  // The archive is not needed once unpacked: give its disk space back before the build.
  await rm(archive, { force: true });
  await rm(scratch, { recursive: true, force: true });
  return dir;
}
