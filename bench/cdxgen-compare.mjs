// Compares strata's CycloneDX SBOM with cdxgen's by purl (bench/cdxgen-compare.sh; by hand, never in make test).
//   node bench/cdxgen-compare.mjs STRATA.json CDXGEN.json [CDXGEN2.json ...]
// Purls are normalised before comparing: qualifiers and subpath dropped, percent-decoding undone (npm's %40
// scope), names lower-cased for npm, PyPI (PEP 503 too), deb, apk and Go, Debian/Alpine epochs (`1:`) and Go's
// leading `v` (and stdlib's `go`) dropped from versions. Per purl type it prints strata / cdxgen / both /
// only-strata / only-cdxgen, then every package only one side lists (a version difference is shown as such).
import { existsSync, readFileSync } from 'node:fs';

/** `pkg:type/ns/name@version?q#sub` → its parts, normalised as above; undefined for what is not a purl. */
export function normalisePurl(purl) {
  if (typeof purl !== 'string' || !purl.startsWith('pkg:')) return undefined;
  let rest = purl.slice(4).split('#')[0].split('?')[0];
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const type = rest.slice(0, slash).toLowerCase();
  rest = rest.slice(slash + 1);
  const at = rest.lastIndexOf('@');
  let version = '';
  if (at > rest.lastIndexOf('/')) {
    version = decodeURIComponent(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  const parts = rest.split('/').map((p) => decodeURIComponent(p));
  let name = parts.pop() ?? '';
  let ns = parts.join('/');
  if (type === 'pypi') {
    name = name.toLowerCase().replace(/[-_.]+/g, '-');
    ns = '';
  } else if (type === 'npm' || type === 'deb' || type === 'apk' || type === 'golang') {
    name = name.toLowerCase();
    ns = ns.toLowerCase();
  }
  if (type === 'deb' || type === 'apk') version = version.replace(/^\d+:/, '');
  if (type === 'golang') version = version.replace(/^(v|go)(?=\d)/, '');
  const id = `${type}/${ns ? `${ns}/` : ''}${name}`;
  return { type, id, version, key: `${id}@${version}` };
}

function components(doc) {
  const out = [];
  const walk = (list) => {
    for (const c of list ?? []) {
      out.push(c);
      walk(c.components);
    }
  };
  walk(doc.components);
  return out;
}

/**
 * What cdxgen (trivy) made a component up from, when it did not find it installed: its evidence then has
 * confidence 0 and `filename` methods naming the installed packages (a Debian source or Alpine origin package).
 */
function derivedFrom(c) {
  const identity = Array.isArray(c.evidence?.identity) ? c.evidence.identity[0] : c.evidence?.identity;
  if (identity?.confidence !== 0) return undefined;
  const names = (identity.methods ?? []).filter((m) => m.technique === 'filename').map((m) => m.value);
  return names.length > 0 ? names : undefined;
}

function load(file) {
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  const all = components(doc);
  const byKey = new Map();
  const noPurl = new Map();
  for (const c of all) {
    const p = normalisePurl(c.purl);
    if (p === undefined) {
      noPurl.set(c.type ?? '?', (noPurl.get(c.type ?? '?') ?? 0) + 1);
      continue;
    }
    if (!byKey.has(p.key)) byKey.set(p.key, { ...p, purl: c.purl, name: c.name, derivedFrom: derivedFrom(c) });
  }
  return { byKey, noPurl, total: all.length };
}

function compare(strata, other, label) {
  const types = [...new Set([...strata.byKey.values(), ...other.byKey.values()].map((p) => p.type))].sort();
  console.log(`-- strata vs ${label}: ${other.total} cdxgen components, ${other.byKey.size} distinct purls`);
  if (other.noPurl.size > 0) console.log(`   cdxgen components without a purl: ${[...other.noPurl].map(([t, n]) => `${t} ${n}`).join(', ')}`);
  console.log(`   ${'type'.padEnd(14)} ${['strata', 'cdxgen', 'both', 'only-strata', 'only-cdxgen'].map((h) => h.padStart(11)).join(' ')}`);
  const onlyOther = [];
  const onlyStrata = [];
  for (const type of types) {
    const s = [...strata.byKey.values()].filter((p) => p.type === type);
    const o = [...other.byKey.values()].filter((p) => p.type === type);
    const both = s.filter((p) => other.byKey.has(p.key));
    const os = s.filter((p) => !other.byKey.has(p.key));
    const oo = o.filter((p) => !strata.byKey.has(p.key));
    onlyStrata.push(...os);
    onlyOther.push(...oo);
    console.log(`   ${type.padEnd(14)} ${[s.length, o.length, both.length, os.length, oo.length].map((n) => String(n).padStart(11)).join(' ')}`);
  }
  const versionsOf = (map) => {
    const ids = new Map();
    for (const p of map.values()) ids.set(p.id, [...(ids.get(p.id) ?? []), p.version]);
    return ids;
  };
  const strataIds = versionsOf(strata.byKey);
  const otherIds = versionsOf(other.byKey);
  const files = onlyOther.filter((p) => p.type === 'generic');
  if (files.length > 0) {
    const examples = files.slice(0, 3).map((p) => p.purl);
    console.log(`   only cdxgen: ${files.length} pkg:generic components (files and executables by path, not packages), e.g. ${examples.join(' ')}`);
  }
  for (const p of onlyOther.filter((q) => q.type !== 'generic').sort((a, b) => (a.key < b.key ? -1 : 1))) {
    const same = strataIds.get(p.id);
    const notes = [];
    if (same) notes.push(`strata: same package at ${same.join(', ')}`);
    if (p.derivedFrom) notes.push(`cdxgen made it up from installed ${p.derivedFrom.join(', ')}: a source/origin package, confidence 0`);
    console.log(`   only cdxgen: ${p.purl}${notes.length > 0 ? `   (${notes.join('; ')})` : ''}`);
  }
  for (const p of onlyStrata.sort((a, b) => (a.key < b.key ? -1 : 1))) {
    const same = otherIds.get(p.id);
    console.log(`   only strata: ${p.purl}${same ? `   (cdxgen: same package at ${same.join(', ')})` : ''}`);
  }
}

const [strataFile, ...others] = process.argv.slice(2);
if (!strataFile || others.length === 0) {
  console.error('usage: node bench/cdxgen-compare.mjs STRATA.json CDXGEN.json [CDXGEN2.json ...]');
  process.exit(2);
}
const strata = load(strataFile);
console.log(`strata: ${strata.total} components, ${strata.byKey.size} distinct purls`);
for (const file of others) {
  if (existsSync(file)) compare(strata, load(file), file.split('/').pop());
  else console.log(`-- ${file}: missing (cdxgen wrote nothing; see its log)`);
}
