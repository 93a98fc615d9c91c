import { lstat, readFile, readdir, rm, statfs } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { StrataError } from '../errors/index.js';
import { UnpackedStore, unpackedDir } from '../layer/index.js';
import { FileBlobStore, LocalStore, closure, currentOwner, type UnreachableBlob } from '../store/index.js';
import type { StrataContext } from '../transports/index.js';

/**
 * The store's cache, apart from its images: step-cache entries (`cache/steps`, each naming a layer
 * blob), cache-mount directories (`cache/mounts`), context stat caches (`cache/context-stats`), image
 * time records (`cache/images`), base layers kept unpacked for RUN (`cache/unpacked`), blobs no named
 * image reaches, and corrupt blobs moved aside.
 */
interface CacheItem {
  kind: 'step' | 'mount' | 'context' | 'record' | 'snapshot' | 'corrupt';
  path: string;
  size: number;
  /** When it was last used (written, or for a step entry replayed). */
  usedMs: number;
  /** The layer blob a step entry names. */
  blob?: string | undefined;
}

export interface StoreUsage {
  images: { count: number; blobs: number; bytes: number };
  /** Step-cache entries and the blobs only they (or nothing) reach. */
  buildCache: { entries: number; blobs: number; bytes: number };
  mounts: { count: number; bytes: number };
  contexts: { count: number; bytes: number };
  /** Base layer chains kept unpacked for RUN steps. */
  unpacked: { count: number; bytes: number };
  corrupt: { count: number; bytes: number };
}

export interface PruneOptions {
  /** Everything that is no named image's: every cache entry, mount and record, every unreachable blob. */
  all?: boolean | undefined;
  /** Remove the least recently used cache until what is left takes at most this many bytes. */
  keepStorage?: number | undefined;
  /** Only what was last used longer ago than this. */
  untilMs?: number | undefined;
  now?: number | undefined;
}

export interface PruneResult {
  removedEntries: number;
  removedBlobs: number;
  freedBytes: number;
}

async function sizeOf(path: string): Promise<number> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const name of await readdir(path).catch(() => [] as string[])) total += await sizeOf(join(path, name));
  return total;
}

async function listItems(root: string): Promise<CacheItem[]> {
  const items: CacheItem[] = [];
  const each = async (dir: string, fn: (name: string, path: string) => Promise<CacheItem | undefined>): Promise<void> => {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const item = await fn(name, join(dir, name));
      if (item) items.push(item);
    }
  };
  await each(join(root, 'cache', 'steps'), async (name, path) => {
    if (!name.endsWith('.json')) return undefined;
    const info = await lstat(path).catch(() => undefined);
    if (!info) return undefined;
    let blob: string | undefined;
    try {
      const value = JSON.parse(await readFile(path, 'utf8')) as { layer?: { descriptor?: { digest?: unknown } } };
      if (typeof value.layer?.descriptor?.digest === 'string') blob = value.layer.descriptor.digest;
    } catch {
      // A damaged entry is one more thing to remove.
    }
    return { kind: 'step', path, size: info.size, usedMs: info.mtimeMs, blob };
  });
  await each(join(root, 'cache', 'mounts'), async (_name, path) => {
    const info = await lstat(path).catch(() => undefined);
    return info ? { kind: 'mount', path, size: await sizeOf(path), usedMs: info.mtimeMs } : undefined;
  });
  for (const [kind, dir] of [
    ['context', 'context-stats'],
    ['record', 'images'],
  ] as const) {
    await each(join(root, 'cache', dir), async (_name, path) => {
      const info = await lstat(path).catch(() => undefined);
      return info?.isFile() ? { kind, path, size: info.size, usedMs: info.mtimeMs } : undefined;
    });
  }
  for (const tree of await unpackedTrees(root).list()) {
    items.push({ kind: 'snapshot', path: join(unpackedDir(root), tree.key), size: tree.bytes, usedMs: tree.usedMs });
  }
  await each(join(root, 'corrupt'), async (_name, path) => {
    const info = await lstat(path).catch(() => undefined);
    return info ? { kind: 'corrupt', path, size: info.size, usedMs: info.mtimeMs } : undefined;
  });
  return items;
}

/** The store's unpacked base trees, for listing and removing (never for keeping: `keep` plays no part here). */
function unpackedTrees(root: string): UnpackedStore {
  return new UnpackedStore(unpackedDir(root), 0, currentOwner());
}

/** Blobs no named image reaches, with size and mtime (leases are the collector's business). */
async function unnamedBlobs(store: LocalStore): Promise<UnreachableBlob[]> {
  const blobs = new FileBlobStore(store.blobs.dir);
  const named = await closure(blobs, (await store.layout.readIndex()).manifests);
  const out: UnreachableBlob[] = [];
  for (const digest of await blobs.listBlobs()) {
    if (named.has(digest)) continue;
    const info = await lstat(blobs.blobPath(digest)).catch(() => undefined);
    if (info?.isFile()) out.push({ digest, size: info.size, mtimeMs: info.mtimeMs });
  }
  return out;
}

/** `strata df`: what the store holds, by kind. */
export async function storeUsage(ctx: StrataContext): Promise<StoreUsage> {
  const store = await LocalStore.open(ctx.storeRoot);
  const blobs = new FileBlobStore(store.blobs.dir);
  const named = await closure(blobs, (await store.layout.readIndex()).manifests);
  let imageBytes = 0;
  let imageBlobs = 0;
  for (const digest of named) {
    const info = await lstat(blobs.blobPath(digest as `sha256:${string}`)).catch(() => undefined);
    if (info?.isFile()) {
      imageBytes += info.size;
      imageBlobs++;
    }
  }
  const unnamed = await unnamedBlobs(store);
  const items = await listItems(ctx.storeRoot);
  const sum = (kind: CacheItem['kind']): { count: number; bytes: number } => {
    const of = items.filter((i) => i.kind === kind);
    return { count: of.length, bytes: of.reduce((n, i) => n + i.size, 0) };
  };
  const steps = sum('step');
  const records = sum('record');
  return {
    images: { count: (await store.list()).length, blobs: imageBlobs, bytes: imageBytes },
    buildCache: { entries: steps.count, blobs: unnamed.length, bytes: steps.bytes + records.bytes + unnamed.reduce((n, b) => n + b.size, 0) },
    mounts: sum('mount'),
    contexts: sum('context'),
    unpacked: sum('snapshot'),
    corrupt: sum('corrupt'),
  };
}

/**
 * `strata prune`: removes cache, never what a named image needs, least recently used first.
 * Without options: corrupt blobs moved aside, step entries whose layer is gone, and blobs that neither
 * a name nor a step entry reaches. `--all`: every cache entry, mount, stat cache, record and unpacked base
 * too, and so every blob no name reaches. `keepStorage`: entries (with the blobs only they reach), mounts,
 * stat caches and unpacked bases, oldest use first, until the cache fits. `untilMs`: only what is older than that.
 * Blobs a running build or pull holds a lease on are kept whatever the options say.
 */
export async function pruneStore(ctx: StrataContext, options: PruneOptions = {}): Promise<PruneResult> {
  const now = options.now ?? Date.now();
  const old = (usedMs: number): boolean => options.untilMs === undefined || now - usedMs > options.untilMs;
  const store = await LocalStore.open(ctx.storeRoot);
  const blobs = new FileBlobStore(store.blobs.dir);
  const items = await listItems(ctx.storeRoot);
  const unnamed = await unnamedBlobs(store);
  const unnamedSize = new Map(unnamed.map((b) => [b.digest as string, b.size]));
  const remove = new Set<CacheItem>();

  for (const item of items) {
    if (!old(item.usedMs)) continue;
    if (options.all || item.kind === 'corrupt') remove.add(item);
    else if (item.kind === 'step' && (item.blob === undefined || !(await blobs.hasBlob({ digest: item.blob as `sha256:${string}` })))) {
      remove.add(item);
    }
  }
  if (options.keepStorage !== undefined) {
    // What each kept item costs: a step entry carries its blob when no name reaches it (once per blob).
    const kept = items.filter((i) => !remove.has(i)).sort((a, b) => a.usedMs - b.usedMs);
    const holders = new Map<string, number>();
    for (const i of kept) if (i.blob && unnamedSize.has(i.blob)) holders.set(i.blob, (holders.get(i.blob) ?? 0) + 1);
    const reachedByKept = new Set(holders.keys());
    let total = kept.reduce((n, i) => n + i.size, 0) + unnamed.reduce((n, b) => n + (reachedByKept.has(b.digest) ? b.size : 0), 0);
    for (const item of kept) {
      if (total <= options.keepStorage) break;
      if (!old(item.usedMs) || item.kind === 'record') continue;
      remove.add(item);
      total -= item.size;
      if (item.blob && holders.has(item.blob)) {
        const left = holders.get(item.blob)! - 1;
        holders.set(item.blob, left);
        if (left === 0) total -= unnamedSize.get(item.blob)!;
      }
    }
  }

  let freedBytes = 0;
  let removedEntries = 0;
  const trees = unpackedTrees(ctx.storeRoot);
  for (const item of remove) {
    // A tree a running build uses stays (its overlay or copy reads it); the next prune takes it.
    if (item.kind === 'snapshot' && !(await trees.remove(basename(item.path)))) continue;
    if (item.kind !== 'snapshot') await rm(item.path, { recursive: true, force: true });
    freedBytes += item.size;
    removedEntries++;
  }
  if (options.all) await rm(join(ctx.storeRoot, 'cache', 'steps', 'definitions'), { recursive: true, force: true });
  // Blobs the remaining step entries name stay (unless --all); the rest of the unnamed go.
  const stillCached = new Set(items.filter((i) => i.kind === 'step' && !remove.has(i) && i.blob).map((i) => i.blob!));
  const collected = await store.collectGarbage({
    choose: (unreachable) => unreachable.filter((b) => (options.all || !stillCached.has(b.digest)) && old(b.mtimeMs)),
  });
  return { removedEntries, removedBlobs: collected.removed, freedBytes: freedBytes + collected.freedBytes };
}

/**
 * The automatic bound applied after a build that wrote something: the cache (everything `prune` can
 * remove) is kept under `limitBytes`, else under a tenth of the free space of the store's disk.
 */
export async function boundStoreCache(ctx: StrataContext, limitBytes: number | undefined): Promise<PruneResult | undefined> {
  let limit = limitBytes;
  if (limit === undefined) {
    const fs = await statfs(ctx.storeRoot).catch(() => undefined);
    if (!fs) return undefined;
    limit = Math.floor((fs.bavail * fs.bsize) / 10);
  }
  const usage = await storeUsage(ctx);
  const cache = usage.buildCache.bytes + usage.mounts.bytes + usage.contexts.bytes + usage.unpacked.bytes + usage.corrupt.bytes;
  if (cache <= limit) return undefined;
  return pruneStore(ctx, { keepStorage: limit });
}

/** `10GB`, `512MiB`, `1.5g`, `1024` (bytes): sizes as docker's --keep-storage takes them (powers of 1024). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(text);
  if (!m) throw new StrataError('E_USAGE', `"${text}" is not a size (examples: 512MB, 10GB, 1.5GiB)`);
  const power = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/** `24h`, `30m`, `7d`, `90s`, `1h30m`: how long ago, as docker's `until=` filter takes durations. */
export function parseDuration(text: string): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text.trim()) {
    throw new StrataError('E_USAGE', `"${text}" is not a duration (examples: 90m, 24h, 7d)`);
  }
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  return parts.reduce((n, p) => n + Number(p[1]) * unit[p[2]!]!, 0);
}
