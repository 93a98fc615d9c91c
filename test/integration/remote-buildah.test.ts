/**
 * Remote sources judged against buildah (1.28, vfs, chroot): the same Dockerfiles with `ADD <url>`
 * (names, 0600, --chown/--chmod, Last-Modified mtime) and `ADD --checksum`, and a git context, built by
 * both from a loopback HTTP server and a loopback `git daemon`; both images unpacked by umoci and their
 * root filesystems compared (paths, types, modes, owners, contents, link targets; mtimes where both set
 * them). buildah 1.28 has no `ADD <git>` (it reads the URL as a context path): strata's
 * `ADD <git>#main /src/` is compared with buildah's build of the git context whose Dockerfile is
 * `COPY . /src/`, which places the same checkout. Differences are written in docs/buildah-differences.md.
 *
 * Needs the built CLI, root (umoci keeps owners), buildah, umoci and git.
 */
import { lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeOwnedTree, treeDifferences, type OwnedEntry } from '../helpers/busybox-base.js';
import { BuildahRunner } from '../helpers/buildah.js';
import { ok, strata, tool } from '../helpers/cli.js';
import { startFileServer, type FileServer } from '../helpers/file-server.js';
import { git, makeRepo, startGitDaemon, type GitServer } from '../helpers/git-server.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';
import { umociUnpack } from '../helpers/umoci.js';
import { digestOf } from '../../src/internals.js';

const LAST_MODIFIED = 'Tue, 14 Nov 2023 22:13:20 GMT';

describeAsRoot('remote sources against buildah', () => {
  describeWithTools(['buildah', 'umoci', 'git'], 'same Dockerfiles, same trees', () => {
    let tmp: string;
    let srv: FileServer;
    let daemon: GitServer;
    let buildah: BuildahRunner;
    let n = 0;

    beforeAll(async () => {
      tmp = await mkdtemp(join(tmpdir(), 'strata-remote-buildah-'));
      srv = await startFileServer();
      srv.routes.set('/pkg/tool.sh', { body: '#!/bin/sh\necho tool\n', lastModified: LAST_MODIFIED });
      srv.routes.set('/pkg/data.json', { body: '{"a":1}\n', lastModified: LAST_MODIFIED });
      const repos = join(tmp, 'repos');
      const commit = await makeRepo(join(repos, 'app.git'));
      await commit(
        {
          Dockerfile: 'FROM scratch\nCOPY . /src/\n',
          '.dockerignore': '.git\n',
          'README.md': 'readme\n',
          'bin/run.sh': { content: '#!/bin/sh\necho run\n', mode: 0o755 },
          'lib/deep/x.txt': 'x\n',
        },
        '2024-01-02T03:04:05Z',
      );
      await git(join(repos, 'app.git'), ['symbolic-ref', 'HEAD', 'refs/heads/main']);
      daemon = await startGitDaemon(repos);
      buildah = new BuildahRunner(join(tmp, 'buildah'));
    });
    afterAll(async () => {
      await buildah?.cleanup();
      await srv?.stop();
      await daemon?.stop();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    async function ours(args: string[]): Promise<string> {
      const layout = join(tmp, `strata-${++n}`);
      ok(await strata(['build', '--progress', 'quiet', '-o', `type=oci,dest=${layout},tar=false`, ...args], { STRATA_ROOT: join(tmp, 'store'), HOME: tmp }));
      return umociUnpack(layout, 'latest', `${layout}-bundle`);
    }
    async function theirs(context: string): Promise<string> {
      const name = `b${++n}`;
      // A URL context has no local Dockerfile to name: buildah finds it in what it cloned.
      const res = context.includes('://')
        ? await tool('buildah', [
            ...buildah.globalArgs,
            'bud',
            '--isolation',
            'chroot',
            '--layers=false',
            '--format',
            'docker',
            '-t',
            `localhost/${name}:latest`,
            context,
          ])
        : await buildah.bud(context, name);
      if (res.code !== 0) throw new Error(`buildah bud failed:\n${res.stderr}`);
      const layout = join(tmp, `buildah-${n}`);
      await buildah.pushOci(name, layout);
      return umociUnpack(layout, 'latest', `${layout}-bundle`);
    }
    async function context(dockerfile: string): Promise<string> {
      const dir = join(tmp, `ctx-${++n}`);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'Dockerfile'), dockerfile);
      return dir;
    }
    const mtime = async (root: string, path: string): Promise<number> => Math.floor((await lstat(join(root, path))).mtimeMs / 1000);

    it('ADD <url>: file and directory destinations, --chown/--chmod, 0600 and the Last-Modified mtime', async () => {
      const ctx = await context(
        [
          'FROM scratch',
          `ADD ${srv.url}/pkg/tool.sh /opt/`,
          `ADD ${srv.url}/pkg/data.json /etc/data.json`,
          `ADD --chown=1000:1000 --chmod=755 ${srv.url}/pkg/tool.sh /usr/local/bin/tool`,
          '',
        ].join('\n'),
      );
      const a = await ours([ctx]);
      const b = await theirs(ctx);
      const treeA = await describeOwnedTree(a);
      expect(treeDifferences(treeA, await describeOwnedTree(b))).toEqual([]);
      expect((treeA['opt/tool.sh'] as OwnedEntry).mode).toBe(0o600);
      for (const p of ['opt/tool.sh', 'etc/data.json', 'usr/local/bin/tool']) expect([p, await mtime(a, p)]).toEqual([p, await mtime(b, p)]);
      expect(await mtime(a, 'opt/tool.sh')).toBe(Date.parse(LAST_MODIFIED) / 1000);
    });

    it('ADD --checksum: the same file when it matches (buildah 1.28 has no --checksum: it builds the line without it)', async () => {
      const sum = digestOf('#!/bin/sh\necho tool\n');
      const ctx = await context(['FROM scratch', `ADD --checksum=${sum} ${srv.url}/pkg/tool.sh /tool`, ''].join('\n'));
      const plain = await context(['FROM scratch', `ADD ${srv.url}/pkg/tool.sh /tool`, ''].join('\n'));
      const a = await ours([ctx]);
      const b = await theirs(plain);
      expect(treeDifferences(await describeOwnedTree(a), await describeOwnedTree(b))).toEqual([]);
    });

    it('a git context, and ADD <git> placing the same checkout', async () => {
      const url = `${daemon.url}/app.git`;
      const b = await theirs(url);
      const viaContext = await ours([`${url}#main`]);
      const viaAdd = await ours([await context(['FROM scratch', `ADD ${url}#main /src/`, ''].join('\n'))]);
      const treeB = await describeOwnedTree(b);
      expect(treeDifferences(await describeOwnedTree(viaContext), treeB)).toEqual([]);
      // ADD <git> keeps the whole checkout; the context's .dockerignore (.git) is no concern of ADD.
      expect(treeDifferences(await describeOwnedTree(viaAdd), treeB)).toEqual([]);
    });
  });
});
