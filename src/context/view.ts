import { readdirSync } from 'node:fs';
import { decodeName, fsPath } from '../fsname/index.js';
import { join } from 'node:path';
import { errnoCode, ioError } from '../errors/index.js';
import type { SourceRoot } from './types.js';

/**
 * What BuildKit's context transfer would have sent: a path ignored by .dockerignore does not exist, except a
 * directory that still holds a re-included (`!`) path, which is sent with only those contents.
 * Paths are slash-separated, relative to the root, and already known to contain no symlink component.
 */
export class ContextView {
  private readonly keptDirs = new Map<string, boolean>();

  constructor(readonly root: SourceRoot) {}

  abs(rel: string): string {
    return rel === '' ? this.root.dir : join(this.root.dir, ...rel.split('/'));
  }

  ignored(rel: string): boolean {
    return rel !== '' && this.root.matcher !== undefined && this.root.matcher.ignores(rel);
  }

  async visible(rel: string, isDir: boolean): Promise<boolean> {
    if (!this.ignored(rel)) return true;
    if (!isDir || this.root.matcher?.hasExclusions !== true) return false;
    return this.holdsVisible(rel);
  }

  /** Whether an ignored directory still contains something re-included by a `!` pattern. */
  private async holdsVisible(rel: string): Promise<boolean> {
    const known = this.keptDirs.get(rel);
    if (known !== undefined) return known;
    let found = false;
    for (const child of readDirents(this.abs(rel))) {
      const childRel = `${rel}/${child.name}`;
      if (!this.ignored(childRel) || (child.isDirectory() && (await this.holdsVisible(childRel)))) {
        found = true;
        break;
      }
    }
    this.keptDirs.set(rel, found);
    return found;
  }
}

/**
 * readdir of names only (all a walk that lstats every entry needs); a directory that vanished reads as
 * empty. Names are read as bytes: one that is not UTF-8 keeps its bytes (see fsname).
 */
export function readNames(absDir: string): string[] {
  return emptyIfGone(absDir, () => readdirSync(fsPath(absDir), { encoding: 'buffer' }).map(decodeName));
}

/**
 * readdir with file types (never following links); a directory that vanished reads as empty. A blocking
 * call, like the lstat of each entry that follows it (see entry.ts).
 */
export function readDirents(absDir: string): { name: string; isDirectory(): boolean }[] {
  return emptyIfGone(absDir, () =>
    readdirSync(fsPath(absDir), { withFileTypes: true, encoding: 'buffer' }).map((d) => ({ name: decodeName(d.name), isDirectory: () => d.isDirectory() })),
  );
}

function emptyIfGone<T>(absDir: string, read: () => T[]): T[] {
  try {
    return read();
  } catch (cause) {
    const code = errnoCode(cause);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw ioError('read directory', absDir, cause);
  }
}
