import type { NpmRecord } from './findings.js';
import type { ScanWarnings } from './types.js';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A package.json's `license` (a string, or the old `{ type }` object or `licenses` array). */
function licenseOf(json: Record<string, unknown>): string | undefined {
  const l = json['license'];
  if (typeof l === 'string' && l.trim() !== '') return l.trim();
  if (isRecord(l) && typeof l['type'] === 'string') return l['type'];
  const ls = json['licenses'];
  if (Array.isArray(ls)) {
    const types = ls.flatMap((x) => (isRecord(x) && typeof x['type'] === 'string' ? [x['type']] : typeof x === 'string' ? [x] : []));
    if (types.length > 0) return types.length === 1 ? types[0] : `(${types.join(' OR ')})`;
  }
  return undefined;
}

function parseJson(bytes: Buffer, path: string, kind: 'npm-package-json' | 'npm-lockfile', warnings: ScanWarnings): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    if (isRecord(value)) return value;
    warnings.warn(kind, `${path}: not a JSON object; skipped`);
  } catch (error) {
    warnings.warn(kind, `${path}: not valid JSON (${error instanceof Error ? error.message : String(error)}); skipped`);
  }
  return undefined;
}

/** An installed package's package.json; undefined (with a warning) when it is malformed or names no version. */
export function parsePackageJson(bytes: Buffer, path: string, warnings: ScanWarnings): NpmRecord | undefined {
  const json = parseJson(bytes, path, 'npm-package-json', warnings);
  if (!json) return undefined;
  const { name, version } = json;
  if (typeof name !== 'string' || typeof version !== 'string' || name === '' || version === '') {
    warnings.warn('npm-package-json', `${path}: no "name" and "version" strings; skipped`);
    return undefined;
  }
  return { name, version, license: licenseOf(json) };
}

/**
 * The project a lockfile belongs to (the application itself: `packages[""]`, or version 1's top level),
 * when it names itself with a version, as cdxgen and syft list it; path ''.
 */
function lockRoot(json: Record<string, unknown>): Array<NpmRecord & { path: string }> {
  const packages = json['packages'];
  const root = isRecord(packages) && isRecord(packages['']) ? packages[''] : json;
  const name = typeof root['name'] === 'string' ? root['name'] : json['name'];
  const version = typeof root['version'] === 'string' ? root['version'] : json['version'];
  if (typeof name !== 'string' || typeof version !== 'string' || name === '' || version === '') return [];
  return [{ path: '', name, version, license: licenseOf(root) }];
}

/**
 * A package-lock.json (lockfileVersion 2 or 3: `packages` keyed by install path; version 1: nested
 * `dependencies`): the project itself (path '') and what it installs under node_modules/. Links are left out.
 */
export function parsePackageLock(bytes: Buffer, path: string, warnings: ScanWarnings): Array<NpmRecord & { path: string }> {
  const json = parseJson(bytes, path, 'npm-lockfile', warnings);
  if (!json) return [];
  const out: Array<NpmRecord & { path: string }> = lockRoot(json);
  const packages = json['packages'];
  if (isRecord(packages)) {
    for (const [key, value] of Object.entries(packages)) {
      if (!key.includes('node_modules/') || !isRecord(value) || value['link'] === true) continue;
      const version = value['version'];
      if (typeof version !== 'string') continue;
      const name = typeof value['name'] === 'string' ? value['name'] : key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
      out.push({ path: key, name, version, license: typeof value['license'] === 'string' ? value['license'] : undefined });
    }
    return out;
  }
  const walk = (deps: unknown, prefix: string, depth: number): void => {
    if (!isRecord(deps) || depth > 64) return;
    for (const [name, value] of Object.entries(deps)) {
      if (!isRecord(value) || typeof value['version'] !== 'string' || value['version'].startsWith('file:')) continue;
      const at = `${prefix}node_modules/${name}`;
      out.push({ path: at, name, version: value['version'] });
      walk(value['dependencies'], `${at}/`, depth + 1);
    }
  };
  walk(json['dependencies'], '', 0);
  return out;
}
