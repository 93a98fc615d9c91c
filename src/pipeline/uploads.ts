import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import type { Digest } from '../digest/index.js';
import type { BlobIngester, LocalStore, ReadOptions } from '../store/index.js';
import { type RegistryIo, isRegistryConnection, registryTarget } from '../transports/index.js';
import type { BuildOutputSpec } from './output-spec.js';

/** Uploads bytes as they come; `stored` gives their digest and size once the store has them. */
export type StreamUpload = (bytes: AsyncIterable<Uint8Array>, stored: Promise<StoredBlob>, signal: AbortSignal) => Promise<unknown>;

interface StoredBlob {
  digest: Digest;
  size: number;
}

/** Bytes buffered per destination before the layer write waits for the upload. */
const UPLOAD_BUFFER = 4 * 1024 * 1024;
/** How long the write waits for an upload that takes nothing (a registry that does not answer) before dropping it. */
const STALL_MS = 10_000;

export interface UploadingIngesterOptions {
  /** Default STALL_MS. */
  stallMs?: number | undefined;
}

interface Sink {
  pipe: PassThrough;
  abort: AbortController;
  alive: boolean;
  done: Promise<void>;
}

/**
 * Where a build that pushes writes its new layers: into the store and, while they are written, to every
 * push destination, so upload overlaps the write and the push afterwards finds each layer already there.
 * A destination that falls behind slows the write (bounded buffer); one that fails, or takes nothing for
 * STALL_MS, is dropped without a word, since the push uploads that layer from the store as usual and reports
 * any real problem.
 */
export class UploadingIngester implements BlobIngester {
  private readonly stallMs: number;

  constructor(
    private readonly store: BlobIngester,
    private readonly uploads: readonly StreamUpload[],
    options: UploadingIngesterOptions = {},
  ) {
    this.stallMs = options.stallMs ?? STALL_MS;
  }

  async ingestBlob(data: Readable | AsyncIterable<Uint8Array>, options: ReadOptions = {}): Promise<StoredBlob> {
    // The store hashes the bytes; the uploads close with its digest rather than hashing them again.
    let settle: { resolve(blob: StoredBlob): void; reject(error: unknown): void } = { resolve: () => undefined, reject: () => undefined };
    const stored = new Promise<StoredBlob>((resolve, reject) => (settle = { resolve, reject }));
    stored.catch(() => undefined);
    const sinks = this.uploads.map((upload): Sink => {
      // Chunks leave as they came: a byte-mode read() (what async iteration calls) would concatenate
      // the ones buffered into one more copy of the layer.
      const pipe = new PassThrough({ writableHighWaterMark: UPLOAD_BUFFER, readableObjectMode: true, readableHighWaterMark: 4 });
      // A failed upload is dropped, never thrown: its stream's errors have nowhere to go.
      pipe.on('error', () => undefined);
      const abort = new AbortController();
      const sink: Sink = { pipe, abort, alive: true, done: Promise.resolve() };
      sink.done = upload(pipe, stored, abort.signal).then(
        () => undefined,
        () => {
          sink.alive = false;
          pipe.destroy();
        },
      );
      return sink;
    });
    let complete = false;
    const stallMs = this.stallMs;
    async function* tee(): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of data) {
          for (const sink of sinks) {
            if (sink.alive && !sink.pipe.write(chunk)) await drainOrDrop(sink, stallMs);
          }
          yield chunk;
        }
        complete = true;
      } finally {
        for (const sink of sinks) {
          if (complete && sink.alive) {
            sink.pipe.end();
          } else {
            sink.abort.abort(new Error('the layer write stopped'));
            sink.pipe.destroy();
          }
        }
      }
    }
    try {
      const blob = await this.store.ingestBlob(tee(), options);
      settle.resolve(blob);
      return blob;
    } catch (error) {
      settle.reject(error);
      throw error;
    } finally {
      await Promise.all(sinks.map((s) => s.done));
    }
  }
}

async function drainOrDrop(sink: Sink, stallMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<'stalled'>((resolve) => (timer = setTimeout(() => resolve('stalled'), stallMs)));
  try {
    if ((await Promise.race([once(sink.pipe, 'drain'), sink.done, stalled])) === 'stalled') {
      sink.alive = false;
      sink.abort.abort(new Error(`the upload took nothing for ${stallMs} ms`));
      sink.pipe.destroy();
    }
  } finally {
    clearTimeout(timer);
  }
}

/** The names an image is pushed to by these outputs. */
export function pushNames(outputs: readonly BuildOutputSpec[], names: readonly string[]): string[] {
  return [...new Set(outputs.flatMap((o) => (o.type === 'registry' || (o.type === 'image' && o.push) ? (o.names ?? names) : [])))];
}

/** An UploadingIngester over the store for these push destinations (one per repository), or none. */
export function uploadingIngester(store: LocalStore, names: readonly string[], io: RegistryIo, signal: AbortSignal | undefined): UploadingIngester | undefined {
  if (!isRegistryConnection(io) || names.length === 0) return undefined;
  const targets = new Map<string, StreamUpload>();
  for (const name of names) {
    const target = registryTarget(io, name);
    const key = `${target.client.registry}/${target.repository}`;
    if (targets.has(key)) continue;
    targets.set(key, async (bytes, stored, uploadSignal) => {
      const sent = await target.client.streamBlob(target.repository, bytes, {
        digest: stored,
        signal: signal ? AbortSignal.any([signal, uploadSignal]) : uploadSignal,
      });
      io.progress?.({ type: 'blob-streamed', digest: sent.digest, size: sent.size, repository: key });
    });
  }
  return new UploadingIngester(store.blobs, [...targets.values()]);
}
