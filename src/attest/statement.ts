import type { Digest } from '../digest/index.js';
import { canonicalJsonBytes } from '../oci/index.js';

export const PredicateType = {
  spdx: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  slsaV1: 'https://slsa.dev/provenance/v1',
  slsaV02: 'https://slsa.dev/provenance/v0.2',
} as const;

export const IN_TOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';

/** in-toto Statement: what BuildKit writes is v0.1; SLSA v1 provenance goes in a v1 statement. */
export interface InTotoStatement {
  _type: 'https://in-toto.io/Statement/v0.1' | 'https://in-toto.io/Statement/v1';
  predicateType: string;
  subject: Array<{ name: string; digest: Record<string, string> }>;
  predicate: unknown;
}

/** The subject every attestation of an image names: its manifest, as BuildKit names it (`pkg:docker/NAME?platform=…`). */
export interface AttestationSubject {
  name: string;
  digest: Digest;
}

export function statement(predicateType: string, subject: AttestationSubject, predicate: unknown): InTotoStatement {
  const [algorithm, hex] = subject.digest.split(':') as [string, string];
  return {
    _type: predicateType === PredicateType.slsaV1 ? 'https://in-toto.io/Statement/v1' : 'https://in-toto.io/Statement/v0.1',
    predicateType,
    subject: [{ name: subject.name, digest: { [algorithm]: hex } }],
    predicate,
  };
}

/** A statement's bytes: canonical JSON (sorted keys), so the same statement is the same blob. */
export function statementBytes(s: InTotoStatement): Buffer {
  return canonicalJsonBytes(s);
}
