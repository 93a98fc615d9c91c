/**
 * Path order for source listings: components compared one by one as UTF-8 bytes, the rule strata's layer
 * writer uses (src/layer/order.ts, copied rather than imported to keep module boundaries), so `a/b` sorts
 * before `a-b` and a directory comes right before its contents. Names starting `.wh.` rank first among their
 * siblings there, and here too, so both orders agree.
 */
function pathKey(path: string): Buffer {
  const parts: Buffer[] = [];
  for (const [i, component] of path.split('/').entries()) {
    if (i > 0) parts.push(SEPARATOR);
    parts.push(component.startsWith('.wh.') ? WHITEOUT_RANK : OTHER_RANK, Buffer.from(component, 'utf8'));
  }
  return Buffer.concat(parts);
}

const SEPARATOR = Buffer.from([0]);
const WHITEOUT_RANK = Buffer.from([1]);
const OTHER_RANK = Buffer.from([2]);

export function compareContextPaths(a: string, b: string): number {
  return Buffer.compare(pathKey(a), pathKey(b));
}

/** Go's sort of directory names (os.ReadDir): plain bytewise. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function sortByPath<T extends { relPath: string }>(items: readonly T[]): T[] {
  const keyed = items.map((item) => ({ item, key: pathKey(item.relPath) }));
  keyed.sort((x, y) => Buffer.compare(x.key, y.key));
  return keyed.map((k) => k.item);
}
