import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf, type Digest } from '../digest/index.js';
import { canonicalJson } from '../oci/index.js';
import { writeFileAtomic } from '../store/index.js';
import type { ExpiredStep, KeyComponents } from './cache.js';

/** What differs between a step's key and the closest recorded key of the same instruction line. */
export type CacheChange =
  | { kind: 'new' }
  | { kind: 'unavailable' }
  | { kind: 'parent'; step?: number | undefined }
  | { kind: 'word'; field: string; from?: string | undefined; to?: string | undefined }
  | { kind: 'env'; name: string }
  | { kind: 'arg'; name: string }
  | { kind: 'files'; changed: string[]; added: string[]; removed: string[] }
  | { kind: 'sources' }
  | { kind: 'expired'; source: string; createdAt?: string | undefined };

export interface CacheMiss {
  /** One line: `COPY src/ missed: 2 files changed (src/a.ts, src/b.ts)`. */
  reason: string;
  changes: CacheChange[];
}

/** A content list of what a COPY read: keyed path → a short signature of its row in the key. */
export type FileList = ReadonlyArray<readonly [string, string]>;

interface LineEntry {
  key: Digest;
  components: KeyComponents;
}

/** Entries kept per instruction line: enough for the variants a branch switch goes through. */
const KEEP = 8;
const NAMES_SHOWN = 3;

/**
 * The components of recent keys per instruction line, kept beside the step cache so that a miss can
 * be explained by what differs from the closest of them. Values of ENV and ARGs are kept as digests only.
 * A COPY's per-file list is kept once per source set (`files/<sources digest>`), compact: a path and a
 * short signature each.
 */
export class CacheExplainer {
  constructor(private readonly dir: string) {}

  static forStore(storeRoot: string): CacheExplainer {
    return new CacheExplainer(join(storeRoot, 'cache', 'explain'));
  }

  private linePath(line: string): string {
    return join(this.dir, 'lines', `${digestHex(digestOf(line))}.json`);
  }

  private filesPath(sources: Digest): string {
    return join(this.dir, 'files', `${digestHex(sources)}.json`);
  }

  private async entries(line: string): Promise<LineEntry[]> {
    try {
      const parsed = JSON.parse(await readFile(this.linePath(line), 'utf8')) as unknown;
      return Array.isArray(parsed) ? (parsed as LineEntry[]).filter((e) => typeof e?.key === 'string' && typeof e.components === 'object') : [];
    } catch {
      // Missing or damaged: nothing to compare with, which is only a poorer explanation.
      return [];
    }
  }

  private async files(sources: Digest): Promise<FileList | undefined> {
    try {
      const parsed = JSON.parse(await readFile(this.filesPath(sources), 'utf8')) as unknown;
      return Array.isArray(parsed) ? (parsed as Array<[string, string]>) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records a key of `line` (newest first), with the COPY's file list when it has one. */
  async record(line: string, key: Digest, components: KeyComponents, files?: FileList): Promise<void> {
    const kept = (await this.entries(line)).filter((e) => e.key !== key).slice(0, KEEP - 1);
    await mkdir(join(this.dir, 'lines'), { recursive: true });
    await writeFileAtomic(this.linePath(line), canonicalJson([{ key, components }, ...kept]));
    if (files !== undefined && components.sources !== undefined && (await this.files(components.sources)) === undefined) {
      await mkdir(join(this.dir, 'files'), { recursive: true });
      await writeFileAtomic(this.filesPath(components.sources), JSON.stringify(files));
    }
  }

  /**
   * Why `components` missed: the differences from the recorded key of `line` that differs least.
   * `parentStep` names the step that last wrote a layer below (undefined: the base image).
   */
  async explain(
    label: string,
    line: string,
    key: Digest,
    components: KeyComponents,
    options: { files?: FileList | undefined; parentStep?: number | undefined },
  ): Promise<CacheMiss> {
    const candidates = (await this.entries(line)).filter((e) => e.components.kind === components.kind);
    let best: CacheChange[] | undefined;
    let bestEntry: LineEntry | undefined;
    for (const entry of candidates) {
      const changes = differences(entry.components, components, options.parentStep);
      if (best === undefined || weight(changes) < weight(best)) {
        best = changes;
        bestEntry = entry;
      }
    }
    let changes: CacheChange[];
    if (best === undefined || bestEntry === undefined) changes = [{ kind: 'new' }];
    else if (best.length === 0) changes = [{ kind: bestEntry.key === key ? 'unavailable' : 'new' }];
    else changes = await this.withFiles(best, bestEntry, options.files);
    return { reason: `${label} missed: ${changes.map(describe).join('; ')}`, changes };
  }

  /** Replaces a `sources` change by the files that differ, when both file lists are known. */
  private async withFiles(changes: CacheChange[], entry: LineEntry, current: FileList | undefined): Promise<CacheChange[]> {
    const i = changes.findIndex((c) => c.kind === 'sources');
    if (i < 0 || current === undefined || entry.components.sources === undefined) return changes;
    const before = await this.files(entry.components.sources);
    if (before === undefined) return changes;
    const old = new Map(before);
    const now = new Map(current);
    const changed = [...now].filter(([p, sig]) => old.has(p) && old.get(p) !== sig).map(([p]) => p);
    const added = [...now.keys()].filter((p) => !old.has(p));
    const removed = [...old.keys()].filter((p) => !now.has(p));
    if (changed.length + added.length + removed.length === 0) return changes;
    return changes.map((c, j) => (j === i ? { kind: 'files', changed, added, removed } : c));
  }
}

/** The miss of a step whose cached outcome was older than `--cache-ttl`. */
export function expiredMiss(label: string, expired: ExpiredStep): CacheMiss {
  const change: CacheChange = { kind: 'expired', source: expired.source, ...(expired.createdAt !== undefined ? { createdAt: expired.createdAt } : {}) };
  return { reason: `${label} missed: ${describe(change)}`, changes: [change] };
}

function weight(changes: readonly CacheChange[]): number {
  return changes.length;
}

/** Words whose values are shown in a miss (short, and never secret: secrets are not in any word). */
const SHOWN = new Set(['dest', 'workdir', 'user', 'chown', 'chmod', 'executor', 'network', 'epoch', 'dir', 'from', 'link', 'parents']);
const FIELD_NAMES: Record<string, string> = {
  sources: 'sources',
  dest: 'destination',
  from: '--from',
  chown: '--chown',
  chmod: '--chmod',
  link: '--link',
  parents: '--parents',
  excludes: '--exclude',
  unpack: '--unpack',
  inline: 'heredoc content',
  epoch: 'SOURCE_DATE_EPOCH',
  args: 'command',
  user: 'USER',
  workdir: 'WORKDIR',
  network: 'network',
  mounts: 'mounts',
  platform: 'platform',
  executor: 'executor class',
  dir: 'directory',
  owner: 'owner',
};

function differences(old: KeyComponents, now: KeyComponents, parentStep: number | undefined): CacheChange[] {
  const out: CacheChange[] = [];
  if (old.parent !== now.parent) out.push({ kind: 'parent', step: parentStep });
  const fields = new Set([...Object.keys(old.words), ...Object.keys(now.words)]);
  for (const field of [...fields].sort()) {
    const a = canonicalJson(old.words[field] ?? null);
    const b = canonicalJson(now.words[field] ?? null);
    if (a === b) continue;
    out.push(SHOWN.has(field) ? { kind: 'word', field, from: shown(old.words[field]), to: shown(now.words[field]) } : { kind: 'word', field });
  }
  for (const name of changedNames(old.env, now.env)) out.push({ kind: 'env', name });
  for (const name of changedNames(old.args, now.args)) out.push({ kind: 'arg', name });
  if ((old.sources ?? null) !== (now.sources ?? null)) out.push({ kind: 'sources' });
  return out;
}

function shown(value: unknown): string {
  return value === null || value === undefined ? '(none)' : typeof value === 'string' ? value : canonicalJson(value);
}

function changedNames(a: Record<string, Digest> | undefined, b: Record<string, Digest> | undefined): string[] {
  const x = a ?? {};
  const y = b ?? {};
  return [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => x[k] !== y[k]).sort();
}

function names(list: readonly string[]): string {
  const shownNames = list.slice(0, NAMES_SHOWN).join(', ');
  return list.length > NAMES_SHOWN ? `${shownNames}, …` : shownNames;
}

function describe(c: CacheChange): string {
  switch (c.kind) {
    case 'new':
      return 'no cached step of this instruction';
    case 'unavailable':
      return 'the cached layer is not available (removed, or in another compression)';
    case 'parent':
      return c.step === undefined ? 'base image changed' : `parent layer changed (step ${c.step})`;
    case 'word':
      return c.from !== undefined ? `${FIELD_NAMES[c.field] ?? c.field} changed (${c.from} → ${c.to})` : `${FIELD_NAMES[c.field] ?? c.field} changed`;
    case 'env':
      return `ENV ${c.name} changed`;
    case 'arg':
      return `ARG ${c.name} changed`;
    case 'sources':
      return 'source files changed';
    case 'expired': {
      const where = c.source === 'local' ? 'cached step' : `step in ${c.source}`;
      return `${where} older than --cache-ttl (${c.createdAt === undefined ? 'made at an unknown time' : `made ${c.createdAt}`})`;
    }
    case 'files': {
      const parts: string[] = [];
      const n = (k: number, what: string): string => `${k} file${k === 1 ? '' : 's'} ${what}`;
      if (c.changed.length) parts.push(`${n(c.changed.length, 'changed')} (${names(c.changed)})`);
      if (c.added.length) parts.push(`${n(c.added.length, 'added')} (${names(c.added)})`);
      if (c.removed.length) parts.push(`${n(c.removed.length, 'removed')} (${names(c.removed)})`);
      return parts.join(', ');
    }
  }
}
