import { join } from 'node:path';
import { StrataError, isStrataError } from '../errors/index.js';
import { digestFile } from '../digest/index.js';
import { decompressFileWith, extractImageToDirectory, sniffFile } from '../layer/index.js';
import { MediaType } from '../oci/index.js';
import { FileMapBlobReader } from '../store/index.js';

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
