import { Transform, type TransformCallback } from 'node:stream';

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
