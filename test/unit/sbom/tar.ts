import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import type { Digest } from '../../../src/digest/index.js';
import { MediaType, type Descriptor } from '../../../src/oci/index.js';
import type { MemoryBlobReader } from '../../../src/store/index.js';

type Headers = Parameters<ReturnType<typeof pack>['entry']>[0];

export type TarEntry = { name: string; body?: string | Buffer; mode?: number; type?: Headers['type']; linkname?: string };

/** A gzip tar layer of exactly these entries, in this order, added to `reader`. */
export async function layerOf(reader: MemoryBlobReader, entries: readonly TarEntry[]): Promise<Descriptor> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header: Headers = { name: e.name, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: new Date(0), uid: 0, gid: 0, type };
    if (e.linkname !== undefined) header.linkname = e.linkname;
    if (type === 'file') p.entry(header, e.body ?? '');
    else p.entry(header);
  }
  p.finalize();
  const bytes = gzipSync(await done, { level: 1 });
  const digest: Digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  reader.add(digest, bytes);
  return { mediaType: MediaType.OciLayerGzip, digest, size: bytes.byteLength };
}

/** A minimal ELF whose data holds Go build info in the Go 1.18+ inline form. */
export function fakeGoBinary(goVersion: string, modinfo: string, options: { corruptLength?: boolean } = {}): Buffer {
  const varint = (n: number): Buffer => {
    const out: number[] = [];
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(n);
    return Buffer.from(out);
  };
  const sentinel = Buffer.alloc(16, 0x30);
  const info = Buffer.concat([sentinel, Buffer.from(modinfo), sentinel]);
  info[info.length - 17] = 0x0a;
  const header = Buffer.alloc(32);
  Buffer.from('\xff Go buildinf:', 'latin1').copy(header);
  header[14] = 8;
  header[15] = 2;
  const body = Buffer.concat([
    header,
    varint(goVersion.length),
    Buffer.from(goVersion),
    options.corruptLength ? Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]) : varint(info.length),
    info,
  ]);
  const elf = Buffer.alloc(70_000, 0);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46]).copy(elf);
  // Straddle a 64 KiB boundary, where stream chunks split.
  body.copy(elf, 65_530);
  return Buffer.concat([elf, Buffer.alloc(2000)]);
}
