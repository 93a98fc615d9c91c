/**
 * A hostile base image cannot reach outside strata's private root when a RUN is built on it.
 * The images are made by hand (strata itself refuses to write them) and pushed with skopeo:
 *  - links: a layer with absolute symlinks (`/etc/evilroot -> /`, `/bad -> /etc`, and one to a
 *    host sentinel directory), then a layer that writes files through each of them;
 *  - dotdot: a layer with `../` entries, one aiming at the host sentinel directory.
 * With each executor the host's /etc and the sentinel directory must be unchanged; the build
 * either succeeds with the writes kept inside the private root, or fails naming the unsafe entry.
 *
 * Needs the built CLI (`make build`), root, docker-registry and skopeo.
 */
import { createHash } from 'node:crypto';
import { existsSync, type Dirent } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { busyboxEntries, executorUnsupported, writeTar } from '../helpers/busybox-base.js';
import { REPO_ROOT, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';
import { describeAsRoot, describeWithTools, needExecutor } from '../helpers/tools.js';

const EXECUTORS = ['chroot', 'bwrap', 'runc', 'crun'] as const;
/** Names of files the hostile layers and the RUN try to write; none may appear on the host. */
const PLANTED = ['strata-owned', 'through-root', 'through-link', 'dotdot', 'escaped-one-up', 'run-wrote', 'run-wrote-through-root'];

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Writes an OCI layout of the given tarballs (gzipped) as `DIR:latest`. */
async function writeLayout(dir: string, tars: readonly string[]): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (bytes: Buffer): Promise<{ digest: string; size: number }> => {
    const hex = sha256(bytes);
    await writeFile(join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.byteLength };
  };
  const layers = [];
  const diffIds = [];
  for (const tar of tars) {
    const raw = await readFile(tar);
    diffIds.push(`sha256:${sha256(raw)}`);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await put(gzipSync(raw))) });
  }
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(Buffer.from(JSON.stringify(config)))) };
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers };
  const manifestDesc = { mediaType: manifest.mediaType, ...(await put(Buffer.from(JSON.stringify(manifest)))) };
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifestDesc, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }),
  );
}

/** Names, types, link targets and content hashes of a tree (or only its top level). */
async function fingerprint(root: string, deep: boolean): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(join(root, rel))).sort();
    } catch {
      return; // unreadable (a private runtime dir): its name is still recorded by the parent
    }
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const info = await lstat(abs);
      const meta = `${info.mode.toString(8)} ${info.uid}:${info.gid}`;
      if (info.isSymbolicLink()) out[path] = `${meta} -> ${await readlink(abs)}`;
      else if (info.isFile()) out[path] = `${meta} ${info.size <= 4 * 1024 * 1024 ? sha256(await readFile(abs)) : `${info.size} bytes`}`;
      else if (info.isDirectory()) {
        out[path] = `${meta} dir`;
        if (deep) await walk(path);
      } else out[path] = `${meta} other`;
    }
  };
  await walk('');
  return out;
}

/** Paths under `dir` whose name is one of `names`. */
async function findNamed(dir: string, names: readonly string[]): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (path: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const abs = join(path, e.name);
      if (names.includes(e.name)) hits.push(abs);
      if (e.isDirectory()) await walk(abs);
    }
  };
  await walk(dir);
  return hits;
}

describeAsRoot('RUN on a hostile base image', () => {
  describeWithTools(['docker-registry', 'skopeo'], 'RUN on a hostile base image stays in the private root', () => {
    let registry: TestRegistry;
    let work: string;
    let sentinel: string;
    const refs: Record<string, string> = {};
    const unsupported = new Map<string, string | undefined>();

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'strata-run-hostile-'));
      await chmod(work, 0o755);
      sentinel = await mkdtemp(join(tmpdir(), 'strata-sentinel-'));
      await writeFile(join(sentinel, 'keep'), 'keep\n');
      const rel = sentinel.slice(1); // the sentinel's absolute path, as a relative path
      const entry = (name: string, content = 'owned\n') => ({ name, type: 'file' as const, mode: 0o644, content: Buffer.from(content) });
      const base = join(work, 'base.tar');
      await writeTar(base, await busyboxEntries());
      const links = join(work, 'links.tar');
      await writeTar(links, [
        { name: 'bad', type: 'symlink', mode: 0o777, linkname: '/etc' },
        { name: 'etc/evilroot', type: 'symlink', mode: 0o777, linkname: '/' },
        { name: 'sentinel-link', type: 'symlink', mode: 0o777, linkname: sentinel },
      ]);
      const through = join(work, 'through.tar');
      await writeTar(through, [entry('bad/strata-owned'), entry(`etc/evilroot/${rel}/through-root`), entry('sentinel-link/through-link')]);
      const dotdot = join(work, 'dotdot.tar');
      await writeTar(dotdot, [entry('../escaped-one-up'), entry(`${'../'.repeat(12)}${rel}/dotdot`), entry('ok-file', 'fine\n')]);

      registry = await startRegistry();
      for (const [name, tars] of Object.entries({ links: [base, links, through], dotdot: [base, dotdot] })) {
        const layout = join(work, `layout-${name}`);
        await writeLayout(layout, tars);
        refs[name] = `${registry.host}/hostile-${name}:test`;
        await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${refs[name]}`]);
      }
      await Promise.all(EXECUTORS.map(async (e) => unsupported.set(e, await executorUnsupported(e, work))));
    }, 120_000);

    afterAll(async () => {
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
      if (sentinel) await rm(sentinel, { recursive: true, force: true });
    });

    for (const executor of EXECUTORS) {
      for (const image of ['links', 'dotdot'] as const) {
        it(`--executor ${executor}, ${image} base: nothing outside the private root changes`, async (ctx) => {
          needExecutor(ctx, executor, unsupported.get(executor));
          const etcBefore = await fingerprint('/etc', false);
          const sentinelBefore = await fingerprint(sentinel, true);
          const layout = join(work, `out-${executor}-${image}`);
          const store = join(work, `store-${executor}-${image}`);
          const res = await strata(
            [
              'build',
              join(REPO_ROOT, 'testdata', 'run', 'hostile'),
              '--executor',
              executor,
              '--build-arg',
              `BASE=${refs[image]}`,
              '--no-cache',
              '--progress',
              'plain',
              '-o',
              `type=oci,dest=${layout},tar=false`,
            ],
            { STRATA_ROOT: store },
          );

          expect(await fingerprint('/etc', false)).toEqual(etcBefore);
          expect(await fingerprint(sentinel, true)).toEqual(sentinelBefore);
          for (const name of PLANTED) expect(existsSync(join('/etc', name)), `/etc/${name}`).toBe(false);
          expect(existsSync(join(tmpdir(), 'escaped-one-up'))).toBe(false);
          // A `../` entry may be clamped to the root it was unpacked into, never land beside it.
          for (const hit of await findNamed(work, ['escaped-one-up'])) expect(existsSync(join(dirname(hit), 'bin', 'busybox')), hit).toBe(true);

          if (res.code === 0) {
            // The writes went through the symlinks as resolved inside the root: into its own /etc.
            const blobs = join(layout, 'blobs', 'sha256');
            const layers = await Promise.all(
              (await readdir(blobs)).map(async (b) => {
                const bytes = await readFile(join(blobs, b));
                return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString('latin1') : '';
              }),
            );
            expect(layers.join('')).toContain('etc/run-wrote');
          } else {
            expect(res.stderr).toMatch(/unsafe|escapes|outside/i);
            expect(res.stderr).toMatch(image === 'links' ? /strata-owned|through-root|through-link|evilroot|bad/ : /escaped-one-up|dotdot|\.\./);
            expect(existsSync(layout)).toBe(false);
          }
        }, 120_000);
      }
    }
  });
});
