import {
  listSourceTree,
  openBuildContext,
  openNamedContextRoot,
  resolveCopySources,
  type ContextEntry,
  type ResolvedSource,
  type SourceRoot,
} from '../../context/index.js';
import type { Instruction } from '../../dockerfile/index.js';
import type { BuildSession } from '../session.js';
import { MemoKind, type MemoKey } from '../memo.js';

const CONTEXT = new MemoKind<ReadContextRoot>('context');
const NAMED = new MemoKind<SourceRoot>('named-context');
const LISTINGS = new MemoKind<ListedSources>('copy-sources');

/** What a COPY reads: its sources resolved in the root, and each match's listing (a file lists as itself). */
export interface ListedSources {
  resolved: ResolvedSource[];
  listed: ContextEntry[][];
}

/** The build context as a build reads it: what its COPY, ADD and RUN bind-mount sources matched is noted. */
interface ReadContextRoot extends SourceRoot {
  /** The matched paths, relative to the context ('' for all of it). */
  readonly reads: Set<string>;
}

function readsOf(root: SourceRoot): Set<string> | undefined {
  return 'reads' in root && root.reads instanceof Set ? (root.reads as Set<string>) : undefined;
}

/** The build context, opened once per build. */
export function buildContextRoot(session: BuildSession): Promise<SourceRoot> {
  return session.memo.get(CONTEXT.key(), async () => ({
    ...(await openBuildContext(session.input.contextDir, { dockerfilePath: session.input.dockerfile.file })),
    reads: new Set<string>(),
  }));
}

/**
 * The build context's paths the build's sources matched (COPY, ADD, RUN bind mounts), sorted: what BuildKit
 * sends of the context (its FollowPaths), and so what BUILDKIT_SBOM_SCAN_CONTEXT scans. [] when none was read.
 */
export async function contextReadPaths(session: BuildSession): Promise<string[]> {
  const root = await session.memo.peek(CONTEXT.key())?.catch(() => undefined);
  return root === undefined ? [] : [...root.reads].sort();
}

/** A named build context's directory with its own .dockerignore, opened once per build. */
export function namedContextRoot(session: BuildSession, name: string, dir: string): Promise<SourceRoot> {
  return session.memo.get(NAMED.key(`${name}\0${dir}`), () => openNamedContextRoot(dir, `build context ${name}`));
}

export async function listCopySources(root: SourceRoot, sources: readonly string[], excludes: readonly string[]): Promise<ListedSources> {
  const resolved = await resolveCopySources(root, [...sources], { excludes });
  const matches = resolved.flatMap((r) => r.matches);
  const reads = readsOf(root);
  if (reads !== undefined) for (const m of matches) reads.add(m.relPath);
  const listed = await Promise.all(matches.map((m) => (m.isDir ? listSourceTree(root, m.relPath, { excludes }) : Promise.resolve([m.entry]))));
  return { resolved, listed };
}

/** A word that expands to itself whatever the ARGs and ENV: no `$`, no quotes, no escape character. */
const LITERAL = /^[^$'"\\`]*$/;

function listingKey(sources: readonly string[], excludes: readonly string[]): MemoKey<ListedSources> {
  return LISTINGS.key(JSON.stringify([sources, excludes]));
}

/**
 * Starts listing what the stage's context COPYs read while its base image is still being resolved:
 * on a cached rebuild the walk of the context and the registry round trips then overlap instead of
 * adding up. Only sources whose words are literal are listed ahead (any other needs the base's ENV to
 * expand), and only the COPY that asks for the same expanded words takes the listing (takeCopySources).
 * A failure stays in the promise until that COPY runs and reports it as its own.
 */
export function prefetchCopySources(session: BuildSession, instructions: readonly Instruction[]): void {
  for (const ins of instructions) {
    if (ins.kind !== 'COPY' || ins.from !== undefined || ins.sourceContents.length > 0) continue;
    if (![...ins.sources, ...ins.exclude].every((w) => LITERAL.test(w))) continue;
    const listing = session.memo.get(listingKey(ins.sources, ins.exclude), async () =>
      listCopySources(await buildContextRoot(session), ins.sources, ins.exclude),
    );
    listing.catch(() => undefined);
  }
}

/** The listing prefetched for these (expanded) words, if any; taken, so it is not held for the whole build. */
export function takeCopySources(session: BuildSession, sources: readonly string[], excludes: readonly string[]): Promise<ListedSources> | undefined {
  return session.memo.take(listingKey(sources, excludes));
}
