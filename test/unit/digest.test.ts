import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DigestingStream, VerifyingStream, digestFile, digestOf, isDigest, parseDigest, verifyBytes } from '../../src/digest/index.js';
import { StrataError } from '../../src/errors/index.js';

const HELLO = Buffer.from('hello world');
const HELLO_DIGEST = 'sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9';

/** The StrataError a promise rejects (or a function throws) with. */
async function caught(work: Promise<unknown> | (() => unknown)): Promise<StrataError> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error('expected a StrataError, got success');
}

/** Pipes chunks through `through`, collecting what comes out (and how many chunks passed before a failure). */
async function pump(chunks: Buffer[], through: NodeJS.ReadWriteStream & Writable): Promise<{ out: Buffer; passed: number }> {
  const got: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      got.push(chunk);
      cb();
    },
  });
  const result = { out: Buffer.alloc(0), passed: 0 };
  try {
    await pipeline(Readable.from(chunks), through, sink);
  } finally {
    result.out = Buffer.concat(got);
    result.passed = got.length;
  }
  return result;
}

describe('parseDigest', () => {
  it('accepts sha256 and sha512 with lowercase hex of the right length', () => {
    expect(parseDigest(HELLO_DIGEST)).toBe(HELLO_DIGEST);
    const sha512 = digestOf('x', 'sha512');
    expect(parseDigest(sha512)).toBe(sha512);
    expect(isDigest(HELLO_DIGEST)).toBe(true);
  });

  it.each([
    ['no colon', 'sha256'],
    ['empty', ''],
    ['empty hex', 'sha256:'],
    ['unknown algorithm', `md5:${'a'.repeat(32)}`],
    ['short', `sha256:${'a'.repeat(63)}`],
    ['long', `sha256:${'a'.repeat(65)}`],
    ['sha512 with sha256 length', `sha512:${'a'.repeat(64)}`],
    ['uppercase hex', `sha256:${'A'.repeat(64)}`],
    ['non-hex', `sha256:${'g'.repeat(64)}`],
    ['uppercase algorithm', `SHA256:${'a'.repeat(64)}`],
  ])('refuses %s with E_DIGEST_INVALID', async (_what, value) => {
    const error = await caught(() => parseDigest(value));
    expect(error.code).toBe('E_DIGEST_INVALID');
    expect(isDigest(value)).toBe(false);
  });

  it('names the unsupported algorithm', async () => {
    const error = await caught(() => parseDigest(`md5:${'a'.repeat(32)}`));
    expect(error.message).toContain('"md5"');
  });
});

describe('VerifyingStream', () => {
  it('passes good bytes through unchanged', async () => {
    const { out } = await pump([HELLO.subarray(0, 5), HELLO.subarray(5)], new VerifyingStream({ digest: HELLO_DIGEST, size: HELLO.length }));
    expect(out.equals(HELLO)).toBe(true);
  });

  it('fails with E_DIGEST_MISMATCH on other bytes of the same size, naming what', async () => {
    const error = await caught(pump([Buffer.from('hello World')], new VerifyingStream({ digest: HELLO_DIGEST, size: 11, what: 'blob X of test' })));
    expect(error.code).toBe('E_DIGEST_MISMATCH');
    expect(error.message).toContain('blob X of test');
    expect(error.message).toContain(HELLO_DIGEST);
  });

  it('fails with E_DIGEST_MISMATCH when no size is given', async () => {
    const error = await caught(pump([Buffer.from('nope')], new VerifyingStream({ digest: HELLO_DIGEST })));
    expect(error.code).toBe('E_DIGEST_MISMATCH');
  });

  it('fails with E_SIZE_MISMATCH on short input', async () => {
    const error = await caught(pump([HELLO.subarray(0, 4)], new VerifyingStream({ digest: HELLO_DIGEST, size: 11 })));
    expect(error.code).toBe('E_SIZE_MISMATCH');
  });

  it('detects an overrun at the chunk that overruns, before the stream ends', async () => {
    const chunks = [Buffer.alloc(6), Buffer.alloc(6), Buffer.alloc(6), Buffer.alloc(6)];
    let passed = -1;
    const stream = new VerifyingStream({ digest: HELLO_DIGEST, size: 11 });
    const got: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        got.push(chunk);
        cb();
      },
    });
    const error = await caught(pipeline(Readable.from(chunks), stream, sink));
    passed = got.length;
    expect(error.code).toBe('E_SIZE_MISMATCH');
    expect(error.message).toContain('12 bytes');
    expect(passed).toBeLessThanOrEqual(1);
  });
});

describe('DigestingStream', () => {
  it('passes bytes through and reports digest and size once finished', async () => {
    const stream = new DigestingStream();
    const { out } = await pump([HELLO.subarray(0, 3), HELLO.subarray(3)], stream);
    expect(out.equals(HELLO)).toBe(true);
    expect(stream.result()).toEqual({ digest: HELLO_DIGEST, size: 11 });
  });

  it('refuses to report before the stream has finished', async () => {
    const error = await caught(() => new DigestingStream().result());
    expect(error.code).toBe('E_INTERNAL');
  });

  it('hashes with sha512 when asked', async () => {
    const stream = new DigestingStream('sha512');
    await pump([HELLO], stream);
    expect(stream.result().digest).toBe(digestOf(HELLO, 'sha512'));
  });
});

describe('verifyBytes', () => {
  it('accepts matching bytes', () => {
    expect(() => verifyBytes(HELLO, { digest: HELLO_DIGEST, size: 11 })).not.toThrow();
    expect(() => verifyBytes(HELLO, { digest: HELLO_DIGEST })).not.toThrow();
  });

  it('refuses a wrong size first, then a wrong digest', async () => {
    expect((await caught(() => verifyBytes(HELLO, { digest: HELLO_DIGEST, size: 10 }))).code).toBe('E_SIZE_MISMATCH');
    expect((await caught(() => verifyBytes(Buffer.from('hello World'), { digest: HELLO_DIGEST, size: 11 }))).code).toBe('E_DIGEST_MISMATCH');
  });
});

describe('digestFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-digest-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes a file', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'f'), HELLO);
    expect(await digestFile(join(dir, 'f'))).toEqual({ digest: HELLO_DIGEST, size: 11 });
  });

  it('fails with E_NOT_FOUND naming a missing path', async () => {
    const path = join(dir, 'missing.bin');
    const error = await caught(digestFile(path));
    expect(error.code).toBe('E_NOT_FOUND');
    expect(error.message).toContain(path);
  });
});
