import type { DockerignoreMatcher } from '../dockerfile/index.js';

/**
 * A directory COPY/ADD sources are read from: the build context (with its .dockerignore) or the
 * extracted root filesystem of a stage or image (`COPY --from`, no ignore file). Nothing outside `dir`
 * is ever resolved, stat'ed or read through a SourceRoot.
 */
export interface SourceRoot {
  /** The real path of the directory (symlinks already resolved). */
  readonly dir: string;
  /** The .dockerignore patterns: an ignored path does not exist for COPY, as in BuildKit. */
  readonly matcher?: DockerignoreMatcher | undefined;
  /** For messages: `"x": not found in the <description>`; "build context" or "stage builder". */
  readonly description: string;
  /** Which ignore file the matcher came from, for hints; absent when there is none. */
  readonly ignoreFile?: string | undefined;
}

export type ContextEntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';

/** One file-system object as lstat saw it. Symlinks are never followed when an entry is made. */
export interface ContextEntry {
  /** Slash-separated, relative to the directory that was listed; '' for that directory or a single source. */
  relPath: string;
  /** Where it is on disk (inside the SourceRoot). */
  absPath: string;
  type: ContextEntryType;
  /** Permission bits with setuid, setgid and sticky (`mode & 0o7777`). */
  mode: number;
  size: number;
  mtimeMs: number;
  uid: number;
  gid: number;
  /** For symlinks: the target as stored, never resolved. */
  linkTarget?: string;
  /** Raw st_rdev, for char and block devices. */
  rdev: number;
  dev: number;
  ino: number;
  nlink: number;
}

export interface SourceMatch {
  /** The resolved path relative to the root, every symlink interpreted inside the root; '' for the root. */
  relPath: string;
  /**
   * The path as matched before the last component was followed (slash-separated, relative to the root).
   * Its last component names the copy at the destination (`COPY link /dir/` makes `/dir/link`).
   */
  matchedPath: string;
  isDir: boolean;
  /** The object at `relPath` (relPath '' inside it). */
  entry: ContextEntry;
}

export interface ResolvedSource {
  /** The source as written in the Dockerfile. */
  source: string;
  /** Whether the source had a wildcard (so no matches is not an error here). */
  wildcard: boolean;
  matches: SourceMatch[];
}
