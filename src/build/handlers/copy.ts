import { posix } from 'node:path';
import { StrataError, wrapError } from '../../errors/index.js';
import { digestHex, digestOf, type Digest } from '../../digest/index.js';
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
import { imageFilesystem, imageRootfsFor, sourcesFromRecords } from '../imagefs.js';
import type { BaseImage, BuildSession } from '../session.js';
import type { StageResult } from '../stages.js';
import type { StageState } from '../state.js';
import { resolveOwnership } from '../users.js';
import { CopyPlan, layerPath } from './copy-entries.js';
import { archiveRoot, isArchiveSource } from './add-archive.js';
import { isRemoteSource, runAddRemote } from './add-remote.js';
import { buildContextRoot, listCopySources, takeCopySources, type ListedSources } from './copy-sources.js';
import { copyParentKey, isNumericOwner } from './copy-parent.js';
import { commitLayerStep, dryMissed, explainMiss, layerStepWords, missLabel, recordKey, replayCached } from './layer-step.js';
import type { FileList } from '../cache-explain.js';

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
  if (session.input.explainOnly === true && dryMissed(state, ins)) return 'done';
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
      at,
      sources,
      excludes,
      chown: chownSpec,
      chmod: chmodSpec,
      destAbs: dest.startsWith('/') ? dest : posix.join(workdir, dest) + (dest.endsWith('/') || dest === '.' ? '/' : ''),
      ownership: (spec, fs) => ownership(spec, fs, session, state, at),
    });
  }

  const workdir = state.image.config.config?.WorkingDir || '/';
  const destAbs = dest.startsWith('/') ? dest : posix.join(workdir, dest) + (dest.endsWith('/') ? '/' : '');
  const destIsDirSyntax = destAbs.endsWith('/') || destAbs.endsWith('/.') || dest === '.';
  const inlineCount = ins.sourceContents.length;
  if (sources.length + inlineCount > 1 && !destIsDirSyntax) {
    throw new StrataError(
      'E_DOCKERFILE_INSTRUCTION',
      `${at}: when using ${ins.kind} with more than one source file, the destination must be a directory and end with a /`,
    );
  }

  const inline = ins.sourceContents.map((c) => ({ path: c.path, text: c.expand ? expand(c.data) : c.data }));
  // What the step reads and nothing else: the layer chain below it (which holds the destination's
  // directories and the passwd/group files --chown names resolve through; for --link, only those files)
  // and its own resolved words.
  // ENV, LABEL and the rest of the config reach it only through these words.
  const words = {
    sources,
    dest: destAbs,
    from: from ?? null,
    chown: chownSpec ?? null,
    chmod: chmodSpec ?? null,
    link: ins.link,
    parents,
    excludes,
    unpack: ins.kind === 'ADD' ? (ins.unpack ?? null) : null,
    inline: inline.map((c) => [c.path, digestOf(c.text)]),
    ...layerStepWords(session),
  };
  const definitionParts = { kind: ins.kind, parent: await copyParentKey(ins.link, chownSpec, session, state), words };
  const keyFor = (sourcesDigest: Digest): Digest => stepCacheKey({ ...definitionParts, sources: sourcesDigest });
  const definition = stepDefinitionKey(definitionParts);
  const createdBy = `${ins.original.replace(/\s+/g, ' ').trim()} # strata`;

  // Where sources come from: the context, or another stage's (or image's) filesystem.
  let root: SourceRoot;
  // From an image whose layer records say which layers make the sources, those layers' diffIDs decide the
  // sources' content: the step is keyed by them, and a hit unpacks nothing.
  let recordedKey: Digest | undefined;
  if (from !== undefined) {
    const src = await cc.stageSource(from);
    if (session.input.explainOnly === true && 'state' in src && src.state.dryMiss !== undefined) {
      // That stage would be rebuilt, so what this step copies from it cannot be known.
      state.miss = { reason: `${missLabel(ins)} missed: stage ${from} changed (${src.state.dryMiss})`, changes: [{ kind: 'word', field: 'from' }] };
      return 'done';
    }
    if ('dir' in src) {
      root = await sourceRootForDirectory(src.dir, `build context ${from}`);
    } else {
      const image = 'state' in src ? src.state.image : src.image;
      const reader = 'state' in src ? src.state.reader : src.reader;
      const recorded = ins.kind === 'COPY' ? await sourcesFromRecords(session, image, reader, sources) : undefined;
      if (recorded !== undefined) {
        recordedKey = keyFor(recorded);
        if (await replayCached(state, session, recordedKey, createdBy)) return 'cached';
      }
      root = await sourceRootForDirectory(await imageRootfsFor(session, image, reader, sources), `stage ${from}`);
    }
  } else {
    root = await buildContextRoot(session);
  }

  // Everything the step reads, listed once (perhaps while the base was resolved). It keys the cache
  // before the image below is looked at: the parent's content key already decides how the destination
  // resolves in it, so a hit (from this store or an imported cache) never needs the base's layers.
  let listing: ListedSources;
  try {
    listing = await ((from === undefined ? takeCopySources(session, sources, excludes) : undefined) ?? listCopySources(root, sources, excludes));
  } catch (cause) {
    throw wrapError(cause, `${at}: ${ins.kind} failed`);
  }
  const { listed } = listing;
  const matches = listing.resolved.flatMap((r) => r.matches);
  if (matches.length === 0 && inlineCount === 0) {
    throw new StrataError(
      'E_NOT_FOUND',
      `${at}: ${ins.kind} failed: no source files were specified (the patterns ${sources.map((s) => JSON.stringify(s)).join(', ')} match nothing)`,
    );
  }
  const keyEntries = listed.flat();
  const keyPaths = matches.flatMap((m, i) => listed[i]!.map((e) => `${i}/${m.matchedPath}/${e.relPath}`));
  // Only context files go through the stat cache: other roots are temporary directories.
  const statCache = from === undefined ? session.statCache : undefined;
  // keyEntries come match by match, each match's listing sorted: a deterministic order as it is.
  // With SOURCE_DATE_EPOCH the layer holds each file's mtime clamped to it, so the key holds it too.
  const hashOptions = {
    includeOwnership: from !== undefined,
    statCache,
    paths: keyPaths,
    signal: session.deps.signal,
    mtimesUpTo: session.input.sourceDateEpoch,
  };
  // The sources are hashed before the work only when a hit is possible; otherwise their digests come
  // from the layer write, which reads every file anyway, and the key is computed after it.
  // A key from layer records (COPY --from an image) was tried above, and is the key the result is kept by.
  let sourcesDigest = recordedKey === undefined ? hashSourcesFromCache(keyEntries, hashOptions) : undefined;
  if (recordedKey === undefined && sourcesDigest === undefined && (await session.cache?.mayHave(definition)) === true)
    sourcesDigest = await hashSources(keyEntries, hashOptions);
  const key = recordedKey ?? (sourcesDigest === undefined ? undefined : keyFor(sourcesDigest));
  if (key !== undefined && key !== recordedKey && (await replayCached(state, session, key, createdBy))) return 'cached';
  // What the COPY read, file by file (context files only, whose digests the stat cache holds), to name
  // the files that changed when it misses.
  const fileList = (): FileList | undefined => {
    if (statCache === undefined) return undefined;
    const out: Array<[string, string]> = [];
    for (const e of keyEntries) {
      let digest: Digest | null = null;
      if (e.type === 'file') {
        const known = statCache.get(e);
        if (known === undefined) return undefined;
        digest = known;
      }
      const epoch = session.input.sourceDateEpoch;
      const mtime = epoch === undefined ? null : Math.min(Math.floor(e.mtimeMs / 1000), epoch);
      out.push([
        posix.relative(root.dir, e.absPath),
        digestHex(digestOf(JSON.stringify([e.type, e.mode, e.linkTarget ?? null, e.size, digest, mtime]))).slice(0, 12),
      ]);
    }
    return out;
  };
  if (session.input.explainOnly === true) {
    sourcesDigest ??= await hashSources(keyEntries, hashOptions);
    await explainMiss(state, session, ins, keyFor(sourcesDigest), { ...definitionParts, sources: sourcesDigest }, fileList());
    return 'done';
  }

  // --link layers stand alone and never look at the image below; otherwise the destination is
  // resolved against it (existing directories, symlinked paths), which needs the base's layers.
  const fs: ImageFsIndex | undefined = ins.link ? undefined : await imageFilesystem(session, state.image, state.reader);
  // Owners: --chown when given; else files from the context become 0:0, files from another stage
  // keep theirs (docker since moby#38599), and an ADDed archive's members keep theirs.
  const owner =
    chownSpec !== undefined
      ? await ownership(chownSpec, fs, session, state, at)
      : from !== undefined
        ? 'keep'
        : ins.kind === 'ADD'
          ? 'keep-archive'
          : { uid: 0, gid: 0 };
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
  const keyAfterWrite = async (): Promise<Digest> => {
    sourcesDigest = await hashSources(keyEntries, { ...hashOptions, known: fileDigests });
    return keyFor(sourcesDigest);
  };
  let committed: Digest | undefined;
  const keyOnce = async (): Promise<Digest> => (committed = key ?? (await keyAfterWrite()));
  await commitLayerStep(state, session, keyOnce, plan.list(), createdBy, { definition, fileDigests, shareable: true });
  if (session.explainer !== undefined && sourcesDigest !== undefined) {
    const components = { ...definitionParts, sources: sourcesDigest };
    const finalKey = committed ?? keyFor(sourcesDigest);
    const files = fileList();
    await explainMiss(state, session, ins, finalKey, components, files);
    await recordKey(session, ins, finalKey, components, files);
  }
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

/**
 * What a COPY reads of the filesystem below it. A --link layer stands alone: nothing below goes into it
 * but, for --chown by name, the user and group databases the names resolve through; its key holds those
 * instead of the layer chain, so it replays onto a changed base (BuildKit's rebase). Otherwise the chain.
 */

async function ownership(
  spec: string,
  fs: ImageFsIndex | undefined,
  session: BuildSession,
  state: StageState,
  at: string,
): Promise<{ uid: number; gid: number }> {
  let index = fs;
  if (!index && !isNumericOwner(spec)) index = await imageFilesystem(session, state.image, state.reader);
  try {
    return resolveOwnership(spec, index?.content('/etc/passwd')?.toString('utf8'), index?.content('/etc/group')?.toString('utf8'));
  } catch (cause) {
    throw wrapError(cause, `${at}: --chown=${spec}`);
  }
}
