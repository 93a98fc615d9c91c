/**
 * Package URLs (github.com/package-url/purl-spec): `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`, each
 * part percent-encoded, qualifiers sorted by key and left out when empty.
 */
export function purl(
  type: string,
  namespace: string | undefined,
  name: string,
  version: string | undefined,
  qualifiers: Record<string, string | undefined> = {},
): string {
  const enc = (s: string): string => encodeURIComponent(s).replace(/%3A/g, ':');
  let out = `pkg:${type}/`;
  if (namespace) out += `${namespace.split('/').map(enc).join('/')}/`;
  out += enc(name);
  if (version) out += `@${enc(version)}`;
  const q = Object.entries(qualifiers)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (q.length > 0) out += `?${q.map(([k, v]) => `${k}=${enc(v)}`).join('&')}`;
  return out;
}

/** An npm name's purl: the scope (without `@`… kept as `%40scope`, as npm's purls write it) is the namespace. */
export function npmPurl(name: string, version: string): string {
  const slash = name.indexOf('/');
  if (name.startsWith('@') && slash > 0) return purl('npm', name.slice(0, slash), name.slice(slash + 1), version);
  return purl('npm', undefined, name, version);
}

/** A Go module's purl: the module path's last element is the name, the rest the namespace. */
export function golangPurl(path: string, version: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? purl('golang', undefined, path, version) : purl('golang', path.slice(0, slash), path.slice(slash + 1), version);
}
