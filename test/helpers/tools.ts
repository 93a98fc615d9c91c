import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it } from 'vitest';

/** Debian package that ships each external tool the tests use, so a failure can say what to install. */
const APT_PACKAGES: Record<string, string> = {
  'docker-registry': 'docker-registry',
  skopeo: 'skopeo',
  umoci: 'umoci',
  htpasswd: 'apache2-utils',
  buildah: 'buildah',
  openssl: 'openssl',
  bwrap: 'bubblewrap',
  runc: 'runc',
  crun: 'crun',
  tar: 'tar',
  git: 'git',
  sshd: 'openssh-server',
  'ssh-agent': 'openssh-client',
  'ssh-keygen': 'openssh-client',
};

export type ToolCheck = { ok: true; path: string } | { ok: false; reason: string };

export function aptPackageFor(name: string): string {
  return APT_PACKAGES[name] ?? name;
}

/** Finds `name` on `PATH` (of the given env, default this process's) as an executable file. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = (env['PATH'] ?? '').split(delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

export function requireTool(name: string): ToolCheck {
  const path = findOnPath(name);
  if (path !== undefined) return { ok: true, path };
  const gate = toolGate([name], process.env, () => false);
  return { ok: false, reason: gate.run ? '' : gate.reason };
}

/** The reasons the given tools are unusable, one per missing tool; empty when all are there. */
export function missingTools(names: string[]): string[] {
  const reasons: string[] = [];
  for (const name of names) {
    const check = requireTool(name);
    if (!check.ok) reasons.push(check.reason);
  }
  return reasons;
}

export function isCI(): boolean {
  return process.env['CI'] === 'true';
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** What to do with a test that needs `names`: run it, skip it, or fail it (CI=true). */
export type ToolGate = { run: true } | { run: false; fail: boolean; reason: string };

export function toolGate(
  names: string[],
  env: NodeJS.ProcessEnv = process.env,
  find: (name: string) => boolean = (name) => findOnPath(name, env) !== undefined,
): ToolGate {
  const reasons = names
    .filter((name) => !find(name))
    .map((name) => `external tool '${name}' is not on PATH (install the Debian package '${aptPackageFor(name)}': apt-get install ${aptPackageFor(name)})`);
  if (reasons.length === 0) return { run: true };
  return { run: false, fail: env['CI'] === 'true', reason: reasons.join('; ') };
}

/**
 * A `describe` block that needs external tools. When one is missing it fails under CI=true (a
 * missing tool there is a broken CI image, never something to skip silently) and is skipped
 * elsewhere, with the reason in the title and on stderr.
 */
export function describeWithTools(names: string[], title: string, fn: () => void, env: NodeJS.ProcessEnv = process.env): void {
  const gate = toolGate(names, env);
  if (gate.run) {
    describe(title, fn);
    return;
  }
  if (gate.fail) {
    describe(title, () => {
      it('has the external tools it needs', () => {
        throw new Error(`CI=true and a required tool is missing: ${gate.reason}`);
      });
    });
    return;
  }
  process.stderr.write(`[skip] ${title}: ${gate.reason}\n`);
  describe.skip(`${title} [skipped: ${gate.reason}]`, fn);
}

/** Like `it`, for a single test that needs external tools; same CI rule as describeWithTools. */
export function itIfTools(names: string[], title: string, fn: () => Promise<void> | void, timeout?: number): void {
  const gate = toolGate(names);
  if (gate.run) {
    it(title, fn, timeout);
    return;
  }
  if (gate.fail) {
    it(title, () => {
      throw new Error(`CI=true and a required tool is missing: ${gate.reason}`);
    });
    return;
  }
  process.stderr.write(`[skip] ${title}: ${gate.reason}\n`);
  it.skip(`${title} [skipped: ${gate.reason}]`, fn);
}

/** For a test that needs root (e.g. chroot or mknod): same CI rule as a missing tool. */
export function describeAsRoot(title: string, fn: () => void): void {
  if (isRoot()) {
    describe(title, fn);
    return;
  }
  const reason = 'needs to run as root';
  if (isCI()) {
    describe(title, () => {
      it('runs as root', () => {
        throw new Error(`CI=true and the tests are not running as root: ${title} ${reason}`);
      });
    });
    return;
  }
  process.stderr.write(`[skip] ${title}: ${reason}\n`);
  describe.skip(`${title} [skipped: ${reason}]`, fn);
}

/**
 * Executors whose refusal to run comes from the host's kernel setup, not from a missing install:
 * crun refuses hosts with hybrid cgroups (this CI machine's kind), which no install fixes, and runc
 * covers the same OCI-runtime path. They skip with their reason even under CI=true.
 */
export const HOST_LIMITED_EXECUTORS: ReadonlySet<string> = new Set(['crun']);

/**
 * For a test that needs `executor` when it may not run here (`reason` says why): skips with the
 * reason on stderr, or fails under CI=true unless the executor is host-limited.
 */
export function needExecutor(ctx: { skip: () => void }, executor: string, reason: string | undefined): void {
  if (reason === undefined) return;
  if (isCI() && !HOST_LIMITED_EXECUTORS.has(executor)) throw new Error(`CI=true and --executor ${executor} cannot run here: ${reason}`);
  process.stderr.write(`[skip] --executor ${executor}: ${reason}\n`);
  ctx.skip();
}

/** Like `it`, for one test that needs root: same CI rule as describeAsRoot. */
export function itAsRoot(title: string, fn: () => Promise<void> | void, timeout?: number): void {
  if (isRoot()) {
    it(title, fn, timeout);
    return;
  }
  if (isCI()) {
    it(title, () => {
      throw new Error(`CI=true and the tests are not running as root: ${title} needs root`);
    });
    return;
  }
  process.stderr.write(`[skip] ${title}: needs to run as root\n`);
  it.skip(`${title} [skipped: needs to run as root]`, fn);
}
