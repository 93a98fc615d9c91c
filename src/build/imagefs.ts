import { indexImageFilesystem, extractImageToDirectory, type ImageFsIndex } from '../layer/index.js';
import type { Image } from '../image/index.js';
import type { BlobReader } from '../store/index.js';
import { imageContentKey } from './cache.js';
import type { BuildSession } from './session.js';

const USER_FILES = ['/etc/passwd', '/etc/group'];

/**
 * The image's merged filesystem as metadata, with /etc/passwd and /etc/group captured for name
 * lookups. Reading it streams the image's layers (downloading a registry base's), so handlers ask
 * only when they must know what is there. Kept per build, keyed by the image's content.
 */
export function imageFilesystem(session: BuildSession, image: Image, reader: BlobReader): Promise<ImageFsIndex> {
  return session.memo(`fs-index:${imageContentKey(image)}`, () =>
    indexImageFilesystem(image.layers.map((l) => l.descriptor), reader, { wantContent: USER_FILES, signal: session.deps.signal }),
  );
}

/** The image unpacked into a private directory (for COPY --from and RUN), made once per build. */
export function imageRootfs(session: BuildSession, image: Image, reader: BlobReader): Promise<string> {
  return session.memo(`rootfs:${imageContentKey(image)}`, async () => {
    const root = await session.tempDir('rootfs');
    await extractImageToDirectory(image.layers.map((l) => l.descriptor), reader, root, {
      privileged: session.deps.privileged === true,
      signal: session.deps.signal,
    });
    return root;
  });
}
