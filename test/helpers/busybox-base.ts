/**
 * The base image of the RUN tests, made from Debian's busybox-static: `/bin/busybox` with a symlink
 * for every applet it lists, `/etc/passwd` and `/etc/group` (root and `app` 1000:1000), `/tmp` 1777,
 * `/root` and `/home/app` owned by 1000. The layer is written as a tarball by hand (tar-stream), so
 * owners are exact whoever runs the test, then turned into an image by `strata append` and pushed
 * to a loopback registry, where strata and buildah can both pull it.
 *
 * Also the small tools the RUN tests share: umoci unpacking of an OCI layout and a tree description
 * with owners, for comparing what two builders produced.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { pack } from 'tar-stream';
import { strata } from './cli.js';
import { walkTree } from './tree.js';

const execFileP = promisify(execFile);

export const BUSYBOX = '/bin/busybox';

export const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n';
export const GROUP = 'root:x:0:\napp:x:1000:\n';

interface TarEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  uid?: number;
  gid?: number;
  content?: Buffer;
  linkname?: string;
}

export async function busyboxApplets(): Promise<string[]> {
  const { stdout } = await execFileP(BUSYBOX, ['--list']);
  return stdout
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'busybox' && !s.includes('/'));
}

/** Writes a tarball of the given entries (in order) to `path`. */
export async function writeTar(path: string, entries: readonly TarEntry[]): Promise<void> {
  const p = pack();
  const done = pipeline(p, createWriteStream(path));
  const mtime = new Date(1_700_000_000_000);
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type,
      mode: e.mode,
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime,
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (e.type === 'file') p.entry(header, e.content ?? Buffer.alloc(0), cb);
      else p.entry(header, cb);
    });
  }
  p.finalize();
  await done;
}

/** The entries of the busybox root filesystem, parents first. */
export async function busyboxEntries(): Promise<TarEntry[]> {
  const applets = await busyboxApplets();
  const entries: TarEntry[] = [
    { name: 'bin', type: 'directory', mode: 0o755 },
    { name: 'bin/busybox', type: 'file', mode: 0o755, content: await readFile(BUSYBOX) },
    ...[...new Set(applets)].sort().map((a): TarEntry => ({ name: `bin/${a}`, type: 'symlink', mode: 0o777, linkname: 'busybox' })),
    { name: 'etc', type: 'directory', mode: 0o755 },
    { name: 'etc/group', type: 'file', mode: 0o644, content: Buffer.from(GROUP) },
    { name: 'etc/passwd', type: 'file', mode: 0o644, content: Buffer.from(PASSWD) },
    { name: 'home', type: 'directory', mode: 0o755 },
    { name: 'home/app', type: 'directory', mode: 0o755, uid: 1000, gid: 1000 },
    { name: 'root', type: 'directory', mode: 0o700 },
    { name: 'tmp', type: 'directory', mode: 0o1777 },
  ];
  return entries;
}

export interface BusyboxBase {
  /** `127.0.0.1:PORT/busybox:test` (no transport prefix): FROM line and buildah pull. */
  ref: string;
}

/**
 * Builds the busybox base with `strata append` and pushes it to `registryHost` as `REPO:TAG`.
 * `extraLayers` are more tarballs stacked on top (hostile-base tests).
 */
export async function pushBusyboxBase(
  registryHost: string,
  options: { repo?: string; tag?: string; extraLayers?: readonly string[]; env?: Record<string, string> } = {},
): Promise<BusyboxBase> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-busybox-'));
  try {
    const tar = join(dir, 'rootfs.tar');
    await writeTar(tar, await busyboxEntries());
    const ref = `${registryHost}/${options.repo ?? 'busybox'}:${options.tag ?? 'test'}`;
    const layers = [tar, ...(options.extraLayers ?? [])].flatMap((l) => ['--layer', l]);
    const res = await strata(
      [
        'append',
        ...layers,
        '--platform',
        'linux/amd64',
        '--set-env',
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        '--set-cmd',
        '["sh"]',
        '-o',
        `docker://${ref}`,
        '--progress',
        'quiet',
      ],
      { STRATA_ROOT: join(dir, 'store'), SOURCE_DATE_EPOCH: '1700000000', ...(options.env ?? {}) },
    );
    if (res.code !== 0) throw new Error(`strata append of the busybox base failed (${res.code}):\n${res.stderr}`);
    return { ref };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface OwnedEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  /** Small files as text, others as size and sha256, so a failed comparison stays readable. */
  content?: string;
  target?: string;
  /** Sorted paths of the same inode (hard links), when more than one. */
  links?: string[];
}

function contentOf(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  if (bytes.byteLength <= 256 && Buffer.from(text, 'utf8').equals(bytes)) return text;
  return `${bytes.byteLength} bytes sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Paths, types, modes, owners, contents, link targets and hard-link groups of a tree. */
export function describeOwnedTree(root: string): Promise<Record<string, OwnedEntry>> {
  return walkTree<OwnedEntry>(root, async (abs, info) => {
    const base = { mode: info.mode & 0o7777, uid: info.uid, gid: info.gid };
    if (info.isDirectory()) return { type: 'dir', ...base };
    if (info.isSymbolicLink()) return { type: 'symlink', ...base, mode: 0, target: await readlink(abs) };
    if (info.isFile()) return { type: 'file', ...base, content: contentOf(await readFile(abs)) };
    return { type: 'other', ...base };
  });
}

/** `umoci unpack` (as root, so owners are kept) of `layoutDir:tag` into `bundle`; returns the rootfs. */
export async function umociUnpack(layoutDir: string, tag: string, bundle: string): Promise<string> {
  await execFileP('umoci', ['unpack', '--image', `${layoutDir}:${tag}`, bundle], { maxBuffer: 16 * 1024 * 1024 });
  return join(bundle, 'rootfs');
}

/** Paths buildah (1.28, --isolation chroot) leaves in the image that no RUN wrote: docs/buildah-differences.md. */
export const BUILDAH_RUN_LEAKS: readonly string[] = ['dev', 'proc', 'sys', 'run', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf'];

/** Differences between two described trees, one line per path, empty when equal. */
export function treeDifferences(ours: Record<string, OwnedEntry>, theirs: Record<string, OwnedEntry>, names = ['strata', 'buildah']): string[] {
  const out: string[] = [];
  for (const path of [...new Set([...Object.keys(ours), ...Object.keys(theirs)])].sort()) {
    const a = ours[path];
    const b = theirs[path];
    if (JSON.stringify(a) !== JSON.stringify(b))
      out.push(`${path}: ${names[0]} ${JSON.stringify(a) ?? 'absent'} / ${names[1]} ${JSON.stringify(b) ?? 'absent'}`);
  }
  return out;
}

export interface ToolRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function runTool(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv, timeout = 120_000): Promise<ToolRun> {
  try {
    const { stdout, stderr } = await execFileP(cmd, [...args], { maxBuffer: 64 * 1024 * 1024, timeout, ...(env ? { env } : {}) });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string; message?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message ?? '' };
  }
}

/** A private buildah (vfs storage, chroot isolation) under `dir`, with an accept-anything policy. */
export class Buildah {
  constructor(readonly dir: string) {}

  private get global(): string[] {
    return ['--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'runroot'), '--storage-driver', 'vfs'];
  }

  private async policy(): Promise<string> {
    const path = join(this.dir, 'policy.json');
    await mkdir(this.dir, { recursive: true });
    await writeFile(path, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    return path;
  }

  /** `buildah bud --isolation chroot` of `context` tagged `localhost/NAME`; throws with buildah's output on failure. */
  async bud(context: string, name: string, options: { buildArgs?: Record<string, string>; extra?: readonly string[] } = {}): Promise<ToolRun> {
    const args = [
      // --format docker: with OCI format buildah 1.28 ignores SHELL (with a warning).
      ...this.global,
      'bud',
      '--isolation',
      'chroot',
      '--format',
      'docker',
      '--tls-verify=false',
      '--signature-policy',
      await this.policy(),
      ...Object.entries(options.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
      ...(options.extra ?? []),
      '-t',
      `localhost/${name}`,
      '-f',
      join(context, 'Dockerfile'),
      context,
    ];
    return runTool('buildah', args, { ...process.env, BUILDAH_ISOLATION: 'chroot' });
  }

  /** Writes `localhost/NAME` to an OCI layout `dir` tagged `latest`. */
  async pushOci(name: string, dir: string): Promise<void> {
    const res = await runTool('buildah', [
      ...this.global,
      'push',
      '--format',
      'oci',
      '--signature-policy',
      await this.policy(),
      `localhost/${name}`,
      `oci:${dir}:latest`,
    ]);
    if (res.code !== 0) throw new Error(`buildah push ${name} failed:\n${res.stderr}`);
  }

  async cleanup(): Promise<void> {
    await runTool('buildah', [...this.global, 'rm', '--all']);
    await runTool('buildah', [...this.global, 'rmi', '--all', '--force']);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Whether strata can use `--executor NAME` here, by strata's own check: a build with that executor
 * fails before any step with "executor NAME cannot run here" (E_RUN_UNSUPPORTED). Undefined when
 * it can run, else strata's reason.
 */
export async function executorUnsupported(name: string, scratchDir: string): Promise<string | undefined> {
  const ctx = join(scratchDir, `probe-${name}`);
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nLABEL probe=1\n');
  const res = await strata(['build', ctx, '--executor', name, '--progress', 'quiet', '-o', `type=oci,dest=${join(ctx, 'out')},tar=false`], {
    STRATA_ROOT: join(ctx, 'store'),
  });
  if (res.code === 0) return undefined;
  if (res.stderr.includes(`executor ${name} cannot run here`)) return res.stderr.trim();
  throw new Error(`probing --executor ${name} failed in an unexpected way (${res.code}):\n${res.stderr}`);
}
