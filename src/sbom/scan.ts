import { posix } from 'node:path';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayerTap } from '../layer/index.js';
import type { Descriptor } from '../oci/index.js';
import { writeFileAtomic, type BlobReader } from '../store/index.js';
import type { ApkRecord, DebRecord, Finding, LayerFindings } from './findings.js';
import { LayerScanner, mergeLayerFindings, scanLayer } from './layer-scan.js';
import { normalizePythonName } from './python.js';
import { golangPurl, npmPurl, purl } from './purl.js';
import { ScanWarnings, type SbomPackage, type SbomScan, type ScanProblem } from './types.js';

/**
 * Bumped when what a layer scan records changes, so findings kept by older code are not reused. 2: paths read
 * from layers keep their non-UTF-8 bytes (surrogateescape); version 1 held U+FFFD for them. 3: a lockfile's
 * findings hold its project (the root entry) too.
 */
const FINDINGS_VERSION = 3;

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
  return scanOf(await Promise.all(layers.map((layer) => layerFindings(layer, reader, options))));
}

function scanOf(findings: readonly LayerFindings[]): SbomScan {
  const warnings = new ScanWarnings();
  for (const f of findings) for (const [kind, message] of f.problems) warnings.warn(kind as ScanProblem, message);
  return packagesOf(mergeLayerFindings(findings), warnings);
}

/** One path of a directory tree to scan (the build context): where it is in the tree and how to read it. */
export interface TreeFile {
  /** Slash-separated, relative to the tree's root (the path the SBOM names, with a leading `/`). */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** Permission bits: an executable file of Go's size is looked at for build info. */
  mode: number;
  size: number;
  /** The file's bytes; called only for a file a reader wants. */
  open(): AsyncIterable<Buffer>;
}

/**
 * The packages in a directory tree, given path by path (parents before children, as a layer lists them):
 * the same readers as an image's layers, each file wanted opened once and streamed.
 */
export async function scanFileTree(files: AsyncIterable<TreeFile> | Iterable<TreeFile>): Promise<SbomScan> {
  const scanner = new LayerScanner();
  for await (const f of files) {
    const size = f.type === 'file' ? f.size : 0;
    const take = scanner.entry({ kind: 'entry', path: f.path, type: f.type, mode: f.mode, uid: 0, gid: 0, size, mtime: 0, devMajor: 0, devMinor: 0 });
    if (take !== undefined) await take(f.open());
  }
  return scanOf([scanner.findings()]);
}

function findingsFile(cacheDir: string, layer: Pick<Descriptor, 'digest'>): string {
  return join(cacheDir, `v${FINDINGS_VERSION}-${layer.digest.replace(':', '-')}.json`);
}

async function layerFindings(layer: Descriptor, reader: BlobReader, options: ScanImageOptions): Promise<LayerFindings> {
  const file = options.cacheDir === undefined ? undefined : findingsFile(options.cacheDir, layer);
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

/** A scan of a layer made while the layer is written: its tap, and what to call with the written blob. */
export interface WrittenLayerScan {
  tap: LayerTap;
  /** Keeps the findings under the blob's digest, where scanImageLayers finds them (never fails). */
  written(layer: Pick<Descriptor, 'digest'>): Promise<void>;
}

/**
 * Scans a layer as the layer writer writes it (a tee of the entries and bytes it writes), so the
 * image's scan finds the layer's findings kept and never reads the layer back. A scanner that fails
 * keeps nothing: the image's scan then reads the layer as it would have.
 */
export function scanWhileWriting(cacheDir: string): WrittenLayerScan {
  const scanner = new LayerScanner();
  let broken = false;
  const tap: LayerTap = {
    entry(entry) {
      const take = broken ? undefined : scanner.entry(entry);
      if (take === undefined) return undefined;
      return (content) =>
        take(content).catch(() => {
          broken = true;
        });
    },
  };
  return {
    tap,
    async written(layer) {
      if (!broken) await writeFileAtomic(findingsFile(cacheDir, layer), JSON.stringify(scanner.findings())).catch(() => undefined);
    },
  };
}

interface Distro {
  id: string;
  versionId?: string | undefined;
  prettyName?: string | undefined;
}

/** What reading one finding needs of the others: the distribution and what npm installed. */
interface FindingContext {
  files: ReadonlyMap<string, Finding>;
  distro: Distro | undefined;
  /** `debian-12`, the purl qualifier of OS packages. */
  distroQualifier: string | undefined;
  /** Directories holding an installed npm package.json. */
  npmInstalled: ReadonlySet<string>;
}

type FoundPackage = Omit<SbomPackage, 'locations'>;

/** Turns the merged findings into packages, merged by purl (one package, every location it was found at). */
export function packagesOf(files: ReadonlyMap<string, Finding>, warnings: ScanWarnings): SbomScan {
  // /etc/os-release is often a symlink to ../usr/lib/os-release (recorded as saying nothing).
  const os = [files.get('etc/os-release'), files.get('usr/lib/os-release')].find((f) => f?.kind === 'os');
  const distro = os?.kind === 'os' ? { id: os.id, versionId: os.versionId, prettyName: os.prettyName } : undefined;
  const npmInstalled = new Set<string>();
  for (const [path, f] of files) if (f.kind === 'npm') npmInstalled.add(posix.dirname(path));
  const context: FindingContext = {
    files,
    distro,
    distroQualifier: distro ? (distro.versionId ? `${distro.id}-${distro.versionId}` : distro.id) : undefined,
    npmInstalled,
  };
  const byPurl = new Map<string, SbomPackage>();
  for (const [path, f] of files) {
    const at = `/${path}`;
    for (const pkg of packagesIn(path, f, context)) {
      const known = byPurl.get(pkg.purl);
      if (known) {
        if (!known.locations.includes(at)) known.locations.push(at);
        if (known.license === undefined && pkg.license !== undefined) known.license = pkg.license;
      } else byPurl.set(pkg.purl, { ...pkg, locations: [at] });
    }
  }
  const packages = [...byPurl.values()].sort((a, b) => (a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : 0));
  for (const p of packages) p.locations.sort();
  return { packages, distro, warnings: warnings.list() };
}

/** A distribution's installed packages, under the distribution's own namespace (`fallback` when unknown). */
function osPackages<T extends DebRecord | ApkRecord>(
  type: 'deb' | 'apk',
  fallback: string,
  records: readonly T[],
  context: FindingContext,
  license: (record: T) => string | undefined,
): FoundPackage[] {
  const ns = context.distro?.id ?? fallback;
  return records.map((p) => ({
    type,
    name: p.name,
    version: p.version,
    purl: purl(type, ns, p.name, p.version, { arch: p.arch, distro: context.distroQualifier }),
    license: license(p),
  }));
}

/** The packages one file's finding names, in the order it names them. */
function packagesIn(path: string, f: Finding, context: FindingContext): FoundPackage[] {
  switch (f.kind) {
    case 'dpkg':
      return osPackages('deb', 'debian', f.packages, context, (p) => debLicense(context.files.get(`usr/share/doc/${p.name}/copyright`)));
    case 'apk':
      return osPackages('apk', 'alpine', f.packages, context, (p) => p.license);
    case 'npm':
      return [{ type: 'npm', name: f.pkg.name, version: f.pkg.version, purl: npmPurl(f.pkg.name, f.pkg.version), license: f.pkg.license }];
    case 'npm-lock': {
      const dir = posix.dirname(path);
      // What is installed speaks for itself; the lockfile covers what is not (node_modules left out of the image),
      // and the project itself (path '').
      return f.packages
        .filter((p) => p.path === '' || !context.npmInstalled.has(dir === '.' ? p.path : `${dir}/${p.path}`))
        .map((p) => ({ type: 'npm', name: p.name, version: p.version, purl: npmPurl(p.name, p.version), license: p.license }));
    }
    case 'python':
      return [{ type: 'pypi', name: f.name, version: f.version, purl: purl('pypi', undefined, normalizePythonName(f.name), f.version), license: f.license }];
    case 'go':
      return [
        { type: 'golang', name: f.main.path, version: f.main.version, purl: golangPurl(f.main.path, f.main.version) },
        ...f.deps.map((d): FoundPackage => ({ type: 'golang', name: d.path, version: d.version, purl: golangPurl(d.path, d.version) })),
        { type: 'golang', name: 'stdlib', version: f.goVersion, purl: golangPurl('stdlib', f.goVersion), license: 'BSD-3-Clause' },
      ];
    default:
      return [];
  }
}

/** A Debian package's license from its machine-readable copyright file: its License fields joined with AND. */
function debLicense(copyright: Finding | undefined): string | undefined {
  const licenses = copyright?.kind === 'deb-copyright' ? copyright.licenses : [];
  if (licenses.length === 0) return undefined;
  return licenses.length === 1 ? licenses[0] : licenses.map((l) => (/\s/.test(l) ? `(${l})` : l)).join(' AND ');
}
