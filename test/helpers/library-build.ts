/**
 * Builds through the library (no CLI process) from named in-memory bases: for tests that build many
 * times and compare what came out. Bases are opened by their FROM reference from `bases`.
 */
import {
  StrataError,
  runBuild,
  serializeImage,
  type BuildEvent,
  type BuildInput,
  type BlobReader,
  type BuildOutcome,
  type Executor,
  type Image,
  type LocalStore,
  type Platform,
  readLayer,
} from '../../src/internals.js';

export const AMD64: Platform = { os: 'linux', architecture: 'amd64' };

export interface LibraryBuildOptions {
  store: LocalStore;
  bases: ReadonlyMap<string, Image>;
  executor: Executor;
  contextDir: string;
  scratchDir?: string;
  /** Where the bases' blobs are read, when not from the store itself (a cold store stays empty of them). */
  baseReader?: BlobReader;
  /** `--build-context NAME=DIR` directories, by name. */
  namedContexts?: Readonly<Record<string, string>>;
}

export interface LibraryBuildResult extends BuildOutcome {
  events: BuildEvent[];
  /** Step events by state, in order. */
  states: Array<'cached' | 'done' | 'metadata'>;
}

export async function libraryBuild(o: LibraryBuildOptions, text: string, input: Partial<BuildInput> = {}): Promise<LibraryBuildResult> {
  const events: BuildEvent[] = [];
  const outcome = await runBuild(
    {
      dockerfile: { file: 'Dockerfile', text },
      contextDir: o.contextDir,
      buildArgs: {},
      platform: AMD64,
      buildPlatform: AMD64,
      labels: {},
      noCache: false,
      sourceDateEpoch: 1_700_000_000,
      buildContexts: o.namedContexts ?? {},
      ...input,
    },
    {
      store: o.store,
      openImage: async (ref) => {
        const image = o.bases.get(ref);
        if (!image) throw new StrataError('E_NOT_FOUND', `no base ${ref} in this test`);
        return { image, reader: o.baseReader ?? o.store.blobs, description: ref };
      },
      openNamedContext: async (name) => {
        const dir = o.namedContexts?.[name];
        if (dir === undefined) throw new StrataError('E_NOT_FOUND', `no named context ${name} in this test`);
        return { kind: 'dir', dir };
      },
      executor: o.executor,
      privileged: true,
      scratchDir: o.scratchDir,
      now: () => new Date('2024-01-01T00:00:00Z'),
      events: (e) => events.push(e),
    },
  );
  const states = events.flatMap((e) => (e.type === 'step' ? [e.state] : []));
  return { ...outcome, events, states };
}

/** The image's manifest digest (config and layers by digest: equal digests mean byte-identical images). */
export function manifestDigest(image: Image): string {
  return serializeImage(image).manifest.descriptor.digest;
}

/** How many blobs the store holds (a replayed step writes none). */
export async function blobCount(store: LocalStore): Promise<number> {
  return (await store.blobs.listBlobs()).length;
}

/** Each layer's regular files by path, as text, in layer order. */
export async function layerFiles(store: LocalStore, image: Image): Promise<Array<Map<string, string>>> {
  const out: Array<Map<string, string>> = [];
  for (const l of image.layers) {
    const files = new Map<string, string>();
    for await (const entry of readLayer(await store.blobs.openBlob(l.descriptor), { compression: 'gzip' })) {
      if (entry.kind !== 'entry' || entry.type !== 'file') continue;
      const chunks: Buffer[] = [];
      for await (const c of entry.content) chunks.push(c);
      files.set(entry.path, Buffer.concat(chunks).toString());
    }
    out.push(files);
  }
  return out;
}
