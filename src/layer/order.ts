import { StrataError } from '../errors/index.js';
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
export function layerPathKey(path: string): Buffer {
  // Built as one string and encoded once: a Buffer per component made sorting big trees allocation-bound.
  let key = '';
  for (const component of path.split('/')) key += (key === '' ? '' : '\0') + (component.startsWith('.wh.') ? '\x01' : '\x02') + component;
  return Buffer.from(key, 'utf8');
}

export function compareLayerPaths(a: string, b: string): number {
  return Buffer.compare(layerPathKey(a), layerPathKey(b));
}

/** A sorted copy of `entries`; throws E_LAYER_INVALID on a duplicate path (OCI layers MUST NOT repeat one). */
export function sortLayerEntries<T extends Pick<LayerEntry, 'path'>>(entries: readonly T[]): T[] {
  const keyed = entries.map((entry) => ({ entry, key: layerPathKey(entry.path) }));
  keyed.sort((x, y) => Buffer.compare(x.key, y.key));
  for (let i = 1; i < keyed.length; i++) {
    const prev = keyed[i - 1];
    const cur = keyed[i];
    if (prev !== undefined && cur !== undefined && Buffer.compare(prev.key, cur.key) === 0) {
      throw new StrataError('E_LAYER_INVALID', `layer has the path ${JSON.stringify(cur.entry.path)} twice`, {
        hint: 'a layer must not contain the same path twice; remove the duplicate source',
      });
    }
  }
  return keyed.map((k) => k.entry);
}
