export { ReferenceParseError, isReferenceParseError, type ReferenceErrorReason } from './errors.js';
export {
  type ImageReference,
  type DigestReference,
  parseReference,
  parseNormalizedNamed,
  parseNamed,
  parseDockerRef,
  parseAnyReference,
  isDigestReference,
  splitDockerDomain,
  parseRepositoryName,
  withReferenceTag,
  withReferenceDigest,
  referenceName,
  referenceString,
  familiarName,
  familiarString,
} from './parse.js';
export {
  parseImageReference,
  formatReference,
  familiarReference,
  repositoryName,
  referenceWithTag,
  referenceTarget,
  registryApiHost,
  splitRegistryHost,
  isLoopbackRegistry,
  parseRegistryHost,
} from './normalize.js';
export { familiarMatch, referencePathMatch } from './match.js';
