import { posix } from 'node:path';
import { StrataError, wrapError } from '../../errors/index.js';
import { digestHex, digestOf, type Digest } from '../../digest/index.js';
import {
  hashSources,
  hashSourcesFromCache,
  listSourceTree,
  sourceRootForDirectory,
  type ContextEntry,
  type ContextStatCache,
  type HashSourcesOptions,
  type SourceMatch,
  type SourceRoot,
} from '../../context/index.js';
import type { AddInstruction, CopyInstruction } from '../../dockerfile/index.js';
import type { ImageFsIndex } from '../../layer/index.js';
import { stepCacheKey, stepDefinitionKey, type KeyComponents } from '../cache.js';
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
import { buildContextRoot, listCopySources, namedContextRoot, takeCopySources, type ListedSources } from './copy-sources.js';
import { copyParentKey, isNumericOwner } from './copy-parent.js';
import { commitLayerStep, dryMissed, explainMiss, layerStepWords, missLabel, recordKey, replayCached } from './layer-step.js';
import type { FileList } from '../cache-explain.js';

export interface CopyContext {
  stageSource(name: string): Promise<StageResult | BaseImage | { dir: string }>;
  at: string;
}

/** A COPY's or ADD's words expanded, with the destination made absolute under WORKDIR. */
interface CopyWords {
  sources: string[];
  dest: string;
  destAbs: string;
  destIsDirSyntax: boolean;
  from: string | undefined;
  chown: string | undefined;
  chmod: string | undefined;
  excludes: string[];
  parents: boolean;
  inline: Array<{ path: string; text: string }>;
}

/** How the step is keyed: its definition (all but the content read) and the key for a digest of that content. */
interface CopyKeying {
  parts: Omit<KeyComponents, 'sources'>;
  definition: Digest;
  keyFor(sourcesDigest: Digest): Digest;
  createdBy: string;
}

/** What the step reads: its root, each match with its listing, and how their content is hashed. */
interface CopyReads {
  root: SourceRoot;
  matches: SourceMatch[];
  listed: ContextEntry[][];
  keyEntries: ContextEntry[];
  /** Context files only go through the stat cache: other roots are temporary directories. */
  statCache: ContextStatCache | undefined;
  hashOptions: HashSourcesOptions;
}

/**
 * COPY and ADD: sources resolved inside the context (or another stage's filesystem), placed at the
 * destination with docker's directory and trailing-slash rules, written as one layer. The step is
 * keyed by the parent image, the resolved instruction and the content of what it copies.
 */
export async function runCopy(state: StageState, ins: CopyInstruction | AddInstruction, session: BuildSession, cc: CopyContext): Promise<'cached' | 'done'> {
  if (session.input.explainOnly === true && dryMissed(state, ins)) return 'done';
  const at = cc.at;
  const words = copyWords(state, ins, session, at);
  if (ins.kind === 'ADD' && words.sources.some(isRemoteSource)) {
    const workdir = state.image.config.config?.WorkingDir || '/';
    const { sources, dest, excludes } = words;
    return runAddRemote(state, ins, session, {
      at,
      sources,
      excludes,
      chown: words.chown,
      chmod: words.chmod,
      destAbs: dest.startsWith('/') ? dest : posix.join(workdir, dest) + (dest.endsWith('/') || dest === '.' ? '/' : ''),
      ownership: (spec, fs) => ownership(spec, fs, session, state, at),
    });
  }
  if (words.sources.length + words.inline.length > 1 && !words.destIsDirSyntax) {
    throw new StrataError(
      'E_DOCKERFILE_INSTRUCTION',
      `${at}: when using ${ins.kind} with more than one source file, the destination must be a directory and end with a /`,
    );
  }
  const keying = await copyKeying(state, ins, session, words);
  const opened = await openCopyRoot(state, ins, session, cc, words, keying);
  if (opened === 'cached' || opened === 'done') return opened;
  const reads = await listCopyReads(ins, session, at, words, opened.root);
  const { keyEntries, hashOptions } = reads;
  // The sources are hashed before the work only when a hit is possible; otherwise their digests come
  // from the layer write, which reads every file anyway, and the key is computed after it.
  // A key from layer records (COPY --from an image) was tried already, and is the key the result is kept by.
  const recordedKey = opened.recordedKey;
  let sourcesDigest = recordedKey === undefined ? hashSourcesFromCache(keyEntries, hashOptions) : undefined;
  if (recordedKey === undefined && sourcesDigest === undefined && (await session.cache?.mayHave(keying.definition)) === true)
    sourcesDigest = await hashSources(keyEntries, hashOptions);
  const key = recordedKey ?? (sourcesDigest === undefined ? undefined : keying.keyFor(sourcesDigest));
  if (key !== undefined && key !== recordedKey && (await replayCached(state, session, key, keying.createdBy))) return 'cached';
  const fileList = (): FileList | undefined => contextFileList(reads, session.input.sourceDateEpoch);
  if (session.input.explainOnly === true) {
    sourcesDigest ??= await hashSources(keyEntries, hashOptions);
    await explainMiss(state, session, ins, keying.keyFor(sourcesDigest), { ...keying.parts, sources: sourcesDigest }, fileList());
    return 'done';
  }
  const plan = await planCopyLayer(state, ins, session, at, words, reads);
  const fileDigests = key === undefined ? new Map<string, Digest>() : undefined;
  const keyAfterWrite = async (): Promise<Digest> => {
    sourcesDigest = await hashSources(keyEntries, { ...hashOptions, known: fileDigests });
    return keying.keyFor(sourcesDigest);
  };
  let committed: Digest | undefined;
  const keyOnce = async (): Promise<Digest> => (committed = key ?? (await keyAfterWrite()));
  await commitLayerStep(state, session, keyOnce, plan.list(), keying.createdBy, { definition: keying.definition, fileDigests, shareable: true });
  if (session.explainer !== undefined && sourcesDigest !== undefined) {
    const components = { ...keying.parts, sources: sourcesDigest };
    const finalKey = committed ?? keying.keyFor(sourcesDigest);
    const files = fileList();
    await explainMiss(state, session, ins, finalKey, components, files);
    await recordKey(session, ins, finalKey, components, files);
  }
  return 'done';
}

function copyWords(state: StageState, ins: CopyInstruction | AddInstruction, session: BuildSession, at: string): CopyWords {
  const line = ins.location.line;
  const warn = (m: string, w?: string): void => session.warn(m, w);
  const expand = (w: string): string => expandInStage(state, w, line, warn);
  const sources = ins.sources.map(expand);
  if (ins.kind === 'COPY' && sources.some((s) => /^https?:\/\//i.test(s) || isRemoteSource(s))) {
    throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: COPY cannot take a URL or git repository; use ADD`);
  }
  const dest = expand(ins.dest);
  const workdir = state.image.config.config?.WorkingDir || '/';
  const destAbs = dest.startsWith('/') ? dest : posix.join(workdir, dest) + (dest.endsWith('/') ? '/' : '');
  return {
    sources,
    dest,
    destAbs,
    destIsDirSyntax: destAbs.endsWith('/') || destAbs.endsWith('/.') || dest === '.',
    from: ins.kind === 'COPY' && ins.from !== undefined ? expand(ins.from) : undefined,
    chown: ins.chown !== undefined ? expand(ins.chown) : undefined,
    chmod: ins.chmod !== undefined ? expand(ins.chmod) : undefined,
    excludes: ins.exclude.map(expand),
    parents: ins.kind === 'COPY' && ins.parents,
    inline: ins.sourceContents.map((c) => ({ path: c.path, text: c.expand ? expand(c.data) : c.data })),
  };
}

/**
 * What the step reads and nothing else: the layer chain below it (which holds the destination's
 * directories and the passwd/group files --chown names resolve through; for --link, only those files)
 * and its own resolved words. ENV, LABEL and the rest of the config reach it only through these words.
 */
async function copyKeying(state: StageState, ins: CopyInstruction | AddInstruction, session: BuildSession, w: CopyWords): Promise<CopyKeying> {
  const words = {
    sources: w.sources,
    dest: w.destAbs,
    from: w.from ?? null,
    chown: w.chown ?? null,
    chmod: w.chmod ?? null,
    link: ins.link,
    parents: w.parents,
    excludes: w.excludes,
    unpack: ins.kind === 'ADD' ? (ins.unpack ?? null) : null,
    inline: w.inline.map((c) => [c.path, digestOf(c.text)]),
    ...layerStepWords(session),
  };
  const parts = { kind: ins.kind, parent: await copyParentKey(ins.link, w.chown, session, state), words };
  return {
    parts,
    definition: stepDefinitionKey(parts),
    keyFor: (sourcesDigest) => stepCacheKey({ ...parts, sources: sourcesDigest }),
    createdBy: `${ins.original.replace(/\s+/g, ' ').trim()} # strata`,
  };
}

/**
 * Where the sources come from: the context, or another stage's (or image's) filesystem. From an image
 * whose layer records say which layers make the sources, those layers' diffIDs decide the sources'
 * content: the step is keyed by them (`recordedKey`), and a hit unpacks nothing.
 */
async function openCopyRoot(
  state: StageState,
  ins: CopyInstruction | AddInstruction,
  session: BuildSession,
  cc: CopyContext,
  w: CopyWords,
  keying: CopyKeying,
): Promise<{ root: SourceRoot; recordedKey?: Digest | undefined } | 'cached' | 'done'> {
  const from = w.from;
  if (from === undefined) return { root: await buildContextRoot(session) };
  const src = await cc.stageSource(from);
  if (session.input.explainOnly === true && 'state' in src && src.state.dryMiss !== undefined) {
    // That stage would be rebuilt, so what this step copies from it cannot be known.
    state.miss = { reason: `${missLabel(ins)} missed: stage ${from} changed (${src.state.dryMiss})`, changes: [{ kind: 'word', field: 'from' }] };
    return 'done';
  }
  if ('dir' in src) return { root: await namedContextRoot(session, from, src.dir) };
  const image = 'state' in src ? src.state.image : src.image;
  const reader = 'state' in src ? src.state.reader : src.reader;
  const recorded = ins.kind === 'COPY' ? await sourcesFromRecords(session, image, reader, w.sources) : undefined;
  let recordedKey: Digest | undefined;
  if (recorded !== undefined) {
    recordedKey = keying.keyFor(recorded);
    if (await replayCached(state, session, recordedKey, keying.createdBy)) return 'cached';
  }
  return { root: await sourceRootForDirectory(await imageRootfsFor(session, image, reader, w.sources), `stage ${from}`), recordedKey };
}

/**
 * Everything the step reads, listed once (perhaps while the base was resolved). It keys the cache
 * before the image below is looked at: the parent's content key already decides how the destination
 * resolves in it, so a hit (from this store or an imported cache) never needs the base's layers.
 */
async function listCopyReads(ins: CopyInstruction | AddInstruction, session: BuildSession, at: string, w: CopyWords, root: SourceRoot): Promise<CopyReads> {
  let listing: ListedSources;
  try {
    listing = await ((w.from === undefined ? takeCopySources(session, w.sources, w.excludes) : undefined) ?? listCopySources(root, w.sources, w.excludes));
  } catch (cause) {
    throw wrapError(cause, `${at}: ${ins.kind} failed`);
  }
  const { listed } = listing;
  const matches = listing.resolved.flatMap((r) => r.matches);
  if (matches.length === 0 && w.inline.length === 0) {
    throw new StrataError(
      'E_NOT_FOUND',
      `${at}: ${ins.kind} failed: no source files were specified (the patterns ${w.sources.map((s) => JSON.stringify(s)).join(', ')} match nothing)`,
    );
  }
  const statCache = w.from === undefined ? session.statCache : undefined;
  // keyEntries come match by match, each match's listing sorted: a deterministic order as it is.
  // With SOURCE_DATE_EPOCH the layer holds each file's mtime clamped to it, so the key holds it too.
  const hashOptions: HashSourcesOptions = {
    includeOwnership: w.from !== undefined,
    statCache,
    paths: matches.flatMap((m, i) => listed[i]!.map((e) => `${i}/${m.matchedPath}/${e.relPath}`)),
    signal: session.deps.signal,
    mtimesUpTo: session.input.sourceDateEpoch,
  };
  return { root, matches, listed, keyEntries: listed.flat(), statCache, hashOptions };
}

/** What the COPY read, file by file (context files only, whose digests the stat cache holds), to name the files that changed when it misses. */
function contextFileList(reads: CopyReads, epoch: number | undefined): FileList | undefined {
  const { statCache, root } = reads;
  if (statCache === undefined) return undefined;
  const out: Array<[string, string]> = [];
  for (const e of reads.keyEntries) {
    let digest: Digest | null = null;
    if (e.type === 'file') {
      const known = statCache.get(e);
      if (known === undefined) return undefined;
      digest = known;
    }
    const mtime = epoch === undefined ? null : Math.min(Math.floor(e.mtimeMs / 1000), epoch);
    out.push([
      posix.relative(root.dir, e.absPath),
      digestHex(digestOf(JSON.stringify([e.type, e.mode, e.linkTarget ?? null, e.size, digest, mtime]))).slice(0, 12),
    ]);
  }
  return out;
}

/** The layer's entries: each match placed at the destination (archives unpacked for ADD), then heredoc files. */
async function planCopyLayer(
  state: StageState,
  ins: CopyInstruction | AddInstruction,
  session: BuildSession,
  at: string,
  w: CopyWords,
  reads: CopyReads,
): Promise<CopyPlan> {
  // --link layers stand alone and never look at the image below; otherwise the destination is
  // resolved against it (existing directories, symlinked paths), which needs the base's layers.
  const fs: ImageFsIndex | undefined = ins.link ? undefined : await imageFilesystem(session, state.image, state.reader);
  // Owners: --chown when given; else files from the context become 0:0, files from another stage
  // keep theirs (docker since moby#38599), and an ADDed archive's members keep theirs.
  const owner =
    w.chown !== undefined
      ? await ownership(w.chown, fs, session, state, at)
      : w.from !== undefined
        ? 'keep'
        : ins.kind === 'ADD'
          ? 'keep-archive'
          : { uid: 0, gid: 0 };
  const chmod = w.chmod !== undefined ? parseChmod(w.chmod, at) : undefined;
  const dirMtime = Math.floor(new Date(session.created).getTime() / 1000);
  const plan = new CopyPlan(fs, owner === 'keep-archive' ? { uid: 0, gid: 0 } : owner, chmod, dirMtime);
  // Symlinks in the destination path resolve inside the image, as they would in a container.
  const resolveDest = (p: string, followFinal = true): string => (fs ? (fs.resolve(p, { followFinal }) ?? p) : p);
  const destDir = resolveDest(w.destAbs.replace(/\/\.?$/, '') || '/');
  const intoDir = w.destIsDirSyntax || fs?.get(destDir)?.type === 'dir' || reads.matches.length > 1;
  for (const [i, match] of reads.matches.entries()) {
    if (ins.kind === 'ADD' && !match.isDir && ins.unpack !== false && (await isArchiveSource(match.entry.absPath))) {
      // A local archive is unpacked at the destination, its members keeping their owners unless --chown.
      const archive = await archiveRoot(session, match.entry.absPath, at);
      for (const e of await listSourceTree(archive, '', {})) {
        if (e.relPath === '') continue;
        plan.add(layerPath(destDir, e.relPath), e, { keepExistingDir: true, keepOwner: owner === 'keep-archive' });
      }
      continue;
    }
    placeMatch(plan, match, reads.listed[i]!, { destDir, destFile: resolveDest(w.destAbs, false), intoDir, parents: w.parents });
  }
  for (const content of w.inline) {
    const target = intoDir ? layerPath(destDir, content.path) : layerPath(resolveDest(w.destAbs, false), '');
    plan.addData(target, Buffer.from(content.text, 'utf8'), 0o644, dirMtime);
  }
  return plan;
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
