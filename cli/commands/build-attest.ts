import type { Command } from 'commander';
import { collect } from '../options.js';

/** The supply-chain flags of `strata build`, as buildx spells them. */
export interface AttestFlags {
  sbom?: string | boolean;
  provenance?: string | boolean;
  attest: string[];
  attestTo?: string;
  annotation: string[];
}

export function addAttestOptions(command: Command): Command {
  return command
    .option(
      '--sbom [options]',
      'attach an SBOM of the image: true, false, or format=spdx|cyclonedx[,scan-stage=true|false][,scan-context=true|false] (default SPDX 2.3; scan-stage: SBOMs of the build stages too; scan-context: of the build context)',
    )
    .option('--provenance [options]', 'attach SLSA provenance: true, false, or mode=min|max[,version=v1|v0.2] (default mode=min, v1)')
    .option('--attest <type=sbom|provenance,...>', 'attach an attestation (buildx syntax); repeatable', collect, [])
    .option('--attest-to <where>', 'where attestations go: index (BuildKit layout), referrers (OCI 1.1) or both (default index)')
    .option(
      '--annotation <[type[platform]:]key=value>',
      'add an annotation (types manifest, index, manifest-descriptor, index-descriptor); repeatable',
      collect,
      [],
    );
}

/** The options buildImage takes for them. A bare flag means true. */
export function attestOptions(flags: AttestFlags): { sbom?: string; provenance?: string; attest: string[]; attestTo?: string; annotations: string[] } {
  const text = (v: string | boolean | undefined): string | undefined => (v === undefined ? undefined : v === true ? 'true' : v === false ? 'false' : v);
  const sbom = text(flags.sbom);
  const provenance = text(flags.provenance);
  return {
    ...(sbom !== undefined ? { sbom } : {}),
    ...(provenance !== undefined ? { provenance } : {}),
    attest: flags.attest,
    ...(flags.attestTo !== undefined ? { attestTo: flags.attestTo } : {}),
    annotations: flags.annotation,
  };
}
