import { execFile } from 'node:child_process';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mountTable, type MountEntry } from '../fsname/index.js';
import { ownerAlive, ownerFromName, type ProcessOwner } from './owner.js';

const run = promisify(execFile);

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
 * written, index temps, lock temps, unpacked archives, RUN roots, secret files. strata's own overlay
 * mounts under such a directory (a RUN root whose build was killed mid-step; source OVERLAY_MOUNT_SOURCE)
 * are unmounted first: the process that would have unmounted them is gone, and an overlay never
 * writes into its lower directories, so nothing but the dead step's upper directory is lost. A
 * directory with any other mount point under it (a sandbox killed with its mounts up) is left alone:
 * removing it would reach into what is mounted. Best effort: a leftover that cannot be removed now is
 * tried next time.
 */
export async function sweepLeftovers(places: readonly SweepPlace[], self: ProcessOwner, now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  let mounts: MountEntry[] | undefined;
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
      mounts ??= mountTable();
      const under = mounts.filter((m) => m.point === path || m.point.startsWith(`${path}/`));
      if (under.length > 0) {
        if (under.some((m) => m.fstype !== 'overlay' || m.source !== OVERLAY_MOUNT_SOURCE)) continue;
        if (!(await unmountAll(under.map((m) => m.point)))) continue;
        mounts = mountTable();
        if (mounts.some((m) => m.point === path || m.point.startsWith(`${path}/`))) continue;
      }
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

/** The source name strata's overlay mounts carry (`mount -t overlay strata-overlay …`), by which a sweep knows them. */
export const OVERLAY_MOUNT_SOURCE = 'strata-overlay';

/** Unmounts each of `points`, the deepest first (lazily when busy); false when one stayed mounted. */
async function unmountAll(points: readonly string[]): Promise<boolean> {
  const sorted = [...points].sort((a, b) => b.length - a.length);
  for (const point of sorted) {
    const done = await run('umount', [point]).then(
      () => true,
      () =>
        run('umount', ['--lazy', point]).then(
          () => true,
          () => false,
        ),
    );
    if (!done) return false;
  }
  return true;
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
