import type { FileChange } from './files.js';
import type { FieldChange, LayerComparison, PlatformDiff } from './image-diff.js';

/**
 * Why two manifests of one platform differ, in plain words, most telling first: recompressed layers, the same
 * final files under other layering or tar bytes, mtimes only (the usual missing SOURCE_DATE_EPOCH), real file
 * changes, then the config fields and manifest fields.
 */
export function describeReasons(diff: Pick<PlatformDiff, 'manifest' | 'config' | 'layers' | 'files'>): string[] {
  const reasons: string[] = [];
  const { layers } = diff;
  for (const l of layers) {
    if (l.verdict !== 'same-content') continue;
    const how =
      l.a?.mediaType !== l.b?.mediaType
        ? `${compressionOf(l.a?.mediaType)} vs ${compressionOf(l.b?.mediaType)}`
        : `${l.a?.size ?? 0} vs ${l.b?.size ?? 0} bytes`;
    reasons.push(`layer ${l.layer} same content, different compression (${how})`);
  }
  const configFields = namesOf(diff.config);
  const files = diff.files;
  if (files === undefined) {
    if (configFields.length > 0) reasons.push(`same layers, config differs in ${list(configFields)}`);
  } else {
    reasons.push(...fileReasons(files, layers));
    if (configFields.length > 0) reasons.push(`config differs in ${list(configFields)}`);
  }
  const manifestFields = diff.manifest.map((f) => f.field).filter((f) => f !== 'layers');
  if (manifestFields.length > 0) reasons.push(`manifest differs in ${list(manifestFields)}`);
  if (reasons.length === 0) reasons.push('the manifests differ only in their bytes (same fields, other JSON formatting)');
  return reasons;
}

function fileReasons(files: readonly FileChange[], layers: readonly LayerComparison[]): string[] {
  const countA = layers.filter((l) => l.a !== undefined).length;
  const countB = layers.filter((l) => l.b !== undefined).length;
  const differing = layers.filter((l) => l.verdict !== 'same' && l.verdict !== 'same-content').map((l) => l.layer);
  if (files.length === 0) {
    if (countA !== countB) return [`same final filesystem, layered differently (${countA} layers vs ${countB})`];
    return [`same files, different tar bytes in ${layerList(differing)} (entry order, tar headers or owner names)`];
  }
  const real = files.filter((f) => f.change !== 'changed' || (f.fields ?? []).some((x) => x !== 'mtime'));
  if (real.length === 0) {
    const where = [...new Set(files.map((f) => f.b?.layer ?? f.a?.layer ?? 0))].sort((x, y) => x - y);
    return [`same files, different mtimes in ${layerList(where)} (SOURCE_DATE_EPOCH not set)`];
  }
  const added = real.filter((f) => f.change === 'added').length;
  const removed = real.filter((f) => f.change === 'removed').length;
  const changed = real.filter((f) => f.change === 'changed');
  const parts: string[] = [];
  if (added > 0) parts.push(`${added} added`);
  if (removed > 0) parts.push(`${removed} removed`);
  if (changed.length > 0) {
    const fields = [...new Set(changed.flatMap((f) => f.fields ?? []))];
    parts.push(`${changed.length} changed (${fields.join(', ')})`);
  }
  const where = [...new Set(real.map((f) => f.b?.layer ?? f.a?.layer ?? 0))].sort((x, y) => x - y);
  const first = real
    .slice(0, 3)
    .map((f) => f.path)
    .join(', ');
  const more = real.length > 3 ? `, …` : '';
  const reasons = [`files differ: ${parts.join(', ')}: ${first}${more} (from ${layerList(where)})`];
  const mtimeOnly = files.filter((f) => f.change === 'changed' && (f.fields ?? []).every((x) => x === 'mtime'));
  if (mtimeOnly.length > 0) {
    const mtimeLayers = [...new Set(mtimeOnly.map((f) => f.b?.layer ?? 0))].sort((x, y) => x - y);
    reasons.push(
      `${mtimeOnly.length} more file${mtimeOnly.length === 1 ? '' : 's'} differ only in mtime, in ${layerList(mtimeLayers)} (SOURCE_DATE_EPOCH not set)`,
    );
  }
  return reasons;
}

function namesOf(changes: readonly FieldChange[]): string[] {
  const names = changes.map((c) => (c.field.startsWith('history[') ? 'history' : c.field));
  return [...new Set(names)];
}

function compressionOf(mediaType: string | undefined): string {
  if (mediaType === undefined) return 'none';
  if (mediaType.endsWith('zstd')) return 'zstd';
  if (mediaType.endsWith('gzip')) return 'gzip';
  return 'uncompressed';
}

function layerList(layers: readonly number[]): string {
  return layers.length === 1 ? `layer ${layers[0]}` : `layers ${list(layers.map(String))}`;
}

/** `a`, `a and b`, `a, b and c`. */
export function list(words: readonly string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}
