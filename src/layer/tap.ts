import type { PackHeader } from './tar-header.js';
import type { LayerEntry, LayerEntryView } from './types.js';
import { classifyWhiteout } from './whiteout.js';

/**
 * An entry being written, as readLayer reads it back: names as they are (both sides keep non-UTF-8 bytes in the
 * surrogateescape form), header fields as the tar header has them.
 */
export function entryView(entry: LayerEntry, header: PackHeader): LayerEntryView {
  const path = entry.path;
  const link = entry.linkTarget;
  const base = {
    path,
    type: entry.type,
    mode: entry.mode & 0o7777,
    uid: header.uid ?? 0,
    gid: header.gid ?? 0,
    size: entry.type === 'file' ? entry.size : 0,
    mtime: Math.floor((header.mtime?.getTime() ?? 0) / 1000),
    linkname: link,
    devMajor: header.devmajor ?? 0,
    devMinor: header.devminor ?? 0,
  };
  const whiteout = classifyWhiteout(path);
  if (whiteout.kind === 'opaque') return { kind: 'opaque', dir: whiteout.dir, ...base };
  if (whiteout.kind === 'whiteout') return { kind: 'whiteout', target: whiteout.target, ...base };
  return { kind: 'entry', ...base };
}

/** One buffer as content. */
export async function* contentOf(body: Buffer | undefined): AsyncGenerator<Buffer> {
  if (body !== undefined && body.length > 0) yield body;
}

/**
 * Writes `chunks` with `write` while a tap reads them: the tap pulls, each chunk is written before the tap
 * sees it, and what the tap leaves unread is written after it stops. A failure to read the chunks is the
 * write's failure, whatever the tap made of it.
 */
export async function teeChunks(
  chunks: AsyncIterable<Buffer>,
  write: (chunk: Buffer) => Promise<void>,
  take: (content: AsyncIterable<Buffer>) => Promise<void>,
): Promise<void> {
  const source = chunks[Symbol.asyncIterator]();
  let failure: { error: unknown } | undefined;
  async function* shown(): AsyncGenerator<Buffer> {
    for (;;) {
      let chunk: Buffer;
      try {
        const n = await source.next();
        if (n.done === true) return;
        chunk = n.value;
        await write(chunk);
      } catch (error) {
        failure = { error };
        throw error;
      }
      yield chunk;
    }
  }
  let tapFailure: { error: unknown } | undefined;
  try {
    await take(shown());
  } catch (error) {
    tapFailure = { error };
  }
  if (failure !== undefined) throw failure.error;
  if (tapFailure !== undefined) throw tapFailure.error;
  for (;;) {
    const n = await source.next();
    if (n.done === true) return;
    await write(n.value);
  }
}
