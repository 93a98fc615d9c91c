import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PARALLEL_GZIP_CHUNK, ParallelGzip, storedMember } from '../../../src/layer/gzip.js';

async function compress(input: Buffer, pieces = 7, level: number | undefined = 6): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < pieces; i++) parts.push(input.subarray(Math.floor((i * input.length) / pieces), Math.floor(((i + 1) * input.length) / pieces)));
  const out: Buffer[] = [];
  for await (const chunk of Readable.from(parts).pipe(new ParallelGzip(level, 3))) out.push(chunk as Buffer);
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

  describe('without an explicit level', () => {
    // Deterministic bytes that do not compress: SHA-256 in counter mode.
    const noise = Buffer.concat(Array.from({ length: (2 * PARALLEL_GZIP_CHUNK) / 32 }, (_, i) => createHash('sha256').update(String(i)).digest()));
    const text = Buffer.from('a line of a config file that repeats\n'.repeat(60_000)).subarray(0, PARALLEL_GZIP_CHUNK);

    it('stores members that barely compress and compresses the others', async () => {
      const out = await compress(Buffer.concat([noise, text]), 5, undefined);
      expect(gunzipSync(out).equals(Buffer.concat([noise, text]))).toBe(true);
      // The noise costs only stored-block framing; the text is compressed as at level 6.
      const textAtSix = gzipSync(text, { level: 6 }).length;
      expect(out.length).toBeGreaterThan(noise.length);
      expect(out.length).toBeLessThan(noise.length + 1024 + textAtSix);
    });

    it('decides from the bytes alone, so the output is reproducible', async () => {
      const a = await compress(Buffer.concat([text, noise]), 1, undefined);
      expect(a.equals(await compress(Buffer.concat([text, noise]), 11, undefined))).toBe(true);
    });

    it('an explicit level compresses every member, 0 stores every member', async () => {
      const stored = await compress(text, 3, 0);
      expect(stored.length).toBeGreaterThan(text.length);
      expect(gunzipSync(stored).equals(text)).toBe(true);
      expect((await compress(text, 3, 9)).length).toBeLessThan(text.length / 10);
    });
  });
});

describe('storedMember', () => {
  it('is a gzip member every reader takes: empty, one block, a block boundary, several blocks', () => {
    for (const size of [0, 1, 65534, 65535, 65536, 3 * 65535 + 7]) {
      const input = Buffer.alloc(size);
      for (let i = 0; i < size; i++) input[i] = (i * 7919) & 0xff;
      const member = storedMember(input);
      expect(gunzipSync(member).equals(input), `size ${size}`).toBe(true);
      expect(member.readUInt32LE(4)).toBe(0);
      expect(member[9]).toBe(255);
    }
  });
  it('is the same bytes from pieces as from their concatenation, whatever the cuts', () => {
    const input = Buffer.alloc(3 * 65535 + 11);
    for (let i = 0; i < input.length; i++) input[i] = (i * 31) & 0xff;
    const whole = storedMember(input);
    for (const cuts of [[0], [1, 65535, 65536], [0, 0, 100, 70000, 70000, 131070, 196000]]) {
      const bounds = [...cuts, input.length];
      const pieces = bounds.slice(0, -1).map((from, i) => input.subarray(from, bounds[i + 1]));
      expect(storedMember([input.subarray(0, cuts[0]), ...pieces]).equals(whole), `cuts ${cuts.join(',')}`).toBe(true);
    }
    expect(storedMember([]).equals(storedMember(Buffer.alloc(0)))).toBe(true);
  });
});
