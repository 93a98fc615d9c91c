import { StrataError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import { type StrataContext, localImageName, type RegistryConnection, parseImageLocation } from '../transports/index.js';
import { copyImage } from './copy.js';

export interface PushOptions {
  /** Push only the context's platform's image of an index; default: the image as it is (every platform). */
  singlePlatform?: boolean | undefined;
  /** `v2s2`: Docker schema 2 manifests over the same blobs (the digest changes). */
  format?: 'oci' | 'v2s2' | undefined;
}

/**
 * `strata push SRC [DEST]`: SRC is a local-store name or any location; DEST a registry reference
 * (`docker://` optional), by default the local name SRC stands for.
 */
export async function pushFromLocation(
  source: string,
  destination: string | undefined,
  ctx: StrataContext,
  conn: RegistryConnection,
  options: PushOptions = {},
): Promise<{ destination: string; descriptor: Descriptor }> {
  const dest = destination === undefined ? defaultDestination(source) : registryDestination(destination);
  const descriptor = await copyImage(source, dest, ctx, { allPlatforms: options.singlePlatform !== true, format: options.format }, conn);
  return { destination: dest, descriptor };
}

function defaultDestination(source: string): string {
  const location = parseImageLocation(source);
  if (location.transport === 'local') return `docker://${localImageName(location.name)}`;
  if (location.transport === 'docker-archive' && location.ref !== undefined && !location.ref.startsWith('@')) {
    return `docker://${localImageName(location.ref)}`;
  }
  throw new StrataError('E_USAGE', `${source} does not say where to push it`, { hint: 'give the destination: strata push SRC REGISTRY/REPO[:TAG]' });
}

function registryDestination(text: string): string {
  const location = parseImageLocation(text);
  if (location.transport === 'docker') return text;
  if (location.transport === 'local') return `docker://${text}`;
  throw new StrataError('E_USAGE', `push writes to registries; ${text} is not a registry reference`, { hint: `use \`strata copy SRC ${text}\`` });
}
