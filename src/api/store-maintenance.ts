import { currentOwner, FileBlobStore, LocalStore, verifyBlobs, type VerifyReport } from '../store/index.js';
import { type StrataContext, pullToStore, type RegistryConnection } from '../transports/index.js';

/**
 * `strata verify [--repair]`: hashes every blob of the store and checks that every named image is
 * whole. With `repair`, corrupt blobs are moved aside, leftover temp files removed, and images that
 * miss a blob are pulled again by digest from where they were pulled (when strata recorded it; a
 * built image must be built again). The report says what was found and what was done.
 */
export async function verifyStore(
  ctx: StrataContext,
  options: { repair: boolean; conn?: RegistryConnection | undefined; signal?: AbortSignal | undefined },
): Promise<VerifyReport> {
  const store = await LocalStore.open(ctx.storeRoot);
  // Unleased and without quarantine: verifying only reads, and reads what is really there.
  const blobs = new FileBlobStore(store.blobs.dir);
  const named = await store.list();
  const report = await verifyBlobs(blobs, named, { repair: options.repair, quarantineDir: store.quarantineDir, self: currentOwner(), signal: options.signal });
  if (!options.repair) return report;
  const broken = new Set(report.problems.flatMap((p) => p.images));
  for (const image of named.filter((i) => broken.has(i.name))) {
    const source = await store.sourceOf(image.descriptor.digest);
    const problems = report.problems.filter((p) => p.images.includes(image.name));
    if (!source || !options.conn) {
      for (const p of problems)
        p.repaired = note(
          p.repaired,
          source ? 'not repaired: no registry access here' : `not repaired: ${image.name} was not pulled (build it again, or rmi it)`,
        );
      continue;
    }
    try {
      await pullToStore(`docker://${source.repository}@${image.descriptor.digest}`, ctx, options.conn, { allPlatforms: source.allPlatforms, name: image.name });
      for (const p of problems) p.repaired = note(p.repaired, `fetched again from ${source.repository}`);
    } catch (cause) {
      for (const p of problems)
        p.repaired = note(
          p.repaired,
          `not repaired: pulling ${source.repository}@${image.descriptor.digest} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
        );
    }
  }
  return report;
}

function note(before: string | undefined, now: string): string {
  return before ? `${before}; ${now}` : now;
}
