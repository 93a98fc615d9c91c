import { StrataError } from '../errors/index.js';
import type { ProvenanceMode, ProvenanceVersion } from './provenance.js';

export interface SbomRequest {
  format: 'spdx' | 'cyclonedx';
  /**
   * `scan-stage=true`: scan every other stage the build ran too; `false`: none. Not given: the stages
   * whose `BUILDKIT_SBOM_SCAN_STAGE` ARG asks for it, as BuildKit does.
   */
  scanStage?: boolean | undefined;
  /**
   * `scan-context=true`: scan the build context too (what the build read of it); `false`: not. Not given:
   * when the target's `BUILDKIT_SBOM_SCAN_CONTEXT` ARG asks for it, as BuildKit does.
   */
  scanContext?: boolean | undefined;
}

export interface ProvenanceRequest {
  mode: ProvenanceMode;
  version: ProvenanceVersion;
}

export interface AttestRequest {
  sbom?: SbomRequest | undefined;
  provenance?: ProvenanceRequest | undefined;
}

function attrs(text: string, flag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new StrataError('E_USAGE', `${flag} "${text}": "${part}" is not KEY=VALUE`);
    out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return out;
}

function bool(value: string, flag: string, text: string): boolean {
  if (/^(true|1)$/i.test(value)) return true;
  if (/^(false|0)$/i.test(value)) return false;
  throw new StrataError('E_USAGE', `${flag} "${text}": "${value}" is not true or false`);
}

function known(a: Map<string, string>, keys: readonly string[], flag: string, text: string): void {
  for (const k of a.keys()) {
    if (!keys.includes(k)) throw new StrataError('E_USAGE', `${flag} "${text}": unknown attribute "${k}"`, { hint: `attributes: ${keys.join(', ')}` });
  }
}

function sbomOf(a: Map<string, string>, flag: string, text: string): SbomRequest | undefined {
  known(a, ['type', 'disabled', 'format', 'scan-stage', 'scan-context', 'generator'], flag, text);
  if (a.has('disabled') && bool(a.get('disabled')!, flag, text)) return undefined;
  const format = (a.get('format') ?? 'spdx').toLowerCase();
  if (format !== 'spdx' && format !== 'cyclonedx' && format !== 'spdx-json' && format !== 'cyclonedx-json') {
    throw new StrataError('E_USAGE', `${flag} "${text}": format must be spdx or cyclonedx`);
  }
  // generator= names BuildKit's scanner image; strata scans in process, so it is accepted and not used.
  const out: SbomRequest = { format: format.startsWith('cyclonedx') ? 'cyclonedx' : 'spdx' };
  if (a.has('scan-stage')) out.scanStage = bool(a.get('scan-stage')!, flag, text);
  if (a.has('scan-context')) out.scanContext = bool(a.get('scan-context')!, flag, text);
  return out;
}

function provenanceOf(a: Map<string, string>, flag: string, text: string): ProvenanceRequest | undefined {
  known(a, ['type', 'disabled', 'mode', 'version', 'builder-id'], flag, text);
  if (a.has('disabled') && bool(a.get('disabled')!, flag, text)) return undefined;
  const mode = a.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new StrataError('E_USAGE', `${flag} "${text}": mode must be min or max`);
  const raw = (a.get('version') ?? 'v1').toLowerCase();
  const version = raw === 'v1' || raw === 'v1.0' || raw === '1' ? 'v1' : raw === 'v0.2' || raw === '0.2' ? 'v0.2' : undefined;
  if (version === undefined) throw new StrataError('E_USAGE', `${flag} "${text}": version must be v1 or v0.2`);
  return { mode, version };
}

/**
 * `--sbom[=true|false|KEY=VALUE,…]`, `--provenance[=true|false|mode=min|max,version=v1|v0.2]` and
 * `--attest type=sbom|provenance,…` as buildx takes them; a later flag for the same type wins.
 */
export function parseAttestOptions(options: {
  sbom?: string | undefined;
  provenance?: string | undefined;
  attest?: readonly string[] | undefined;
}): AttestRequest {
  const out: AttestRequest = {};
  const shorthand = (value: string, flag: string, type: string): Map<string, string> | undefined => {
    if (value === '' || /^(true|1)$/i.test(value)) return new Map([['type', type]]);
    if (/^(false|0)$/i.test(value)) return undefined;
    const a = attrs(value, flag);
    a.set('type', type);
    return a;
  };
  if (options.sbom !== undefined) {
    const a = shorthand(options.sbom, '--sbom', 'sbom');
    out.sbom = a === undefined ? undefined : sbomOf(a, '--sbom', options.sbom);
  }
  if (options.provenance !== undefined) {
    const a = shorthand(options.provenance, '--provenance', 'provenance');
    out.provenance = a === undefined ? undefined : provenanceOf(a, '--provenance', options.provenance);
  }
  for (const text of options.attest ?? []) {
    const a = attrs(text, '--attest');
    const type = a.get('type');
    if (type === 'sbom') out.sbom = sbomOf(a, '--attest', text);
    else if (type === 'provenance') out.provenance = provenanceOf(a, '--attest', text);
    else throw new StrataError('E_USAGE', `--attest "${text}": type must be sbom or provenance`);
  }
  return out;
}
