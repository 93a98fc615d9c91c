import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { ioError } from '../errors/index.js';
import { flattenImage, type FlattenStats } from '../diff/index.js';
import { type RegistryIo, type StrataContext, openImage, parseImageLocation } from '../transports/index.js';

/**
 * `strata export IMAGE -o rootfs.tar`: the image's flattened root filesystem (whiteouts applied) as one
 * tar, streamed from the layers. A file is written beside its final name and renamed into place only when
 * complete, so a failure leaves nothing half written; a stream (standard output) is left open.
 */
export async function exportRootfs(source: string, output: string | Writable, ctx: StrataContext, io: RegistryIo = {}): Promise<FlattenStats> {
  const opened = await openImage(parseImageLocation(source), ctx, io);
  try {
    const layers = opened.manifest.value.layers;
    if (typeof output !== 'string') return await flattenImage(layers, opened.reader, output, { endOutput: false });
    const temp = join(dirname(output), `.${basename(output)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const stats = await flattenImage(layers, opened.reader, createWriteStream(temp, { flags: 'wx', mode: 0o644 }));
      await rename(temp, output).catch((cause: unknown) => {
        throw ioError('write', output, cause);
      });
      return stats;
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  } finally {
    await opened.close();
  }
}
