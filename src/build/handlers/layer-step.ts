import type { Digest } from '../../digest/index.js';
import { appendLayer, updateContainerConfig } from '../../image/index.js';
import { layerContentKey, writeLayer, type LayerEntry, type LayerResult, type WriteLayerOptions } from '../../layer/index.js';
import { layerCompression } from '../../oci/index.js';
import type { StepOutcome } from '../cache.js';
import type { BuildSession } from '../session.js';
import type { StageState } from '../state.js';
import { HISTORY_COMMENT } from './metadata.js';

export function applyOutcome(state: StageState, outcome: StepOutcome): void {
  state.image = appendLayer(state.image, outcome.layer, outcome.history);
  state.image = updateContainerConfig(state.image, () => ({ ...outcome.config }));
}

/** Replays a cached outcome for `key` when there is one; returns whether it did. */
export async function replayCached(state: StageState, session: BuildSession, key: Digest): Promise<boolean> {
  const cached = await session.cache?.get(key);
  if (!cached) return false;
  // The key says what the step does, not how its layer is compressed: a layer cached in another compression
  // is written again rather than put in an image that asked for this one.
  if (layerCompression(cached.layer.descriptor.mediaType) !== (session.input.compression ?? 'gzip')) return false;
  applyOutcome(state, cached);
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
  const writeOptions: WriteLayerOptions = {
    fileDigests: options.fileDigests,
    sourceDateEpoch: session.input.sourceDateEpoch,
    compression: session.input.compression ?? 'gzip',
    gzipLevel: session.input.compressionLevel,
    zstdLevel: session.input.compressionLevel,
    // Docker manifests have no zstd layer type; the build's image is OCI in the end anyway (see engine.ts).
    mediaTypeFamily: session.input.compression === 'zstd' ? 'oci' : state.image.format,
    ownership: 'keep',
    signal: session.deps.signal,
  };
  const write = (): Promise<LayerResult> => writeLayer(entries, writeOptions, session.deps.layerIngester ?? session.deps.store.blobs);
  const shared = options.shareable === true ? session.deps.sharedLayers : undefined;
  const layer = shared === undefined ? await write() : await sharedWrite(shared, layerContentKey(entries, writeOptions), write);
  const outcome: StepOutcome = {
    layer: { descriptor: layer.descriptor, diffId: layer.diffId },
    history: { created: session.created, created_by: createdBy, comment: HISTORY_COMMENT },
    config: state.image.config.config ?? {},
  };
  if (session.cache) await session.cache.put(typeof key === 'function' ? await key() : key, outcome, options.definition);
  applyOutcome(state, outcome);
}
