import { readFileSync } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ownerAlive, ownerFromName, type ProcessOwner } from './owner.js';

/** Scratch entries of strata versions that did not name their owner are removed once this old. */
const UNOWNED_AFTER_MS = 24 * 60 * 60 * 1000;

export interface SweepPlace {
  dir: string;
  /** Which names in `dir` are strata's (the store's own directories: every name). */
  match: (name: string) => boolean;
  /** Remove matching names that carry no owner once they are old (only where strata alone writes). */
  unowned?: boolean | undefined;
}

/**
 * Removes temp files and scratch directories whose owning process is dead (see ownerTag): blobs being
 * written, index temps, lock temps, unpacked archives, RUN roots, secret files. A directory with a
 * mount point still under it (a sandbox killed with its mounts up) is left alone: removing it would
 * reach into what is mounted. Best effort: a leftover that cannot be removed now is tried next time.
 */
export async function sweepLeftovers(places: readonly SweepPlace[], self: ProcessOwner, now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  let mounts: string[] | undefined;
  for (const place of places) {
    let names: string[];
    try {
      names = await readdir(place.dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!place.match(name)) continue;
      const path = join(place.dir, name);
      const owner = ownerFromName(name);
      if (owner) {
        if (ownerAlive(owner, self)) continue;
      } else {
        if (!place.unowned) continue;
        const info = await lstat(path).catch(() => undefined);
        if (!info || now - info.mtimeMs < UNOWNED_AFTER_MS) continue;
      }
      mounts ??= mountPoints();
      if (mounts.some((m) => m === path || m.startsWith(`${path}/`))) continue;
      try {
        await rm(path, { recursive: true, force: true });
        removed.push(path);
      } catch {
        // Not ours to remove after all (permissions), or busy: next time.
      }
    }
  }
  return removed;
}

/** Mount points of this mount namespace (unescaped from /proc/self/mountinfo's octal escapes). */
function mountPoints(): string[] {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(' ')[4] ?? '')
      .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
  } catch {
    return [];
  }
}

/** The places a store's leftovers can be: its scratch directories and temp names beside its files. */
export function storeSweepPlaces(root: string): SweepPlace[] {
  const temp = (name: string): boolean => name.startsWith('.tmp-');
  return [
    { dir: join(root, 'tmp'), match: (n) => n !== 'blobs', unowned: true },
    { dir: join(root, 'tmp', 'blobs'), match: () => true, unowned: true },
    { dir: root, match: temp },
    { dir: join(root, 'oci'), match: temp },
    { dir: join(root, 'cache', 'context-stats'), match: temp },
    { dir: join(root, 'leases'), match: () => true },
  ];
}
