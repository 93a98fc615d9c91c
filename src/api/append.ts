import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { StrataError, ioError } from '../errors/index.js';
import {
  addEmptyHistory,
  appendLayer,
  createdTimestamp,
  emptyImage,
  serializeImage,
  setCreated,
  setFormat,
  updateContainerConfig,
  type Image,
} from '../image/index.js';
import { hostPlatform, type Descriptor, type LayerCompression } from '../oci/index.js';
import { importTarLayer, walkLayerTree, writeLayer, type LayerResult } from '../layer/index.js';
import { writeToLocalStore, annotatedTop, annotateManifest, parseAnnotation } from '../output/index.js';
import { CompositeBlobReader, LocalStore, MemoryBlobReader, type BlobReader } from '../store/index.js';
import { applyConfigEdits, describeEdits, hasEdits, type ConfigEdits } from './config-edits.js';
import { localImageName, openImage, parseImageLocation, writeImage, type OpenedImage, type RegistryIo, type StrataContext } from '../transports/index.js';

export interface AppendLayerSpec {
  path: string;
  /** Absolute path in the image where a directory's contents go. */
  dest?: string;
}

/** `PATH[:/DEST]`: the part after the last `:/` is the destination. */
export function parseLayerSpec(text: string): AppendLayerSpec {
  const split = text.lastIndexOf(':/');
  if (split <= 0) return { path: text };
  return { path: text.slice(0, split), dest: text.slice(split + 1) };
}

export interface AppendOptions extends ConfigEdits {
  /** Any image location; `scratch` or nothing for an empty base. */
  base?: string | undefined;
  layers: readonly AppendLayerSpec[];
  /** Local-store names. */
  tags?: readonly string[];
  /** Image locations to write to (`oci:DIR:TAG`, `docker-archive:FILE`, ...). */
  outputs?: readonly string[];
  compression?: LayerCompression;
  /** Level for new layers: gzip 0-9 (default 6 with barely compressible parts stored), zstd 1-19 (default 3). */
  compressionLevel?: number | undefined;
  /** Without SOURCE_DATE_EPOCH, set every file mtime to the epoch. */
  normalizeMtime?: boolean;
  format?: 'oci' | 'docker';
  /** `--annotation [TYPE[,TYPE][PLATFORM]:]KEY=VALUE`, as buildx takes it; index types make the image an index. */
  annotations?: readonly string[] | undefined;
}

export interface AppendResult {
  descriptor: Descriptor;
  image: Image;
  /** Where the image was written, as given. */
  written: string[];
}

/**
 * Builds an image without a Dockerfile: a base plus layers made from directories or tarballs, plus
 * config edits, like `crane append` + `crane mutate`. Layer blobs go into the local store first
 * (content addressed, so a failed run leaves no visible image), then to every destination.
 */
export async function appendImage(options: AppendOptions, ctx: StrataContext, io: RegistryIo = {}): Promise<AppendResult> {
  const annotations = (options.annotations ?? []).map(parseAnnotation);
  if (options.layers.length === 0 && !hasEdits(options) && annotations.length === 0) {
    throw new StrataError('E_USAGE', 'nothing to append: give --layer PATH, a --set-* option or --annotation');
  }
  for (const spec of options.layers) await checkLayerSource(spec);
  const outputs = (options.outputs ?? []).map((o) => ({ text: o, location: parseImageLocation(o) }));
  const tags = (options.tags ?? []).map((t) => ({ text: t, name: localImageName(t) }));

  const store = await LocalStore.open(ctx.storeRoot);
  let base: OpenedImage | undefined;
  try {
    if (options.base !== undefined && options.base !== 'scratch' && options.base !== '') {
      base = await openImage(parseImageLocation(options.base), ctx, io);
    }
    let image = base ? base.image : emptyImage(ctx.platform ?? hostPlatform(), options.format ?? 'oci');
    if (options.format) image = setFormat(image, options.format);
    const created = createdTimestamp(ctx.sourceDateEpoch, ctx.now);
    for (const spec of options.layers) {
      const source = `${basename(spec.path)}${spec.dest ? `:${spec.dest}` : ''}`;
      image = appendLayer(image, await writeAppendedLayer(spec, image.format, options, ctx, store), {
        created,
        created_by: `strata append --layer ${source}`,
        comment: 'strata',
      });
    }
    if (hasEdits(options)) {
      image = updateContainerConfig(image, (c) => applyConfigEdits(c, options));
      image = addEmptyHistory(image, { created, created_by: `strata append ${describeEdits(options)}`, comment: 'strata' });
    }
    image = setCreated(image, created);
    image = annotateManifest(image, annotations);

    const serialized = serializeImage(image);
    const memory = new MemoryBlobReader()
      .add(serialized.config.descriptor.digest, serialized.config.bytes)
      .add(serialized.manifest.descriptor.digest, serialized.manifest.bytes);
    const readers: BlobReader[] = [memory, store.blobs];
    if (base) readers.push(base.reader);
    const content = { descriptor: annotatedTop(serialized.manifest.descriptor, image, annotations, memory), reader: new CompositeBlobReader(readers) };

    const written: string[] = [];
    // Outputs before tags: a failed output then leaves no tag moved.
    for (const out of outputs) {
      await writeImage(out.location, content, ctx, { ...io, defaultRepoTags: tags.map((t) => t.text) });
      written.push(out.text);
    }
    if (tags.length > 0 || outputs.length === 0) {
      await copyIntoStore(
        store,
        content,
        tags.map((t) => t.name),
        ctx.signal,
      );
      written.push(...tags.map((t) => t.text));
    }
    return { descriptor: content.descriptor, image, written };
  } finally {
    await base?.close();
    store.release();
  }
}

/** One `--layer`: a directory written as a layer, or a tar file (plain or compressed) taken as one. */
async function writeAppendedLayer(
  spec: AppendLayerSpec,
  format: Image['format'],
  options: AppendOptions,
  ctx: StrataContext,
  store: LocalStore,
): Promise<LayerResult> {
  const written = {
    compression: options.compression,
    gzipLevel: options.compressionLevel,
    zstdLevel: options.compressionLevel,
    mediaTypeFamily: format,
    signal: ctx.signal,
  };
  if (!(await stat(spec.path)).isDirectory()) return importTarLayer(spec.path, written, store.blobs);
  const tree = await walkLayerTree(spec.path, spec.dest ? { dest: spec.dest } : {});
  return writeLayer(tree, { ...written, sourceDateEpoch: ctx.sourceDateEpoch, normalizeMtime: options.normalizeMtime }, store.blobs);
}

async function copyIntoStore(
  store: LocalStore,
  content: { descriptor: Descriptor; reader: BlobReader },
  names: string[],
  signal: AbortSignal | undefined,
): Promise<void> {
  await writeToLocalStore(store, content, names, signal);
  if (names.length === 0) await store.layout.setManifest(content.descriptor);
}

async function checkLayerSource(spec: AppendLayerSpec): Promise<void> {
  if (spec.dest !== undefined && !spec.dest.startsWith('/')) {
    throw new StrataError('E_USAGE', `--layer ${spec.path}:${spec.dest}: the destination must be an absolute path`);
  }
  try {
    const info = await stat(spec.path);
    if (!info.isDirectory() && !info.isFile()) throw new StrataError('E_USAGE', `--layer ${spec.path} is neither a directory nor a tarball`);
    if (info.isFile() && spec.dest !== undefined) {
      throw new StrataError('E_USAGE', `--layer ${spec.path}:${spec.dest}: a tarball is used as the layer as it is; a destination applies only to directories`);
    }
  } catch (cause) {
    if (cause instanceof StrataError) throw cause;
    throw ioError('read --layer', spec.path, cause);
  }
}
