import type { Stats } from 'node:fs';
import { chmod, link, lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A tree with every kind of thing a layer must keep: executable and setuid files, an empty
 * directory, a path over 300 characters, non-ASCII names, relative/absolute/dangling symlinks and
 * a hard link.
 */
export async function makeTrickyTree(root: string): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await writeFile(join(root, 'bin', 'tool'), '#!/bin/sh\necho tool\n');
  await chmod(join(root, 'bin', 'tool'), 0o755);
  await writeFile(join(root, 'bin', 'su-like'), 'setuid\n');
  await chmod(join(root, 'bin', 'su-like'), 0o4755);
  await mkdir(join(root, 'shared'), { recursive: true });
  await chmod(join(root, 'shared'), 0o1777);
  await mkdir(join(root, 'empty', 'nested-empty'), { recursive: true });
  const long = ['a'.repeat(90), 'b'.repeat(90), 'c'.repeat(90)];
  await mkdir(join(root, ...long), { recursive: true });
  await writeFile(join(root, ...long, `${'d'.repeat(40)}.txt`), 'deep\n');
  await mkdir(join(root, 'données', '日本語'), { recursive: true });
  await writeFile(join(root, 'données', '日本語', 'ñandú ☃.txt'), 'unicode\n');
  await writeFile(join(root, 'data.bin'), Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256)));
  await symlink('../data.bin', join(root, 'bin', 'data-link'));
  await symlink('/etc/hostname', join(root, 'abs-link'));
  await symlink('does/not/exist', join(root, 'dangling'));
  await symlink(`${'x'.repeat(150)}/${'y'.repeat(10)}`, join(root, 'long-target'));
  await link(join(root, 'data.bin'), join(root, 'bin', 'hard.bin'));
  await writeFile(join(root, 'readonly.txt'), 'ro\n');
  await chmod(join(root, 'readonly.txt'), 0o444);
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  content?: string;
  target?: string;
  /** Paths of the same inode inside the tree, for hard-link identity. */
  links?: string[];
}

/**
 * Every path under `root`, sorted and parents first, described by `describe`; files sharing an inode
 * get `links`, the sorted paths of their hard-link group.
 */
export async function walkTree<E extends { links?: string[] }>(root: string, describe: (abs: string, info: Stats) => Promise<E>): Promise<Record<string, E>> {
  const out: Record<string, E> = {};
  const inodes = new Map<string, string[]>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const info = await lstat(abs);
      out[path] = await describe(abs, info);
      if (info.isDirectory()) await walk(path);
      if (info.isFile()) {
        const key = `${info.dev}:${info.ino}`;
        inodes.set(key, [...(inodes.get(key) ?? []), path]);
      }
    }
  };
  await walk('');
  for (const paths of inodes.values()) if (paths.length > 1) for (const p of paths) out[p]!.links = [...paths].sort();
  return out;
}

/** Describes a tree (paths, types, modes, contents, link targets, hard-link groups) for comparison. */
export function describeTree(root: string): Promise<Record<string, TreeEntry>> {
  return walkTree<TreeEntry>(root, async (abs, info) => {
    const mode = info.mode & 0o7777;
    if (info.isDirectory()) return { type: 'dir', mode };
    if (info.isSymbolicLink()) return { type: 'symlink', mode: 0, target: await readlink(abs) };
    if (info.isFile()) return { type: 'file', mode, content: (await readFile(abs)).toString('base64') };
    return { type: 'other', mode };
  });
}
