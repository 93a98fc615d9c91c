import { createHash, randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';

/**
 * The V8 code cache of the bundled CLI (see main.ts): per user, one file per bundle, Node release and
 * command. It is advisory: every failure to find, read or write one means "no cache", never an error.
 *
 * A cache file is code the process will run, so one that another user could have written or put
 * there (the file or its directory not ours, or group/world-writable) is never read. V8 checks little
 * of what it is given (a flipped byte in the payload crashes the process), so each file carries the
 * digest of the bundle it was made from and of its own payload, both checked before V8 sees it.
 */

/** The commands that get a cache of their own; any other first word (or none: --version, --help) is "other". */
export const CACHED_COMMANDS: readonly string[] = ['build', 'append', 'inspect', 'images', 'rmi', 'tag', 'copy', 'parse', 'pull', 'push', 'login', 'logout'];

/** Files kept in the directory: enough for several strata builds and Node releases, each with a few commands. */
const KEEP_FILES = 24;
const SUFFIX = '.v8cache';
const MAGIC = Buffer.from('strata-v8cache1\n', 'latin1');
const DIGEST_BYTES = 32;
/** 16 + 32 + 32: a multiple of 8, so the payload stays aligned for V8. */
const HEADER_BYTES = MAGIC.length + 2 * DIGEST_BYTES;
/** Bigger than any cache a CLI of a few MB makes; a bigger file is not ours. */
const MAX_FILE_BYTES = 256 * 1024 * 1024;

export interface Runtime {
  /** process.version */
  version: string;
  /** process.arch */
  arch: string;
  /** Node's own options for this run: process.execArgv, then NODE_OPTIONS (see `runtimeFlags`). */
  flags?: readonly string[] | undefined;
}

/**
 * The options a run of Node was started with, from the command line and NODE_OPTIONS. V8 refuses a
 * code cache made under other flags (a heap size, --cpu-prof), so each set of flags keeps a cache of
 * its own; otherwise runs that alternate would reject and rewrite the one cache every time.
 */
export function runtimeFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const fromEnv = nodeOptions?.trim();
  return fromEnv ? [...execArgv, fromEnv] : [...execArgv];
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/**
 * The command a run is for: the first word of argv that is not an option, when it is a known command.
 * A run for help or the version is "other": it would leave its command a cache of little more than
 * the option parser, and a cache that V8 accepts is never replaced.
 */
export function commandOf(argv: readonly string[]): string {
  if (argv.some((arg) => arg === '--help' || arg === '-h' || arg === '--version')) return 'other';
  const word = argv.find((arg) => !arg.startsWith('-'));
  return word !== undefined && CACHED_COMMANDS.includes(word) ? word : 'other';
}

/**
 * `$XDG_CACHE_HOME/strata/code-cache`, else `$HOME/.cache/strata/code-cache`; none when
 * `STRATA_CODE_CACHE=off` or there is no absolute home (a relative one would put the cache, and
 * code to run, wherever the command is started).
 */
export function codeCacheDir(env: NodeJS.ProcessEnv): string | undefined {
  if (env.STRATA_CODE_CACHE === 'off') return undefined;
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'strata', 'code-cache');
  let home: string | undefined;
  try {
    home = env.HOME ?? homedir();
  } catch {
    return undefined;
  }
  return home && isAbsolute(home) ? join(home, '.cache', 'strata', 'code-cache') : undefined;
}

/** The file for one bundle (by digest), Node release, architecture, set of Node options and command. */
export function codeCacheFile(dir: string, bundleDigest: Uint8Array, runtime: Runtime, command: string): string {
  const bundle = Buffer.from(bundleDigest).toString('hex').slice(0, 16);
  const node = `node${runtime.version.replace(/^v/, '')}-${runtime.arch}`;
  const flags = runtime.flags?.length ? `-f${sha256(Buffer.from(JSON.stringify(runtime.flags))).toString('hex').slice(0, 8)}` : '';
  return join(dir, `${bundle}-${node}${flags}-${command}${SUFFIX}`);
}

/** Owned by `uid` and writable by no one else. */
function isPrivate(stat: Stats, uid: number): boolean {
  return stat.uid === uid && (stat.mode & 0o022) === 0;
}

/**
 * The cached data in `file` for the bundle with `bundleDigest`, or undefined when there is none or it
 * cannot be trusted: not a regular file, it or its directory not owned by `uid` or writable by group
 * or others, made for another bundle, or not matching its own digest.
 */
export function readCodeCache(file: string, bundleDigest: Uint8Array, uid: number | undefined): Buffer | undefined {
  if (uid === undefined) return undefined;
  let fd: number;
  try {
    const dir = lstatSync(dirname(file));
    if (!dir.isDirectory() || !isPrivate(dir, uid)) return undefined;
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || !isPrivate(stat, uid)) return undefined;
    if (stat.size <= HEADER_BYTES || stat.size > MAX_FILE_BYTES) return undefined;
    const data = readFileSync(fd);
    if (!data.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    if (!data.subarray(MAGIC.length, MAGIC.length + DIGEST_BYTES).equals(bundleDigest)) return undefined;
    const payload = data.subarray(HEADER_BYTES);
    if (!data.subarray(MAGIC.length + DIGEST_BYTES, HEADER_BYTES).equals(sha256(payload))) return undefined;
    return payload;
  } catch {
    return undefined;
  } finally {
    try {
      closeSync(fd);
    } catch {
      // nothing to do
    }
  }
}

/**
 * Runs this long or longer leave no cache. V8 drops the bytecode of functions a run has not used for a few
 * major GCs, so the cache of a long run (a cold build: a second of layer writing and five mark-compacts)
 * misses the start-up code every run needs. A fully cached build then took 176 ms from such a cache, 153 ms
 * from a short run's. A long run gains little from a cache anyway.
 */
export const LONGEST_RUN_TO_CACHE_MS = 1000;

/** Whether a run that ended with `exitCode` after `runMs` leaves its code cache (see main.ts). */
export function leavesCodeCache(exitCode: number, runMs: number): boolean {
  // Only a success: a failure (often a usage error) ran little more than the option parser.
  return exitCode === 0 && runMs < LONGEST_RUN_TO_CACHE_MS;
}

/**
 * Writes `makeData()` as the cache in `file` for the bundle with `bundleDigest`: the directory made
 * 0700, a private temp file renamed into place (readers see a whole file or none), then all but the
 * newest files of the directory removed, so caches of old builds do not pile up. Never throws.
 */
export function writeCodeCache(file: string, bundleDigest: Uint8Array, makeData: () => Buffer): void {
  let temp: string | undefined;
  try {
    const dir = dirname(file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Before the payload, which costs milliseconds to make: a read-only home would pay them every run.
    accessSync(dir, constants.W_OK);
    const payload = makeData();
    if (payload.length === 0) return;
    temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(temp, Buffer.concat([MAGIC, bundleDigest, sha256(payload), payload]), { mode: 0o600, flag: 'wx' });
    renameSync(temp, file);
    temp = undefined;
    pruneCodeCaches(dir);
  } catch {
    if (temp !== undefined) {
      try {
        unlinkSync(temp);
      } catch {
        // advisory: a leftover temp file is pruned by a later write
      }
    }
  }
}

function pruneCodeCaches(dir: string): void {
  const files: Array<{ path: string; mtimeMs: number }> = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(SUFFIX) && !(name.includes(SUFFIX) && name.endsWith('.tmp'))) continue;
    const path = join(dir, name);
    try {
      files.push({ path, mtimeMs: statSync(path).mtimeMs });
    } catch {
      // removed by another process meanwhile
    }
  }
  files.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const { path } of files.slice(KEEP_FILES)) {
    try {
      unlinkSync(path);
    } catch {
      // another process removed it, or it is not ours to remove
    }
  }
}
