/**
 * Path order for source listings: components compared one by one as UTF-8 bytes, the rule strata's layer
 * writer uses (src/layer/order.ts, copied rather than imported to keep module boundaries), so `a/b` sorts
 * before `a-b` and a directory comes right before its contents. Names starting `.wh.` rank first among their
 * siblings there, and here too, so both orders agree.
 */
function pathKey(path: string): Buffer {
  // Built as one string and encoded once: a Buffer per component made sorting big trees allocation-bound.
  let key = '';
  for (const component of path.split('/')) key += (key === '' ? '' : '\0') + (component.startsWith('.wh.') ? '\x01' : '\x02') + component;
  return Buffer.from(key, 'utf8');
}

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
