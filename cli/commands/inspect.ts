import type { Command } from 'commander';
import { StrataError, inspectImage, renderInspectText } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, writeLine } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';
import { printAttestation, printReferrers } from './inspect-attest.js';

export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command('inspect')
      .description('show an image: digest, platform, size, config and the history beside the layers it made')
      .argument('<image>', 'a local name, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or docker://REF')
      .option('--format <text|json>', 'output format', 'text')
      .option('--raw <manifest|config|index>', 'print the raw manifest, config or index bytes')
      .option('--platform <os/arch[/variant]>', "which image of a multi-platform index (default: this host's)")
      .option('--sbom', "print the image's SBOM attestation: a table of packages, or the document with --format json")
      .option('--provenance', "print the image's provenance attestation (JSON)"),
  ).action(async (image: string, flags: RegistryFlags & { format: string; raw?: string; platform?: string; sbom?: boolean; provenance?: boolean }) => {
    const api = apiContext(ctx, { platform: flags.platform });
    if (flags.format !== 'text' && flags.format !== 'json') throw new StrataError('E_USAGE', `--format must be text or json, got "${flags.format}"`);
    if (flags.sbom === true || flags.provenance === true) {
      await withRegistry(ctx, api, flags, (io) => printAttestation(ctx, image, flags.sbom === true ? 'sbom' : 'provenance', flags.format, api, io));
      return;
    }
    const result = await withRegistry(ctx, api, flags, (io) => inspectImage(image, api, io, { notice: (m) => ctx.stderr.write(`${m}\n`) }));
    if (flags.raw !== undefined) {
      const raw =
        flags.raw === 'manifest' ? result.raw.manifest : flags.raw === 'config' ? result.raw.config : flags.raw === 'index' ? result.raw.index : undefined;
      if (flags.raw !== 'manifest' && flags.raw !== 'config' && flags.raw !== 'index')
        throw new StrataError('E_USAGE', `--raw must be manifest, config or index, got "${flags.raw}"`);
      if (!raw) throw new StrataError('E_NOT_FOUND', `${image} is a single-platform image; it has no index`);
      ctx.stdout.write(raw);
      return;
    }
    if (flags.format === 'json') writeLine(ctx.stdout, JSON.stringify(result.report, null, 2));
    else {
      ctx.stdout.write(renderInspectText(result.report));
      if (/^docker:\/\//.test(image)) await withRegistry(ctx, api, flags, (io) => printReferrers(ctx, image, api, io));
    }
  });
}
