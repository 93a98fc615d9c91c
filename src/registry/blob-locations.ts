import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Digests remembered; the least recently seen go first. */
const MAX_DIGESTS = 10_000;
/** Repositories remembered per digest and registry, the most recent first. */
const MAX_REPOSITORIES = 3;

interface FileShape {
  version: 1;
  /** `[digest, [[registry, repository], …]]`, the least recently seen digest first. */
  blobs: Array<[string, Array<[string, string]>]>;
}

/**
 * Where each blob was last seen (registry, repository), kept in the store across runs, as containers/image's
 * blob-info cache keeps it: a push to another repository of the same registry can then mount the blob
 * instead of uploading it, even when the image was pulled or pushed by an earlier process. Bounded (the
 * least recently seen digests are dropped); a cache, so a record that cannot be read or written is ignored
 * and a mount it suggests may fail (the push then uploads). Only repositories of the registry being pushed
 * to are ever asked, so no credential goes to another registry.
 */
export class BlobLocations {
  private entries: Map<string, Array<[string, string]>> | undefined;
  private readonly added: Array<[string, string, string]> = [];

  constructor(private readonly file: string) {}

  /** Repositories of `registry` where `digest` was seen, the most recent first. */
  sources(registry: string, digest: string): string[] {
    return (this.load().get(digest) ?? []).filter(([r]) => r === registry).map(([, repository]) => repository);
  }

  /** Records that `digests` are in `registry/repository` (pulled from or pushed to it). */
  note(registry: string, repository: string, digests: Iterable<string>): void {
    const entries = this.load();
    for (const digest of digests) {
      const known = entries.get(digest);
      if (known?.[0]?.[0] === registry && known[0][1] === repository) continue;
      record(entries, digest, registry, repository);
      this.added.push([digest, registry, repository]);
    }
  }

  /** Writes what was noted since the last save, merged into the file as it is now (another process may have written it). */
  async save(): Promise<void> {
    if (this.added.length === 0) return;
    const merged = readRecord(this.file);
    for (const [digest, registry, repository] of this.added) record(merged, digest, registry, repository);
    this.added.length = 0;
    while (merged.size > MAX_DIGESTS) merged.delete(merged.keys().next().value as string);
    const shape: FileShape = { version: 1, blobs: [...merged] };
    const temp = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(this.file), { recursive: true });
      await writeFile(temp, JSON.stringify(shape), { mode: 0o644 });
      await rename(temp, this.file);
    } catch {
      // A cache that cannot be written costs uploads next time, nothing more.
      await rm(temp, { force: true }).catch(() => undefined);
    }
    this.entries = merged;
  }

  private load(): Map<string, Array<[string, string]>> {
    this.entries ??= readRecord(this.file);
    return this.entries;
  }
}

/** Moves `digest` to the most recent end, with `registry/repository` first among its places. */
function record(entries: Map<string, Array<[string, string]>>, digest: string, registry: string, repository: string): void {
  const places = (entries.get(digest) ?? []).filter(([r, p]) => !(r === registry && p === repository));
  places.unshift([registry, repository]);
  const bounded: Array<[string, string]> = [];
  const perRegistry = new Map<string, number>();
  for (const place of places) {
    const count = perRegistry.get(place[0]) ?? 0;
    if (count >= MAX_REPOSITORIES) continue;
    perRegistry.set(place[0], count + 1);
    bounded.push(place);
  }
  entries.delete(digest);
  entries.set(digest, bounded.slice(0, 8));
}

function readRecord(file: string): Map<string, Array<[string, string]>> {
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as Partial<FileShape>;
    if (doc.version !== 1 || !Array.isArray(doc.blobs)) return new Map();
    const entries = new Map<string, Array<[string, string]>>();
    for (const item of doc.blobs) {
      if (!Array.isArray(item) || typeof item[0] !== 'string' || !Array.isArray(item[1])) continue;
      const places = item[1].filter((p): p is [string, string] => Array.isArray(p) && typeof p[0] === 'string' && typeof p[1] === 'string');
      entries.set(item[0], places);
    }
    return entries;
  } catch {
    return new Map();
  }
}
