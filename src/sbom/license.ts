import type { SpdxIds } from './cdx-lib.js';

type Spdx = SpdxIds;

export interface NormalizedLicense {
  /** A valid SPDX license expression: known ids, `LicenseRef-…` for the rest. */
  expression: string;
  /** Whether it is one known SPDX id. */
  single: boolean;
  /** The LicenseRef-s it uses, with the text each stands for. */
  refs: Array<{ id: string; text: string }>;
}

function licenseRef(text: string): { id: string; text: string } {
  return { id: `LicenseRef-${text.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '') || 'unknown'}`, text };
}

/**
 * A declared license as an SPDX expression. Each word that is a known SPDX id (case and spelling fixed
 * by the SPDX list CycloneDX ships) stays one; any other becomes a `LicenseRef-`; text that is not an
 * expression at all (a sentence, unbalanced parentheses) becomes one `LicenseRef-` for all of it.
 */
export function normalizeLicense(SPDX: Spdx, text: string): NormalizedLicense {
  const tokens = text.trim().match(/\(|\)|[^()\s]+/g) ?? [];
  const refs: Array<{ id: string; text: string }> = [];
  const out: string[] = [];
  let depth = 0;
  let expectOperand = true;
  let ok = tokens.length > 0 && tokens.length < 64;
  for (const token of ok ? tokens : []) {
    const upper = token.toUpperCase();
    if (token === '(') {
      if (!expectOperand) ok = false;
      depth++;
      out.push(token);
    } else if (token === ')') {
      if (expectOperand || --depth < 0) ok = false;
      out.push(token);
    } else if (upper === 'AND' || upper === 'OR' || upper === 'WITH') {
      if (expectOperand) ok = false;
      expectOperand = true;
      out.push(upper);
    } else {
      if (!expectOperand) ok = false;
      expectOperand = false;
      const plus = token.endsWith('+') && token.length > 1;
      const base = plus ? token.slice(0, -1) : token;
      const id = SPDX.fixupSpdxId(base);
      if (id !== undefined) out.push(plus ? `${id}+` : id);
      else if (/^(LicenseRef|DocumentRef)-[A-Za-z0-9.-]+$/.test(token)) out.push(token);
      else {
        const ref = licenseRef(token);
        refs.push(ref);
        out.push(ref.id);
      }
    }
    if (!ok) break;
  }
  if (!ok || depth !== 0 || expectOperand) {
    const ref = licenseRef(text.trim().slice(0, 120));
    return { expression: ref.id, single: false, refs: [ref] };
  }
  const expression = out.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')');
  return { expression, single: out.length === 1 && refs.length === 0 && SPDX.isSupportedSpdxId(out[0]), refs };
}
