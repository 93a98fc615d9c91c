import { createHash } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { digestHex, isDigest, type Digest } from '../digest/index.js';
import { errnoCode } from '../errors/index.js';
import { writeFileAtomic } from '../store/atomic.js';
import type { LayerRecord, RecordedEntry } from './layer-record.js';
import { cleanEntryPath } from './safe-path.js';
import type { LayerEntryType } from './types.js';

/** Where layer records are kept, by diffID: a layer's entries are a function of its uncompressed bytes. */
export interface LayerIndexCache {
  /** The record of the layer with this diffID, or undefined when there is none (or it was damaged). */
  load(diffId: Digest): Promise<LayerRecord | undefined>;
  /** Keeps a complete record. Never fails the caller: the record is only a cache. */
  save(diffId: Digest, record: LayerRecord): Promise<void>;
  /** Whether a record is kept, without reading it (a damaged one still counts: `load` then finds it missing). */
  has?(diffId: Digest): Promise<boolean>;
}

const FORMAT = 'strata-layer-index';
/** v2: names that are not UTF-8 are kept as their bytes (v1 records held U+FFFD for them). */
const VERSION = 'v2';
const OLDER_VERSIONS = ['v1'];
const TYPES: ReadonlySet<string> = new Set<LayerEntryType>(['file', 'dir', 'symlink', 'hardlink', 'fifo', 'char', 'block']);

/** `$STRATA_ROOT/cache/layer-index`. */
export function layerIndexDir(storeRoot: string): string {
  return join(storeRoot, 'cache', 'layer-index');
}

/**
 * Layer records on disk, one file per diffID under `dir/v2/`: a header line (format, version, diffID, entry count,
 * sha256 of the body) and a gzipped JSON body of compact rows. A file that fails any check (a torn write cannot
 * happen, it is renamed into place, but a disk can rot) reads as missing and is replaced by the next save.
 */
export class LayerIndexStore implements LayerIndexCache {
  /** Whether the records of older versions (never read again) were removed yet. */
  private swept = false;

  constructor(private readonly dir: string) {}

  private pathOf(diffId: Digest): string {
    return join(this.dir, VERSION, `${diffId.split(':')[0] ?? 'sha256'}-${digestHex(diffId)}`);
  }

  async load(diffId: Digest): Promise<LayerRecord | undefined> {
    let data: Buffer;
    try {
      data = await readFile(this.pathOf(diffId));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      return undefined;
    }
    const record = decodeRecord(data, diffId);
    if (record === undefined) await rm(this.pathOf(diffId), { force: true }).catch(() => undefined);
    return record;
  }

  async has(diffId: Digest): Promise<boolean> {
    return stat(this.pathOf(diffId)).then(
      (st) => st.isFile(),
      () => false,
    );
  }

  async save(diffId: Digest, record: LayerRecord): Promise<void> {
    if (!this.swept) {
      this.swept = true;
      for (const old of OLDER_VERSIONS) await rm(join(this.dir, old), { recursive: true, force: true }).catch(() => undefined);
    }
    try {
      await writeFileAtomic(this.pathOf(diffId), encodeRecord(diffId, record));
    } catch {
      // A store that cannot take the record (read-only, full) only loses the shortcut.
    }
  }
}

type Row = [string, string, number, number, number, number, number, string | null, number, number];

export function encodeRecord(diffId: Digest, record: LayerRecord): Buffer {
  const rows: Row[] = record.entries.map((e) => [e.path, e.type, e.mode, e.uid, e.gid, e.size, e.mtime, e.linkname ?? null, e.devMajor, e.devMinor]);
  const contents = [...record.contents].map(([index, bytes]) => [index, bytes.toString('base64')]);
  const body = gzipSync(JSON.stringify({ e: rows, c: contents }), { level: 1 });
  const sum = createHash('sha256').update(body).digest('hex');
  return Buffer.concat([Buffer.from(`${FORMAT} ${VERSION} ${diffId} ${rows.length} ${sum}\n`), body]);
}

/** The record in `data`, or undefined when anything about it is wrong. */
export function decodeRecord(data: Buffer, diffId: Digest): LayerRecord | undefined {
  const newline = data.indexOf(0x0a);
  if (newline < 0 || newline > 400) return undefined;
  const [format, version, id, count, sum] = data.subarray(0, newline).toString('latin1').split(' ');
  if (format !== FORMAT || version !== VERSION || id !== diffId || id === undefined || !isDigest(id)) return undefined;
  const body = data.subarray(newline + 1);
  if (createHash('sha256').update(body).digest('hex') !== sum) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(gunzipSync(body).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { e: rows, c: contents } = parsed as { e?: unknown; c?: unknown };
  if (!Array.isArray(rows) || !Array.isArray(contents) || String(rows.length) !== count) return undefined;
  const entries: RecordedEntry[] = [];
  for (const row of rows) {
    const entry = entryOf(row);
    if (entry === undefined) return undefined;
    entries.push(entry);
  }
  const bytes = new Map<number, Buffer>();
  for (const item of contents) {
    if (!Array.isArray(item) || typeof item[0] !== 'number' || typeof item[1] !== 'string' || item[0] < 0 || item[0] >= entries.length) return undefined;
    bytes.set(item[0], Buffer.from(item[1], 'base64'));
  }
  return { entries, contents: bytes };
}

/** What cleanEntryPath gives back unchanged, checked cheaply for the common name (a record holds thousands). */
function isClean(path: string): boolean {
  if (path !== '.' && !path.startsWith('/') && !path.endsWith('/') && !path.includes('//') && !/(^|\/)\.\.?(\/|$)/.test(path)) return true;
  try {
    return cleanEntryPath(path) === path;
  } catch {
    return false;
  }
}

function entryOf(row: unknown): RecordedEntry | undefined {
  if (!Array.isArray(row) || row.length !== 10) return undefined;
  const [path, type, mode, uid, gid, size, mtime, linkname, devMajor, devMinor] = row as unknown[];
  if (typeof path !== 'string' || typeof type !== 'string' || !TYPES.has(type)) return undefined;
  const numbers = [mode, uid, gid, size, mtime, devMajor, devMinor];
  if (!numbers.every((n) => typeof n === 'number' && Number.isFinite(n))) return undefined;
  if (linkname !== null && typeof linkname !== 'string') return undefined;
  // The names were cleaned when read: a record that holds another name was not written by this code.
  if (!isClean(path) || (type === 'hardlink' && (typeof linkname !== 'string' || !isClean(linkname)))) return undefined;
  return {
    path,
    type: type as LayerEntryType,
    mode: mode as number,
    uid: uid as number,
    gid: gid as number,
    size: size as number,
    mtime: mtime as number,
    linkname: linkname ?? undefined,
    devMajor: devMajor as number,
    devMinor: devMinor as number,
  };
}
