import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { StrataError } from '../../errors/index.js';
import { digestFile } from '../../digest/index.js';
import { MediaType } from '../../oci/index.js';
import { sourceRootForDirectory, type SourceRoot } from '../../context/index.js';
import { decompressFileWith, extractImageToDirectory, isTarHeader, sniffFile, type ArchiveKind } from '../../layer/index.js';
import { FileMapBlobReader } from '../../store/index.js';
import type { BuildSession } from '../session.js';
import { MemoKind } from '../memo.js';

/** Local archives unpacked for ADD, by path. */
const ARCHIVE_ROOTS = new MemoKind<SourceRoot>('archive');

/** The archives ADD unpacks: tar, plain or gzip, bzip2, xz (BuildKit's list; not zstd). */
type AddArchiveKind = Exclude<ArchiveKind, 'zstd'>;

/** ADD detects archives by their bytes, never by their name (as docker does). */
export async function archiveKind(path: string): Promise<AddArchiveKind | undefined> {
  const kind = await sniffFile(path);
  return kind === 'zstd' ? undefined : kind;
}

/**
 * A local file ADD unpacks: a tar, plain or compressed. A compressed file that is not a tar inside
 * (`app.js.gz`) is copied as it is, as docker does.
 */
export async function isArchiveSource(path: string): Promise<boolean> {
  const kind = await archiveKind(path);
  if (kind === undefined) return false;
  if (kind === 'tar') return true;
  return isTarHeader(await decompressedHead(path, kind));
}

/** The first 512 decompressed bytes (fewer when the content is shorter). */
async function decompressedHead(path: string, kind: Exclude<AddArchiveKind, 'tar'>): Promise<Buffer> {
  const source: Readable =
    kind === 'gzip'
      ? createReadStream(path).pipe(createGunzip())
      : spawn(kind === 'bzip2' ? 'bzip2' : 'xz', ['-dc', path], { stdio: ['ignore', 'pipe', 'ignore'] }).stdout;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of source) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= 512) break;
    }
  } catch {
    // Corrupt data: not an archive ADD can unpack; it is copied as a file.
  } finally {
    source.destroy();
  }
  return Buffer.concat(chunks).subarray(0, 512);
}

/**
 * Unpacks a local archive into a private directory with the same safe extractor used for image
 * layers (no member can land outside it), and returns it as a source root. bzip2 and xz go
 * through the system's decompressors, which Node lacks.
 */
export async function archiveRoot(session: BuildSession, path: string, at: string): Promise<SourceRoot> {
  return session.memo.get(ARCHIVE_ROOTS.key(path), async () => {
    const kind = await archiveKind(path);
    let tarPath = path;
    if (kind === 'bzip2' || kind === 'xz') {
      tarPath = join(await session.tempDir('archive-tar'), 'archive.tar');
      await decompressFileWith(kind === 'bzip2' ? 'bzip2' : 'xz', path, tarPath, path);
    }
    const { digest, size } = await digestFile(tarPath);
    const descriptor = { mediaType: kind === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayer, digest, size };
    const dir = await session.tempDir('add-archive');
    try {
      await extractImageToDirectory([descriptor], new FileMapBlobReader(path).add(digest, tarPath), dir, {
        privileged: session.deps.privileged === true,
        signal: session.deps.signal,
      });
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause);
      throw new StrataError(cause instanceof StrataError ? cause.code : 'E_BUILD', `${at}: ADD could not unpack ${path}: ${message}`, { cause });
    }
    return sourceRootForDirectory(dir, `archive ${path}`);
  });
}
