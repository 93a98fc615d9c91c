import { lstat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { StrataError, isStrataError } from '../../errors/index.js';
import { digestOf, parseDigest, type Digest } from '../../digest/index.js';
import { listSourceTree, sourceRootForDirectory, type ContextEntry } from '../../context/index.js';
import type { AddInstruction } from '../../dockerfile/index.js';
import type { ImageFsIndex } from '../../layer/index.js';
import { canonicalJsonBytes } from '../../oci/index.js';
import {
  GitTreeCache,
  HttpDownloadCache,
  fetchGit,
  fetchedSource,
  isGitSource,
  resolveGitRef,
  isHttpSource,
  parseGitSource,
  redactUrl,
  redactUrlsIn,
  type FetchedUrl,
  type GitCheckout,
} from '../../remote/index.js';
import { stepCacheKey, stepDefinitionKey } from '../cache.js';
import { parseChmod } from '../chmod.js';
import { imageFilesystem } from '../imagefs.js';
import { downloadEvents } from '../events.js';
import type { BuildSession } from '../session.js';
import type { StageState } from '../state.js';
import { archiveRoot, isArchiveSource } from './add-archive.js';
import { CopyPlan, layerPath } from './copy-entries.js';
import { copyParentKey } from './copy-parent.js';
import { commitLayerStep, layerStepWords, replayCached } from './layer-step.js';
import { MemoKind } from '../memo.js';

const DOWNLOADS = new MemoKind<FetchedUrl>('http');
const CHECKOUTS = new MemoKind<GitCheckout>('git');

/** An ADD source that is not in the context: a URL to download or a git repository. */
export function isRemoteSource(source: string): boolean {
  return isHttpSource(source) || isGitSource(source);
}

export interface RemoteAddWords {
  at: string;
  sources: string[];
  /** Absolute, with its trailing slash kept. */
  destAbs: string;
  chown: string | undefined;
  chmod: string | undefined;
  excludes: string[];
  ownership: (spec: string, fs: ImageFsIndex | undefined) => Promise<{ uid: number; gid: number }>;
}

type Fetched =
  | { kind: 'http'; url: string; name: string; file: FetchedUrl; mtime: number }
  | { kind: 'git'; source: string; checkout: GitCheckout; mtime: number };

/**
 * ADD of URLs and git repositories, as BuildKit does them. A URL's file is mode 0600, owned by root (or
 * --chown), dated by the server's Last-Modified, named after the URL's last path component under a
 * directory destination, and unpacked only with --unpack=true. With --checksum the key is known before
 * any download (a hit asks the network nothing); without, the key is the digest of what was downloaded
 * (revalidated with the validators the server gave last time). A repository is checked out with the
 * host's git; its tree (modes from git, mtimes the commit's or SOURCE_DATE_EPOCH) is copied into the
 * destination directory, keyed by the git tree id.
 */
export async function runAddRemote(state: StageState, ins: AddInstruction, session: BuildSession, w: RemoteAddWords): Promise<'cached' | 'done'> {
  const { at } = w;
  const { gitCommit, checksum } = checkRemoteAdd(ins, w);
  const unpack = ins.unpack === true;
  // As a COPY's: the layer chain below (or, for --link, the user databases --chown reads) and the words.
  const words = {
    sources: w.sources,
    dest: w.destAbs,
    chown: w.chown ?? null,
    chmod: w.chmod ?? null,
    link: ins.link,
    excludes: w.excludes,
    unpack,
    checksum: checksum ?? gitCommit ?? null,
    keepGitDir: ins.keepGitDir,
    ...layerStepWords(session),
  };
  const definitionParts = { kind: 'ADD', parent: await copyParentKey(ins.link, w.chown, session, state), words };
  const definition = stepDefinitionKey(definitionParts);
  const keyFor = (sources: unknown): Digest => stepCacheKey({ ...definitionParts, sources: digestOf(canonicalJsonBytes(sources)) });
  const createdBy = remoteCreatedBy(ins);
  // With a checksum the content is known before it is fetched: the key needs no network (BuildKit).
  const record = session.deps.recordSource;
  if (checksum !== undefined) {
    // The download is checked against the checksum, so the checksum is what was used, hit or miss.
    record?.(fetchedSource(w.sources[0]!, { digest: checksum }));
    const key = keyFor([{ checksum }]);
    if (await replayCached(state, session, key, createdBy)) return 'cached';
    const fetched = await fetchAll(w.sources, session, at, ins, checksum);
    await write(state, session, ins, w, fetched, key, definition, unpack);
    return 'done';
  }
  // Repositories whose ref still names a commit seen before are keyed without a fetch (one ls-remote each).
  const early = await gitKeysWithoutFetch(w.sources, session, ins.keepGitDir, gitCommit);
  if (early !== undefined && (await replayCached(state, session, keyFor(early.parts), createdBy))) {
    for (const [i, commit] of early.commits.entries()) record?.(fetchedSource(w.sources[i]!, { commit }));
    return 'cached';
  }
  const fetched = await fetchAll(w.sources, session, at, ins, undefined);
  for (const f of fetched) {
    if (gitCommit !== undefined && f.kind === 'git' && !f.checkout.commit.startsWith(gitCommit)) {
      throw new StrataError(
        'E_DIGEST_MISMATCH',
        `${at}: ADD failed: ${redactUrl(f.source)} is at commit ${f.checkout.commit}, but --checksum expects ${gitCommit}`,
      );
    }
  }
  for (const f of fetched)
    record?.(f.kind === 'http' ? fetchedSource(f.url, { digest: f.file.digest }) : fetchedSource(f.source, { commit: f.checkout.commit }));
  const key = keyFor(
    fetched.map((f) =>
      f.kind === 'http'
        ? { url: f.url, digest: f.file.digest, lastModified: f.file.lastModified ?? null }
        : gitKeyPart(f.source, f.checkout.tree, f.mtime, ins.keepGitDir ? f.checkout.commit : null),
    ),
  );
  if (await replayCached(state, session, key, createdBy)) return 'cached';
  await write(state, session, ins, w, fetched, key, definition, unpack);
  return 'done';
}

/** Refuses what a remote ADD cannot do, and reads its --checksum: a git source's commit, or a URL's digest. */
function checkRemoteAdd(ins: AddInstruction, w: RemoteAddWords): { gitCommit: string | undefined; checksum: Digest | undefined } {
  const { at } = w;
  const local = w.sources.filter((s) => !isRemoteSource(s));
  if (local.length > 0) {
    throw new StrataError(
      'E_DOCKERFILE_INSTRUCTION',
      `${at}: ADD mixes remote sources with context paths (${local.join(', ')}); strata takes them in separate ADD lines`,
    );
  }
  if (ins.sourceContents.length > 0)
    throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: ADD mixes remote sources with heredocs; give them separate ADD lines`);
  const destIsDirSyntax = w.destAbs.endsWith('/') || w.destAbs.endsWith('/.');
  if (w.sources.length > 1 && !destIsDirSyntax) {
    throw new StrataError(
      'E_DOCKERFILE_INSTRUCTION',
      `${at}: when using ADD with more than one source file, the destination must be a directory and end with a /`,
    );
  }
  // For a repository, --checksum is the commit the ref must resolve to (BuildKit's `ADD --checksum=<commit> <git>`).
  const gitCommit = ins.checksum !== undefined && w.sources.length === 1 && isGitSource(w.sources[0]!) ? ins.checksum : undefined;
  if (gitCommit !== undefined && !/^[0-9a-f]{7,64}$/.test(gitCommit)) {
    throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: ADD --checksum=${gitCommit}: a git source's checksum is a commit id (hex)`);
  }
  const checksum = ins.checksum === undefined || gitCommit !== undefined ? undefined : parseChecksum(ins.checksum, at);
  if (checksum !== undefined && (w.sources.length !== 1 || !isHttpSource(w.sources[0]!))) {
    throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: ADD --checksum takes exactly one http(s) or git source`);
  }
  return { gitCommit, checksum };
}

/** What a repository source puts in the step key; the same whether it came from a checkout or a record. */
function gitKeyPart(source: string, tree: string, mtime: number, commit: string | null): unknown {
  return { git: source, tree, mtime, commit };
}

function gitTreeCache(session: BuildSession): GitTreeCache {
  return new GitTreeCache(join(session.deps.store.root, 'cache', 'remote-git'));
}

/**
 * The key parts of an ADD of repositories only, from `git ls-remote` and earlier checkouts, with the commit
 * each source resolved to; undefined when any needs a fetch.
 */
async function gitKeysWithoutFetch(
  sources: readonly string[],
  session: BuildSession,
  keepGitDir: boolean,
  pinned: string | undefined,
): Promise<{ parts: unknown[]; commits: string[] } | undefined> {
  if (!sources.every((s) => isGitSource(s) && !isHttpSource(s))) return undefined;
  const parts: unknown[] = [];
  const commits: string[] = [];
  for (const text of sources) {
    const source = parseGitSource(text);
    let commit: string | undefined;
    try {
      commit = await resolveGitRef(source, { secrets: session.input.secrets, ssh: session.input.ssh, env: session.deps.hostEnv, signal: session.deps.signal });
    } catch {
      // The fetch that follows reports what is wrong, in its own words.
      return undefined;
    }
    // A commit other than the pinned one is an error the fetch path reports.
    if (commit === undefined || (pinned !== undefined && !commit.startsWith(pinned))) return undefined;
    const known = await gitTreeCache(session).get(commit, source.subdir);
    if (known === undefined) return undefined;
    parts.push(gitKeyPart(text, known.tree, session.input.sourceDateEpoch ?? known.commitTime, keepGitDir ? known.commit : null));
    commits.push(known.commit);
  }
  return { parts, commits };
}

function parseChecksum(text: string, at: string): Digest {
  let digest: Digest;
  try {
    digest = parseDigest(text);
  } catch (cause) {
    throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: ADD --checksum=${text}: ${isStrataError(cause) ? cause.message : String(cause)}`, { cause });
  }
  if (!digest.startsWith('sha256:')) throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: ADD --checksum=${text}: strata verifies sha256 checksums only`);
  return digest;
}

function createdSeconds(session: BuildSession): number {
  return Math.floor(new Date(session.created).getTime() / 1000);
}

async function fetchAll(sources: readonly string[], session: BuildSession, at: string, ins: AddInstruction, checksum: Digest | undefined): Promise<Fetched[]> {
  const out: Fetched[] = [];
  for (const source of sources) {
    try {
      out.push(isHttpSource(source) ? await fetchHttp(source, session, checksum, at) : await fetchRepository(source, session, ins.keepGitDir));
    } catch (cause) {
      if (isStrataError(cause)) throw new StrataError(cause.code, `${at}: ADD failed: ${cause.message}`, { hint: cause.hint, cause });
      throw cause;
    }
  }
  return out;
}

async function fetchHttp(url: string, session: BuildSession, checksum: Digest | undefined, where: string): Promise<Fetched> {
  const fetch = session.deps.remoteFetch;
  if (fetch === undefined) throw new StrataError('E_USAGE', `cannot download ${redactUrl(url)}: this build was given no HTTP access`);
  const cache = new HttpDownloadCache(join(session.deps.store.root, 'cache', 'remote-http'));
  const file = await session.memo.get(DOWNLOADS.key(`${url}:${checksum ?? ''}`), () =>
    cache.fetch(url, { fetch, checksum, signal: session.deps.signal, onProgress: downloadEvents(session.deps.events, where, url) }),
  );
  // Without Last-Modified the file is dated like the directories the step makes; that date is no part of
  // the key (BuildKit keys a download by its content), so an unchanged file still hits.
  const parsedMtime = file.lastModified === undefined ? Number.NaN : Date.parse(file.lastModified);
  const mtime = Number.isNaN(parsedMtime) ? createdSeconds(session) : Math.floor(parsedMtime / 1000);
  return { kind: 'http', url, name: urlFileName(url), file, mtime };
}

/**
 * Download events for the progress output: `start` once the server answers, `progress` per piece of the
 * body (the renderers throttle), `done` when the bytes are all in.
 */
/** BuildKit's name for a downloaded file: the URL path's last component, else `__unnamed__`. */
function urlFileName(url: string): string {
  try {
    const base = posix.basename(new URL(url).pathname);
    return base === '' || base === '.' || base === '/' ? '__unnamed__' : decodeURIComponent(base);
  } catch {
    return '__unnamed__';
  }
}

async function fetchRepository(text: string, session: BuildSession, keepGitDir: boolean): Promise<Fetched> {
  const source = parseGitSource(text);
  const checkout = await session.memo.get(CHECKOUTS.key(`${text}:${keepGitDir}`), async () =>
    fetchGit(source, {
      dir: await session.tempDir('git'),
      keepGitDir,
      secrets: session.input.secrets,
      ssh: session.input.ssh,
      env: session.deps.hostEnv,
      signal: session.deps.signal,
    }),
  );
  await gitTreeCache(session).put({ commit: checkout.commit, subdir: source.subdir, tree: checkout.tree, commitTime: checkout.commitTime });
  const mtime = session.input.sourceDateEpoch ?? checkout.commitTime;
  return { kind: 'git', source: text, checkout, mtime };
}

async function write(
  state: StageState,
  session: BuildSession,
  ins: AddInstruction,
  w: RemoteAddWords,
  fetched: readonly Fetched[],
  key: Digest,
  definition: Digest,
  unpack: boolean,
): Promise<void> {
  const fs: ImageFsIndex | undefined = ins.link ? undefined : await imageFilesystem(session, state.image, state.reader);
  const owner = w.chown !== undefined ? await w.ownership(w.chown, fs) : { uid: 0, gid: 0 };
  const chmod = w.chmod !== undefined ? parseChmod(w.chmod, w.at) : undefined;
  const plan = new CopyPlan(fs, owner, chmod, createdSeconds(session));
  const resolveDest = (p: string, followFinal = true): string => (fs ? (fs.resolve(p, { followFinal }) ?? p) : p);
  const destDir = resolveDest(w.destAbs.replace(/\/\.?$/, '') || '/');
  const destFile = resolveDest(w.destAbs, false);
  const intoDir = w.destAbs.endsWith('/') || w.destAbs.endsWith('/.') || fs?.get(destDir)?.type === 'dir' || fetched.length > 1;
  for (const f of fetched) {
    if (f.kind === 'http') {
      if (unpack && (await isArchiveSource(f.file.path))) {
        const archive = await archiveRoot(session, f.file.path, w.at);
        for (const e of await listSourceTree(archive, '', {})) {
          if (e.relPath !== '') plan.add(layerPath(destDir, e.relPath), e, { keepExistingDir: true, keepOwner: w.chown === undefined });
        }
        continue;
      }
      const st = await lstat(f.file.path);
      const entry: ContextEntry = {
        relPath: '',
        absPath: f.file.path,
        type: 'file',
        mode: 0o600,
        size: st.size,
        mtimeMs: f.mtime * 1000,
        uid: 0,
        gid: 0,
        rdev: 0,
        dev: st.dev,
        ino: st.ino,
        nlink: 1,
      };
      plan.add(intoDir ? layerPath(destDir, f.name) : layerPath(destFile, ''), entry);
      continue;
    }
    const root = await sourceRootForDirectory(f.checkout.dir, `git checkout ${redactUrl(f.source)}`);
    for (const e of await listSourceTree(root, '', { excludes: w.excludes })) {
      if (e.relPath === '') continue;
      const inGitDir = e.relPath === '.git' || e.relPath.startsWith('.git/');
      // git records only whether a file is executable; the umask git ran under must not decide the modes.
      const mode = inGitDir ? e.mode : e.type === 'dir' ? 0o755 : e.type === 'file' ? ((e.mode & 0o100) !== 0 ? 0o755 : 0o644) : e.mode;
      plan.add(layerPath(destDir, e.relPath), { ...e, mode, mtimeMs: f.mtime * 1000, uid: 0, gid: 0 }, { keepExistingDir: true });
    }
  }
  const createdBy = remoteCreatedBy(ins);
  await commitLayerStep(state, session, key, plan.list(), createdBy, { definition, shareable: true });
}

/** The history line of a remote ADD: the instruction as written, credentials in URLs redacted. */
function remoteCreatedBy(ins: AddInstruction): string {
  return `${redactUrlsIn(ins.original.replace(/\s+/g, ' ').trim())} # strata`;
}
