import { accessSync, constants, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { StrataError } from '../errors/index.js';
import { DEFAULT_PATH } from '../oci/index.js';
import { runProcess, shellQuote } from './process.js';
import type { RunRequest } from './types.js';

/** How a step run with no sandbox gets a network of its own: the command line to put before it, or why not. */
export type NetworkIsolation = { ok: true; prefix: string[] } | { ok: false; reason: string };

/**
 * The user namespace a step may get its network namespace in, where CAP_SYS_ADMIN is missing: `unmapped` (no id
 * mapping: works for any uid, root with no capabilities too; the step sees itself as nobody, which proot's faked
 * ids hide) or `root` (the invoking uid is root inside, as a root step expects; mapping uid 0 of the parent needs
 * CAP_SETFCAP there, so a root with no capabilities cannot). Short flags: util-linux and busybox both take them.
 */
export type UsernsMapping = 'unmapped' | 'root' | 'none';

const USERNS_FLAGS: Record<Exclude<UsernsMapping, 'none'>, string[]> = { unmapped: ['-U', '-n'], root: ['-r', '-n'] };

/**
 * Tries how this process can give a step a network namespace of its own (lo only, as docker's `none`): `unshare
 * -n` (CAP_SYS_ADMIN), then `unshare` with a user namespace (`userns`; `none` where a capable root keeps real owners
 * on disk, which a namespace mapping one uid would turn into nobody's). Every `unshare` on the PATH is tried: the
 * inplace executor finds the image's, or the host's with its libraries gone. Loopback is brought up with `ip`
 * where one runs and the namespace allows it.
 */
export async function networkIsolation(userns: UsernsMapping): Promise<NetworkIsolation> {
  const probe = await firstThatRuns('true', []);
  const unshares = onPath('unshare');
  if (probe === undefined || unshares.length === 0) return { ok: false, reason: 'unshare is not installed (util-linux)' };
  const ways = [['-n'], ...(userns === 'none' ? [] : [USERNS_FLAGS[userns]])];
  const failures = new Map<string, string>();
  for (const flags of ways) {
    for (const bin of unshares) {
      const result = await runProcess(bin, [...flags, '--', probe], { env: { PATH: DEFAULT_PATH } }).catch((error: unknown) => ({
        exitCode: -1,
        tail: [error instanceof Error ? error.message : String(error)],
      }));
      if (result.exitCode === 0) return { ok: true, prefix: [bin, ...flags, '--', ...(await loopbackUp())] };
      // The reason of an unshare that ran beats a spawn error (a host binary whose libraries an image replaced).
      const ran = result.exitCode !== -1;
      if (ran || !failures.has(flags.join(' '))) failures.set(flags.join(' '), failure(result.tail, result.exitCode));
      if (ran) break;
    }
  }
  const tried = [...failures].map(([flags, why]) => `unshare ${flags}: ${why}`).join('; ');
  const needs =
    userns === 'none'
      ? 'CAP_SYS_ADMIN (a root that sets owners cannot use a user namespace here)'
      : userns === 'root'
        ? 'CAP_SYS_ADMIN, or user namespaces and a uid other than a root with no capabilities'
        : 'CAP_SYS_ADMIN or user namespaces';
  return { ok: false, reason: `no network namespace can be made here (${tried}); it needs ${needs}` };
}

/** What an unshare that failed said, in words a user can act on. */
function failure(tail: readonly string[], exitCode: number): string {
  const said = (tail.find((line) => line.trim() !== '')?.trim() ?? `exit code ${exitCode}`).replace(/^unshare: /, '');
  // The kernel's answer to a user namespace where their limit is 0 (user.max_user_namespaces, bwrap --disable-userns).
  return /No space left on device/.test(said) ? `${said} (user namespaces are switched off)` : said;
}

/** The one-line refusal of a step that asks for no network where it cannot be taken away. */
export function networkRefused(executor: string, request: RunRequest, reason: string): StrataError {
  return new StrataError('E_RUN_UNSUPPORTED', `${request.where}: the ${executor} executor cannot take the network away from this step: ${reason}`, {
    hint: 'use --network host for this build, or an executor with namespaces (bwrap, runc, chroot) where they are allowed',
  });
}

/** `sh -c 'ip link set lo up; exec "$@"'` before the command, when both run here; else nothing. */
async function loopbackUp(): Promise<string[]> {
  const sh = await firstThatRuns('sh', ['-c', ':']);
  const ip = sh === undefined ? undefined : await firstThatRuns('ip', ['link', 'show', 'lo']);
  if (sh === undefined || ip === undefined) return [];
  return [sh, '-c', `${shellQuote(ip)} link set lo up 2>/dev/null; exec "$@"`, 'strata-netns'];
}

/** The first `name` on the standard PATH that runs (exit 0) with `args`. */
async function firstThatRuns(name: string, args: readonly string[]): Promise<string | undefined> {
  for (const bin of onPath(name)) {
    const result = await runProcess(bin, args, { env: { PATH: DEFAULT_PATH } }).catch(() => undefined);
    if (result?.exitCode === 0) return bin;
  }
  return undefined;
}

/** Every executable `name` on the standard PATH, each real file once (/bin and /usr/bin are often one). */
function onPath(name: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const dir of DEFAULT_PATH.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    let real: string;
    try {
      accessSync(candidate, constants.X_OK);
      real = realpathSync(candidate);
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(candidate);
  }
  return out;
}
