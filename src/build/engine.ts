import { realpath, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StrataError, isStrataError, wrapError } from '../errors/index.js';
import { expandWord, parseDockerfile, type Instruction, type ParsedDockerfile } from '../dockerfile/index.js';
import { createdTimestamp, emptyImage, setCreated, setFormat, updateContainerConfig, type Image } from '../image/index.js';
import { DEFAULT_PATH, normalizePlatform, parsePlatform, type Platform } from '../oci/index.js';
import { CompositeBlobReader, currentOwner, makeScratchDir, withLock } from '../store/index.js';
import { ContextStatCache, statCacheFile } from '../context/index.js';
import { PROXY_ARGS, SBOM_SCAN_CONTEXT_ARG, SBOM_SCAN_STAGE_ARG, platformArgs } from './args.js';
import { LocalStepCache } from './cache.js';
import { CacheExplainer } from './cache-explain.js';
import { ImageRecords } from './image-record.js';
import type { BuildEvent } from './events.js';
import { applyMetadata, resetShell, type MetadataContext } from './handlers/metadata.js';
import { runCopy } from './handlers/copy.js';
import { contextReadPaths, prefetchCopySources } from './handlers/copy-sources.js';
import { runRun } from './handlers/run.js';
import { runWorkdir } from './handlers/workdir.js';
import { planBuild, resolveSourceName, type StagePlan } from './plan.js';
import type { BaseImage, BuildDeps, BuildInput, BuildOutcome, BuildSession, BuiltStage } from './session.js';
import { Stage, type StageState } from './state.js';
import { StageResults, type StageResult } from './stages.js';
import { unpackBaseAhead } from './imagefs.js';
import { redactUrlsIn } from '../remote/index.js';
import { BuildMemo } from './memo.js';

/**
 * Builds a Dockerfile: parses it, plans the stages the target needs, runs independent stages
 * concurrently and each stage's instructions in order, and returns the target's image. Nothing is
 * named or written anywhere but the store's content-addressed blobs; outputs are the caller's.
 */
export async function runBuild(input: BuildInput, deps: BuildDeps): Promise<BuildOutcome> {
  const parsed = parseDockerfile(input.dockerfile.text, { file: input.dockerfile.file });
  const warnings: string[] = [];
  const temps: string[] = [];
  const ends: Array<() => Promise<void>> = [];
  const { session, statCacheAt } = await openSession(input, deps, warnings, temps, ends);
  for (const w of parsed.warnings) session.warn(w.message, `${input.dockerfile.file}:${w.line}`);

  const buildArgs = new Map(Object.entries(input.buildArgs));
  const consumed = new Set<string>();
  const platformValues = platformArgs(normalizePlatform(input.platform), normalizePlatform(input.buildPlatform));
  const globalArgs = resolveGlobalArgs(parsed, buildArgs, platformValues, consumed, input.dockerfile.file);
  const plan = planBuild(parsed, {
    target: input.target,
    globalArgs,
    contextNames: new Set(Object.keys(input.buildContexts)),
    escapeToken: parsed.escapeToken,
    file: input.dockerfile.file,
  });
  const total = plan.stages.reduce((n, s) => n + s.stage.instructions.length, 0);
  const counter = { step: 0, cached: 0, executed: 0 };
  const results = new StageResults();
  try {
    const run = (p: StagePlan): Promise<StageResult> =>
      results.get(p.stage.index, async () => {
        await Promise.all(p.dependsOn.map((i) => run(plan.all[i]!)));
        return runStage(p, parsed, session, { parsed, globalArgs, buildArgs, platformValues, consumed, results: (i) => run(plan.all[i]!), total, counter });
      });
    // Stages the target needs run as soon as their dependencies are done; independent ones overlap.
    const all = await Promise.all(plan.stages.map(run));
    const final = all[all.length - 1]!;
    for (const name of buildArgs.keys()) {
      if (!consumed.has(name) && !platformValues.has(name) && !PROXY_ARGS.has(name)) session.warn(`build-arg "${name}" was not consumed by any ARG`);
    }
    const image = await finalImage(final.state.image, session, counter.executed === 0);
    // --explain-cache writes nothing, not even what it learned about the context's files.
    if (input.explainOnly !== true) await saveStatCache(session, statCacheAt);
    const stages = plan.stages.slice(0, -1).map((p, i): BuiltStage => {
      const { state } = all[i]!;
      const sbomScanStage = state.args.get(SBOM_SCAN_STAGE_ARG) ?? globalArgs.get(SBOM_SCAN_STAGE_ARG);
      return { name: p.label, image: state.image, reader: state.reader, sbomScanStage };
    });
    const target = plan.stages[plan.stages.length - 1]!;
    const context = {
      stage: target.label,
      sbomScanContext: final.state.args.get(SBOM_SCAN_CONTEXT_ARG) ?? globalArgs.get(SBOM_SCAN_CONTEXT_ARG),
      reads: await contextReadPaths(session),
    };
    return { image, reader: final.state.reader, warnings, steps: { total, cached: counter.cached }, parsed, stages, context };
  } finally {
    await results.closeAll();
    await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
    await Promise.allSettled(ends.map((release) => release()));
  }
}

/** The session the handlers share: caches, the context's stat cache (loaded), warnings and scratch directories. */
async function openSession(
  input: BuildInput,
  deps: BuildDeps,
  warnings: string[],
  temps: string[],
  ends: Array<() => Promise<void>>,
): Promise<{ session: BuildSession; statCacheAt: string }> {
  const emit = (event: BuildEvent): void => deps.events?.(event);
  const warned = new Set<string>();
  // The build context's files by stat fingerprint; its root is the real path the COPY walk lists under.
  const contextRoot = await realpath(input.contextDir).catch(() => resolve(input.contextDir));
  const statCacheAt = statCacheFile(join(deps.store.root, 'cache', 'context-stats'), contextRoot);
  const statCache = new ContextStatCache(contextRoot);
  await statCache.load(statCacheAt);
  const session: BuildSession = {
    deps,
    input,
    cache:
      deps.stepCache ?? (input.noCache ? undefined : LocalStepCache.forStore(deps.store.root, deps.store.blobs, { recordUse: input.explainOnly !== true })),
    explainer: input.noCache ? undefined : CacheExplainer.forStore(deps.store.root),
    statCache,
    created: createdTimestamp(input.sourceDateEpoch, deps.now),
    warn(message, at) {
      const text = at ? `${at}: ${message}` : message;
      if (warned.has(text)) return;
      warned.add(text);
      warnings.push(text);
      emit({ type: 'warning', message, ...(at ? { where: at } : {}) });
    },
    memo: new BuildMemo(),
    async tempDir(prefix, options = {}) {
      const base = options.reachable && deps.scratchDir ? deps.scratchDir : join(deps.store.root, 'tmp');
      const dir = await makeScratchDir(base, prefix);
      temps.push(dir);
      return dir;
    },
    onEnd(release) {
      ends.push(release);
    },
  };
  return { session, statCacheAt };
}

/** The target's image as the build gives it: --label values, OCI media types, and its `created` time. */
async function finalImage(target: Image, session: BuildSession, replayedOnly: boolean): Promise<Image> {
  const { input, deps, created } = session;
  let image = target;
  if (Object.keys(input.labels).length) {
    image = updateContainerConfig(image, (c) => ({ ...c, Labels: { ...(c.Labels ?? {}), ...input.labels } }));
  }
  // OCI media types by default, whatever the base used (a Docker-format base converts).
  image = setFormat(image, 'oci');
  return input.sourceDateEpoch !== undefined || input.noCache || input.explainOnly
    ? setCreated(image, created)
    : await ImageRecords.forStore(deps.store.root).settle(image, created, replayedOnly);
}

async function saveStatCache(session: BuildSession, at: string): Promise<void> {
  const { statCache, deps } = session;
  if (statCache.dirty) {
    // Builds of one context in parallel merge their records under the file's lock (see save).
    await withLock(`${at}.lock`, { owner: currentOwner() }, () => statCache.save(at, deps.now()));
  } else {
    await statCache.save(at, deps.now());
  }
}

function resolveGlobalArgs(
  parsed: ParsedDockerfile,
  buildArgs: ReadonlyMap<string, string>,
  platformValues: ReadonlyMap<string, string>,
  consumed: Set<string>,
  file: string,
): Map<string, string> {
  const values = new Map(platformValues);
  for (const ins of parsed.globalArgs) {
    for (const def of ins.args) {
      if (buildArgs.has(def.name)) {
        values.set(def.name, buildArgs.get(def.name)!);
        consumed.add(def.name);
      } else if (def.defaultValue !== undefined) {
        try {
          values.set(def.name, expandWord(def.defaultValue, values, { escapeToken: parsed.escapeToken }));
        } catch (cause) {
          throw wrapError(cause, `${file}:${ins.location.line}`);
        }
      } else if (!platformValues.has(def.name)) {
        values.delete(def.name);
      }
    }
  }
  return values;
}

interface StageRunContext {
  parsed: ParsedDockerfile;
  globalArgs: ReadonlyMap<string, string>;
  buildArgs: ReadonlyMap<string, string>;
  platformValues: ReadonlyMap<string, string>;
  consumed: Set<string>;
  results: (index: number) => Promise<StageResult>;
  total: number;
  counter: { step: number; cached: number; executed: number };
}

async function runStage(p: StagePlan, parsed: ParsedDockerfile, session: BuildSession, rc: StageRunContext): Promise<StageResult> {
  const { input, deps } = session;
  const file = input.dockerfile.file;
  const platform = p.platform ? parsePlatform(p.platform) : normalizePlatform(input.platform);
  prefetchCopySources(session, p.stage.instructions);
  const base = await openBase(p, session, platform, rc);
  const state: StageState = new Stage(base.image, {
    reader: new CompositeBlobReader([deps.store.blobs, base.reader, ...(deps.cacheReaders ?? [])]),
    args: new Map(),
    shell: [],
    entrypointSet: false,
    cmdSet: false,
    baseLayers: base.image.layers.length,
    file,
    escapeToken: parsed.escapeToken,
  });
  resetShell(state);
  if (p.base.kind === 'stage') {
    // A stage built on another continues its layers: a miss there is the parent of a miss here.
    const below = (await rc.results(p.base.index)).state;
    state.lastWritten = below.lastWritten;
    state.dryMiss = below.dryMiss;
  }
  deps.events?.({ type: 'stage', stage: p.label, base: base.description });
  if (p.stage.instructions.some((i) => i.kind === 'RUN')) await unpackBaseAhead(session, state.image, state.reader);
  const meta: MetadataContext = {
    warn: (m, at) => session.warn(m, at),
    created: session.created,
    buildArgs: rc.buildArgs,
    globalArgs: rc.globalArgs,
    platformArgs: rc.platformValues,
    consumedArgs: rc.consumed,
  };

  // ONBUILD triggers of the base run first, then are cleared, as docker does.
  const triggers = state.image.config.config?.OnBuild ?? [];
  if (triggers.length) {
    state.image = updateContainerConfig(state.image, (c) => ({ ...c, OnBuild: null }));
    for (const trigger of triggers) {
      const parsedTrigger = parseDockerfile(`FROM scratch\n${trigger}\n`, { file: `${base.description} ONBUILD` });
      for (const ins of parsedTrigger.stages[0]!.instructions) {
        await dispatch(state, ins, p, session, meta, rc, `${base.description} ONBUILD ${trigger}`);
        state.miss = undefined;
      }
    }
  }
  for (const ins of p.stage.instructions) {
    const step = ++rc.counter.step;
    const at = `${file}:${ins.location.line}`;
    const text = redactUrlsIn(ins.original.trim());
    deps.events?.({ type: 'step-start', stage: p.label, step, total: rc.total, text, where: at });
    const started = Date.now();
    const outcome = await dispatch(state, ins, p, session, meta, rc, at);
    if (outcome === 'cached') rc.counter.cached++;
    if (outcome === 'done') {
      rc.counter.executed++;
      state.lastWritten = step;
      if (input.explainOnly === true) state.dryMiss ??= `parent layer changed (step ${step})`;
    }
    const miss = state.miss;
    state.miss = undefined;
    deps.events?.({
      type: 'step',
      stage: p.label,
      step,
      total: rc.total,
      text,
      where: at,
      state: outcome,
      durationMs: Date.now() - started,
      ...(miss ? { miss } : {}),
    });
  }
  return { state, platform };
}

type StepState = 'cached' | 'done' | 'metadata';

/** `FROM scratch` as BuildKit starts it: the default PATH and `/` as the working directory. */
function scratchImage(platform: Platform): Image {
  return updateContainerConfig(emptyImage(platform), (c) => ({ ...c, Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' }));
}

async function dispatch(
  state: StageState,
  ins: Exclude<Instruction, { kind: 'FROM' }>,
  p: StagePlan,
  session: BuildSession,
  meta: MetadataContext,
  rc: StageRunContext,
  at: string,
): Promise<StepState> {
  if (applyMetadata(state, ins, meta)) return 'metadata';
  const stageSource = async (name: string): Promise<StageResult | BaseImage | { dir: string }> => {
    const src = resolveSourceName(name, p.stage.index, rc.parsed, new Set(Object.keys(session.input.buildContexts)));
    if (src.kind === 'stage') return rc.results(src.index);
    if (src.kind === 'context') {
      const named = await session.deps.openNamedContext(src.name, session.input.buildContexts[src.name]!, session.input.platform);
      return named.kind === 'image' ? named.base : { dir: named.dir };
    }
    if (src.kind === 'scratch') return { image: scratchImage(session.input.platform), reader: session.deps.store.blobs, description: 'scratch' };
    return session.deps.openImage(src.ref, session.input.platform).catch((cause: unknown) => {
      throw wrapError(cause, `${at}: --from=${name}`, isStrataError(cause) ? (cause.hint ?? 'it names no earlier stage, build context or image') : undefined);
    });
  };
  switch (ins.kind) {
    case 'COPY':
    case 'ADD':
      return runCopy(state, ins, session, { stageSource, at });
    case 'WORKDIR':
      return runWorkdir(state, ins, session, at);
    case 'RUN':
      return runRun(state, ins, session, { stageSource, at });
    default:
      throw new StrataError('E_INTERNAL', `${at}: no handler for ${ins.kind}`);
  }
}

async function openBase(p: StagePlan, session: BuildSession, platform: Platform, rc: StageRunContext): Promise<BaseImage> {
  const { deps, input } = session;
  switch (p.base.kind) {
    case 'scratch':
      return { image: scratchImage(platform), reader: deps.store.blobs, description: 'scratch' };
    case 'stage': {
      const r = await rc.results(p.base.index);
      return { image: r.state.image, reader: r.state.reader, description: `stage ${rc.parsed.stages[p.base.index]?.name ?? p.base.index}` };
    }
    case 'context': {
      const named = await deps.openNamedContext(p.base.name, input.buildContexts[p.base.name]!, platform);
      if (named.kind === 'dir')
        throw new StrataError(
          'E_BUILD',
          `${input.dockerfile.file}:${p.stage.from.location.line}: FROM ${p.base.name} names a directory build context, not an image`,
        );
      return named.base;
    }
    case 'image': {
      deps.events?.({ type: 'pull', image: p.base.ref, state: 'resolving' });
      const at = `${input.dockerfile.file}:${p.stage.from.location.line}`;
      const base = await deps.openImage(p.base.ref, platform).catch((cause: unknown) => {
        throw wrapError(cause, `${at}: FROM ${p.base.kind === 'image' ? p.base.ref : ''}`);
      });
      deps.events?.({ type: 'pull', image: p.base.ref, state: 'resolved' });
      return base;
    }
  }
}
