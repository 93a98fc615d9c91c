import { StrataError } from '../errors/index.js';

/** Which rule a reference broke; mirrors distribution/reference's and go-digest's error values. */
export type ReferenceErrorReason =
  | 'name-empty'
  | 'invalid-format'
  | 'name-uppercase'
  | 'name-too-long'
  | 'name-not-canonical'
  | 'name-is-identifier'
  | 'tag-invalid'
  | 'digest-invalid-format'
  | 'digest-invalid-length'
  | 'digest-unsupported';

const WHY: Record<ReferenceErrorReason, string> = {
  'name-empty': 'repository name must have at least one component',
  'invalid-format': 'invalid reference format',
  'name-uppercase': 'repository name must be lowercase',
  'name-too-long': 'repository name must not be more than 255 characters',
  'name-not-canonical': 'repository name must be canonical (registry/path, like docker.io/library/alpine)',
  'name-is-identifier': 'a 64-character hexadecimal string is an image ID, not a repository name',
  'tag-invalid': 'a tag is up to 128 letters, digits, "_", "." or "-", and cannot start with "." or "-"',
  'digest-invalid-format': 'invalid digest format (expected algorithm:lowercase-hex)',
  'digest-invalid-length': 'invalid digest length',
  'digest-unsupported': 'unsupported digest algorithm (sha256 and sha512 are supported)',
};

const HINT = 'a reference looks like [registry[:port]/]repository[:tag][@digest], e.g. alpine:3.20 or ghcr.io/org/app@sha256:<64 hex>';

/** An `E_REF_INVALID` error that also says which rule was broken, for programs and tests. */
export class ReferenceParseError extends StrataError {
  readonly reason: ReferenceErrorReason;
  readonly input: string;
  readonly detail: string | undefined;

  constructor(reason: ReferenceErrorReason, input: string, detail?: string) {
    super('E_REF_INVALID', `invalid reference ${JSON.stringify(input)}: ${detail ?? WHY[reason]}`, { hint: HINT });
    this.reason = reason;
    this.input = input;
    this.detail = detail;
  }
}

export function isReferenceParseError(value: unknown): value is ReferenceParseError {
  return value instanceof ReferenceParseError;
}
