/**
 * A private buildah (1.28, vfs storage, chroot isolation, no layer cache) as the reference builder
 * for `strata build`: build a context, read the image's raw docker config, write it to an OCI
 * layout for umoci, push it to a loopback registry.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function runTool(cmd: string, args: readonly string[], timeout = 120_000): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await execFileP(cmd, [...args], { maxBuffer: 64 * 1024 * 1024, timeout, env: { ...process.env, BUILDAH_ISOLATION: 'chroot' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string; message?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message ?? '' };
  }
}

export interface BudOptions {
  /** Dockerfile path; default CONTEXT/Dockerfile. */
  file?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  /**
   * `docker` (default): buildah keeps Healthcheck, Shell and OnBuild only in docker-format configs;
   * `oci` drops them (and ignores SHELL).
   */
  format?: 'docker' | 'oci';
}

export class BuildahRunner {
  constructor(readonly dir: string) {}

  get globalArgs(): string[] {
    return ['--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'runroot'), '--storage-driver', 'vfs'];
  }

  private policyFile: Promise<string> | undefined;

  /** Written once: concurrent builds must never read a half-written policy. */
  private policy(): Promise<string> {
    this.policyFile ??= (async () => {
      const path = join(this.dir, 'policy.json');
      await mkdir(this.dir, { recursive: true });
      await writeFile(path, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
      return path;
    })();
    return this.policyFile;
  }

  /** `buildah bud --isolation chroot --layers=false` of `context`, tagged `localhost/NAME:latest`. */
  async bud(context: string, name: string, options: BudOptions = {}): Promise<ToolResult> {
    return runTool('buildah', [
      ...this.globalArgs,
      'bud',
      '--isolation',
      'chroot',
      '--layers=false',
      '--format',
      options.format ?? 'docker',
      '--tls-verify=false',
      '--signature-policy',
      await this.policy(),
      ...Object.entries(options.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
      ...(options.target !== undefined ? ['--target', options.target] : []),
      '-t',
      `localhost/${name}:latest`,
      '-f',
      options.file ?? join(context, 'Dockerfile'),
      context,
    ]);
  }

  /** The image's config as buildah stored it (docker format keeps Healthcheck, Shell, OnBuild). */
  async config(name: string): Promise<Record<string, unknown>> {
    const res = await runTool('buildah', [...this.globalArgs, 'inspect', '--type', 'image', `localhost/${name}:latest`]);
    if (res.code !== 0) throw new Error(`buildah inspect ${name} failed:\n${res.stderr}`);
    const info = JSON.parse(res.stdout) as { Config?: string; Docker?: unknown; OCIv1?: unknown };
    // `Config` is the raw config blob of the image's own format; the parsed fields are conversions.
    if (typeof info.Config === 'string' && info.Config !== '') return JSON.parse(info.Config) as Record<string, unknown>;
    return info.Docker as Record<string, unknown>;
  }

  /** Writes `localhost/NAME` to the OCI layout `dir`, tagged `tag`. */
  async pushOci(name: string, dir: string, tag = 'latest'): Promise<void> {
    const res = await runTool('buildah', [
      ...this.globalArgs,
      'push',
      '--format',
      'oci',
      '--signature-policy',
      await this.policy(),
      `localhost/${name}:latest`,
      `oci:${dir}:${tag}`,
    ]);
    if (res.code !== 0) throw new Error(`buildah push ${name} to oci:${dir} failed:\n${res.stderr}`);
  }

  /** Pushes `localhost/NAME` to a plain-HTTP registry reference `host/repo:tag` in docker format. */
  async pushRegistry(name: string, ref: string): Promise<void> {
    const res = await runTool('buildah', [
      ...this.globalArgs,
      'push',
      '--format',
      'v2s2',
      '--tls-verify=false',
      '--signature-policy',
      await this.policy(),
      `localhost/${name}:latest`,
      `docker://${ref}`,
    ]);
    if (res.code !== 0) throw new Error(`buildah push ${name} to ${ref} failed:\n${res.stderr}`);
  }

  async cleanup(): Promise<void> {
    await runTool('buildah', [...this.globalArgs, 'rmi', '--all', '--force']);
    await rm(this.dir, { recursive: true, force: true });
  }
}
