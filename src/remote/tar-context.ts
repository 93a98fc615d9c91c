import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { StrataError, isStrataError } from '../errors/index.js';
import { digestFile } from '../digest/index.js';
import { decompressFileWith, extractImageToDirectory } from '../layer/index.js';
import { MediaType } from '../oci/index.js';
import { FileMapBlobReader } from '../store/index.js';

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** What the first bytes of a file say it is: a tar (by its header) or a compressed stream (by its magic). */
export function sniffArchive(head: Uint8Array): ArchiveKind | undefined {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 3 && b.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (b.length >= 6 && b[0] === 0xfd && b.toString('latin1', 1, 6) === '7zXZ\0') return 'xz';
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
  if (isTarHeader(b)) return 'tar';
  return undefined;
}

function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  if (block.toString('latin1', 257, 262) === 'ustar') return true;
  const stored = parseInt(block.toString('latin1', 148, 156).replace(/\0.*$/, '').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === stored && block[0] !== 0;
}

export async function sniffFile(path: string): Promise<ArchiveKind | undefined> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, 512, 0);
    return sniffArchive(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

export interface UnpackOptions {
  /** A scratch directory for a decompressed copy (bzip2 and xz, which Node cannot read). */
  scratchDir: string;
  /** Names the archive in errors: `tar context from stdin`, a URL. */
  what: string;
  signal?: AbortSignal | undefined;
}

/**
 * Unpacks a tar archive (plain, gzip, bzip2, xz or zstd, told apart by content) into `dir` with the
 * extractor of base layers: no entry lands outside `dir` (absolute names, `..`, links that climb out are
 * refused), owners are not applied. Streams from disk to disk.
 */
export async function unpackArchiveFile(path: string, dir: string, options: UnpackOptions): Promise<void> {
  const kind = await sniffFile(path);
  if (kind === undefined) throw new StrataError('E_USAGE', `${options.what} is not a tar archive (plain, gzip, bzip2, xz or zstd)`);
  let tarPath = path;
  if (kind === 'bzip2' || kind === 'xz') {
    tarPath = join(options.scratchDir, 'decompressed.tar');
    await decompressFileWith(kind, path, tarPath, options.what);
  }
  const { digest, size } = await digestFile(tarPath);
  const mediaType = kind === 'gzip' ? MediaType.OciLayerGzip : kind === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayer;
  try {
    await extractImageToDirectory([{ mediaType, digest, size }], new FileMapBlobReader(options.what).add(digest, tarPath), dir, {
      ownership: 'ignore',
      devices: 'skip',
      signal: options.signal,
    });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message.replace(`layer ${digest}: `, '') : String(cause);
    throw new StrataError(isStrataError(cause) ? cause.code : 'E_IO', `${options.what}: ${message}`, {
      cause,
      hint: isStrataError(cause) ? cause.hint : undefined,
    });
  }
}
