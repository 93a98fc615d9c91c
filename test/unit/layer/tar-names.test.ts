/**
 * Layers whose names are not UTF-8, written by GNU tar in its pax and gnu formats (names in PAX records,
 * in the ustar fields, and in GNU long-name entries), read back byte for byte: by readLayer, by the
 * root filesystem extractor (whiteouts of such names included) and by the tarball import's checks.
 */
import { execFileSync } from 'node:child_process';
import { link, lstat, mkdir, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/digest/index.js';
import { decodeName, nameBytes } from '../../../src/fsname/index.js';
import { LayerIndexStore, extractImageToDirectory, indexImageFilesystem, readLayer, type ImageFsIndex } from '../../../src/layer/index.js';
import { paxNameRecords } from '../../../src/layer/tar-extract.js';
import { BlobMap } from './blob-map.js';
import { tempDir } from './tree.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const BAD = b('bad\xff\xfeutf8.txt');
const DIR = b('d\xff');
const CAFE = b('caf\xe9');
const LINK = b('l\xffnk');
const HARD = b('h\xfe');
/** Over 100 bytes: a PAX path record, or a GNU long-name entry. */
const LONG = b(`${'n'.repeat(110)}\xff`);
/** A link target over 100 bytes: a PAX linkpath record, or a GNU long-link entry. */
const LONG_TARGET = b(`${'s'.repeat(110)}\xfe`);

function under(root: string, ...names: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from(`${root}/`), ...names.flatMap((n, i) => (i === 0 ? [n] : [Buffer.from('/'), n]))]);
}

/**
 * What the layer holds, as `type name[ -> target]` with every name in latin1 (one char per byte), but for
 * BAD and HARD: one is the file, the other a hard link to it, in the order GNU tar met them.
 */
const EXPECTED = [
  'dir .',
  `dir ${DIR.toString('latin1')}`,
  `file ${DIR.toString('latin1')}/${CAFE.toString('latin1')}`,
  `symlink ${LINK.toString('latin1')} -> ${BAD.toString('latin1')}`,
  `file ${LONG.toString('latin1')}`,
  `symlink longlink -> ${LONG_TARGET.toString('latin1')}`,
].sort();

describe('layers whose names are not UTF-8', () => {
  let tmp: string;
  const tars = new Map<string, Buffer>();
  let whiteouts: Buffer;

  beforeAll(async () => {
    tmp = await tempDir('names');
    const src = join(tmp, 'src');
    await mkdir(under(src, DIR), { recursive: true });
    await writeFile(under(src, BAD), 'bad\n');
    await writeFile(under(src, DIR, CAFE), 'cafe\n');
    await writeFile(under(src, LONG), 'long\n');
    await symlink(BAD, under(src, LINK));
    await symlink(LONG_TARGET, join(src, 'longlink'));
    await link(under(src, BAD), under(src, HARD));
    for (const format of ['pax', 'gnu']) tars.set(format, execFileSync('tar', [`--format=${format}`, '-cf', '-', '-C', src, '.'], { maxBuffer: 1 << 24 }));
    const upper = join(tmp, 'upper');
    await mkdir(under(upper, DIR), { recursive: true });
    await writeFile(under(upper, Buffer.concat([b('.wh.'), BAD])), '');
    await writeFile(under(upper, DIR, b('.wh..wh..opq')), '');
    whiteouts = execFileSync('tar', ['--format=pax', '-cf', '-', '-C', upper, '.']);
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it.each(['pax', 'gnu'])('readLayer gives every name and link target of a GNU tar %s archive as its bytes', async (format) => {
    const seen: string[] = [];
    for await (const entry of readLayer(Readable.from([tars.get(format)!]), { compression: 'none' })) {
      const name = nameBytes(entry.path).toString('latin1');
      const target = entry.linkname === undefined ? '' : ` -> ${nameBytes(entry.linkname).toString('latin1')}`;
      seen.push(`${entry.type} ${name}${target}`);
    }
    const pair = [BAD, HARD].map((n) => n.toString('latin1'));
    const linked = seen.filter((line) => pair.some((n) => line === `file ${n}` || line.startsWith(`hardlink ${n} `)));
    expect([
      [`file ${pair[0]}`, `hardlink ${pair[1]} -> ${pair[0]}`],
      [`file ${pair[1]}`, `hardlink ${pair[0]} -> ${pair[1]}`],
    ]).toContainEqual(linked.sort());
    expect(seen.filter((line) => !linked.includes(line)).sort()).toEqual(EXPECTED);
  });

  it('whiteouts of such names are read as whiteouts of the same bytes', async () => {
    const kinds: string[] = [];
    for await (const entry of readLayer(Readable.from([whiteouts]), { compression: 'none' })) {
      if (entry.kind === 'whiteout') kinds.push(`whiteout ${nameBytes(entry.target).toString('latin1')}`);
      if (entry.kind === 'opaque') kinds.push(`opaque ${nameBytes(entry.dir).toString('latin1')}`);
    }
    expect(kinds.sort()).toEqual([`opaque ${DIR.toString('latin1')}`, `whiteout ${BAD.toString('latin1')}`]);
  });

  it.each(['pax', 'gnu'])('the extractor writes the exact bytes (%s), and a whiteout above removes them', async (format) => {
    const blobs = new BlobMap();
    const root = join(tmp, `root-${format}`);
    await mkdir(root);
    await extractImageToDirectory([blobs.tar(tars.get(format)!)], blobs, root);
    const names = (await readdir(root, { encoding: 'buffer' })).map((n) => n.toString('latin1')).sort();
    expect(names).toEqual([BAD, DIR, HARD, LINK, LONG, b('longlink')].map((n) => n.toString('latin1')).sort());
    expect(await readFile(under(root, DIR, CAFE), 'utf8')).toBe('cafe\n');
    expect(await readlink(under(root, LINK), { encoding: 'buffer' })).toEqual(BAD);
    expect(await readlink(join(root, 'longlink'), { encoding: 'buffer' })).toEqual(LONG_TARGET);
    expect((await lstat(under(root, HARD))).ino).toBe((await lstat(under(root, BAD))).ino);

    const both = join(tmp, `both-${format}`);
    await mkdir(both);
    await extractImageToDirectory([blobs.tar(tars.get(format)!), blobs.tar(whiteouts, 'none')], blobs, both);
    const left = (await readdir(both, { encoding: 'buffer' })).map((n) => n.toString('latin1')).sort();
    expect(left).toEqual([DIR, HARD, LINK, LONG, b('longlink')].map((n) => n.toString('latin1')).sort());
    expect(await readdir(under(both, DIR))).toEqual([]);
  });

  it('the layer index, read or replayed from its record, names them as the same bytes', async () => {
    const blobs = new BlobMap();
    const layers = [blobs.tar(tars.get('pax')!), blobs.tar(whiteouts, 'none')];
    const diffIds = [digestOf(tars.get('pax')!), digestOf(whiteouts)];
    const cache = new LayerIndexStore(join(tmp, 'records'));
    const paths = (index: ImageFsIndex): string[] => index.entries().map(([path]) => nameBytes(path).toString('latin1'));
    const read = await indexImageFilesystem(layers, blobs, { records: { cache, diffIds } });
    const replayed = await indexImageFilesystem(
      layers,
      { openBlob: () => Promise.reject(new Error('replayed: no blob read')), readBlob: (d) => blobs.readBlob(d) },
      {
        records: { cache: new LayerIndexStore(join(tmp, 'records')), diffIds },
      },
    );
    expect(paths(replayed)).toEqual(paths(read));
    expect(paths(read)).toEqual(expect.arrayContaining([`/${HARD.toString('latin1')}`, `/${DIR.toString('latin1')}`, `/${LONG.toString('latin1')}`]));
    expect(paths(read)).not.toContain(`/${BAD.toString('latin1')}`);
    expect(read.get(`/${decodeName(LINK)}`)?.linkTarget).toBe(decodeName(BAD));
  });

  it('finds the path and linkpath records of a PAX header as bytes', () => {
    const record = (key: string, value: Buffer): Buffer => {
      const body = Buffer.concat([b(` ${key}=`), value, b('\n')]);
      const n = body.length + String(body.length + 2).length;
      return Buffer.concat([b(String(n)), body]);
    };
    const body = Buffer.concat([record('mtime', b('1.5')), record('path', BAD), record('linkpath', LONG_TARGET), record('uname', b('x'))]);
    expect([...paxNameRecords(body)]).toEqual([
      ['path', BAD],
      ['linkpath', LONG_TARGET],
    ]);
  });
});
