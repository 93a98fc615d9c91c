import { StrataError, isStrataError } from '../errors/index.js';
import { buildInspectReport, type InspectReport } from '../inspect/index.js';
import { formatReference, parseImageReference } from '../ref/index.js';
import { type StrataContext, type RegistryIo, openImage, type OpenedImage, parseImageLocation, type ImageLocation } from '../transports/index.js';

export interface InspectResult {
  report: InspectReport;
  raw: { manifest: Buffer; config: Buffer; index?: Buffer };
}

const SOURCE_NAMES: Record<ImageLocation['transport'], string> = {
  local: 'local store',
  docker: 'registry',
  oci: 'oci layout',
  'oci-archive': 'oci archive',
  'docker-archive': 'docker archive',
};

export interface InspectOptions {
  /** Told, before it asks, that a name missing from the local store is asked of its registry. */
  notice?: ((message: string) => void) | undefined;
}

export async function inspectImage(source: string, ctx: StrataContext, io: RegistryIo = {}, options: InspectOptions = {}): Promise<InspectResult> {
  const opened = await openWithFallback(parseImageLocation(source), ctx, io, options);
  try {
    const report = buildInspectReport({
      name: opened.description,
      top: opened.top.descriptor,
      index: opened.index,
      manifestDescriptor: opened.manifest.descriptor,
      manifest: opened.manifest.value,
      config: opened.config.value,
    });
    report.source = SOURCE_NAMES[opened.location.transport];
    const raw: InspectResult['raw'] = { manifest: opened.manifest.bytes, config: opened.config.bytes };
    if (opened.index) raw.index = opened.top.bytes;
    return { report, raw };
  } finally {
    await opened.close();
  }
}

/**
 * A bare name the local store does not have is looked up on its registry, as docker does for
 * `docker image inspect` + pull. When the registry cannot give it either, the error says both, so
 * a typo in a local name is still recognisable as one.
 */
export async function openWithFallback(location: ImageLocation, ctx: StrataContext, io: RegistryIo, options: InspectOptions): Promise<OpenedImage> {
  try {
    return await openImage(location, ctx, io);
  } catch (localError) {
    if (location.transport !== 'local' || !io.openRegistry || !isStrataError(localError, 'E_NOT_FOUND')) throw localError;
    if (/^(sha256:)?[a-f0-9]{12,64}$/.test(location.name)) throw localError;
    let full: string;
    let registry: string;
    try {
      const ref = parseImageReference(location.name);
      full = formatReference(ref);
      registry = registryName(ref.domain);
    } catch {
      throw localError;
    }
    options.notice?.(`"${location.name}" is not in the local store; asking ${registry} for ${full}`);
    try {
      return await openImage({ transport: 'docker', ref: full }, ctx, io);
    } catch (registryError) {
      const why = isStrataError(registryError) ? registryError.message : registryError instanceof Error ? registryError.message : String(registryError);
      throw new StrataError('E_NOT_FOUND', `${localError.message}, and ${registry}, asked for docker://${full}, could not provide it either: ${why}`, {
        hint: 'check the name for a typo (`strata images` lists the local store); for a registry that needs credentials, run `strata login`',
        cause: registryError,
      });
    }
  }
}

/** `docker.io` is Docker Hub to most users; other registries go by their host. */
function registryName(domain: string): string {
  return domain === 'docker.io' ? 'Docker Hub (docker.io)' : `the registry ${domain}`;
}
