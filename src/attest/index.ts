export {
  PredicateType,
  IN_TOTO_MEDIA_TYPE,
  PREDICATE_TYPE_ANNOTATION,
  statement,
  statementBytes,
  type InTotoStatement,
  type AttestationSubject,
} from './statement.js';
export { provenancePredicate, isSecretArgName, BUILD_TYPE, type ProvenanceInput, type ProvenanceMode, type ProvenanceVersion } from './provenance.js';
export {
  attestationManifest,
  referrerManifest,
  indexWithAttestations,
  emptyConfig,
  referrersTag,
  addReferrer,
  REFERENCE_TYPE_ANNOTATION,
  REFERENCE_DIGEST_ANNOTATION,
  ATTESTATION_MANIFEST,
  type Blobs,
} from './manifests.js';
export { parseAttestOptions, type AttestRequest, type SbomRequest, type ProvenanceRequest } from './options.js';
