import { posix } from 'node:path';
import { StrataError } from '../errors/index.js';

/**
 * Path resolution inside an image root, the way a process chrooted into it would see the path: symlinks are
 * followed with absolute targets taken relative to the root, `..` never climbs above the root, and at most 40
 * links are followed (Linux's MAXSYMLINKS). The walk is written once, as a generator that asks for one lookup at a
 * time, so the extractor can drive it with async `lstat` calls and the in-memory index with map lookups.
 *
 * Paths in and out are root-relative with `/` separators; `''` is the root itself.
 */

export const MAX_SYMLINKS = 40;

export type PathLookup =
  | { kind: 'missing' }
  | { kind: 'dir' }
  | { kind: 'symlink'; target: string }
  /** Anything else: a file, a fifo, a device. */
  | { kind: 'other' };

export type ResolveOutcome =
  /** `missing` is true when some component did not exist; from there on the rest were taken literally. */
  { ok: true; path: string; missing: boolean } | { ok: false; reason: 'loop' | 'notdir'; at: string };

export interface ResolveOptions {
  /** Follow a symlink at the last component (open, stat) or not (create, remove, lstat). */
  followFinal: boolean;
}

function components(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

/** Yields each root-relative path it needs looked up and expects the lookup back; returns the outcome. */
export function* resolveSteps(path: string, options: ResolveOptions): Generator<string, ResolveOutcome, PathLookup> {
  // A stack: the next component to walk is at the end.
  const pending = components(path).reverse();
  const resolved: string[] = [];
  let links = 0;
  // Index in `resolved` of the first component that did not exist; -1 while everything so far exists.
  let missingAt = -1;
  while (pending.length > 0) {
    const part = pending.pop() as string;
    if (part === '..') {
      resolved.pop();
      // Climbing back above the missing component means the path may exist again: look things up once more.
      if (missingAt >= 0 && resolved.length <= missingAt) missingAt = -1;
      continue;
    }
    if (missingAt >= 0) {
      resolved.push(part);
      continue;
    }
    const candidate = resolved.length === 0 ? part : `${resolved.join('/')}/${part}`;
    const isFinal = pending.length === 0;
    const found = yield candidate;
    if (found.kind === 'symlink' && (!isFinal || options.followFinal)) {
      links += 1;
      if (links > MAX_SYMLINKS) return { ok: false, reason: 'loop', at: candidate };
      if (found.target.startsWith('/')) resolved.length = 0;
      pending.push(...components(found.target).reverse());
      continue;
    }
    if (found.kind === 'missing') missingAt = resolved.length;
    else if (!isFinal && found.kind !== 'dir') return { ok: false, reason: 'notdir', at: candidate };
    resolved.push(part);
  }
  return { ok: true, path: resolved.join('/'), missing: missingAt >= 0 };
}

export function resolveSync(path: string, options: ResolveOptions, lookup: (path: string) => PathLookup): ResolveOutcome {
  const steps = resolveSteps(path, options);
  let step = steps.next();
  while (step.done !== true) step = steps.next(lookup(step.value));
  return step.value;
}

export async function resolveAsync(path: string, options: ResolveOptions, lookup: (path: string) => Promise<PathLookup>): Promise<ResolveOutcome> {
  const steps = resolveSteps(path, options);
  let step = steps.next();
  while (step.done !== true) step = steps.next(await lookup(step.value));
  return step.value;
}

/** Root-relative `a/b` from a parent and a name; the root is `''`. */
export function joinRel(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/** The root-relative form of a normalized layer path (`.` is the root). */
export function layerPathToRel(path: string): string {
  return path === '.' ? '' : path;
}

/**
 * The name a whiteout deletes. `.wh..` and `.wh...` name `.` and `..`: deleting those would remove the directory
 * itself or its parent (above the root, for a whiteout at the top), so they are refused.
 */
export function whiteoutName(target: string, entryPath: string, what: string): string {
  const name = posix.basename(target);
  if (name === '.' || name === '..' || name === '') {
    throw new StrataError('E_LAYER_UNSAFE', `${what}: whiteout ${JSON.stringify(entryPath)} names ${JSON.stringify(name)}, not an entry`, {
      hint: 'a whiteout must name a file or directory beside it; the layer was refused',
    });
  }
  return name;
}
