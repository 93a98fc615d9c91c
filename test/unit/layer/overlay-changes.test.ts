/**
 * RUN changes read from an overlay's upper directory (captureOverlayChanges): real overlayfs mounts, so root with
 * CAP_SYS_ADMIN. Each case runs file operations in the merged tree, then checks the layer's entries and that
 * the base plus the layers, unpacked, give exactly the merged tree (owners and hard-link groups included).
 */
import { appendFile, chmod, chown, link, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  captureOverlayChanges,
  extractImageToDirectory,
  mountOverlay,
  unmountOverlay,
  walkLayerTree,
  writeLayer,
  type LayerEntry,
  type LayerResult,
  type OverlayLayer,
} from '../../../src/layer/index.js';
import { snapshotRootfs } from '../../../src/layer/index.js';
import { MemoryBlobStore } from '../../helpers/memory-blobs.js';
import { describeAsRoot } from '../../helpers/tools.js';
import { describeOwnedTree } from '../../helpers/busybox-base.js';

let dir: string;
let store: MemoryBlobStore;
let baseLayer: LayerResult;
let lowers: Array<{ name: string; layer: OverlayLayer }>;
let layers: LayerResult[];
let made = 0;

async function makeBase(root: string): Promise<void> {
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'motd'), 'motd\n');
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await mkdir(join(root, 'bin'));
  await writeFile(join(root, 'bin', 'vi'), 'vi\n');
  await mkdir(join(root, 'opt', 'd', 'sub'), { recursive: true });
  await writeFile(join(root, 'opt', 'd', 'a'), 'a\n');
  await writeFile(join(root, 'opt', 'd', 'sub', 'deep'), 'deep\n');
  await mkdir(join(root, 'opt', 'keep'));
  await writeFile(join(root, 'opt', 'keep', 'f'), 'f\n');
  await mkdir(join(root, 'lib'));
  await writeFile(join(root, 'lib', 'a.so'), 'so v1\n');
  await link(join(root, 'lib', 'a.so'), join(root, 'lib', 'b.so'));
  await link(join(root, 'lib', 'a.so'), join(root, 'lib', 'c.so'));
  await mkdir(join(root, 'usr', 'share', 'doc'), { recursive: true });
  await writeFile(join(root, 'usr', 'share', 'doc', 'x'), 'x\n');
  await symlink('../etc/motd', join(root, 'opt', 'motd-link'));
  for (const p of ['etc/motd', 'bin/vi', 'opt/keep/f', 'lib/a.so', 'usr/share/doc/x', 'usr/share/doc', 'opt/keep', 'opt', 'etc', 'lib']) {
    await utimes(join(root, p), 1_000_000, 1_000_000);
  }
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-overlay-'));
  await makeBase(join(dir, 'base'));
  await mkdir(join(dir, 'm'));
  store = new MemoryBlobStore();
  baseLayer = await writeLayer(await walkLayerTree(join(dir, 'base')), { compression: 'none', ownership: 'keep' }, store);
  const entries = (await snapshotRootfs(join(dir, 'base'))).entries;
  lowers = [{ name: 'base', layer: { dir: join(dir, 'base'), entries, opaque: new Set() } }];
  layers = [];
  made = 0;
});

afterEach(async () => {
  await unmountOverlay(join(dir, 'm')).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

/** Mounts the lowers with a new upper directory, runs `step` in the merged tree and takes its changes. */
async function runStep(step: (m: string) => Promise<void>): Promise<{ entries: LayerEntry[]; map: Map<string, LayerEntry>; layer: LayerResult }> {
  const name = `l${++made}`;
  await mkdir(join(dir, name));
  await mkdir(join(dir, 'w'));
  await mountOverlay({ cwd: dir, lowers: lowers.map((l) => l.name), upper: name, work: 'w', target: 'm' });
  const merged = join(dir, 'm');
  await step(merged);
  const captured = await captureOverlayChanges(
    join(dir, name),
    lowers.map((l) => l.layer),
    { merged, exclude: ['/proc'] },
  );
  const layer = await writeLayer(captured.entries, { compression: 'none', ownership: 'keep' }, store);
  // The layers unpacked in order give what the step saw.
  const out = await mkdtemp(join(dir, 'out-'));
  await extractImageToDirectory([baseLayer.descriptor, ...layers.map((l) => l.descriptor), layer.descriptor], store, out, { privileged: true });
  const seen = Object.fromEntries(Object.entries(await describeOwnedTree(merged)).filter(([p]) => p !== 'proc' && !p.startsWith('proc/')));
  expect(await describeOwnedTree(out)).toEqual(seen);
  await unmountOverlay(merged);
  await rm(join(dir, 'w'), { recursive: true, force: true });
  lowers.unshift({ name, layer: captured.layer });
  layers.push(layer);
  return { entries: captured.entries, map: new Map(captured.entries.map((e) => [e.path, e])), layer };
}

describeAsRoot('RUN changes taken from an overlay upper directory', () => {
  it('makes whiteouts, opaque directories, copied-up chmods and hard links, and leaves the base alone', async () => {
    const before = await describeOwnedTree(join(dir, 'base'));
    const { map } = await runStep(async (m) => {
      await rm(join(m, 'bin', 'vi'));
      await rm(join(m, 'opt', 'd'), { recursive: true });
      await mkdir(join(m, 'opt', 'd'));
      await writeFile(join(m, 'opt', 'd', 'new'), 'new\n');
      await chmod(join(m, 'etc', 'motd'), 0o600);
      await chown(join(m, 'opt', 'keep', 'f'), 1000, 1000);
      await appendFile(join(m, 'lib', 'b.so'), 'patched\n');
      await mkdir(join(m, 'opt', 'keep', 'newdir'));
      await writeFile(join(m, 'opt', 'keep', 'newdir', 'n'), 'n\n');
      await mkdir(join(m, 'proc'));
      await writeFile(join(m, 'proc', 'x'), 'sandbox only');
    });
    expect(map.get('bin/.wh.vi')?.type).toBe('file');
    expect(map.has('opt/d/.wh..wh..opq')).toBe(true);
    expect(map.get('opt/d/new')?.type).toBe('file');
    // overlayfs marks a directory made in a merged one opaque too; with nothing below it, the mark means nothing.
    expect(map.has('opt/keep/newdir/.wh..wh..opq')).toBe(false);
    expect(map.get('etc/motd')).toMatchObject({ type: 'file', mode: 0o600, size: 5 });
    expect(map.get('opt/keep/f')).toMatchObject({ uid: 1000, gid: 1000 });
    // One inode below with three names: one file and two hard links to it, written once.
    const so = ['lib/a.so', 'lib/b.so', 'lib/c.so'].map((p) => map.get(p));
    expect(so.map((e) => e?.type)).toEqual(['file', 'hardlink', 'hardlink']);
    expect(so[1]?.linkTarget).toBe('lib/a.so');
    expect([...map.keys()].filter((k) => k.startsWith('proc'))).toEqual([]);
    // Untouched paths and their unchanged directories are not in the layer.
    expect(map.has('usr')).toBe(false);
    expect(map.has('usr/share/doc/x')).toBe(false);
    expect(await describeOwnedTree(join(dir, 'base'))).toEqual(before);
  });

  it('stacks steps: an upper directory with its whiteouts and opaque marks is the next step’s lower one', async () => {
    await runStep(async (m) => {
      await rm(join(m, 'opt', 'd'), { recursive: true });
      await mkdir(join(m, 'opt', 'd', 'sub'), { recursive: true });
      await writeFile(join(m, 'opt', 'd', 'sub', 'other'), 'other\n');
      await rm(join(m, 'bin', 'vi'));
      await writeFile(join(m, 'lib', 'a.so'), 'so v2\n');
      await writeFile(join(m, 'made'), 'made\n');
      await link(join(m, 'made'), join(m, 'made-too'));
    });
    const { map } = await runStep(async (m) => {
      await writeFile(join(m, 'bin', 'vi'), 'vi again\n');
      await rm(join(m, 'opt', 'd', 'sub'), { recursive: true });
      await mkdir(join(m, 'opt', 'd', 'sub'));
      await appendFile(join(m, 'lib', 'c.so'), 'more\n');
      await appendFile(join(m, 'made-too'), 'more\n');
      await rm(join(m, 'opt', 'keep'), { recursive: true });
    });
    expect(map.get('bin/vi')?.type).toBe('file');
    expect(map.has('opt/d/sub/.wh..wh..opq')).toBe(true);
    expect(map.get('opt/.wh.keep')?.type).toBe('file');
    expect(map.get('made-too')?.type).toBe('hardlink');
  });

  it('finds the opaque directories among names with spaces, newlines, non-ASCII letters or a leading dash', async () => {
    const names = ['-rf', 'sp ace', 'new\nline', 'ü-latin', 'n'.repeat(120)];
    for (const name of names) {
      await mkdir(join(dir, 'base', 'opt', name, 'old'), { recursive: true });
      await writeFile(join(dir, 'base', 'opt', name, 'old', 'f'), 'old\n');
    }
    lowers[0]!.layer = { ...lowers[0]!.layer, entries: (await snapshotRootfs(join(dir, 'base'))).entries };
    baseLayer = await writeLayer(await walkLayerTree(join(dir, 'base')), { compression: 'none', ownership: 'keep' }, store);
    const { map } = await runStep(async (m) => {
      for (const [i, name] of names.entries()) {
        if (i % 2 === 0) {
          await rm(join(m, 'opt', name), { recursive: true });
          await mkdir(join(m, 'opt', name));
        } else {
          await writeFile(join(m, 'opt', name, 'added'), 'added\n');
        }
      }
    });
    for (const [i, name] of names.entries()) expect(map.has(`opt/${name}/.wh..wh..opq`), name).toBe(i % 2 === 0);
  });

  it('marks a replaced directory that holds every name it had opaque one level down, where that changes lookups', async () => {
    const { map } = await runStep(async (m) => {
      await rm(join(m, 'opt', 'd'), { recursive: true });
      await mkdir(join(m, 'opt', 'd', 'sub'), { recursive: true });
      await writeFile(join(m, 'opt', 'd', 'a'), 'a again\n');
    });
    expect(map.has('opt/d/.wh..wh..opq')).toBe(false);
    expect(map.has('opt/d/sub/.wh..wh..opq')).toBe(true);
    // The next step's lookups under it agree with the kernel's (runStep compares the trees).
    await runStep(async (m) => {
      await writeFile(join(m, 'opt', 'd', 'sub', 'x'), 'x\n');
      await rm(join(m, 'opt', 'd', 'a'));
    });
  });
});
