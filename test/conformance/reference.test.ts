/**
 * Runs distribution/reference's own test tables (../shared/conformance/reference-parsing.tsv,
 * reference-familiar-match.tsv) through src/ref. go-containerregistry rows describe a different
 * library with different defaults (index.docker.io, strict/weak modes) and are counted as skipped.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ReferenceParseError,
  familiarMatch,
  familiarString,
  isDigestReference,
  parseAnyReference,
  parseDockerRef,
  parseNamed,
  parseNormalizedNamed,
  parseReference,
  referenceName,
  referenceString,
  withReferenceDigest,
  parseRepositoryName,
  withReferenceTag,
  type DigestReference,
  type ImageReference,
  type ReferenceErrorReason,
} from '../../src/ref/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = process.env.STRATA_CONFORMANCE_DIR ?? path.resolve(repoRoot, '../shared/conformance');

function readTsv(file: string): Record<string, string>[] {
  const lines = readFileSync(path.join(dir, file), 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  const header = (lines.shift() ?? '').split('\t');
  const unescapeCell = (v: string): string => v.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return lines.map((line) => {
    const cells = line.split('\t');
    return Object.fromEntries(header.map((h, i) => [h, unescapeCell(cells[i] ?? '')]));
  });
}

const ERRORS: Record<string, ReferenceErrorReason> = {
  ErrNameEmpty: 'name-empty',
  ErrReferenceInvalidFormat: 'invalid-format',
  ErrNameContainsUppercase: 'name-uppercase',
  ErrNameTooLong: 'name-too-long',
  ErrNameNotCanonical: 'name-not-canonical',
  'digest.ErrDigestInvalidLength': 'digest-invalid-length',
  'digest.ErrDigestUnsupported': 'digest-unsupported',
};

function extraField(extra: string, key: string): string | undefined {
  const m = new RegExp(`(?:^|;\\s*)${key}=([^;\\s]*)`).exec(extra);
  return m?.[1];
}

function run(row: Record<string, string>): ImageReference | DigestReference {
  const input = row.input ?? '';
  const extra = row.extra ?? '';
  switch (row.api) {
    case 'Parse':
    case 'Parse (json Field)':
      return parseReference(input);
    case 'ParseNormalizedNamed':
      return parseNormalizedNamed(input);
    case 'ParseNamed':
      return parseNamed(input);
    case 'ParseDockerRef':
      return parseDockerRef(input);
    case 'ParseAnyReference':
      return parseAnyReference(input);
    case 'WithName':
      return parseRepositoryName(input);
    case 'WithTag':
    case 'WithDigest': {
      let ref = row.valid === 'true' ? parseRepositoryName(input) : parseNormalizedNamed(input);
      const tag = extraField(extra, 'tag');
      const digest = extraField(extra, 'digest');
      if (tag) ref = withReferenceTag(ref, tag);
      if (digest) ref = withReferenceDigest(ref, digest);
      return ref;
    }
    default:
      throw new Error(`unknown api ${row.api}`);
  }
}

const present = existsSync(path.join(dir, 'reference-parsing.tsv'));
let passed = 0;
let failed = 0;
let skipped = 0;

function track(fn: () => void): void {
  try {
    fn();
    passed++;
  } catch (e) {
    failed++;
    throw e;
  }
}

afterAll(() => {
  console.log(`reference: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped (go-containerregistry rows and documented divergences)` : ''}`);
});

describe('reference conformance (distribution/reference)', () => {
  it('finds the conformance corpus', () => {
    expect(present, `no reference-parsing.tsv under ${dir}; set STRATA_CONFORMANCE_DIR`).toBe(true);
  });
  if (!present) return;

  const rows = readTsv('reference-parsing.tsv');
  rows.forEach((row, i) => {
    const label = `${i + 2}: ${row.api} ${JSON.stringify((row.input ?? '').slice(0, 80))}`;
    if (row.source !== 'distribution/reference') {
      skipped++;
      return;
    }
    // The library accepts sha512 when crypto/sha512 is linked (as strata does); only the Go test binary rejects it.
    if ((row.extra ?? '').includes('accepted by the library when crypto/sha512 is linked')) {
      skipped++;
      return;
    }
    it(label, () =>
      track(() => {
        if (row.valid !== 'true') {
          let error: unknown;
          try {
            run(row);
          } catch (e) {
            error = e;
          }
          expect(error, 'expected a parse error').toBeInstanceOf(ReferenceParseError);
          expect((error as ReferenceParseError).code).toBe('E_REF_INVALID');
          const want = ERRORS[row.error ?? ''];
          if (want !== undefined) expect((error as ReferenceParseError).reason).toBe(want);
          return;
        }
        const ref = run(row);
        if (row.string) expect(referenceString(ref)).toBe(row.string);
        if (isDigestReference(ref)) {
          if (row.digest) expect(ref.digest).toBe(row.digest);
          return;
        }
        if (row.api !== 'WithTag' && row.api !== 'WithDigest') {
          expect(ref.domain).toBe(row.registry ?? '');
          expect(ref.path).toBe(row.repository ?? '');
          expect(ref.tag ?? '').toBe(row.tag ?? '');
          expect(ref.digest ?? '').toBe(row.digest ?? '');
        }
        if (row.full_name) expect(referenceName(ref)).toBe(row.full_name);
        if (row.familiar) expect(familiarString(ref)).toBe(row.familiar);
      }),
    );
  });

  if (existsSync(path.join(dir, 'reference-familiar-match.tsv'))) {
    for (const row of readTsv('reference-familiar-match.tsv')) {
      it(`FamiliarMatch ${row.pattern} ~ ${row.reference}`, () =>
        track(() => {
          expect(familiarMatch(row.pattern ?? '', parseNormalizedNamed(row.reference ?? ''))).toBe(row.expected_match === 'true');
        }));
    }
  }
});
