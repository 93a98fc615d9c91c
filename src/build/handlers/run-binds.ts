import { constants } from 'node:fs';
import { chmod, chown, copyFile, link, mkdir, rm, symlink, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { hashSources, sourceRootForDirectory, type ContextEntry, type SourceRoot } from '../../context/index.js';
import { StrataError, errnoCode } from '../../errors/index.js';
import { fsPath } from '../../fsname/index.js';
import { filesystemKey } from '../cache.js';
import { resolveInHostRoot } from '../host-root.js';
import type { Image } from '../../image/index.js';
import type { BlobReader } from '../../store/index.js';
import { imageRootfs, imageRootfsFor } from '../imagefs.js';
import { MemoKind } from '../memo.js';
import type { MountSpec } from '../mounts.js';
import type { BuildSession } from '../session.js';
import type { CopyContext } from './copy.js';
import { buildContextRoot, listCopySources, namedContextRoot, type ListedSources } from './copy-sources.js';

const VIEWS = new MemoKind<string>('bind-view');

/** The context a bind mount reads (the build context, or a named directory context), or undefined for a stage or image. */
async function bindContextRoot(m: MountSpec, session: BuildSession, cc: CopyContext): Promise<SourceRoot | undefined> {
  if (m.from === undefined) return buildContextRoot(session);
  const src = await cc.stageSource(m.from);
  if ('dir' in src) return namedContextRoot(session, m.from, src.dir);
  return undefined;
}

/** A bind mount's source by content: the files of the context (or named context), or a stage's layer chain. */
export async function bindSourceDigest(m: MountSpec, session: BuildSession, cc: CopyContext): Promise<string> {
  const root = await bindContextRoot(m, session, cc);
  if (root === undefined) return filesystemKey((await stageImage(m, cc)).image);
  const listing = await listCopySources(root, [m.source ?? '.'], []);
  // The main context's file digests are kept by stat data; a named one's are hashed each time.
  const statCache = m.from === undefined ? session.statCache : undefined;
  return hashSources(listing.listed.flat(), { includeOwnership: true, statCache, paths: listedPaths(listing), signal: session.deps.signal });
}

function listedPaths(listing: ListedSources): string[] {
  const matches = listing.resolved.flatMap((r) => r.matches);
  return matches.flatMap((match, i) => listing.listed[i]!.map((e) => `${match.matchedPath}/${e.relPath}`));
}

/** A bind mount's host path, and for a writable one what throws its private copy away after the step. */
export interface BindSource {
  path: string;
  discard?: () => Promise<void>;
}

/**
 * The host path a RUN bind mount shows. Read-only: from a stage or image, its unpacked root; from a context (the
 * build context or a named directory), the source in it. A context with a .dockerignore shows the step only what
 * it does not ignore, as BuildKit transfers a context without those files and as the step's key leaves them out:
 * the source is then a view made of the listed entries in a build temp directory (hard links of the files, or
 * copies where the context is on another file system), made once per build. Writable (`rw`): a private copy of
 * the source, whatever it is (writableCopy).
 */
export async function bindMountSource(spec: MountSpec, session: BuildSession, cc: CopyContext): Promise<BindSource> {
  if (spec.readonly === false) return writableCopy(spec, session, cc);
  const root = await bindContextRoot(spec, session, cc);
  let rootDir: string;
  if (root === undefined) {
    const src = await stageImage(spec, cc);
    rootDir = await imageRootfs(session, src.image, src.reader);
  } else if (root.matcher !== undefined) {
    const key = VIEWS.key(`${root.dir}\0${spec.source ?? '.'}`);
    return { path: await session.memo.get(key, async () => (await listedView(root, spec, session, cc, false)).path) };
  } else {
    rootDir = root.dir;
  }
  const source = resolveInHostRoot(rootDir, `/${spec.source ?? ''}`);
  if (!source) throw notInSource(spec, cc);
  return { path: source };
}

/**
 * A writable bind shows the step its own copy of the source (a context's listed files, or the stage's or image's
 * tree), thrown away after the step, as BuildKit discards what a step writes to a `rw` bind: the user's context
 * and a stage's unpacked root (which later steps and COPY --from read) are never written. Files are reflinked
 * where the file system can, else copied; never hard-linked, since a write to a hard link reaches the original.
 */
async function writableCopy(spec: MountSpec, session: BuildSession, cc: CopyContext): Promise<BindSource> {
  let root = await bindContextRoot(spec, session, cc);
  if (root === undefined) {
    const src = await stageImage(spec, cc);
    const unpacked = await imageRootfsFor(session, src.image, src.reader, [posix.resolve('/', spec.source ?? '/')]);
    root = await sourceRootForDirectory(unpacked, `stage ${spec.from}`);
  }
  const { path, dir } = await listedView(root, spec, session, cc, true);
  return dir === undefined ? { path } : { path, discard: () => rm(dir, { recursive: true, force: true }) };
}

/** The image a bind `from=` names when it is a stage or an image (not a directory context). */
async function stageImage(spec: MountSpec, cc: CopyContext): Promise<{ image: Image; reader: BlobReader }> {
  const src = await cc.stageSource(spec.from!);
  if ('dir' in src) throw new StrataError('E_INTERNAL', `${cc.at}: --mount from=${spec.from} is a directory context`);
  return 'state' in src ? { image: src.state.image, reader: src.state.reader } : src;
}

function notInSource(spec: MountSpec, cc: CopyContext): StrataError {
  return new StrataError('E_NOT_FOUND', `${cc.at}: --mount source ${spec.source ?? '/'} is not in ${spec.from ?? 'the build context'}`);
}

/**
 * The bind's source made of its listed entries in a new build temp directory, `dir` (the path shown is that
 * directory, or the one file in it). Read-only, files are hard links where they can be and a single file is shown
 * as it is (no `dir`); writable, everything is a copy.
 */
async function listedView(
  root: SourceRoot,
  spec: MountSpec,
  session: BuildSession,
  cc: CopyContext,
  writable: boolean,
): Promise<{ path: string; dir?: string }> {
  // A source that is ignored is not found, as for COPY (the error's hint names the pattern's file).
  const listing = await listCopySources(root, [spec.source ?? '.'], []);
  const match = listing.resolved[0]?.matches[0];
  if (match === undefined) throw notInSource(spec, cc);
  if (!match.isDir && !writable) return { path: match.entry.absPath };
  const view = await session.tempDir('bind', { reachable: true });
  const privileged = session.deps.privileged === true;
  if (!match.isDir) {
    // A step running as its own (non-root) uid must reach the file.
    await chmod(view, 0o755);
    const file = join(view, 'file');
    await placeEntry(match.entry, file, true, privileged);
    return { path: file, dir: view };
  }
  const dirs: Array<[ContextEntry, string]> = [[match.entry, view]];
  for (const entry of listing.listed[0]!) {
    const at = join(view, entry.relPath);
    if (entry.type === 'dir') dirs.push([entry, at]);
    await placeEntry(entry, at, writable, privileged);
  }
  // Directories last, deepest first: what was made in them moved their times, and a mode may close them.
  for (const [entry, at] of dirs.reverse()) await keepMetadata(entry, at, privileged);
  return { path: view, dir: view };
}

/** One listed entry in the view (listings put a directory before what it holds). Devices, fifos and sockets are left out. */
async function placeEntry(entry: ContextEntry, at: string, copies: boolean, privileged: boolean): Promise<void> {
  const from = fsPath(entry.absPath);
  const to = fsPath(at);
  switch (entry.type) {
    case 'dir':
      await mkdir(to);
      return;
    case 'symlink':
      await symlink(fsPath(entry.linkTarget ?? ''), to);
      return;
    case 'file':
      if (!copies) {
        try {
          await link(from, to);
          return;
        } catch (cause) {
          if (errnoCode(cause) !== 'EXDEV' && errnoCode(cause) !== 'EPERM') throw cause;
        }
      }
      await copyFile(from, to, constants.COPYFILE_FICLONE);
      await keepMetadata(entry, at, privileged);
      return;
    default:
      return;
  }
}

/** A made directory or copied file gets the listed mode, times and (when the process may chown) owner. */
async function keepMetadata(entry: ContextEntry, at: string, privileged: boolean): Promise<void> {
  const to = fsPath(at);
  if (privileged) await chown(to, entry.uid, entry.gid);
  await chmod(to, entry.mode);
  await utimes(to, entry.mtimeMs / 1000, entry.mtimeMs / 1000);
}
