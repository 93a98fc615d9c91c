import { posix } from 'node:path';
import type { LayerEntryHeader, LayerReadEntry } from './types.js';
import { WHITEOUT_PREFIX, classifyWhiteout, type WhiteoutKind } from './whiteout.js';

/** Largest file whose bytes a record keeps. */
export const MAX_RECORDED_CONTENT = 1024 * 1024;

/** The files whose bytes a record keeps, by name: what name lookups (`--chown`, USER) read. */
export const RECORDED_CONTENT_NAMES: ReadonlySet<string> = new Set(['passwd', 'group']);

/** One entry of a layer as it was read (cleaned path, header fields), without its content. */
export type RecordedEntry = LayerEntryHeader;

/**
 * Everything the file index needs from one layer, in tar order: each entry's metadata (whiteouts and opaque
 * markers are entries whose kind follows from the path) and the bytes of the small files named in
 * RECORDED_CONTENT_NAMES, by entry position. Replaying it gives what reading the blob gives, minus other content.
 */
export interface LayerRecord {
  entries: RecordedEntry[];
  contents: Map<number, Buffer>;
}

export function emptyRecord(): LayerRecord {
  return { entries: [], contents: new Map() };
}

/**
 * Passes a layer's entries through unchanged while writing them into `record`. The content of a recorded file is
 * read here and handed on as a buffer, so whoever consumes the entries may read it too, or not.
 */
export async function* recordEntries(entries: AsyncIterable<LayerReadEntry>, record: LayerRecord): AsyncGenerator<LayerReadEntry> {
  for await (const entry of entries) {
    const index = record.entries.length;
    record.entries.push({
      path: entry.path,
      type: entry.type,
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      size: entry.size,
      mtime: entry.mtime,
      linkname: entry.linkname,
      devMajor: entry.devMajor,
      devMinor: entry.devMinor,
    });
    if (entry.kind === 'entry' && entry.type === 'file' && entry.size <= MAX_RECORDED_CONTENT && RECORDED_CONTENT_NAMES.has(posix.basename(entry.path))) {
      const parts: Buffer[] = [];
      for await (const chunk of entry.content) parts.push(chunk);
      const bytes = Buffer.concat(parts);
      record.contents.set(index, bytes);
      yield { ...entry, content: once(bytes) };
    } else {
      yield entry;
    }
  }
}

const NO_CONTENT: AsyncIterable<Buffer> = {
  async *[Symbol.asyncIterator]() {
    // A replayed entry's bytes, when kept, come with the record, not through here.
  },
};

/** A recorded entry as readLayer gives it, without content (the record holds the bytes it kept). */
export function replayEntry(r: RecordedEntry): LayerReadEntry {
  const whiteout: WhiteoutKind = r.path.includes(WHITEOUT_PREFIX) ? classifyWhiteout(r.path) : { kind: 'entry' };
  const head = {
    path: r.path,
    type: r.type,
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    size: r.size,
    mtime: r.mtime,
    linkname: r.linkname,
    devMajor: r.devMajor,
    devMinor: r.devMinor,
    content: NO_CONTENT,
  };
  return whiteout.kind === 'opaque'
    ? { kind: 'opaque', dir: whiteout.dir, ...head }
    : whiteout.kind === 'whiteout'
      ? { kind: 'whiteout', target: whiteout.target, ...head }
      : { kind: 'entry', ...head };
}

function once(bytes: Buffer): AsyncIterable<Buffer> {
  return {
    async *[Symbol.asyncIterator]() {
      if (bytes.length > 0) yield bytes;
    },
  };
}
