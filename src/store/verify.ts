import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, ioError } from '../errors/index.js';
import { isIndexMediaType, isManifestMediaType, parseManifestOrIndex, type Descriptor } from '../oci/index.js';
import type { FileBlobStore } from './file-blob-store.js';
import { ownerAlive, ownerFromName, type ProcessOwner } from './owner.js';

export interface VerifyProblem {
  kind: 'corrupt' | 'missing' | 'unreadable' | 'leftover';
  /** The blob (or temp file) concerned. */
  subject: string;
  /** The named images it breaks (for missing and unreadable blobs). */
  images: string[];
  detail: string;
  /** What --repair did about it, when anything. */
  repaired?: string | undefined;
}

export interface VerifyReport {
  blobs: number;
  bytes: number;
  images: number;
  problems: VerifyProblem[];
}

/**
 * Checks a store: every blob's bytes against its name (a corrupt one is moved to `quarantineDir` when
 * `repair`), then every named image's manifests, configs and layers for presence. Temp files of dead
 * writers beside the blobs are leftovers (removed when `repair`). Reads only, unless `repair`.
 */
export async function verifyBlobs(
  blobs: FileBlobStore,
  named: ReadonlyArray<{ name: string; descriptor: Descriptor }>,
  options: {
    repair: boolean;
    quarantineDir: string;
    self: ProcessOwner;
    signal?: AbortSignal | undefined;
  },
): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  let count = 0;
  let bytes = 0;
  for (const algorithm of ['sha256', 'sha512']) {
    const dir = join(blobs.dir, algorithm);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') continue;
      throw ioError('list', dir, cause);
    }
    for (const name of names) {
      if (options.signal?.aborted) break;
      const checked = await checkBlobFile(dir, algorithm, name, options);
      if ('problem' in checked) {
        if (checked.problem !== undefined) problems.push(checked.problem);
        continue;
      }
      count++;
      bytes += checked.size;
      if (checked.corrupt !== undefined) problems.push(checked.corrupt);
    }
  }
  for (const image of named) await blameImage(blobs, image, problems);
  return { blobs: count, bytes, images: named.length, problems };
}

/**
 * One file of the blob directory: a temp file (a leftover when its writer is gone) or a blob, hashed.
 * Gives the blob's size and, when its bytes do not hash to its name, the problem (moved aside when repairing).
 */
async function checkBlobFile(
  dir: string,
  algorithm: string,
  name: string,
  options: { repair: boolean; quarantineDir: string; self: ProcessOwner },
): Promise<{ problem: VerifyProblem | undefined } | { size: number; corrupt: VerifyProblem | undefined }> {
  const path = join(dir, name);
  if (name.startsWith('.')) {
    const owner = ownerFromName(name);
    if (owner && ownerAlive(owner, options.self)) return { problem: undefined };
    const problem: VerifyProblem = { kind: 'leftover', subject: path, images: [], detail: 'a temp file of a writer that is gone' };
    if (options.repair) {
      await rm(path, { recursive: true, force: true });
      problem.repaired = 'removed';
    }
    return { problem };
  }
  const hash = createHash(algorithm);
  let size = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).byteLength;
    }
  } catch (cause) {
    return { problem: { kind: 'unreadable', subject: `${algorithm}:${name}`, images: [], detail: ioError('read', path, cause).message } };
  }
  const actual = hash.digest('hex');
  if (actual === name) return { size, corrupt: undefined };
  const problem: VerifyProblem = { kind: 'corrupt', subject: `${algorithm}:${name}`, images: [], detail: `its content hashes to ${algorithm}:${actual}` };
  if (options.repair) {
    await mkdir(options.quarantineDir, { recursive: true });
    const aside = join(options.quarantineDir, `${name}-${Date.now()}`);
    await rename(path, aside);
    problem.repaired = `moved to ${aside}`;
  }
  return { size, corrupt: problem };
}

/** Names the image in the problems of the blobs it reaches, and adds its missing or unparseable ones. */
async function blameImage(blobs: FileBlobStore, image: { name: string; descriptor: Descriptor }, problems: VerifyProblem[]): Promise<void> {
  const corrupt = new Set(problems.filter((p) => p.kind === 'corrupt').map((p) => p.subject));
  await walk(
    blobs,
    image.descriptor,
    (d) => {
      const problem = corrupt.has(d.digest) ? problems.find((p) => p.kind === 'corrupt' && p.subject === d.digest) : undefined;
      if (problem && !problem.images.includes(image.name)) problem.images.push(image.name);
    },
    async (d, why) => {
      const known = problems.find((p) => p.subject === d.digest && p.kind !== 'leftover');
      if (known) {
        if (!known.images.includes(image.name)) known.images.push(image.name);
        return;
      }
      problems.push({
        kind: why === 'missing' && corrupt.has(d.digest) ? 'corrupt' : why,
        subject: d.digest,
        images: [image.name],
        detail: why === 'missing' ? 'not in the store' : 'cannot be parsed as a manifest',
      });
    },
  );
}

/** Visits every descriptor under `root`, calling `bad` for the missing and the unparseable. */
async function walk(
  blobs: FileBlobStore,
  root: Descriptor,
  visit: (d: Descriptor) => void,
  bad: (d: Descriptor, why: 'missing' | 'unreadable') => Promise<void>,
): Promise<void> {
  const seen = new Set<string>();
  const pending = [root];
  while (pending.length) {
    const d = pending.pop()!;
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    visit(d);
    if (!(await blobs.hasBlob(d))) {
      await bad(d, 'missing');
      continue;
    }
    if (!isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) continue;
    try {
      const parsed = parseManifestOrIndex(await blobs.readBlob(d), `manifest ${d.digest}`, d.mediaType);
      if (parsed.kind === 'index') pending.push(...parsed.index.manifests);
      else pending.push(parsed.manifest.config, ...parsed.manifest.layers);
    } catch {
      await bad(d, 'unreadable');
    }
  }
}
