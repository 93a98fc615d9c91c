import { readFileSync } from 'node:fs';
import { decodeName } from './names.js';

export interface MountEntry {
  /** Where it is mounted, as strata names paths (mountinfo's octal escapes undone, bytes that are not UTF-8 kept). */
  point: string;
  fstype: string;
  source: string;
}

/**
 * The mounts of this mount namespace, from /proc/self/mountinfo (or the given text; empty where there is none).
 * The kernel writes names as raw bytes with space, tab, newline and backslash as octal escapes.
 */
export function mountTable(mountinfo?: Buffer | string): MountEntry[] {
  let bytes: Buffer;
  if (mountinfo === undefined) {
    try {
      bytes = readFileSync('/proc/self/mountinfo');
    } catch {
      return [];
    }
  } else {
    bytes = Buffer.isBuffer(mountinfo) ? mountinfo : Buffer.from(mountinfo, 'utf8');
  }
  // latin1 maps each byte to one char, so the escapes can be undone before the bytes are named.
  const name = (field: string): string =>
    decodeName(
      Buffer.from(
        field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))),
        'latin1',
      ),
    );
  const out: MountEntry[] = [];
  for (const line of bytes.toString('latin1').split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (fields.length < 5 || dash < 0) continue;
    out.push({ point: name(fields[4] ?? ''), fstype: fields[dash + 1] ?? '', source: name(fields[dash + 2] ?? '') });
  }
  return out;
}
