/**
 * Never a wrong hit (issue 18): 30 Dockerfile variants, each changing one input of the one before
 * (a source file, a mode, an owner name resolved through /etc/passwd, a WORKDIR, an ARG the RUN
 * reads, the base digest, a cache-mount id, a secret's presence, …). Each is built in a store that
 * has built every variant before it, and in a cold store: the two images must be byte-identical
 * (same manifest digest). A replayed step that should have missed shows as a difference.
 *
 * The warm builds read one context directory changed in place (as a CI checkout is), so stale
 * stat-cache answers would show too; the cold builds read a fresh copy of it. Root (chroot executor).
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalStore, chrootExecutor, type Image } from '../../src/internals.js';
import { writeTar } from '../helpers/busybox-base.js';
import { busyboxImage } from '../helpers/busybox-image.js';
import { AMD64, libraryBuild, manifestDigest, type LibraryBuildOptions } from '../helpers/library-build.js';
import { describeAsRoot } from '../helpers/tools.js';

const execFileP = promisify(execFile);

interface Spec {
  base: string;
  files: Record<string, string>;
  modes: Record<string, number>;
  /** Files whose mtime moves without a change of content. */
  touched: number;
  link: string;
  dockerignore: string;
  chown: string;
  chmod: string;
  exclude: string;
  copyLink: boolean;
  dest: string;
  workdir: string;
  arg: string;
  env: string;
  label: string;
  user: string;
  cacheId: string;
  secret: boolean;
  inline: string;
  tarMember: string;
  stage: string;
  shell: string;
  cmd: string;
  network: string;
  epoch: number;
}

const INITIAL: Spec = {
  base: 'busybox',
  files: { 'src/a.txt': 'alpha\n', 'src/b.txt': 'beta\n', 'src/readme.md': '# r\n', 'bind.txt': 'bound\n' },
  modes: {},
  touched: 0,
  link: 'a.txt',
  dockerignore: '',
  chown: '',
  chmod: '',
  exclude: '',
  copyLink: false,
  dest: '/srv/',
  workdir: '/work',
  arg: 'one',
  env: 'production',
  label: 'r1',
  user: 'root',
  cacheId: 'c1',
  secret: true,
  inline: 'inline one',
  tarMember: 'member one',
  stage: 'built one',
  shell: '["/bin/sh", "-c"]',
  cmd: '["sh"]',
  network: 'none',
  epoch: 1_700_000_000,
};

/** Each variant changes one input of the one before it. */
const CHANGES: Array<[string, (s: Spec) => Spec]> = [
  ['a source file', (s) => ({ ...s, files: { ...s.files, 'src/a.txt': 'alpha two\n' } })],
  ['a source mode', (s) => ({ ...s, modes: { ...s.modes, 'src/a.txt': 0o755 } })],
  ['an mtime only (same content)', (s) => ({ ...s, touched: s.touched + 1 })],
  ['a file added', (s) => ({ ...s, files: { ...s.files, 'src/new.txt': 'new\n' } })],
  ['the file removed again', (s) => ({ ...s, files: Object.fromEntries(Object.entries(s.files).filter(([k]) => k !== 'src/new.txt')) })],
  ['a symlink target', (s) => ({ ...s, link: 'b.txt' })],
  ['.dockerignore', (s) => ({ ...s, dockerignore: 'src/b.txt\n' })],
  ['--chown by name', (s) => ({ ...s, chown: 'app' })],
  ['the owner name resolved through /etc/passwd (base)', (s) => ({ ...s, base: 'busybox-uid1001' })],
  ['--chown by number', (s) => ({ ...s, chown: '1000:1000' })],
  ['--chmod', (s) => ({ ...s, chmod: '0600' })],
  ['--exclude', (s) => ({ ...s, exclude: '*.md' })],
  ['--link', (s) => ({ ...s, copyLink: true })],
  ['the destination (relative to WORKDIR)', (s) => ({ ...s, dest: 'app/' })],
  ['WORKDIR', (s) => ({ ...s, workdir: '/work2' })],
  ['an ARG the RUN reads', (s) => ({ ...s, arg: 'two' })],
  ['an ENV the RUN reads', (s) => ({ ...s, env: 'development' })],
  ['a LABEL', (s) => ({ ...s, label: 'r2' })],
  ['USER', (s) => ({ ...s, user: 'app' })],
  ['a cache-mount id', (s) => ({ ...s, cacheId: 'c2' })],
  ["a secret's presence", (s) => ({ ...s, secret: false })],
  ['a bind-mount source', (s) => ({ ...s, files: { ...s.files, 'bind.txt': 'bound two\n' } })],
  ['a heredoc COPY', (s) => ({ ...s, inline: 'inline two' })],
  ['an ADDed archive member', (s) => ({ ...s, tarMember: 'member two' })],
  ['a COPY --from stage', (s) => ({ ...s, stage: 'built two' })],
  ['the base digest', (s) => ({ ...s, base: 'busybox-extra' })],
  ['SHELL', (s) => ({ ...s, shell: '["/bin/sh", "-ec"]' })],
  ['CMD', (s) => ({ ...s, cmd: '["sh", "-l"]' })],
  ['RUN --network', (s) => ({ ...s, network: 'host' })],
  ['SOURCE_DATE_EPOCH', (s) => ({ ...s, epoch: 1_700_000_500 })],
];

/** Inputs the step keys must hold that leave this image as it was (the RUN does not show them). */
const SAME_IMAGE = new Set(['a cache-mount id', 'RUN --network']);

function dockerfile(s: Spec): string {
  const flags = [
    s.chown ? `--chown=${s.chown}` : '',
    s.chmod ? `--chmod=${s.chmod}` : '',
    s.exclude ? `--exclude=${s.exclude}` : '',
    s.copyLink ? '--link' : '',
  ]
    .filter(Boolean)
    .join(' ');
  return [
    'FROM scratch AS builder',
    `COPY <<EOF /built\n${s.stage}\nEOF`,
    `FROM ${s.base}`,
    'ARG V',
    `LABEL rev=${s.label}`,
    `ENV APPENV=${s.env}`,
    `SHELL ${s.shell}`,
    `WORKDIR ${s.workdir}`,
    `COPY ${flags} src/ ${s.dest}`,
    'COPY <<EOF /inline.txt',
    s.inline,
    'EOF',
    'ADD files.tar /unpacked/',
    'COPY --from=builder /built /built',
    `USER ${s.user}`,
    `RUN --network=${s.network} --mount=type=cache,id=${s.cacheId},target=/cache --mount=type=secret,id=tok --mount=type=bind,source=bind.txt,target=/m ` +
      `{ echo "$V $APPENV"; id -u; pwd; cat /m; ls /run/secrets 2>/dev/null || true; ls -ln ${s.dest}; } > /tmp/run.txt`,
    `CMD ${s.cmd}`,
    '',
  ].join('\n');
}

let work: string;
let baseStore: LocalStore;
const bases = new Map<string, Image>();
/** What the RUN steps use: a base of a dozen entries unpacks in a moment. */
const APPLETS = ['sh', 'echo', 'id', 'pwd', 'cat', 'ls', 'true'];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-cache-diff-'));
  await chmod(work, 0o755);
  baseStore = await LocalStore.open(join(work, 'bases'));
  bases.set('busybox', await busyboxImage(baseStore, AMD64, [], APPLETS));
  const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001:app:/home/app:/bin/sh\n';
  const group = 'root:x:0:\napp:x:1001:\n';
  bases.set(
    'busybox-uid1001',
    await busyboxImage(
      baseStore,
      AMD64,
      [
        { path: 'etc/passwd', type: 'file', mode: 0o644, size: passwd.length, mtime: 1_700_000_000, uid: 0, gid: 0, data: Buffer.from(passwd) },
        { path: 'etc/group', type: 'file', mode: 0o644, size: group.length, mtime: 1_700_000_000, uid: 0, gid: 0, data: Buffer.from(group) },
      ],
      APPLETS,
    ),
  );
  bases.set(
    'busybox-extra',
    await busyboxImage(
      baseStore,
      AMD64,
      [{ path: 'extra', type: 'file', mode: 0o644, size: 1, mtime: 1_700_000_000, uid: 0, gid: 0, data: Buffer.from('x') }],
      APPLETS,
    ),
  );
  await writeFile(join(work, 'secret'), 'not in any image\n');
}, 60_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** Brings `dir` to the spec, writing only what differs (so unchanged files keep their stat data). */
async function syncContext(dir: string, s: Spec, previous: Spec | undefined): Promise<void> {
  await mkdir(join(dir, 'src'), { recursive: true });
  for (const [path, content] of Object.entries(s.files)) {
    const at = join(dir, path);
    if ((await readFile(at, 'utf8').catch(() => undefined)) !== content) await writeFile(at, content);
    await chmod(at, s.modes[path] ?? 0o644);
  }
  for (const path of Object.keys(previous?.files ?? {})) if (!(path in s.files)) await unlink(join(dir, path));
  if (previous?.link !== s.link) {
    await unlink(join(dir, 'src', 'link')).catch(() => undefined);
    await symlink(s.link, join(dir, 'src', 'link'));
  }
  if (previous?.touched !== s.touched) await utimes(join(dir, 'src', 'b.txt'), 1_600_000_000 + s.touched, 1_600_000_000 + s.touched);
  await writeFile(join(dir, '.dockerignore'), s.dockerignore);
  if (previous?.tarMember !== s.tarMember) {
    await writeTar(join(dir, 'files.tar'), [{ name: 'member.txt', type: 'file', mode: 0o644, content: Buffer.from(`${s.tarMember}\n`) }]);
  }
}

describeAsRoot('never a wrong hit', () => {
  it('30 variants, each built warm (after the one before) and cold, give byte-identical images', async () => {
    const warmStore = await LocalStore.open(join(work, 'warm'));
    const warmContext = join(work, 'ctx');
    const options = (store: LocalStore, contextDir: string): LibraryBuildOptions => ({
      store,
      bases,
      baseReader: baseStore.blobs,
      executor: chrootExecutor(),
      contextDir,
      scratchDir: work,
    });
    const build = (o: LibraryBuildOptions, s: Spec) =>
      libraryBuild(o, dockerfile(s), {
        buildArgs: { V: s.arg },
        sourceDateEpoch: s.epoch,
        network: 'none',
        ...(s.secret ? { secrets: { tok: join(work, 'secret') } } : {}),
      });
    let spec = INITIAL;
    await syncContext(warmContext, spec, undefined);
    await build(options(warmStore, warmContext), spec);
    const mismatches: string[] = [];
    const unchanged: string[] = [];
    let previousDigest = '';
    let cachedSteps = 0;
    for (const [i, [what, change]] of CHANGES.entries()) {
      const previous = spec;
      spec = change(spec);
      await syncContext(warmContext, spec, previous);
      const coldContext = join(work, `ctx-cold-${i}`);
      await execFileP('cp', ['-a', warmContext, coldContext]);
      // Independent builds: the cold one runs beside the warm one.
      const [warm, cold] = await Promise.all([
        build(options(warmStore, warmContext), spec),
        build(options(await LocalStore.open(join(work, `cold-${i}`)), coldContext), spec),
      ]);
      cachedSteps += warm.steps.cached;
      expect(cold.steps.cached).toBe(0);
      if (manifestDigest(warm.image) !== manifestDigest(cold.image)) {
        mismatches.push(`variant ${i + 1} (${what}): warm ${manifestDigest(warm.image)} (${warm.states.join(',')}) != cold ${manifestDigest(cold.image)}`);
      }
      const digest = manifestDigest(cold.image);
      if (digest === previousDigest && !SAME_IMAGE.has(what)) unchanged.push(`variant ${i + 1} (${what}) gave the image of the one before`);
      previousDigest = digest;
      await rm(join(work, `cold-${i}`), { recursive: true, force: true });
      await rm(coldContext, { recursive: true, force: true });
    }
    expect(mismatches).toEqual([]);
    // Every other change changed the image (or the test would prove nothing), and the warm builds did hit.
    expect(unchanged).toEqual([]);
    expect(cachedSteps).toBeGreaterThan(CHANGES.length);
  }, 300_000);
});
