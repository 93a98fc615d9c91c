import { nameBytes } from '../fsname/index.js';

/**
 * Path order for source listings: components compared one by one as UTF-8 bytes, the rule strata's layer
 * writer uses (src/layer/order.ts, copied rather than imported to keep module boundaries), so `a/b` sorts
 * before `a-b` and a directory comes right before its contents. Names starting `.wh.` rank first among their
 * siblings there, and here too, so both orders agree.
 */
function pathKey(path: string): SortKey {
  let key = '';
  for (const component of path.split('/')) key += (key === '' ? '' : '\0') + rankedName(component);
  return sortKey(key);
}

/** A name prefixed with its rank among siblings: 1 for a whiteout, 2 for anything else. */
function rankedName(name: string): string {
  return (name.startsWith('.wh.') ? '\x01' : '\x02') + name;
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

export function compareContextPaths(a: string, b: string): number {
  return compareKeys(pathKey(a), pathKey(b));
}

/** Go's sort of directory names (os.ReadDir): plain bytewise. */
export function compareNames(a: string, b: string): number {
  return compareKeys(sortKey(a), sortKey(b));
}

/**
 * One directory's names in the order sortByPath gives them as siblings (`.wh.` names first, then UTF-8
 * bytes), sorted in place. A depth-first walk that visits names in this order and puts each directory
 * right before its contents lists a tree already sorted by path, with no sort of the whole listing.
 */
export function sortSiblingNames(names: string[]): string[] {
  if (!names.some((n) => NEEDS_KEY.test(n))) return names.sort();
  const keyed = names.map((name) => ({ name, key: sortKey(rankedName(name)) }));
  keyed.sort((x, y) => compareKeys(x.key, y.key));
  for (const [i, k] of keyed.entries()) names[i] = k.name;
  return names;
}

/** A name the plain string sort would misplace: a whiteout, or one that must be compared as bytes. */
const NEEDS_KEY = /^\.wh\.|[\ud800-\uffff]/;

export function sortByPath<T extends { relPath: string }>(items: readonly T[]): T[] {
  const keyed = items.map((item) => ({ item, key: pathKey(item.relPath) }));
  keyed.sort((x, y) => compareKeys(x.key, y.key));
  return keyed.map((k) => k.item);
}
