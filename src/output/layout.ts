import { rm, stat } from 'node:fs/promises';
import type { Descriptor } from '../oci/index.js';
import {
  type FileBlobStore,
  type LocalStore,
  OciLayout,
  copyContentTree,
  linkingSink,
  makeScratchDir,
  directoryMembers,
  writeDeterministicTar,
  type BlobReader,
} from '../store/index.js';

export interface ImageContent {
  /** The manifest or index to write. */
  descriptor: Descriptor;
  /** Where its blobs can be read from. */
  reader: BlobReader;
}

/** Copies an image into the local store and points each name at it. */
export async function writeToLocalStore(store: LocalStore, content: ImageContent, names: readonly string[], signal?: AbortSignal): Promise<void> {
  await copyContentTree(content.descriptor, content.reader, store.blobs, { signal });
  // An interrupted command names nothing: its blobs wait for garbage collection instead.
  signal?.throwIfAborted();
  for (const name of names) await store.tag(name, content.descriptor);
}

export interface LayoutWriteOptions {
  /**
   * A blob directory (the local store's) whose blobs are hard-linked into the layout instead of copied, where
   * the file system allows: the layout then shares those files with the store, which keeps blobs immutable.
   */
  linkFrom?: FileBlobStore | undefined;
  /** Stops the copy; no index entry is written once it has fired. */
  signal?: AbortSignal | undefined;
}

/**
 * Writes an image into an OCI layout directory (made when missing). The index is updated last, in
 * one rename; a layout this call created is removed again when it fails.
 */
export async function writeToOciLayout(dir: string, content: ImageContent, tag: string | undefined, options: LayoutWriteOptions = {}): Promise<void> {
  const existed = await stat(dir).then(
    () => true,
    () => false,
  );
  try {
    const layout = await OciLayout.open(dir, { create: true });
    const sink = options.linkFrom === undefined ? layout.blobs : linkingSink(layout.blobs, options.linkFrom);
    await copyContentTree(content.descriptor, content.reader, sink, { signal: options.signal });
    options.signal?.throwIfAborted();
    await layout.setManifest(content.descriptor, tag);
  } catch (cause) {
    if (!existed) await rm(dir, { recursive: true, force: true });
    throw cause;
  }
}

/** An oci-archive is a tar of an OCI layout; it is assembled in `tmpBase` and renamed into place. */
export async function writeOciArchive(
  file: string,
  content: ImageContent,
  tag: string | undefined,
  tmpBase: string,
  options: LayoutWriteOptions = {},
): Promise<void> {
  const dir = await makeScratchDir(tmpBase, 'oci-archive');
  try {
    await writeToOciLayout(dir, content, tag, options);
    await writeDeterministicTar(file, await directoryMembers(dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
