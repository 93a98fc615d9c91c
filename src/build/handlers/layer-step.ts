import type { Digest } from '../../digest/index.js';
import { appendLayer } from '../../image/index.js';
import { layerContentKey, writeLayer, type LayerEntry, type LayerResult, type WriteLayerOptions } from '../../layer/index.js';
import { layerCompression } from '../../oci/index.js';
import type { KeyComponents, StepOutcome } from '../cache.js';
import { expiredMiss, type FileList } from '../cache-explain.js';
import type { BuildSession } from '../session.js';
import type { StageState } from '../state.js';
import { HISTORY_COMMENT } from './metadata.js';

/**
 * Adds a step's layer to the image. The config is left as it is: a layer step reads the config but
 * never sets it (the metadata instructions around it do), so a replayed step keeps this build's labels and ENV.
 */
export function applyOutcome(state: StageState, outcome: Pick<StepOutcome, 'layer' | 'history'>): void {
  state.image = appendLayer(state.image, outcome.layer, outcome.history);
}

/**
 * Replays a cached outcome for `key` when there is one; returns whether it did. The history entry is
 * this build's (its words may differ from the recorded step's where they resolve the same); only its
 * time comes from the record, which a rebuild that replays everything keeps (see ImageRecords).
 */
export async function replayCached(state: StageState, session: BuildSession, key: Digest, createdBy: string): Promise<boolean> {
  const cached = await session.cache?.get(key);
  if (!cached) return false;
  // The key says what the step does, not how its layer is compressed: a layer cached in another compression
  // is written again rather than put in an image that asked for this one.
  if (layerCompression(cached.layer.descriptor.mediaType) !== (session.input.compression ?? 'gzip')) return false;
  const created = session.input.sourceDateEpoch !== undefined ? session.created : (cached.history.created ?? session.created);
  applyOutcome(state, { layer: cached.layer, history: { created, created_by: createdBy, comment: HISTORY_COMMENT } });
  return true;
}

export interface CommitOptions {
  /** The step's definition key, recorded beside its key (see stepDefinitionKey). */
  definition?: Digest | undefined;
  /** Filled with the digests of the files the write reads, for a key computed after the write. */
  fileDigests?: Map<string, Digest> | undefined;
  /**
   * The layer depends only on its entries (a COPY's): another platform build of the same build that wrote
   * the same entries gives its blob (BuildDeps.sharedLayers). fileDigests is then left empty.
   */
  shareable?: boolean | undefined;
}

/** The write already made (or being made) for `key`, else this one; a failed write is not kept. */
function sharedWrite(shared: Map<Digest, Promise<LayerResult>>, key: Digest, write: () => Promise<LayerResult>): Promise<LayerResult> {
  const known = shared.get(key);
  if (known !== undefined) return known;
  const writing = write();
  shared.set(key, writing);
  writing.catch(() => shared.delete(key));
  return writing;
}

/**
 * Writes the step's entries as a layer, records it in the cache under its key, and adds it to the image.
 * The key may be computed after the write, from what the write learned (see CommitOptions.fileDigests).
 */
export async function commitLayerStep(
  state: StageState,
  session: BuildSession,
  key: Digest | (() => Promise<Digest>),
  entries: readonly LayerEntry[],
  createdBy: string,
  options: CommitOptions = {},
): Promise<void> {
  const watch = session.deps.watchLayer?.();
  const writeOptions: WriteLayerOptions = {
    fileDigests: options.fileDigests,
    tap: watch?.tap,
    sourceDateEpoch: session.input.sourceDateEpoch,
    compression: session.input.compression ?? 'gzip',
    gzipLevel: session.input.compressionLevel,
    zstdLevel: session.input.compressionLevel,
    // Docker manifests have no zstd layer type; the build's image is OCI in the end anyway (see engine.ts).
    mediaTypeFamily: session.input.compression === 'zstd' ? 'oci' : state.image.format,
    ownership: 'keep',
    signal: session.deps.signal,
  };
  const write = async (): Promise<LayerResult> => {
    const written = await writeLayer(entries, writeOptions, session.deps.layerIngester ?? session.deps.store.blobs);
    await watch?.written(written.descriptor);
    return written;
  };
  const shared = options.shareable === true ? session.deps.sharedLayers : undefined;
  const layer = shared === undefined ? await write() : await sharedWrite(shared, layerContentKey(entries, writeOptions), write);
  const outcome: StepOutcome = {
    layer: { descriptor: layer.descriptor, diffId: layer.diffId },
    history: { created: session.created, created_by: createdBy, comment: HISTORY_COMMENT },
    config: state.image.config.config ?? {},
    createdAt: session.deps.now().toISOString(),
  };
  if (session.cache) await session.cache.put(typeof key === 'function' ? await key() : key, outcome, options.definition);
  applyOutcome(state, outcome);
}

/**
 * Words every layer step's key holds beside its own: SOURCE_DATE_EPOCH, which sets the times written
 * in the layer, so a layer made with another epoch is never replayed into this build.
 */
export function layerStepWords(session: BuildSession): { epoch: number | null } {
  return { epoch: session.input.sourceDateEpoch ?? null };
}

/** The instruction line a key is recorded under: its kind and words as written (not expanded). */
export function cacheLine(ins: { kind: string; original: string }): string {
  return `${ins.kind} ${ins.original.replace(/\s+/g, ' ').trim()}`;
}

/** How a miss names its step: `COPY src/`, `RUN`, `WORKDIR /app` (words as written, sources only for a COPY). */
export function missLabel(ins: { kind: string; sources?: readonly string[]; path?: string }): string {
  if ((ins.kind === 'COPY' || ins.kind === 'ADD') && ins.sources !== undefined) return `${ins.kind} ${ins.sources.join(' ')}`.trim();
  if (ins.kind === 'WORKDIR' && ins.path !== undefined) return `WORKDIR ${ins.path}`;
  return ins.kind;
}

/** Sets the step's miss explanation (the closest recorded key of its line, compared). */
export async function explainMiss(
  state: StageState,
  session: BuildSession,
  ins: { kind: string; original: string; sources?: readonly string[]; path?: string },
  key: Digest,
  components: KeyComponents,
  files?: FileList,
): Promise<void> {
  if (session.explainer === undefined) return;
  const expired = session.cache?.expired?.(key);
  if (expired !== undefined) {
    state.miss = expiredMiss(missLabel(ins), expired);
    return;
  }
  state.miss = await session.explainer.explain(missLabel(ins), cacheLine(ins), key, components, { files, parentStep: state.lastWritten });
}

/** Records the key's components under its line, for the next miss to be compared with (never under --explain-cache). */
export async function recordKey(
  session: BuildSession,
  ins: { kind: string; original: string },
  key: Digest,
  components: KeyComponents,
  files?: FileList,
): Promise<void> {
  if (session.explainer === undefined || session.input.explainOnly === true) return;
  await session.explainer.record(cacheLine(ins), key, components, files);
}

/** Under --explain-cache, a step after a miss in its stage: it misses because of that miss, and is not looked up. */
export function dryMissed(state: StageState, ins: { kind: string; sources?: readonly string[]; path?: string }): boolean {
  if (state.dryMiss === undefined) return false;
  state.miss = { reason: `${missLabel(ins)} missed: ${state.dryMiss}`, changes: [{ kind: 'parent', step: state.lastWritten }] };
  return true;
}
