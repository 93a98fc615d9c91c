import { StrataError } from '../errors/index.js';
import { nameBytes } from '../fsname/index.js';
import type { LayerEntry } from './types.js';

/**
 * The order of entries in a layer strata writes: path components compared one by one, each as UTF-8 bytes,
 * except that whiteouts (`.wh.*`) come before their siblings, as the OCI layer spec asks ("whiteout files
 * appear before sibling directory entries"). Otherwise this is the order of a depth-first walk that visits each
 * directory's names sorted bytewise (Go's filepath.Walk, used by Docker's and BuildKit's tar writers): a
 * directory comes right before its contents, and `a/b` sorts before `a-b` (a plain string sort would put `a-b`
 * first because `-` < `/`).
 * The key is each component prefixed with 1 (whiteout) or 2 (anything else) and joined with NUL; names never
 * contain NUL, so a parent's key is a prefix of its children's and sorts first.
 */
function layerPathKey(path: string): SortKey {
  let key = '';
  for (const component of path.split('/')) key += (key === '' ? '' : '\0') + (component.startsWith('.wh.') ? '\x01' : '\x02') + component;
  return sortKey(key);
}

/**
 * Sort keys compare as UTF-8 bytes. Below U+D800, UTF-16 code units (what `<` compares) order exactly as
 * UTF-8 bytes do, so a key without surrogates or later characters compares as a plain string; only the rest
 * are encoded (a name that is not UTF-8 as its own bytes: see fsname), which keeps sorting a big tree free of
 * an allocation per comparison.
 */
const NEEDS_BYTES = /[\ud800-\uffff]/;

interface SortKey {
  text: string;
  bytes: Buffer | undefined;
}

function sortKey(text: string): SortKey {
  return { text, bytes: NEEDS_BYTES.test(text) ? nameBytes(text) : undefined };
}

function compareKeys(a: SortKey, b: SortKey): number {
  if (a.bytes === undefined && b.bytes === undefined) return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
  return Buffer.compare(a.bytes ?? nameBytes(a.text), b.bytes ?? nameBytes(b.text));
}

export function compareLayerPaths(a: string, b: string): number {
  return compareKeys(layerPathKey(a), layerPathKey(b));
}

/** A sorted copy of `entries`; throws E_LAYER_INVALID on a duplicate path (OCI layers MUST NOT repeat one). */
export function sortLayerEntries<T extends Pick<LayerEntry, 'path'>>(entries: readonly T[]): T[] {
  const keyed = entries.map((entry) => ({ entry, key: layerPathKey(entry.path) }));
  keyed.sort((x, y) => compareKeys(x.key, y.key));
  for (let i = 1; i < keyed.length; i++) {
    const prev = keyed[i - 1];
    const cur = keyed[i];
    if (prev !== undefined && cur !== undefined && compareKeys(prev.key, cur.key) === 0) {
      throw new StrataError('E_LAYER_INVALID', `layer has the path ${JSON.stringify(cur.entry.path)} twice`, {
        hint: 'a layer must not contain the same path twice; remove the duplicate source',
      });
    }
  }
  return keyed.map((k) => k.entry);
}
