import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestingStream, digestHex, type Digest } from '../../../src/digest/index.js';
import type { BlobIngester, ReadOptions } from '../../../src/store/index.js';

/** A test-only ingester: temp file + hash + rename, and nothing kept when the stream fails. */
export class TempStore implements BlobIngester {
  private constructor(readonly dir: string) {}

  static async create(): Promise<TempStore> {
    const dir = await mkdtemp(join(tmpdir(), 'strata-layer-store-'));
    await mkdir(join(dir, 'tmp'));
    await mkdir(join(dir, 'blobs'));
    return new TempStore(dir);
  }

  async ingestBlob(data: Readable | AsyncIterable<Uint8Array>, options: ReadOptions = {}): Promise<{ digest: Digest; size: number }> {
    const temp = join(this.dir, 'tmp', randomBytes(8).toString('hex'));
    const digesting = new DigestingStream();
    const out = createWriteStream(temp);
    try {
      await pipeline(data, digesting, out, options.signal === undefined ? {} : { signal: options.signal });
      const { digest, size } = digesting.result();
      await rename(temp, this.blobPath(digest));
      return { digest, size };
    } catch (error) {
      // An abort can reject before the file is opened; wait, or it appears after the rm.
      if (!out.closed) await once(out, 'close').catch(() => undefined);
      await rm(temp, { force: true });
      throw error;
    }
  }

  blobPath(digest: Digest): string {
    return join(this.dir, 'blobs', digestHex(digest));
  }

  /** Everything in the store, blobs and temp files alike. */
  async contents(): Promise<string[]> {
    const blobs = await readdir(join(this.dir, 'blobs'));
    const temps = await readdir(join(this.dir, 'tmp'));
    return [...blobs.map((b) => `blobs/${b}`), ...temps.map((t) => `tmp/${t}`)];
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
