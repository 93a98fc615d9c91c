import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack, type Header } from 'tar-stream';
import type { Digest } from '../../../src/digest/index.js';
import { StrataError } from '../../../src/errors/index.js';
import type { Descriptor } from '../../../src/oci/index.js';
import type { BlobReader } from '../../../src/store/types.js';

/** One tar entry with full control over its header: hostile names and links are written exactly as given. */
export interface Spec {
  name: string;
  type?: Header['type'];
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  content?: string | Buffer;
  devmajor?: number;
  devminor?: number;
}

export async function tarOf(specs: readonly Spec[]): Promise<Buffer> {
  const packer = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of packer) chunks.push(chunk as Buffer);
  })();
  for (const spec of specs) {
    const type = spec.type ?? 'file';
    await new Promise<void>((resolve, reject) => {
      const header: Partial<Header> & { name: string } = {
        name: spec.name,
        type,
        mode: spec.mode ?? (type === 'directory' ? 0o755 : 0o644),
        uid: spec.uid ?? 0,
        gid: spec.gid ?? 0,
        mtime: new Date((spec.mtime ?? 1_000_000) * 1000),
        ...(spec.linkname === undefined ? {} : { linkname: spec.linkname }),
        ...(spec.devmajor === undefined ? {} : { devmajor: spec.devmajor, devminor: spec.devminor ?? 0 }),
      };
      const body = type === 'file' ? Buffer.from(spec.content ?? '') : Buffer.alloc(0);
      packer.entry(header, body, (error) => (error ? reject(error) : resolve()));
    });
  }
  packer.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** A BlobReader over in-memory blobs, verifying digests like a real one. */
export class BlobMap implements BlobReader {
  private readonly blobs = new Map<string, Buffer>();

  /** Adds a layer made of `specs`, gzip-compressed unless `compression` is `none`, and returns its descriptor. */
  async layer(specs: readonly Spec[], compression: 'gzip' | 'none' = 'gzip'): Promise<Descriptor> {
    return this.tar(await tarOf(specs), compression);
  }

  /** Adds a tar made elsewhere (GNU tar), as a layer. */
  tar(tar: Buffer, compression: 'gzip' | 'none' = 'gzip'): Descriptor {
    const bytes = compression === 'gzip' ? gzipSync(tar) : tar;
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
    this.blobs.set(digest, bytes);
    return {
      mediaType: compression === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
      digest,
      size: bytes.length,
    };
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    return Readable.from([await this.readBlob(descriptor)]);
  }

  async readBlob(descriptor: Descriptor): Promise<Buffer> {
    const bytes = this.blobs.get(descriptor.digest);
    if (bytes === undefined) throw new StrataError('E_NOT_FOUND', `blob ${descriptor.digest} is not in the test map`);
    return bytes;
  }
}
