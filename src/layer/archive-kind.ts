import { open } from 'node:fs/promises';

/** What an archive's bytes say it is; archives are told by content, never by name (as docker does). */
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

/** The ustar magic, or an old-style header whose checksum adds up. */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  if (block.toString('latin1', 257, 262) === 'ustar') return true;
  const stored = parseInt(block.toString('latin1', 148, 156).replace(/\0.*$/, '').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === stored && block[0] !== 0;
}

/** sniffArchive of a file's first 512 bytes. */
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
