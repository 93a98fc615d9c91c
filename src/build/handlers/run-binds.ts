import { constants } from 'node:fs';
import { chmod, chown, copyFile, link, mkdir, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { hashSources, type ContextEntry, type SourceRoot } from '../../context/index.js';
import { StrataError, errnoCode } from '../../errors/index.js';
import { fsPath } from '../../fsname/index.js';
import { filesystemKey } from '../cache.js';
import { resolveInHostRoot } from '../host-root.js';
import { imageRootfs } from '../imagefs.js';
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
  if (root === undefined) {
    const src = await cc.stageSource(m.from!);
    if ('dir' in src) throw new StrataError('E_INTERNAL', `${cc.at}: --mount from=${m.from} is a directory context`);
    return filesystemKey('state' in src ? src.state.image : src.image);
  }
  const listing = await listCopySources(root, [m.source ?? '.'], []);
  // The main context's file digests are kept by stat data; a named one's are hashed each time.
  const statCache = m.from === undefined ? session.statCache : undefined;
  return hashSources(listing.listed.flat(), { includeOwnership: true, statCache, paths: listedPaths(listing), signal: session.deps.signal });
}

function listedPaths(listing: ListedSources): string[] {
  const matches = listing.resolved.flatMap((r) => r.matches);
  return matches.flatMap((match, i) => listing.listed[i]!.map((e) => `${match.matchedPath}/${e.relPath}`));
}

/**
 * The host path a RUN bind mount shows. From a stage or image, its unpacked root; from a context (the build
 * context or a named directory), the source in it. A context with a .dockerignore shows the step only what it
 * does not ignore, as BuildKit transfers a context without those files and as the step's key leaves them out:
 * the source is then a view made of the listed entries in a build temp directory (hard links of the files,
 * or copies where the context is on another file system or the mount is writable).
 */
export async function bindMountSource(spec: MountSpec, session: BuildSession, cc: CopyContext): Promise<string> {
  const root = await bindContextRoot(spec, session, cc);
  let rootDir: string;
  if (root === undefined) {
    const src = await cc.stageSource(spec.from!);
    if ('dir' in src) throw new StrataError('E_INTERNAL', `${cc.at}: --mount from=${spec.from} is a directory context`);
    rootDir = await imageRootfs(session, 'state' in src ? src.state.image : src.image, 'state' in src ? src.state.reader : src.reader);
  } else if (root.matcher !== undefined) {
    // A read-only view serves every step that mounts it; a writable one is each step's own.
    if (spec.readonly === false) return ignoringView(root, spec, session, cc);
    return session.memo.get(VIEWS.key(`${root.dir}\0${spec.source ?? '.'}`), () => ignoringView(root, spec, session, cc));
  } else {
    rootDir = root.dir;
  }
  const source = resolveInHostRoot(rootDir, `/${spec.source ?? ''}`);
  if (!source) throw notInSource(spec, cc);
  return source;
}

function notInSource(spec: MountSpec, cc: CopyContext): StrataError {
  return new StrataError('E_NOT_FOUND', `${cc.at}: --mount source ${spec.source ?? '/'} is not in ${spec.from ?? 'the build context'}`);
}

async function ignoringView(root: SourceRoot, spec: MountSpec, session: BuildSession, cc: CopyContext): Promise<string> {
  // A source that is ignored is not found, as for COPY (the error's hint names the pattern's file).
  const listing = await listCopySources(root, [spec.source ?? '.'], []);
  const match = listing.resolved[0]?.matches[0];
  if (match === undefined) throw notInSource(spec, cc);
  if (!match.isDir) return match.entry.absPath;
  const view = await session.tempDir('bind', { reachable: true });
  const privileged = session.deps.privileged === true;
  const dirs: Array<[ContextEntry, string]> = [[match.entry, view]];
  for (const entry of listing.listed[0]!) {
    const at = join(view, entry.relPath);
    if (entry.type === 'dir') dirs.push([entry, at]);
    await placeEntry(entry, at, spec.readonly === false, privileged);
  }
  // Directories last, deepest first: what was made in them moved their times, and a mode may close them.
  for (const [entry, at] of dirs.reverse()) await keepMetadata(entry, at, privileged);
  return view;
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
