import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PARALLEL_GZIP_CHUNK, ParallelGzip } from '../../../src/layer/gzip.js';

async function compress(input: Buffer, pieces = 7): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < pieces; i++) parts.push(input.subarray(Math.floor((i * input.length) / pieces), Math.floor(((i + 1) * input.length) / pieces)));
  const out: Buffer[] = [];
  for await (const chunk of Readable.from(parts).pipe(new ParallelGzip(6, 3))) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

describe('ParallelGzip', () => {
  const input = Buffer.alloc(3 * PARALLEL_GZIP_CHUNK + 12345);
  for (let i = 0; i < input.length; i++) input[i] = (i * 2654435761) >>> 24;

  it('writes members any gzip reader takes whole, in order', async () => {
    const out = await compress(input);
    expect(gunzipSync(out).equals(input)).toBe(true);
    // Four members, each with the fixed header: MTIME 0, OS 255.
    let members = 0;
    for (let at = out.indexOf(Buffer.from([0x1f, 0x8b, 8])); at >= 0; at = out.indexOf(Buffer.from([0x1f, 0x8b, 8]), at + 1)) {
      if (out.readUInt32LE(at + 4) === 0 && out[at + 9] === 255) members++;
    }
    expect(members).toBeGreaterThanOrEqual(4);
  });

  it('gives the same bytes however the input is split', async () => {
    expect((await compress(input, 1)).equals(await compress(input, 13))).toBe(true);
  });

  it('writes one valid member for empty input', async () => {
    const out = await compress(Buffer.alloc(0), 1);
    expect(gunzipSync(out).length).toBe(0);
    expect(out[9]).toBe(255);
  });
});
