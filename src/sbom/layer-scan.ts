import { posix } from 'node:path';
import { readLayer, type LayerEntryView, type LayerTap } from '../layer/index.js';
import { layerCompression, type Descriptor } from '../oci/index.js';
import { StrataError } from '../errors/index.js';
import type { BlobReader } from '../store/index.js';
import { parseApkInstalled } from './apk.js';
import { parseDebCopyright, parseDpkgStatus } from './dpkg.js';
import type { Finding, LayerFindings } from './findings.js';
import { scanGoBinary } from './gobuild.js';
import { readSmall } from './lines.js';
import { parsePackageJson, parsePackageLock } from './npm.js';
import { parseOsRelease } from './os-release.js';
import { parsePythonMetadata } from './python.js';
import { ScanWarnings, type ScanProblem } from './types.js';

type Reader = 'dpkg' | 'deb-copyright' | 'apk' | 'npm' | 'npm-lock' | 'python' | 'os';

const MAX_PACKAGE_JSON = 4 * 1024 * 1024;
const MAX_LOCKFILE = 64 * 1024 * 1024;
const MAX_SMALL = 1024 * 1024;
/** Smaller than any Go program: not worth opening. */
const MIN_GO_BINARY = 64 * 1024;

/** Which reader a path (relative, as in a layer) goes to, if any: decided by the path alone. */
export function readerFor(path: string): Reader | undefined {
  if (path === 'var/lib/dpkg/status') return 'dpkg';
  if (path.startsWith('var/lib/dpkg/status.d/')) {
    const name = path.slice('var/lib/dpkg/status.d/'.length);
    return name.includes('/') || name.endsWith('.md5sums') ? undefined : 'dpkg';
  }
  if (path === 'lib/apk/db/installed') return 'apk';
  if (path === 'etc/os-release' || path === 'usr/lib/os-release') return 'os';
  if (/^usr\/share\/doc\/[^/]+\/copyright$/.test(path)) return 'deb-copyright';
  if (/(^|\/)node_modules\/(@[^/]+\/)?[^/@.][^/]*\/package\.json$/.test(path)) return 'npm';
  if (/(^|\/)package-lock\.json$/.test(path) && !path.includes('node_modules/')) return 'npm-lock';
  if (/\.dist-info\/METADATA$/.test(path) || /\.egg-info\/PKG-INFO$/.test(path) || /\.egg-info$/.test(path)) return 'python';
  return undefined;
}

/**
 * Records what one layer's entries say about packages, and what the layer deletes, entry by entry in
 * layer order: fed by readLayer (scanLayer) or, as a LayerTap, by the layer writer while it writes the
 * layer. Never throws for what a file holds: a malformed file is a warning and hides the same path below.
 */
export class LayerScanner implements LayerTap {
  private readonly warnings = new CollectingWarnings();
  private readonly out: LayerFindings = { found: [], whiteouts: [], opaques: [], problems: [] };

  entry(entry: LayerEntryView): ((content: AsyncIterable<Buffer>) => Promise<void>) | undefined {
    if (entry.kind === 'whiteout') this.out.whiteouts.push(entry.target);
    else if (entry.kind === 'opaque') this.out.opaques.push(entry.dir);
    else {
      const path = entry.path;
      const reader = readerFor(path);
      if (reader === undefined) {
        if (entry.type !== 'file' || (entry.mode & 0o111) === 0 || entry.size < MIN_GO_BINARY) return undefined;
        return async (content) => {
          const info = await scanGoBinary(content, `/${path}`, this.warnings);
          if (info !== undefined) this.out.found.push([path, { kind: 'go', ...info }]);
        };
      }
      if (entry.type !== 'file') this.out.found.push([path, { kind: 'none' }]);
      else
        return async (content) => {
          this.out.found.push([path, await findingOf(reader, content, `/${path}`, this.warnings)]);
        };
    }
    return undefined;
  }

  findings(): LayerFindings {
    return { ...this.out, problems: this.warnings.entries() };
  }
}

/**
 * Streams one layer and records what its files say about packages, and what it deletes (LayerScanner).
 * A layer that cannot be read at all (bad blob) throws.
 */
export async function scanLayer(descriptor: Descriptor, reader: BlobReader, signal?: AbortSignal): Promise<LayerFindings> {
  const compression = layerCompression(descriptor.mediaType);
  const what = `layer ${descriptor.digest}`;
  if (compression === undefined)
    throw new StrataError('E_LAYER_INVALID', `${what} has media type ${descriptor.mediaType}, which is not a layer strata can read`);
  const scanner = new LayerScanner();
  const stream = await reader.openBlob(descriptor, signal === undefined ? {} : { signal });
  for await (const entry of readLayer(stream, { compression, what, signal })) {
    const take = scanner.entry(entry);
    if (take !== undefined) await take(entry.content);
  }
  return scanner.findings();
}

class CollectingWarnings extends ScanWarnings {
  private readonly all: Array<[string, string]> = [];
  override warn(kind: ScanProblem, message: string): void {
    super.warn(kind, message);
    this.all.push([kind, message]);
  }
  entries(): Array<[string, string]> {
    return this.all;
  }
}

async function findingOf(reader: Reader, content: AsyncIterable<Buffer>, shown: string, warnings: ScanWarnings): Promise<Finding> {
  switch (reader) {
    case 'dpkg':
      return { kind: 'dpkg', packages: await parseDpkgStatus(content, shown, warnings) };
    case 'apk':
      return { kind: 'apk', packages: await parseApkInstalled(content, shown, warnings) };
    case 'deb-copyright':
      return { kind: 'deb-copyright', licenses: await parseDebCopyright(content) };
    case 'python': {
      const meta = await parsePythonMetadata(content, shown, warnings);
      return meta === undefined ? { kind: 'none' } : { kind: 'python', ...meta };
    }
    case 'os': {
      const bytes = await readSmall(content, MAX_SMALL);
      const os = bytes === undefined ? undefined : parseOsRelease(bytes);
      if (os === undefined) warnings.warn('os-release', `${shown}: no ID= line; the distribution is not known`);
      return os === undefined ? { kind: 'none' } : { kind: 'os', ...os };
    }
    case 'npm': {
      const bytes = await readSmall(content, MAX_PACKAGE_JSON);
      if (bytes === undefined) {
        warnings.warn('oversized', `${shown}: over ${MAX_PACKAGE_JSON} bytes; skipped`);
        return { kind: 'none' };
      }
      const pkg = parsePackageJson(bytes, shown, warnings);
      return pkg === undefined ? { kind: 'none' } : { kind: 'npm', pkg };
    }
    case 'npm-lock': {
      const bytes = await readSmall(content, MAX_LOCKFILE);
      if (bytes === undefined) {
        warnings.warn('oversized', `${shown}: over ${MAX_LOCKFILE} bytes; skipped`);
        return { kind: 'none' };
      }
      return { kind: 'npm-lock', packages: parsePackageLock(bytes, shown, warnings) };
    }
  }
}

/** The image's files with findings, after applying each layer's deletions and files in order. */
export function mergeLayerFindings(layers: readonly LayerFindings[]): Map<string, Finding> {
  const state = new Map<string, Finding>();
  for (const layer of layers) {
    for (const dir of layer.opaques) deleteBelow(state, dir === '.' ? '' : dir, false);
    for (const target of layer.whiteouts) deleteBelow(state, target, true);
    for (const [path, finding] of layer.found) state.set(path, finding);
  }
  return state;
}

function deleteBelow(state: Map<string, Finding>, path: string, itself: boolean): void {
  const prefix = path === '' ? '' : `${posix.normalize(path)}/`;
  for (const key of state.keys()) {
    if ((itself && key === path) || key.startsWith(prefix)) state.delete(key);
  }
}
