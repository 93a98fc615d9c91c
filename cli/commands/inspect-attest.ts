import { StrataError, readImageAttestations, sbomName, sbomPackages, type FoundStatement, type RegistryIo, type StrataContext } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { writeLine } from '../options.js';

const SBOM_TYPES = ['https://spdx.dev/Document', 'https://cyclonedx.org/bom'];

/**
 * `strata inspect IMAGE --sbom|--provenance`: the chosen platform's attestation (JSON with
 * `--format json`; for an SBOM otherwise a table of its packages), from the index or the referrers.
 * An image's own SBOM comes first (the JSON is that one, as buildx's `.SBOM.SPDX`); the tables of the
 * stages and the context scanned besides (`scan-stage`, `scan-context`) follow it.
 */
export async function printAttestation(
  ctx: CliContext,
  image: string,
  what: 'sbom' | 'provenance',
  format: string,
  api: StrataContext,
  io: RegistryIo,
): Promise<void> {
  const found = await readImageAttestations(image, api, io);
  const all = found.statements.filter((s) =>
    what === 'sbom' ? SBOM_TYPES.includes(s.predicateType) : s.predicateType.startsWith('https://slsa.dev/provenance/'),
  );
  const wanted = all[0];
  if (!wanted) {
    throw new StrataError('E_NOT_FOUND', `${image} (${found.subject.digest}) has no ${what === 'sbom' ? 'SBOM' : 'provenance'} attestation`, {
      hint: 'build with --sbom / --provenance to attach one',
    });
  }
  if (what === 'provenance' || format === 'json') {
    writeLine(ctx.stdout, JSON.stringify(wanted.statement.predicate, null, 2));
    return;
  }
  for (const [i, sbom] of all.entries()) {
    if (i > 0) writeLine(ctx.stdout, '');
    printPackages(ctx, sbom);
  }
}

function printPackages(ctx: CliContext, sbom: FoundStatement): void {
  const rows = sbomPackages(sbom);
  const widths = [4, 7, 7].map((w, i) => Math.max(w, ...rows.map((r) => [r.name, r.version, r.license][i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c))
      .join('  ')
      .trimEnd();
  writeLine(ctx.stdout, line(['NAME', 'VERSION', 'LICENSE', 'PURL']));
  for (const r of rows) writeLine(ctx.stdout, line([r.name, r.version, r.license || '-', r.purl]));
  const name = sbomName(sbom);
  writeLine(
    ctx.stdout,
    `${rows.length} package${rows.length === 1 ? '' : 's'}${name === '' ? '' : ` in ${name}`} (${sbom.predicateType}, from the ${sbom.from === 'index' ? 'image index' : 'referrers'})`,
  );
}

/** The referrers of a registry image, one line each, after `strata inspect`'s text. */
export async function printReferrers(ctx: CliContext, image: string, api: StrataContext, io: RegistryIo): Promise<void> {
  const found = await readImageAttestations(image, api, io);
  if (found.referrers.length === 0) return;
  writeLine(ctx.stdout, `Referrers (${found.referrers.length}):`);
  for (const r of found.referrers) {
    const type = r.annotations?.['in-toto.io/predicate-type'] ?? r.artifactType ?? r.mediaType;
    writeLine(ctx.stdout, `  ${r.digest}  ${type}`);
  }
}
