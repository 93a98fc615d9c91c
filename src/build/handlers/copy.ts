import { posix } from 'node:path';
import { StrataError, isStrataError } from '../../errors/index.js';
import { digestOf, type Digest } from '../../digest/index.js';
import {
  hashSources,
  hashSourcesFromCache,
  listSourceTree,
  sourceRootForDirectory,
  type ContextEntry,
  type SourceMatch,
  type SourceRoot,
} from '../../context/index.js';
import type { AddInstruction, CopyInstruction } from '../../dockerfile/index.js';
import type { ImageFsIndex } from '../../layer/index.js';
import { stepCacheKey, stepDefinitionKey } from '../cache.js';
import { parseChmod } from '../chmod.js';
import { expandInStage } from '../expand.js';
import { imageFilesystem, imageRootfs } from '../imagefs.js';
import type { BaseImage, BuildSession } from '../session.js';
import type { StageResult } from '../stages.js';
import type { StageState } from '../state.js';
import { resolveOwnership } from '../users.js';
import { CopyPlan, layerPath } from './copy-entries.js';
import { archiveRoot, isArchiveSource } from './add-archive.js';
import { isRemoteSource, runAddRemote } from './add-remote.js';
import { buildContextRoot, listCopySources, takeCopySources, type ListedSources } from './copy-sources.js';
import { commitLayerStep, replayCached } from './layer-step.js';

export interface CopyContext {
  stageSource(name: string): Promise<StageResult | BaseImage | { dir: string }>;
  at: string;
}

/**
 * COPY and ADD: sources resolved inside the context (or another stage's filesystem), placed at the
 * destination with docker's directory and trailing-slash rules, written as one layer. The step is
 * keyed by the parent image, the resolved instruction and the content of what it copies.
 */
export async function runCopy(state: StageState, ins: CopyInstruction | AddInstruction, session: BuildSession, cc: CopyContext): Promise<'cached' | 'done'> {
  const line = ins.location.line;
  const at = cc.at;
  const warn = (m: string, w?: string): void => session.warn(m, w);
  const expand = (w: string): string => expandInStage(state, w, line, warn);
  const sources = ins.sources.map(expand);
  const dest = expand(ins.dest);
  const from = ins.kind === 'COPY' && ins.from !== undefined ? expand(ins.from) : undefined;
  const chownSpec = ins.chown !== undefined ? expand(ins.chown) : undefined;
  const chmodSpec = ins.chmod !== undefined ? expand(ins.chmod) : undefined;
  const excludes = ins.exclude.map(expand);
  const parents = ins.kind === 'COPY' && ins.parents;
  if (ins.kind === 'COPY' && sources.some((s) => /^https?:\/\//i.test(s) || isRemoteSource(s))) {
    throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: COPY cannot take a URL or git repository; use ADD`);
  }
  if (ins.kind === 'ADD' && sources.some(isRemoteSource)) {
    const workdir = state.image.config.config?.WorkingDir || '/';
    return runAddRemote(state, ins, session, {
      at, sources, excludes, chown: chownSpec, chmod: chmodSpec,
      destAbs: dest.startsWith('/') ? dest : posix.join(workdir, dest) + (dest.endsWith('/') || dest === '.' ? '/' : ''),
      ownership: (spec, fs) => ownership(spec, fs, session, state, at),
    });
  }

  // Where sources come from: the context, or another stage's (or image's) filesystem.
  let root: SourceRoot;
  let fromKey: string | null = null;
  if (from !== undefined) {
    const src = await cc.stageSource(from);
    if ('dir' in src) {
      root = await sourceRootForDirectory(src.dir, `build context ${from}`);
    } else {
      const image = 'state' in src ? src.state.image : src.image;
      const reader = 'state' in src ? src.state.reader : src.reader;
      root = await sourceRootForDirectory(await imageRootfs(session, image, reader), `stage ${from}`);
    }
    fromKey = from;
  } else {
    root = await buildContextRoot(session);
  }

  const workdir = state.image.config.config?.WorkingDir || '/';
  const destAbs = dest.startsWith('/') ? dest : posix.join(workdir, dest) + (dest.endsWith('/') ? '/' : '');
  const destIsDirSyntax = destAbs.endsWith('/') || destAbs.endsWith('/.') || dest === '.';
  const inlineCount = ins.sourceContents.length;
  if (sources.length + inlineCount > 1 && !destIsDirSyntax) {
    throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: when using ${ins.kind} with more than one source file, the destination must be a directory and end with a /`);
  }

  // Everything the step reads, listed once (perhaps while the base was resolved). It keys the cache
  // before the image below is looked at: the parent's content key already decides how the destination
  // resolves in it, so a hit (from this store or an imported cache) never needs the base's layers.
  let listing: ListedSources;
  try {
    listing = await ((from === undefined ? takeCopySources(session, sources, excludes) : undefined) ?? listCopySources(root, sources, excludes));
  } catch (cause) {
    if (isStrataError(cause)) throw new StrataError(cause.code, `${at}: ${ins.kind} failed: ${cause.message}`, { hint: cause.hint, cause });
    throw cause;
  }
  const { listed } = listing;
  const matches = listing.resolved.flatMap((r) => r.matches);
  if (matches.length === 0 && inlineCount === 0) {
    throw new StrataError('E_NOT_FOUND', `${at}: ${ins.kind} failed: no source files were specified (the patterns ${sources.map((s) => JSON.stringify(s)).join(', ')} match nothing)`);
  }
  const keyEntries = listed.flat();
  const keyPaths = matches.flatMap((m, i) => listed[i]!.map((e) => `${i}/${m.matchedPath}/${e.relPath}`));
  // Only context files go through the stat cache: other roots are temporary directories.
  const statCache = from === undefined ? session.statCache : undefined;
  // keyEntries come match by match, each match's listing sorted: a deterministic order as it is.
  const hashOptions = { includeOwnership: from !== undefined, statCache, paths: keyPaths, signal: session.deps.signal };
  const inline = ins.sourceContents.map((c) => ({ path: c.path, text: c.expand ? expand(c.data) : c.data }));
  const instruction = {
    kind: ins.kind, sources, dest: destAbs, from: fromKey, chown: chownSpec ?? null, chmod: chmodSpec ?? null, link: ins.link, parents, excludes,
    unpack: ins.kind === 'ADD' ? ins.unpack ?? null : null,
    inline: inline.map((c) => [c.path, digestOf(c.text)]),
  };
  const parent = state.image;
  const keyFor = (sourcesDigest: Digest): Digest => stepCacheKey({ parent, instruction, env: [], sources: sourcesDigest });
  const definition = stepDefinitionKey({ parent, instruction, env: [] });
  const createdBy = `${ins.original.replace(/\s+/g, ' ').trim()} # strata`;
  // The sources are hashed before the work only when a hit is possible; otherwise their digests come
  // from the layer write, which reads every file anyway, and the key is computed after it.
  const cachedSources = hashSourcesFromCache(keyEntries, hashOptions);
  let key = cachedSources === undefined ? undefined : keyFor(cachedSources);
  if (key === undefined && (await session.cache?.mayHave(definition)) === true) key = keyFor(await hashSources(keyEntries, hashOptions));
  if (key !== undefined && (await replayCached(state, session, key))) return 'cached';

  // --link layers stand alone and never look at the image below; otherwise the destination is
  // resolved against it (existing directories, symlinked paths), which needs the base's layers.
  const fs: ImageFsIndex | undefined = ins.link ? undefined : await imageFilesystem(session, state.image, state.reader);
  // Owners: --chown when given; else files from the context become 0:0, files from another stage
  // keep theirs (docker since moby#38599), and an ADDed archive's members keep theirs.
  const owner = chownSpec !== undefined ? await ownership(chownSpec, fs, session, state, at) : from !== undefined ? 'keep' : ins.kind === 'ADD' ? 'keep-archive' : { uid: 0, gid: 0 };
  const chmod = chmodSpec !== undefined ? parseChmod(chmodSpec, at) : undefined;
  const dirMtime = Math.floor(new Date(session.created).getTime() / 1000);
  const plan = new CopyPlan(fs, owner === 'keep-archive' ? { uid: 0, gid: 0 } : owner, chmod, dirMtime);
  // Symlinks in the destination path resolve inside the image, as they would in a container.
  const resolveDest = (p: string, followFinal = true): string => (fs ? (fs.resolve(p, { followFinal }) ?? p) : p);
  const destDir = resolveDest(destAbs.replace(/\/\.?$/, '') || '/');
  const destExistsAsDir = fs?.get(destDir)?.type === 'dir';
  const intoDir = destIsDirSyntax || destExistsAsDir || matches.length > 1;

  for (const [i, match] of matches.entries()) {
    if (ins.kind === 'ADD' && !match.isDir && ins.unpack !== false && (await isArchiveSource(match.entry.absPath))) {
      // A local archive is unpacked at the destination, its members keeping their owners unless --chown.
      const archive = await archiveRoot(session, match.entry.absPath, at);
      for (const e of await listSourceTree(archive, '', {})) {
        if (e.relPath === '') continue;
        plan.add(layerPath(destDir, e.relPath), e, { keepExistingDir: true, keepOwner: owner === 'keep-archive' });
      }
      continue;
    }
    placeMatch(plan, match, listed[i]!, { destDir, destFile: resolveDest(destAbs, false), intoDir, parents });
  }
  for (const content of inline) {
    const target = intoDir ? layerPath(destDir, content.path) : layerPath(resolveDest(destAbs, false), '');
    plan.addData(target, Buffer.from(content.text, 'utf8'), 0o644, dirMtime);
  }
  const fileDigests = key === undefined ? new Map<string, Digest>() : undefined;
  const keyAfterWrite = async (): Promise<Digest> => keyFor(await hashSources(keyEntries, { ...hashOptions, known: fileDigests }));
  await commitLayerStep(state, session, key ?? keyAfterWrite, plan.list(), createdBy, { definition, fileDigests, shareable: true });
  return 'done';
}

interface PlaceOptions {
  destDir: string;
  /** The destination as a file path (parents resolved, the last component not followed). */
  destFile: string;
  intoDir: boolean;
  parents: boolean;
}

/** A directory source copies its contents; a file lands in the destination directory or at the destination path. */
function placeMatch(plan: CopyPlan, match: SourceMatch, entries: readonly ContextEntry[], o: PlaceOptions): void {
  if (match.isDir) {
    const target = o.parents ? posix.join(o.destDir, match.matchedPath) : o.destDir;
    for (const e of entries) plan.add(layerPath(target, e.relPath), e, { keepExistingDir: true });
    return;
  }
  const base = o.parents ? posix.join(o.destDir, posix.dirname(match.matchedPath) === '.' ? '' : posix.dirname(match.matchedPath)) : o.destDir;
  const name = posix.basename(match.matchedPath);
  const target = o.intoDir || o.parents ? layerPath(base, name) : layerPath(o.destFile, '');
  plan.add(target, match.entry);
}

async function ownership(spec: string, fs: ImageFsIndex | undefined, session: BuildSession, state: StageState, at: string): Promise<{ uid: number; gid: number }> {
  let index = fs;
  const [user = '', group] = spec.split(':');
  const numeric = /^\d+$/.test(user) && (group === undefined || /^\d+$/.test(group));
  if (!index && !numeric) index = await imageFilesystem(session, state.image, state.reader);
  try {
    return resolveOwnership(spec, index?.content('/etc/passwd')?.toString('utf8'), index?.content('/etc/group')?.toString('utf8'));
  } catch (cause) {
    if (isStrataError(cause)) throw new StrataError(cause.code, `${at}: --chown=${spec}: ${cause.message}`, { hint: cause.hint, cause });
    throw cause;
  }
}
