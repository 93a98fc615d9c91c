import {
  chmodSync,
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrataError, errnoCode } from '../errors/index.js';
import { RUN_EXCLUDES, resolveInRootSync as resolveSync, type RootPathLookup as PathLookup } from '../layer/index.js';
import type { RunMount, RunRequest } from './types.js';

/** Where a secret mount goes when it names no target, as buildx does. */
export function secretTarget(id: string): string {
  return `/run/secrets/${id}`;
}

/** A mount point inside the rootfs, resolved the way the sandboxed process would see it. */
export interface MountPoint {
  /** Symlink-free path inside the container, `/a/b`. */
  containerPath: string;
  /** The same place on the host: always below the rootfs. */
  hostPath: string;
}

/**
 * Mount points an executor made in the rootfs for a step, so they can be removed after it: a mount over a path
 * that did not exist would otherwise leave an empty file or directory in the layer.
 */
export class MountStubs {
  private readonly created: Array<{ path: string; dir: boolean }> = [];

  constructor(
    readonly rootfs: string,
    readonly where: string,
  ) {}

  /**
   * Resolves `target` inside the rootfs (symlinks, absolute ones included, stay inside it: a hostile image cannot
   * point a mount at the host) and makes the missing mount point, a directory or an empty file.
   */
  prepare(target: string, kind: 'dir' | 'file'): MountPoint {
    const lookup = (rel: string): PathLookup => {
      try {
        const st = lstatSync(join(this.rootfs, rel));
        if (st.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(join(this.rootfs, rel)) };
        return st.isDirectory() ? { kind: 'dir' } : { kind: 'other' };
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') return { kind: 'missing' };
        throw error;
      }
    };
    const outcome = resolveSync(target, { followFinal: true }, lookup);
    if (!outcome.ok) {
      throw new StrataError(
        'E_RUN_FAILED',
        `${this.where}: cannot mount at ${target}: ${outcome.reason === 'loop' ? 'too many symlinks' : `/${outcome.at} is not a directory`}`,
        {
          hint: 'choose a mount target that is a directory (or file) path in the image',
        },
      );
    }
    const parts = outcome.path.split('/').filter((p) => p !== '');
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      const host = join(this.rootfs, rel);
      const found = lookup(rel);
      const last = i === parts.length;
      if (found.kind === 'missing') {
        if (!last || kind === 'dir') mkdirSync(host, { mode: 0o755 });
        else closeSync(openSync(host, 'wx', 0o644));
        this.created.push({ path: host, dir: !last || kind === 'dir' });
      } else if (!last && found.kind !== 'dir') {
        throw new StrataError('E_RUN_FAILED', `${this.where}: cannot mount at ${target}: /${rel} is not a directory`);
      } else if (last && (found.kind === 'dir') !== (kind === 'dir')) {
        throw new StrataError(
          'E_RUN_FAILED',
          `${this.where}: cannot mount a ${kind === 'dir' ? 'directory' : 'file'} at ${target}: it is ${found.kind === 'dir' ? 'a directory' : 'not a directory'} in the image`,
        );
      }
    }
    return { containerPath: `/${outcome.path}`, hostPath: join(this.rootfs, outcome.path) };
  }

  /** Removes what prepare made, deepest first; a directory the step put something into stays (and is captured). */
  remove(): void {
    for (const { path, dir } of this.created.reverse()) {
      try {
        if (dir) {
          if (readdirSync(path).length === 0) rmdirSync(path);
        } else if (statSync(path).size === 0) {
          unlinkSync(path);
        }
      } catch {
        // already gone, or kept on purpose
      }
    }
    this.created.length = 0;
  }
}

/** Whether a mount is a single file (secret, ssh socket, a bind of a file) rather than a directory. */
export function mountKind(mount: RunMount): 'dir' | 'file' {
  if (mount.type === 'secret' || mount.type === 'ssh') return 'file';
  if (mount.type === 'bind' && mount.source !== undefined) {
    try {
      return statSync(mount.source).isDirectory() ? 'dir' : 'file';
    } catch {
      return 'dir';
    }
  }
  return 'dir';
}

/** Whether a mount is read-only: binds and secrets default to read-only, caches and tmpfs to read-write. */
export function mountReadonly(mount: RunMount): boolean {
  if (mount.readonly !== undefined) return mount.readonly;
  return mount.type === 'bind' || mount.type === 'secret' || mount.type === 'ssh';
}

export function checkMount(mount: RunMount, where: string): void {
  if (!mount.target.startsWith('/')) {
    throw new StrataError('E_RUN_FAILED', `${where}: mount target ${JSON.stringify(mount.target)} is not an absolute path`);
  }
  if (mount.type !== 'tmpfs' && mount.source === undefined) {
    throw new StrataError('E_RUN_FAILED', `${where}: the ${mount.type} mount at ${mount.target} has no source on the host`, {
      hint: 'the build engine resolves mount sources before running the step',
    });
  }
}

/**
 * The container paths to leave out of the step's captured changes: what every sandbox provides plus the mount
 * targets. Pass them to captureChanges.
 */
export function runCaptureExcludes(request: Pick<RunRequest, 'mounts'>): string[] {
  return [...RUN_EXCLUDES, ...request.mounts.map((m) => m.target)];
}

/** Files a sandbox gets at /etc/hosts and /etc/resolv.conf, made in a private temp dir. */
export interface NetworkFiles {
  /** The directory that holds them, removed by `dispose`. */
  dir: string;
  hosts: string;
  resolvConf: string;
  hostname: string;
  dispose(): Promise<void>;
}

export async function makeNetworkFiles(network: RunRequest['network']): Promise<NetworkFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-run-'));
  // Readable by a sandbox that runs as the step's (non-root) uid.
  chmodSync(dir, 0o755);
  const hosts = join(dir, 'hosts');
  const resolvConf = join(dir, 'resolv.conf');
  const hostname = join(dir, 'hostname');
  writeFileSync(hosts, '127.0.0.1\tlocalhost strata\n::1\tlocalhost ip6-localhost ip6-loopback\n', { mode: 0o644 });
  let resolv = '';
  if (network === 'host') {
    try {
      resolv = readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      resolv = '';
    }
  }
  writeFileSync(resolvConf, resolv, { mode: 0o644 });
  writeFileSync(hostname, 'strata\n', { mode: 0o644 });
  return { dir, hosts, resolvConf, hostname, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Makes the step's working directory when the image lacks it, as docker does; it is part of the step's changes.
 * Resolved inside the rootfs like a mount target.
 */
export function ensureWorkdir(rootfs: string, workdir: string, where: string): void {
  const stubs = new MountStubs(rootfs, where);
  stubs.prepare(workdir, 'dir');
}
