import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { StrataError } from '../errors/index.js';
import { mountTable } from '../fsname/index.js';
import { OVERLAY_MOUNT_SOURCE } from '../store/index.js';

const run = promisify(execFile);

/**
 * The source name of strata's overlay mounts in /proc/self/mountinfo: what the leftovers sweep takes as strata's
 * own to unmount when the process that mounted it died.
 */
export const OVERLAY_SOURCE = OVERLAY_MOUNT_SOURCE;

/**
 * Plain copy-up only: no redirects (a renamed lower directory is copied, EXDEV to the program, as docker has it),
 * no metadata-only copy-up (a chmod copies the data too, so the upper directory alone holds every changed file
 * whole), and the inode index on, so a file with several hard links below stays one file when one of its
 * names is written (the step sees what it would see in a copied tree).
 */
export const OVERLAY_OPTIONS = 'redirect_dir=off,metacopy=off,index=on';

export interface OverlayMount {
  /** The directory the names below are relative to; mount runs there, so no path needs escaping in the options. */
  cwd: string;
  /** Lower directories, the top one first (names without `:` or `,`). */
  lowers: readonly string[];
  upper: string;
  work: string;
  /** Where the merged tree appears. */
  target: string;
}

/** Mounts an overlay; throws E_RUN_UNSUPPORTED with mount's own words when the kernel or the privileges refuse. */
export async function mountOverlay(m: OverlayMount): Promise<void> {
  const names = [...m.lowers, m.upper, m.work];
  if (names.some((n) => n === '' || /[:,\\]/.test(n))) throw new StrataError('E_INTERNAL', `overlay directory names must be plain: ${names.join(' ')}`);
  const options = `lowerdir=${m.lowers.join(':')},upperdir=${m.upper},workdir=${m.work},${OVERLAY_OPTIONS}`;
  try {
    await run('mount', ['-t', 'overlay', '-o', options, OVERLAY_SOURCE, m.target], { cwd: m.cwd });
  } catch (error) {
    throw new StrataError('E_RUN_UNSUPPORTED', `cannot mount an overlay at ${m.cwd}/${m.target}: ${processMessage(error)}`, { cause: error });
  }
}

/**
 * Unmounts `target`; when it is busy (a process the step left behind), detaches it lazily, so that the
 * directory under it can be removed without reaching into the merged tree. Throws only when it is still mounted.
 */
export async function unmountOverlay(target: string): Promise<void> {
  try {
    await run('umount', [target]);
    return;
  } catch (error) {
    try {
      await run('umount', ['--lazy', target]);
      return;
    } catch {
      if (!mountTable().some((m) => m.point === target)) return;
      throw new StrataError('E_IO', `cannot unmount the overlay at ${target}: ${processMessage(error)}`, { cause: error });
    }
  }
}

function processMessage(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  const text = Buffer.isBuffer(stderr) ? stderr.toString('utf8') : typeof stderr === 'string' ? stderr : '';
  return text.trim() !== '' ? text.trim() : error instanceof Error ? error.message : String(error);
}
