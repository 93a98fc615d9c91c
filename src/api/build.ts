import { runBuildJob, type BuildImageOptions, type BuildImageResult } from '../pipeline/index.js';
import { writeFileAtomic } from '../store/index.js';
import { familiarImageName, type RegistryIo, type StrataContext } from '../transports/index.js';
import { boundStoreCache } from './prune.js';

/**
 * `strata build`: the build (pipeline/build-job.ts), then what the command adds around it: the bound on
 * the store's cache and the --iidfile and --metadata-file files.
 */
export async function buildImage(options: BuildImageOptions, ctx: StrataContext, io: RegistryIo = {}): Promise<BuildImageResult> {
  const result = await runBuildJob(options, ctx, io);
  if (options.explainCache === true) return result;
  if (options.cacheLimit !== 'off' && result.blobsWritten > 0) {
    // Only a build that wrote a blob can have grown the cache; a fully cached one skips the walk.
    await boundStoreCache(ctx, options.cacheLimit);
  }
  if (options.iidFile) await writeFileAtomic(options.iidFile, result.imageId);
  if (options.metadataFile) {
    await writeFileAtomic(
      options.metadataFile,
      `${JSON.stringify(
        {
          // BuildKit gives the config digest only for a single-platform image.
          ...(result.configDigest === undefined ? {} : { 'containerimage.config.digest': result.configDigest }),
          'containerimage.digest': result.manifest.digest,
          'containerimage.descriptor': result.manifest,
          'image.name': result.names.map(familiarImageName).join(','),
          'strata.executor': result.executor,
        },
        null,
        2,
      )}\n`,
    );
  }
  return result;
}
