/**
 * ADD <git> and git build contexts with the built CLI against real git servers on loopback: `git daemon`
 * (git://) and `git http-backend` (smart HTTP) requiring a token. Fragments (#branch, #tag:subdir,
 * #commit), --keep-git-dir, modes from git and mtimes from the commit, the cache (same commit replays,
 * a new commit rebuilds), a missing ref in one line, GIT_AUTH_TOKEN[.<host>] sent and never shown, a git
 * context with its .dockerignore and -f inside it, and --build-context NAME=<git URL>.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, ok, strata, type CliResult } from '../helpers/cli.js';
import { git, makeRepo, startGitDaemon, startGitHttp, type GitServer } from '../helpers/git-server.js';
import { layoutConfig, tarEntries } from '../helpers/image-read.js';
import { describeWithTools } from '../helpers/tools.js';

const DATE1 = '2024-01-02T03:04:05Z';
const DATE2 = '2024-02-03T04:05:06Z';
const TOKEN = 'ghp_T0kenThatMustNeverShow';

describeWithTools(['git'], 'ADD <git> and git contexts', () => {
  let tmp: string;
  let daemon: GitServer;
  let http: GitServer;
  let commit: Awaited<ReturnType<typeof makeRepo>>;
  let first: string;
  let n = 0;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json && node scripts/bundle-cli.mjs\``);
    tmp = await mkdtemp(join(tmpdir(), 'strata-remote-git-'));
    const repos = join(tmp, 'repos');
    commit = await makeRepo(join(repos, 'app.git'));
    first = await commit(
      {
        'README.md': 'readme\n',
        'bin/run.sh': { content: '#!/bin/sh\necho run\n', mode: 0o755 },
        'sub/inner.txt': 'inner\n',
        'ctx/Dockerfile': 'FROM scratch\nCOPY . /from-git/\n',
        'ctx/alt.Dockerfile': 'FROM scratch\nCOPY kept.txt /alt.txt\n',
        'ctx/kept.txt': 'kept\n',
        'ctx/ignored.txt': 'ignored\n',
        'ctx/.dockerignore': 'ignored.txt\n',
      },
      DATE1,
    );
    await git(join(repos, 'app.git'), ['tag', 'v1']);
    await git(join(repos, 'app.git'), ['symbolic-ref', 'HEAD', 'refs/heads/main']);
    daemon = await startGitDaemon(repos);
    http = await startGitHttp(repos, { token: TOKEN });
  });
  afterAll(async () => {
    await daemon?.stop();
    await http?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function project(dockerfile: string): Promise<string> {
    const dir = join(tmp, `ctx-${++n}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    return dir;
  }
  const build = (store: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
    strata(['build', '--progress', 'plain', '-t', 'remote-git:1', ...args], { STRATA_ROOT: store, HOME: join(tmp, 'home'), ...env });
  const states = (stderr: string): string[] => stderr.split('\n').flatMap((l) => /^#\d+\/\d+ \[[^\]]*\] .* {2}(CACHED|DONE) /.exec(l)?.slice(1) ?? []);

  it('checks out #branch, #tag:subdir and #commit with git modes, commit mtimes, root owners and no .git', async () => {
    const ctx = await project(
      [
        'FROM scratch',
        `ADD ${daemon.url}/app.git#main /src`,
        `ADD ${daemon.url}/app.git#v1:sub /only-sub/`,
        `ADD ${daemon.url}/app.git#${first} /pinned`,
        `ADD --keep-git-dir ${daemon.url}/app.git /kept`,
        '',
      ].join('\n'),
    );
    const out = join(tmp, `rootfs-${n}.tar`);
    ok(await build(join(tmp, `store-${n}`), [ctx, '-o', `type=tar,dest=${out}`]));
    const e = await tarEntries(out);
    const t = Date.parse(DATE1) / 1000;
    expect([e.get('src/README.md')?.mode, e.get('src/README.md')?.mtime, e.get('src/README.md')?.uid]).toEqual([0o644, t, 0]);
    expect(e.get('src/bin/run.sh')?.mode).toBe(0o755);
    expect(e.has('src/.git')).toBe(false);
    expect(e.get('only-sub/inner.txt')?.content.toString()).toBe('inner\n');
    expect(e.has('only-sub/README.md')).toBe(false);
    expect(e.get('pinned/sub/inner.txt')?.content.toString()).toBe('inner\n');
    expect(e.has('kept/.git/HEAD')).toBe(true);
    expect(e.get('kept/.git/config')?.content.toString()).toContain(`${daemon.url}/app.git`);
  });

  it('replays an unchanged ref and rebuilds the step (and what follows) for a new commit', async () => {
    const ctx = await project(['FROM scratch', `ADD ${daemon.url}/app.git#main:sub /s/`, 'ADD <<EOF /after', 'x', 'EOF', ''].join('\n'));
    const store = join(tmp, `store-${n}`);
    ok(await build(store, [ctx]));
    expect(states((await build(store, [ctx])).stderr)).toEqual(['CACHED', 'CACHED']);
    await commit({ 'sub/inner.txt': 'changed\n' }, DATE2);
    expect(states((await build(store, [ctx])).stderr)).toEqual(['DONE', 'DONE']);
    expect(states((await build(store, [ctx])).stderr)).toEqual(['CACHED', 'CACHED']);
  });

  it('ADD --checksum=<commit> pins the commit the ref must be at', async () => {
    const good = await project(['FROM scratch', `ADD --checksum=${first} ${daemon.url}/app.git#v1 /p/`, ''].join('\n'));
    ok(await build(join(tmp, `store-${n}`), [good]));
    const wrong = '0123456789abcdef0123456789abcdef01234567';
    const bad = await project(['FROM scratch', `ADD --checksum=${wrong} ${daemon.url}/app.git#v1 /p/`, ''].join('\n'));
    const res = await build(join(tmp, `store-${n}`), [bad]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`ADD failed: ${daemon.url}/app.git#v1 is at commit ${first}, but --checksum expects ${wrong}`);
  });

  it('names the ref that does not exist, in one line, and exits non-zero', async () => {
    const ctx = await project(['FROM scratch', `ADD ${daemon.url}/app.git#no-such-branch /x`, ''].join('\n'));
    const res = await build(join(tmp, `store-${n}`), [ctx]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(
      new RegExp(`Dockerfile:2: ADD failed: git fetch no-such-branch of ${daemon.url}/app.git#no-such-branch failed: .*no-such-branch`),
    );
    const unreachable = await project(['FROM scratch', 'ADD git://127.0.0.1:9/app.git /x', ''].join('\n'));
    const res2 = await build(join(tmp, `store-${n}`), [unreachable]);
    expect(res2.code).not.toBe(0);
    expect(res2.stderr).toContain('git fetch HEAD of git://127.0.0.1:9/app.git failed');
  });

  it('sends GIT_AUTH_TOKEN (or GIT_AUTH_TOKEN.<host>, or GIT_AUTH_HEADER) over smart HTTP and never shows it', async () => {
    const ctx = await project(['FROM scratch', `ADD ${http.url}/app.git#main:sub /s/`, ''].join('\n'));
    const refused = await build(join(tmp, `store-${n}`), [ctx]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`of ${http.url}/app.git#main failed`);
    const layout = join(tmp, `layout-${n}`);
    const good = await build(join(tmp, `store-${n}`), [ctx, '--secret', 'id=GIT_AUTH_TOKEN,env=TOKEN', '-o', `type=oci,dest=${layout},tar=false`], { TOKEN });
    ok(good);
    // A rebuild whose ref names the same commit asks the remote for its refs and fetches nothing.
    const uploads = (): number => http.requests.filter((r) => r.path.endsWith('/git-upload-pack')).length;
    const before = uploads();
    const again = await build(join(tmp, `store-${n}`), [ctx, '--secret', 'id=GIT_AUTH_TOKEN,env=TOKEN'], { TOKEN });
    expect(states(again.stderr)).toEqual(['CACHED']);
    expect(uploads() - before).toBe(1);
    const hostScoped = await build(join(tmp, `store-h${n}`), [ctx, '--secret', 'id=GIT_AUTH_TOKEN.127.0.0.1,env=TOKEN'], { TOKEN });
    ok(hostScoped);
    const encoded = Buffer.from(`x-access-token:${TOKEN}`).toString('base64');
    const header = await build(join(tmp, `store-hd${n}`), [ctx, '--secret', 'id=GIT_AUTH_HEADER,env=HEADER'], { HEADER: `Basic ${encoded}` });
    ok(header);
    expect(http.requests.some((r) => r.status === 200 && r.authorization !== undefined)).toBe(true);
    const config = await layoutConfig(layout);
    for (const text of [refused.stderr, good.stderr, good.stdout, again.stderr, hostScoped.stderr, header.stderr, config.text]) {
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(encoded);
    }
  });

  it('builds a git context: its subdirectory, its .dockerignore, and -f inside it', async () => {
    const out = join(tmp, `rootfs-${++n}.tar`);
    ok(await build(join(tmp, `store-${n}`), [`${daemon.url}/app.git#main:ctx`, '-o', `type=tar,dest=${out}`]));
    const e = await tarEntries(out);
    expect(e.get('from-git/kept.txt')?.content.toString()).toBe('kept\n');
    expect(e.has('from-git/ignored.txt')).toBe(false);
    const alt = join(tmp, `rootfs-alt-${n}.tar`);
    ok(await build(join(tmp, `store-${n}`), [`${daemon.url}/app.git#main:ctx`, '-f', 'alt.Dockerfile', '-o', `type=tar,dest=${alt}`]));
    expect((await tarEntries(alt)).get('alt.txt')?.content.toString()).toBe('kept\n');
  });

  it('takes --build-context NAME=<git URL>', async () => {
    const ctx = await project(['FROM scratch', 'COPY --from=repo inner.txt /named.txt', ''].join('\n'));
    const out = join(tmp, `rootfs-${n}.tar`);
    ok(await build(join(tmp, `store-${n}`), [ctx, '--build-context', `repo=${daemon.url}/app.git#v1:sub`, '-o', `type=tar,dest=${out}`]));
    expect((await tarEntries(out)).get('named.txt')?.content.toString()).toBe('inner\n');
  });
});
