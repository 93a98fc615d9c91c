import { readFileSync } from 'node:fs';

/** Capability numbers from linux/capability.h that decide what a root strata can do with files and ids. */
const CAP = { CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, SETGID: 6, SETUID: 7, SYS_ADMIN: 21 } as const;

/** The effective capability set of this process (from /proc/self/status), or undefined off Linux. */
export function effectiveCapabilities(status?: string): bigint | undefined {
  let text = status;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return undefined;
    }
  }
  const line = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  return line === null ? undefined : BigInt(`0x${line[1]}`);
}

function has(caps: bigint, cap: number): boolean {
  return (caps & (1n << BigInt(cap))) !== 0n;
}

/**
 * Whether this process is a root that can set owners and switch ids: uid 0 with CAP_CHOWN, CAP_DAC_OVERRIDE,
 * CAP_FOWNER, CAP_SETUID and CAP_SETGID. uid 0 in a container started with `--cap-drop ALL` (or under
 * `setpriv --bounding-set -all`) is not: it cannot chown, and files it does not own are closed to it.
 */
export function isCapableRoot(status?: string): boolean {
  if (typeof process.geteuid !== 'function' || process.geteuid() !== 0) return false;
  const caps = effectiveCapabilities(status);
  // Without /proc there is nothing to read: trust uid 0, as before.
  if (caps === undefined) return true;
  return [CAP.CHOWN, CAP.DAC_OVERRIDE, CAP.FOWNER, CAP.SETUID, CAP.SETGID].every((cap) => has(caps, cap));
}

/** Whether the process holds CAP_SYS_ADMIN (mount, unshare, pivot_root), which chroot and runc need. */
export function hasSysAdmin(status?: string): boolean {
  const caps = effectiveCapabilities(status);
  return caps === undefined ? true : has(caps, CAP.SYS_ADMIN);
}
