import { createRequire } from 'node:module';

/**
 * The CycloneDX library, loaded when an SBOM is first made: most runs make none, and the library with
 * its SPDX license list is a third of the CLI bundle's size, so the bundle leaves it out (external).
 * It is CommonJS; `require` (not `import()`) also works inside the CLI bundle, which runs in a
 * vm.Script that has no dynamic-import hook.
 */
export type CycloneDxLibrary = typeof import('@cyclonedx/cyclonedx-library');

export type SpdxIds = typeof import('@cyclonedx/cyclonedx-library/SPDX');

/** Only the library's SPDX license list (~15 ms to load, against ~150 ms for the whole library). */
export async function loadSpdxIds(): Promise<SpdxIds> {
  const spdx: SpdxIds = createRequire(import.meta.url)('@cyclonedx/cyclonedx-library/SPDX');
  return spdx;
}

export async function loadCycloneDx(): Promise<CycloneDxLibrary> {
  const library: CycloneDxLibrary = createRequire(import.meta.url)('@cyclonedx/cyclonedx-library');
  return library;
}
