import type { Descriptor } from '../oci/index.js';
import type { StrataContext } from './context.js';
import { writeImage } from './destinations.js';
import type { RegistryIo } from './append.js';
import { openImage } from './sources.js';
import { parseImageLocation } from './transport.js';

export interface CopyImageOptions {
  /** Copy the whole index (every platform) rather than the platform's image. */
  allPlatforms?: boolean;
}

/** Copies an image between any two locations, verifying every blob on the way. */
export async function copyImage(source: string, destination: string, ctx: StrataContext, options: CopyImageOptions = {}, io: RegistryIo = {}): Promise<Descriptor> {
  const from = parseImageLocation(source);
  const to = parseImageLocation(destination);
  const opened = await openImage(from, ctx, io);
  try {
    const descriptor = options.allPlatforms || opened.index === undefined ? opened.top.descriptor : opened.manifest.descriptor;
    return await writeImage(to, { descriptor, reader: opened.reader }, ctx, io);
  } finally {
    await opened.close();
  }
}
