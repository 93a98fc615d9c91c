import { execFileSync } from 'node:child_process';
import { chmod, link, mkdir, mkdtemp, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** 5 directories of 55 characters plus a file name: a 300-character layer path. */
export const LONG_PATH = `${Array.from({ length: 5 }, (_, i) => `${String(i)}${'d'.repeat(54)}`).join('/')}/${'f'.repeat(16)}.txt`;
export const LONG_TARGET = `${'t'.repeat(150)}/target`;

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `strata-layer-${prefix}-`));
}

async function file(root: string, path: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
  await chmod(join(root, path), mode);
}

/**
 * The tree the layer tests use: regular, executable and setuid files, an empty and a sticky dir, a 300-character
 * path, non-ASCII names, relative/absolute/dangling/long symlinks, three names for one inode, a fifo, and
 * `a/b` beside `a-b` to pin the sort order.
 */
export async function buildTree(root: string, mtime?: Date): Promise<void> {
  await file(root, 'bin/run.sh', '#!/bin/sh\necho hi\n', 0o755);
  await file(root, 'bin/suid', 'setuid\n', 0o4755);
  await file(root, 'bin/sgid', 'setgid\n', 0o2755);
  await file(root, 'data/readme.txt', 'hello\n');
  await mkdir(join(root, 'data/sticky'));
  await chmod(join(root, 'data/sticky'), 0o1777);
  await mkdir(join(root, 'empty'));
  await chmod(join(root, 'empty'), 0o700);
  await file(root, LONG_PATH, 'deep\n');
  await file(root, 'ünïcødé/日本語.txt', 'こんにちは\n');
  await file(root, 'a/b', 'a/b\n');
  await file(root, 'a-b', 'a-b\n');
  await mkdir(join(root, 'links'));
  await symlink('../data/readme.txt', join(root, 'links/rel'));
  await symlink('/etc/hostname', join(root, 'links/abs'));
  await symlink('nowhere/missing', join(root, 'links/dangling'));
  await symlink(LONG_TARGET, join(root, 'links/long'));
  await symlink('ünïcødé/日本語.txt', join(root, 'links/unicode'));
  await file(root, 'hard/a.txt', 'shared inode\n');
  await link(join(root, 'hard/a.txt'), join(root, 'hard/b.txt'));
  await link(join(root, 'hard/a.txt'), join(root, 'data/c.txt'));
  execFileSync('mkfifo', [join(root, 'data/pipe')]);
  if (mtime !== undefined) {
    for (const path of ['bin/run.sh', 'data/readme.txt', LONG_PATH, 'ünïcødé/日本語.txt', 'hard/a.txt', 'bin', 'data', 'empty', '.']) {
      await utimes(join(root, path), mtime, mtime);
    }
  }
}
