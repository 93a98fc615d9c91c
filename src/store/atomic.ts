import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { ioError } from '../errors/index.js';
import { currentOwner, ownerTag } from './owner.js';

/**
 * A sibling temp name, so the final rename stays on one file system and is atomic. It carries the
 * owning process (see ownerTag) so that a later run can remove it once that process is gone.
 */
export function tempPathFor(finalPath: string): string {
  return join(dirname(finalPath), `.tmp-${basename(finalPath)}-${ownerTag(currentOwner())}-${randomBytes(6).toString('hex')}`);
}

/** Writes a small file by temp name + fsync + rename: readers see the old content or the new, never half. */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(tmp, 'w', mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw ioError('write', path, cause);
  }
}

/**
 * Moves a finished file into place. Across file systems (the store on one disk, the output on
 * another) it copies to a temp name beside the destination first, so the rename stays atomic.
 */
export async function moveFileAtomic(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
    return;
  } catch (cause) {
    if ((cause as { code?: string }).code !== 'EXDEV') throw ioError('write', to, cause);
  }
  const tmp = tempPathFor(to);
  try {
    await copyFile(from, tmp);
    await rename(tmp, to);
    await rm(from, { force: true });
  } catch (cause) {
    await rm(tmp, { force: true });
    throw ioError('write', to, cause);
  }
}

/**
 * A new private directory `<base>/<prefix>-<owner>-XXXXXX` (made with its parents): the owner in its
 * name lets a later run remove it once this process is gone (see sweepLeftovers).
 */
export async function makeScratchDir(base: string, prefix: string): Promise<string> {
  await mkdir(base, { recursive: true });
  return mkdtemp(join(base, `${prefix}-${ownerTag(currentOwner())}-`));
}
