import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { UploadingIngester, type StreamUpload } from '../../src/pipeline/uploads.js';
import { digestOf, type Digest } from '../../src/digest/index.js';
import type { BlobIngester } from '../../src/store/index.js';

/** A store that keeps what it ingests in memory (a test double for the file store's ingestion). */
function memoryIngester(): BlobIngester & { blobs: Map<Digest, Buffer> } {
  const blobs = new Map<Digest, Buffer>();
  return {
    blobs,
    async ingestBlob(data) {
      const chunks: Buffer[] = [];
      for await (const chunk of data) chunks.push(Buffer.from(chunk as Uint8Array));
      const bytes = Buffer.concat(chunks);
      const digest = digestOf(bytes);
      blobs.set(digest, bytes);
      return { digest, size: bytes.length };
    },
  };
}

const payload = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.alloc(256 * 1024, i)));
const source = (): Readable => Readable.from(Array.from({ length: 40 }, (_, i) => payload.subarray(i * 256 * 1024, (i + 1) * 256 * 1024)));

describe('UploadingIngester', () => {
  it('gives every upload the bytes the store gets, and the store digest to close with', async () => {
    const store = memoryIngester();
    const received: Array<{ bytes: Buffer; digest: Digest }> = [];
    const upload: StreamUpload = async (bytes, stored) => {
      const chunks: Buffer[] = [];
      for await (const chunk of bytes) chunks.push(Buffer.from(chunk));
      received.push({ bytes: Buffer.concat(chunks), digest: (await stored).digest });
    };
    const result = await new UploadingIngester(store, [upload, upload]).ingestBlob(source());
    expect(result.digest).toBe(digestOf(payload));
    expect(received).toHaveLength(2);
    for (const r of received) {
      expect(r.bytes.equals(payload)).toBe(true);
      expect(r.digest).toBe(result.digest);
    }
  });

  it('drops an upload that fails or takes nothing, and still stores the blob', async () => {
    const store = memoryIngester();
    const failing: StreamUpload = async () => {
      throw new Error('registry said no');
    };
    let aborted = false;
    const stuck: StreamUpload = (_bytes, _stored, signal) =>
      new Promise((_resolve, reject) =>
        signal.addEventListener(
          'abort',
          () => {
            aborted = true;
            reject(signal.reason);
          },
          { once: true },
        ),
      );
    const result = await new UploadingIngester(store, [failing, stuck], { stallMs: 50 }).ingestBlob(source());
    expect(store.blobs.get(result.digest)?.equals(payload)).toBe(true);
    expect(aborted).toBe(true);
  });

  it('aborts the uploads when the write fails, and rethrows the write error', async () => {
    let aborted = false;
    const upload: StreamUpload = async (bytes, _stored, signal) => {
      signal.addEventListener('abort', () => (aborted = true), { once: true });
      for await (const _ of bytes) {
        // consume until the writer stops
      }
    };
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(1024);
      throw new Error('disk full');
    }
    await expect(new UploadingIngester(memoryIngester(), [upload]).ingestBlob(broken())).rejects.toThrow('disk full');
    expect(aborted).toBe(true);
  });
});
