import { diffImages, type DiffOptions, type ImageDiff } from '../diff/index.js';
import { type RegistryIo, type StrataContext, openImage, type OpenedImage, parseImageLocation } from '../transports/index.js';

export interface DiffImagesOptions extends DiffOptions {
  /** Compare only the context's platform's images (`--platform`), not every platform of an index. */
  singlePlatform?: boolean | undefined;
}

/** `strata diff A B`: two images from any transports, compared platform by platform, with the reasons. */
export async function diffImageLocations(a: string, b: string, ctx: StrataContext, io: RegistryIo = {}, options: DiffImagesOptions = {}): Promise<ImageDiff> {
  const openedA = await openImage(parseImageLocation(a), ctx, io);
  let openedB: OpenedImage | undefined;
  try {
    openedB = await openImage(parseImageLocation(b), ctx, io);
    const side = (o: OpenedImage) => ({
      name: o.description,
      top: options.singlePlatform === true ? o.manifest.descriptor : o.top.descriptor,
      reader: o.reader,
    });
    return await diffImages(side(openedA), side(openedB), options);
  } finally {
    await openedA.close();
    await openedB?.close();
  }
}
