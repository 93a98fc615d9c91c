import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { errnoCode } from '../errors/index.js';

/**
 * Who owns a lock, a lease or a temp file: a process id plus what makes it unique over time and
 * space. The start time (from /proc) tells a live owner from a later process that got the same pid;
 * the realm (host name and pid namespace) tells whether the pid can be judged from here at all: CI
 * jobs in two containers may share a store volume, and pid 57 in one says nothing about the other.
 */
export interface ProcessOwner {
  pid: number;
  /** The process start time in clock ticks since boot, '' where /proc cannot say. */
  start: string;
  /** A short hash of host name and pid namespace. */
  realm: string;
}

/** Start time of `pid` (field 22 of /proc/PID/stat), or undefined when there is no such live process or no /proc. */
export function processStart(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may hold spaces or ')': split after the last one.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // A zombie (killed, not yet reaped by its parent) has ended: it holds nothing any more.
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return '';
  }
}

let self: ProcessOwner | undefined;

/** This process, as an owner (a constant of the process, computed once). */
export function currentOwner(): ProcessOwner {
  return (self ??= {
    pid: process.pid,
    start: processStart(process.pid) ?? '',
    realm: createHash('sha256').update(`${hostname()}\0${pidNamespace()}`).digest('hex').slice(0, 8),
  });
}

/**
 * Whether `owner` may still be running. Owners from another realm cannot be judged and count as
 * alive; callers that must not wait forever on them fall back on age.
 */
export function ownerAlive(owner: ProcessOwner, self: ProcessOwner): boolean {
  if (owner.realm !== self.realm) return true;
  if (owner.pid === self.pid) return owner.start === self.start;
  try {
    process.kill(owner.pid, 0);
  } catch (cause) {
    if (errnoCode(cause) === 'ESRCH') return false;
  }
  const start = processStart(owner.pid);
  if (start === undefined) return owner.start === '';
  return owner.start === '' || start === owner.start;
}

/** An owner as a file-name part: `<pid>.<start>.<realm>` (only digits, dots and hex). */
export function ownerTag(owner: ProcessOwner): string {
  return `${owner.pid}.${owner.start || '0'}.${owner.realm}`;
}

const TAG = /(?:^|[-_])(\d+)\.(\d+)\.([0-9a-f]{8})(?:[-_.]|$)/;

/** The owner a file name carries (see ownerTag), or undefined for names of older strata versions. */
export function ownerFromName(name: string): ProcessOwner | undefined {
  const m = TAG.exec(name);
  if (!m) return undefined;
  return { pid: Number(m[1]), start: m[2] === '0' ? '' : m[2]!, realm: m[3]! };
}
