import { posix } from 'node:path';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from '../oci/index.js';
import { writeFileAtomic, type BlobReader } from '../store/index.js';
import type { Finding, LayerFindings } from './findings.js';
import { mergeLayerFindings, scanLayer } from './layer-scan.js';
import { normalizePythonName } from './python.js';
import { golangPurl, npmPurl, purl } from './purl.js';
import { ScanWarnings, type SbomPackage, type SbomScan, type ScanProblem } from './types.js';

/** Bumped when what a layer scan records changes, so findings kept by older code are not reused. */
const FINDINGS_VERSION = 1;

export interface ScanImageOptions {
  /** Keep each layer's findings here by digest, and reuse them: a layer's findings depend on its bytes alone. */
  cacheDir?: string | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The packages in an image's final filesystem: each layer is streamed once (or its findings reused),
 * whiteouts and opaque directories applied in order, and only package metadata kept.
 */
export async function scanImageLayers(layers: readonly Descriptor[], reader: BlobReader, options: ScanImageOptions = {}): Promise<SbomScan> {
  const findings = await Promise.all(layers.map((layer) => layerFindings(layer, reader, options)));
  const warnings = new ScanWarnings();
  for (const f of findings) for (const [kind, message] of f.problems) warnings.warn(kind as ScanProblem, message);
  return packagesOf(mergeLayerFindings(findings), warnings);
}

async function layerFindings(layer: Descriptor, reader: BlobReader, options: ScanImageOptions): Promise<LayerFindings> {
  const file = options.cacheDir === undefined ? undefined : join(options.cacheDir, `v${FINDINGS_VERSION}-${layer.digest.replace(':', '-')}.json`);
  if (file !== undefined) {
    const kept = await readFile(file, 'utf8').then(
      (text) => JSON.parse(text) as LayerFindings,
      () => undefined,
    );
    if (kept !== undefined && Array.isArray(kept.found) && Array.isArray(kept.whiteouts) && Array.isArray(kept.opaques) && Array.isArray(kept.problems))
      return kept;
  }
  const found = await scanLayer(layer, reader, options.signal);
  if (file !== undefined) await writeFileAtomic(file, JSON.stringify(found)).catch(() => undefined);
  return found;
}

/** Turns the merged findings into packages, merged by purl (one package, every location it was found at). */
export function packagesOf(files: ReadonlyMap<string, Finding>, warnings: ScanWarnings): SbomScan {
  // /etc/os-release is often a symlink to ../usr/lib/os-release (recorded as saying nothing).
  const os = [files.get('etc/os-release'), files.get('usr/lib/os-release')].find((f) => f?.kind === 'os');
  const distro = os?.kind === 'os' ? { id: os.id, versionId: os.versionId, prettyName: os.prettyName } : undefined;
  const distroQualifier = distro ? (distro.versionId ? `${distro.id}-${distro.versionId}` : distro.id) : undefined;
  const byPurl = new Map<string, SbomPackage>();
  const add = (pkg: Omit<SbomPackage, 'locations'>, path: string): void => {
    const at = `/${path}`;
    const known = byPurl.get(pkg.purl);
    if (known) {
      if (!known.locations.includes(at)) known.locations.push(at);
      if (known.license === undefined && pkg.license !== undefined) known.license = pkg.license;
    } else byPurl.set(pkg.purl, { ...pkg, locations: [at] });
  };
  const npmInstalled = new Set<string>();
  for (const [path, f] of files) if (f.kind === 'npm') npmInstalled.add(posix.dirname(path));
  for (const [path, f] of files) {
    switch (f.kind) {
      case 'dpkg': {
        const ns = distro?.id ?? 'debian';
        for (const p of f.packages) {
          const copyright = files.get(`usr/share/doc/${p.name}/copyright`);
          const licenses = copyright?.kind === 'deb-copyright' ? copyright.licenses : [];
          add(
            {
              type: 'deb',
              name: p.name,
              version: p.version,
              purl: purl('deb', ns, p.name, p.version, { arch: p.arch, distro: distroQualifier }),
              license:
                licenses.length === 0 ? undefined : licenses.length === 1 ? licenses[0] : licenses.map((l) => (/\s/.test(l) ? `(${l})` : l)).join(' AND '),
            },
            path,
          );
        }
        break;
      }
      case 'apk': {
        const ns = distro?.id ?? 'alpine';
        for (const p of f.packages) {
          add(
            {
              type: 'apk',
              name: p.name,
              version: p.version,
              purl: purl('apk', ns, p.name, p.version, { arch: p.arch, distro: distroQualifier }),
              license: p.license,
            },
            path,
          );
        }
        break;
      }
      case 'npm':
        add({ type: 'npm', name: f.pkg.name, version: f.pkg.version, purl: npmPurl(f.pkg.name, f.pkg.version), license: f.pkg.license }, path);
        break;
      case 'npm-lock': {
        const dir = posix.dirname(path);
        for (const p of f.packages) {
          const installAt = dir === '.' ? p.path : `${dir}/${p.path}`;
          // What is installed speaks for itself; the lockfile covers what is not (node_modules left out of the image).
          if (npmInstalled.has(installAt)) continue;
          add({ type: 'npm', name: p.name, version: p.version, purl: npmPurl(p.name, p.version), license: p.license }, path);
        }
        break;
      }
      case 'python':
        add(
          { type: 'pypi', name: f.name, version: f.version, purl: purl('pypi', undefined, normalizePythonName(f.name), f.version), license: f.license },
          path,
        );
        break;
      case 'go':
        add({ type: 'golang', name: f.main.path, version: f.main.version, purl: golangPurl(f.main.path, f.main.version) }, path);
        for (const d of f.deps) add({ type: 'golang', name: d.path, version: d.version, purl: golangPurl(d.path, d.version) }, path);
        add({ type: 'golang', name: 'stdlib', version: f.goVersion, purl: golangPurl('stdlib', f.goVersion), license: 'BSD-3-Clause' }, path);
        break;
      default:
        break;
    }
  }
  const packages = [...byPurl.values()].sort((a, b) => (a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : 0));
  for (const p of packages) p.locations.sort();
  return { packages, distro, warnings: warnings.list() };
}
