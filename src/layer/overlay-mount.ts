import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { StrataError } from '../errors/index.js';
import { nameBytes } from '../fsname/index.js';
import { OVERLAY_MOUNT_SOURCE, mountTable } from '../store/index.js';

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

/**
 * Which of `dirs` (paths relative to `upper`, all directories) carry overlayfs's opaque mark, the xattr
 * `trusted.overlay.opaque=y`. Node reads no xattrs, so GNU tar (essential on Debian, Ubuntu and their images)
 * archives the directories' headers alone with that one xattr, and the archive's PAX records are read in the
 * order the names were given.
 */
export async function readOpaqueDirs(upper: string, dirs: readonly string[]): Promise<Set<string>> {
  if (dirs.length === 0) return new Set();
  const list = Buffer.concat(dirs.flatMap((d) => [nameBytes(d), Buffer.from([0])]));
  let archive: Buffer;
  try {
    archive = await tarHeaders(upper, list);
  } catch (error) {
    throw new StrataError('E_IO', `cannot read the overlay marks of ${upper} with tar: ${processMessage(error)}`, {
      cause: error,
      hint: 'strata reads overlayfs xattrs with GNU tar (apt-get install tar); STRATA_OVERLAY=off copies RUN roots instead',
    });
  }
  const marks = opaqueMarks(archive);
  if (marks.length !== dirs.length) {
    throw new StrataError('E_IO', `tar listed ${marks.length} of the ${dirs.length} directories of ${upper} it was given`);
  }
  return new Set(dirs.filter((_d, i) => marks[i] === true));
}

function tarHeaders(upper: string, list: Buffer): Promise<Buffer> {
  const args = [
    '--create',
    '--file=-',
    '--format=posix',
    '--xattrs',
    '--xattrs-include=trusted.overlay.opaque',
    '--no-recursion',
    '--null',
    '--verbatim-files-from',
    '--files-from=-',
  ];
  return new Promise((resolve, reject) => {
    const child = execFile('tar', args, { cwd: upper, encoding: 'buffer', maxBuffer: 1 << 30 }, (error, stdout) => {
      if (error) reject(error);
      else resolve(stdout);
    });
    child.stdin?.end(list);
  });
}

/** For each archived entry in order, whether a PAX record gave it `trusted.overlay.opaque=y`. */
export function opaqueMarks(archive: Uint8Array): boolean[] {
  const out: boolean[] = [];
  let pending = false;
  for (let off = 0; off + 512 <= archive.length; ) {
    const header = archive.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const size = Number.parseInt(Buffer.from(header.subarray(124, 136)).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const data = archive.subarray(off + 512, off + 512 + size);
    if (type === 'x') pending = paxRecords(data).get('SCHILY.xattr.trusted.overlay.opaque') === 'y';
    else if (type !== 'g') {
      out.push(pending);
      pending = false;
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

function paxRecords(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const text = Buffer.from(data).toString('latin1');
  for (let at = 0; at < text.length; ) {
    const space = text.indexOf(' ', at);
    const length = Number.parseInt(text.slice(at, space), 10);
    if (space < 0 || !(length > 0)) break;
    const record = text.slice(space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return out;
}

function processMessage(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  const text = Buffer.isBuffer(stderr) ? stderr.toString('utf8') : typeof stderr === 'string' ? stderr : '';
  return text.trim() !== '' ? text.trim() : error instanceof Error ? error.message : String(error);
}
