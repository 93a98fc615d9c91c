import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { StrataError } from '../../errors/index.js';
import { digestFile } from '../../digest/index.js';
import { MediaType } from '../../oci/index.js';
import { sourceRootForDirectory, type SourceRoot } from '../../context/index.js';
import { extractImageToDirectory } from '../../layer/index.js';
import { FileMapBlobReader } from '../../store/index.js';
import type { BuildSession } from '../session.js';

type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz';

/** ADD detects archives by their bytes, never by their name (as docker does). */
export async function archiveKind(path: string): Promise<ArchiveKind | undefined> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, 512, 0);
    const b = head.subarray(0, bytesRead);
    if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (b.length >= 3 && b.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
    if (b.length >= 6 && b[0] === 0xfd && b.toString('latin1', 1, 6) === '7zXZ\0') return 'xz';
    if (b.length >= 262 && b.toString('latin1', 257, 262) === 'ustar') return 'tar';
    return undefined;
  } finally {
    await handle.close();
  }
}

export async function isArchiveSource(path: string): Promise<boolean> {
  return (await archiveKind(path)) !== undefined;
}

/**
 * Unpacks a local archive into a private directory with the same safe extractor used for image
 * layers (no member can land outside it), and returns it as a source root. bzip2 and xz go
 * through the system's decompressors, which Node lacks.
 */
export async function archiveRoot(session: BuildSession, path: string, at: string): Promise<SourceRoot> {
  return session.memo(`archive:${path}`, async () => {
    const kind = await archiveKind(path);
    let tarPath = path;
    if (kind === 'bzip2' || kind === 'xz') {
      tarPath = join(await session.tempDir('archive-tar'), 'archive.tar');
      await decompressWith(kind === 'bzip2' ? 'bzip2' : 'xz', path, tarPath, at);
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

async function decompressWith(program: 'bzip2' | 'xz', input: string, output: string, at: string): Promise<void> {
  const child = spawn(program, ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (cause) => reject(new StrataError('E_BUILD', `${at}: ADD needs the ${program} program to unpack ${input}`, { hint: `install it (apt-get install ${program === 'xz' ? 'xz-utils' : 'bzip2'})`, cause })));
    child.on('close', (code) => resolve(code ?? 1));
  });
  await Promise.all([pipeline(createReadStream(input), child.stdin), pipeline(child.stdout, createWriteStream(output)), exited.then((code) => {
    if (code !== 0) throw new StrataError('E_BUILD', `${at}: ${program} could not decompress ${input} (exit ${code})`);
  })]);
}
