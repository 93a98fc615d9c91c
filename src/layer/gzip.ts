import { Transform, type TransformCallback } from 'node:stream';
import { crc32, deflateRaw, gzip } from 'node:zlib';

/** RFC 1952 "unknown" OS, which Go's compress/gzip (and so Docker, BuildKit, ggcr) writes. */
export const GZIP_OS_UNKNOWN = 0xff;

export function isGzipMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Rewrites the gzip header's MTIME (bytes 4..7) to 0 and its OS byte (9) to 255. Node's zlib already writes
 * MTIME 0, but the OS byte is the build platform's (3 on Unix, 10 on Windows), which would make the same layer
 * hash differently across machines. The header has no CRC (FHCRC is not set), so the bytes can be patched.
 */
export class GzipHeaderFix extends Transform {
  private offset = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.offset < 10) {
      const patched = Buffer.from(chunk);
      for (let i = 0; i < patched.length && this.offset + i < 10; i++) {
        const at = this.offset + i;
        if (at >= 4 && at <= 7) patched[i] = 0;
        else if (at === 9) patched[i] = GZIP_OS_UNKNOWN;
      }
      this.offset += chunk.length;
      callback(null, patched);
      return;
    }
    callback(null, chunk);
  }
}

/** Uncompressed bytes per gzip member. Fixed, so the output depends only on the input. */
export const PARALLEL_GZIP_CHUNK = 1024 * 1024;

/**
 * A member whose sample deflate shrinks by less than 1/16 is stored instead (deflate's stored blocks, still
 * plain gzip). zlib runs at about 55 MB/s per core on such data at any level, so compressing it costs more
 * time than sending the few percent it would save over any link faster than ~4 MB/s: already-compressed
 * files, random data, encrypted blobs. The sample is four 16 KiB slices spread over the member, so the choice
 * depends only on the bytes and the output stays reproducible.
 */
const PROBE_SLICE = 16 * 1024;
const PROBE_SLICES = 4;
const PROBE_MIN_SAVING = 1 / 16;
const ZLIB_DEFAULT_LEVEL = 6;
/** More than deflate can add to a member: 5 bytes per stored block plus header and trailer. */
const MEMBER_SLACK = 64 * 1024;

/**
 * gzip that uses every core: the input is cut into fixed 1 MiB chunks, each compressed on libuv's
 * thread pool as its own gzip member, and the members are written in order. A concatenation of
 * members is one valid gzip file (RFC 1952 §2.2) that every reader (Go's, zlib's, GNU gzip) takes
 * whole; each member's header is fixed like GzipHeaderFix's. Memory stays bounded by `inFlight`
 * chunks. Without an explicit level, members that barely compress are stored (see PROBE_MIN_SAVING);
 * an explicit level applies to every member (0 stores everything).
 */
export class ParallelGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly queue: Array<Promise<Buffer>> = [];
  private members = 0;

  constructor(
    private readonly level: number | undefined,
    private readonly inFlight = 8,
  ) {
    // Members leave one by one: in byte mode a consumer's read() (what async iteration calls) would
    // concatenate the members buffered so far into one more copy.
    super({ readableObjectMode: true, readableHighWaterMark: 2 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    this.drainFull()
      .then(() => callback())
      .catch((error: unknown) => callback(error as Error));
  }

  override _flush(callback: TransformCallback): void {
    (async () => {
      await this.drainFull();
      // The remainder, and one (empty) member when the input was empty: a gzip file has at least one.
      if (this.pendingBytes > 0 || this.members === 0) this.start(this.pending);
      this.pending = [];
      this.pendingBytes = 0;
      while (this.queue.length > 0) this.push(await this.queue.shift()!);
    })()
      .then(() => callback())
      .catch((error: unknown) => callback(error as Error));
  }

  /**
   * Cuts the pending input into members of exactly PARALLEL_GZIP_CHUNK bytes, as lists of the chunks
   * (or parts of them) that make them up: a member is copied once, into its output, not first into a
   * contiguous input.
   */
  private async drainFull(): Promise<void> {
    while (this.pendingBytes >= PARALLEL_GZIP_CHUNK) {
      const pieces: Buffer[] = [];
      let size = 0;
      while (size < PARALLEL_GZIP_CHUNK) {
        const next = this.pending.shift()!;
        const wanted = PARALLEL_GZIP_CHUNK - size;
        if (next.byteLength > wanted) {
          pieces.push(next.subarray(0, wanted));
          this.pending.unshift(next.subarray(wanted));
          size += wanted;
        } else {
          pieces.push(next);
          size += next.byteLength;
        }
      }
      this.pendingBytes -= size;
      this.start(pieces);
      while (this.queue.length >= this.inFlight) this.push(await this.queue.shift()!);
    }
  }

  private start(pieces: readonly Buffer[]): void {
    this.members++;
    const level = this.level !== undefined ? Promise.resolve(this.level) : memberLevel(pieces);
    this.queue.push(level.then((l) => (l === 0 ? storedMember(pieces) : gzipMember(Buffer.concat(pieces), l))));
  }
}

/** The level for one member: zlib's default, or 0 when a sample shows the bytes barely compress. */
async function memberLevel(pieces: readonly Buffer[]): Promise<number> {
  const size = pieces.reduce((n, p) => n + p.byteLength, 0);
  if (size < PROBE_SLICE * PROBE_SLICES * 2) return ZLIB_DEFAULT_LEVEL;
  const stride = Math.floor(size / PROBE_SLICES);
  const sample = Buffer.allocUnsafe(PROBE_SLICE * PROBE_SLICES);
  for (let i = 0; i < PROBE_SLICES; i++) copyRange(pieces, i * stride, PROBE_SLICE, sample, i * PROBE_SLICE);
  // One output chunk, as in gzipMember: 16 KiB chunks cost a thread pool round trip each.
  const options = { level: 1, chunkSize: sample.byteLength + MEMBER_SLACK };
  const probed = await new Promise<Buffer>((resolve, reject) => deflateRaw(sample, options, (error, out) => (error ? reject(error) : resolve(out))));
  return probed.byteLength > sample.byteLength * (1 - PROBE_MIN_SAVING) ? 0 : ZLIB_DEFAULT_LEVEL;
}

/** Copies `length` bytes starting at `from` of the concatenation of `pieces` into `target` at `at`. */
function copyRange(pieces: readonly Buffer[], from: number, length: number, target: Buffer, at: number): void {
  let offset = 0;
  for (const piece of pieces) {
    if (length === 0) return;
    const end = offset + piece.byteLength;
    if (end > from) {
      const start = from - offset;
      const n = Math.min(length, piece.byteLength - start);
      piece.copy(target, at, start, start + n);
      at += n;
      from += n;
      length -= n;
    }
    offset = end;
  }
}

function gzipMember(input: Buffer, level: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    // One output chunk per member: zlib's default 16 KiB chunks would call back into the main thread
    // (and copy) dozens of times per member.
    gzip(input, { level, chunkSize: input.byteLength + MEMBER_SLACK }, (error, out) => {
      if (error) return reject(error);
      out.fill(0, 4, 8);
      out[9] = GZIP_OS_UNKNOWN;
      resolve(out);
    });
  });
}

/** Largest stored deflate block (RFC 1951 §3.2.4: LEN is 16 bits). */
const STORED_BLOCK = 0xffff;

/**
 * A gzip member holding `input` in stored deflate blocks, built directly: one allocation and one native
 * CRC-32, where zlib at level 0 would copy the bytes through its window and back in callbacks.
 * Header as GzipHeaderFix leaves it: no flags, MTIME 0, XFL 0, OS 255.
 */
export function storedMember(input: Buffer | readonly Buffer[]): Buffer {
  const pieces = Buffer.isBuffer(input) ? [input] : input;
  const size = pieces.reduce((n, p) => n + p.byteLength, 0);
  const out = Buffer.allocUnsafe(10 + Math.max(1, Math.ceil(size / STORED_BLOCK)) * 5 + size + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, GZIP_OS_UNKNOWN], 0);
  let at = 10;
  let left = size;
  let blockLeft = 0;
  const startBlock = (): void => {
    blockLeft = Math.min(STORED_BLOCK, left);
    left -= blockLeft;
    out[at] = left === 0 ? 1 : 0; // BFINAL on the last block, BTYPE 00 (stored)
    out.writeUInt16LE(blockLeft, at + 1);
    out.writeUInt16LE(~blockLeft & 0xffff, at + 3);
    at += 5;
  };
  if (size === 0) startBlock();
  let crc = 0;
  for (const piece of pieces) {
    crc = crc32(piece, crc);
    for (let from = 0; from < piece.byteLength; ) {
      if (blockLeft === 0) startBlock();
      const n = Math.min(blockLeft, piece.byteLength - from);
      piece.copy(out, at, from, from + n);
      at += n;
      from += n;
      blockLeft -= n;
    }
  }
  out.writeUInt32LE(crc, at);
  out.writeUInt32LE(size >>> 0, at + 4);
  return out;
}
