/**
 * The busybox base of the RUN tests (see busybox-base.ts) made in-process, straight into a store:
 * for tests that build many times through the library and need no registry. `extra` entries are
 * added to the same layer (replacing an entry of the same path), so two bases can differ by one file.
 */
import { readFile } from 'node:fs/promises';
import { appendLayer, emptyImage, updateContainerConfig, type Image, type LocalStore, type Platform } from '../../src/internals.js';
import { writeLayer, type LayerEntry } from '../../src/layer/index.js';
import { BUSYBOX, GROUP, PASSWD, busyboxApplets } from './busybox-base.js';

const MTIME = 1_700_000_000;

/**
 * `applets` limits the /bin symlinks to those named (a RUN test that needs a few tools unpacks a
 * base of a dozen entries instead of four hundred).
 */
export async function busyboxImage(store: LocalStore, platform: Platform, extra: readonly LayerEntry[] = [], applets?: readonly string[]): Promise<Image> {
  const all = [...new Set(await busyboxApplets())].sort();
  const names = applets === undefined ? all : all.filter((a) => applets.includes(a));
  const file = (path: string, data: Buffer | string, mode = 0o644, uid = 0, gid = 0): LayerEntry => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    return { path, type: 'file', mode, size: bytes.byteLength, mtime: MTIME, uid, gid, data: bytes };
  };
  const dir = (path: string, mode = 0o755, uid = 0, gid = 0): LayerEntry => ({ path, type: 'dir', mode, size: 0, mtime: MTIME, uid, gid });
  const entries: LayerEntry[] = [
    dir('bin'),
    file('bin/busybox', await readFile(BUSYBOX), 0o755),
    ...names.map((a): LayerEntry => ({ path: `bin/${a}`, type: 'symlink', mode: 0o777, size: 0, mtime: MTIME, uid: 0, gid: 0, linkTarget: 'busybox' })),
    dir('etc'),
    file('etc/group', GROUP),
    file('etc/passwd', PASSWD),
    dir('home'),
    dir('home/app', 0o755, 1000, 1000),
    dir('root', 0o700),
    dir('tmp', 0o1777),
  ].filter((e) => !extra.some((x) => x.path === e.path));
  entries.push(...extra);
  const layer = await writeLayer(entries, { sourceDateEpoch: MTIME, compression: 'gzip', mediaTypeFamily: 'oci', ownership: 'keep' }, store.blobs);
  const image = appendLayer(
    emptyImage(platform),
    { descriptor: layer.descriptor, diffId: layer.diffId },
    { created: '2023-11-14T22:13:20Z', created_by: 'busybox' },
  );
  return updateContainerConfig(image, (c) => ({ ...c, Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] }));
}
