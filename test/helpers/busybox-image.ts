/**
 * The busybox base of the RUN tests (see busybox-base.ts) made in-process, straight into a store:
 * for tests that build many times through the library and need no registry. `extra` entries are
 * added to the same layer, so two bases can differ by one file (and so by digest).
 */
import { readFile } from 'node:fs/promises';
import { appendLayer, emptyImage, updateContainerConfig, type Image, type LocalStore, type Platform } from '../../src/index.js';
import { writeLayer, type LayerEntry } from '../../src/layer/index.js';
import { BUSYBOX, GROUP, PASSWD, busyboxApplets } from './busybox-base.js';

const MTIME = 1_700_000_000;

export async function busyboxImage(store: LocalStore, platform: Platform, extra: readonly LayerEntry[] = []): Promise<Image> {
  const applets = [...new Set(await busyboxApplets())].sort();
  const file = (path: string, data: Buffer | string, mode = 0o644, uid = 0, gid = 0): LayerEntry => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    return { path, type: 'file', mode, size: bytes.byteLength, mtime: MTIME, uid, gid, data: bytes };
  };
  const dir = (path: string, mode = 0o755, uid = 0, gid = 0): LayerEntry => ({ path, type: 'dir', mode, size: 0, mtime: MTIME, uid, gid });
  const entries: LayerEntry[] = [
    dir('bin'),
    file('bin/busybox', await readFile(BUSYBOX), 0o755),
    ...applets.map((a): LayerEntry => ({ path: `bin/${a}`, type: 'symlink', mode: 0o777, size: 0, mtime: MTIME, uid: 0, gid: 0, linkTarget: 'busybox' })),
    dir('etc'),
    file('etc/group', GROUP),
    file('etc/passwd', PASSWD),
    dir('home'),
    dir('home/app', 0o755, 1000, 1000),
    dir('root', 0o700),
    dir('tmp', 0o1777),
    ...extra,
  ];
  const layer = await writeLayer(entries, { sourceDateEpoch: MTIME, compression: 'gzip', mediaTypeFamily: 'oci', ownership: 'keep' }, store.blobs);
  const image = appendLayer(emptyImage(platform), { descriptor: layer.descriptor, diffId: layer.diffId }, { created: '2023-11-14T22:13:20Z', created_by: 'busybox' });
  return updateContainerConfig(image, (c) => ({ ...c, Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] }));
}
