import { describe, expect, it } from 'vitest';
import { DockerignoreMatcher, expandShellWord, parseDockerfile } from '../../../src/dockerfile/index.js';
import { StrataError } from '../../../src/errors/index.js';

const SEEDS = [
  '# syntax=docker/dockerfile:1\n# escape=\\\nARG BASE=alpine\nFROM --platform=$BUILDPLATFORM ${BASE:-alpine}:3.19 AS build\nWORKDIR /src\nCOPY --chown=1:1 --chmod=755 go.* ./\nRUN --mount=type=cache,target=/root/.cache \\\n    go build -o /out/app ./cmd/app\nFROM scratch\nCOPY --from=build /out/app /app\nENTRYPOINT ["/app"]\n',
  'FROM debian\nENV A=1 B="two words" C\\ D=e\nLABEL maintainer="x" version=1\nRUN <<EOF\nset -e\napt-get update\nEOF\nCOPY <<-"CONF" /etc/app.conf\n\tkey=$VALUE\nCONF\nHEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost/ || exit 1\nONBUILD RUN echo trigger\nEXPOSE 80/tcp 443\nVOLUME ["/data"]\nUSER app\nSTOPSIGNAL SIGTERM\nSHELL ["/bin/bash", "-c"]\nCMD ["--help"]\n',
  '# escape=`\nFROM mcr.microsoft.com/windows/servercore\nRUN echo a `\n    b\nADD --checksum=sha256:0123 https://example.com/x.tgz C:/x\n',
];
const ALPHABET = [
  '\\',
  '`',
  '"',
  "'",
  '$',
  '{',
  '}',
  '[',
  ']',
  '<<',
  '-',
  '=',
  '\n',
  '\r\n',
  ' ',
  '\t',
  '#',
  '\0',
  ':',
  '/',
  '*',
  '?',
  '!',
  'é',
  '\uD83D\uDE00',
  'RUN ',
  'FROM ',
  '--',
  ',',
];

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(text: string, rand: () => number): string {
  let s = text;
  const n = 1 + Math.floor(rand() * 8);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rand() * (s.length + 1));
    const op = rand();
    if (op < 0.4) s = s.slice(0, at) + (ALPHABET[Math.floor(rand() * ALPHABET.length)] as string) + s.slice(at);
    else if (op < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 5));
    else if (op < 0.85) {
      const from = Math.floor(rand() * s.length);
      s = s.slice(0, at) + s.slice(from, from + 1 + Math.floor(rand() * 20)) + s.slice(at);
    } else s = s.slice(0, at) + s.slice(at).replace(/./u, (c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()));
  }
  return s;
}

const cleanly = (fn: () => unknown): void => {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof StrataError)) throw new Error(`not a StrataError: ${String(err)}`);
  }
};

describe('fuzz', () => {
  it('mutated Dockerfiles either parse or fail with a StrataError', () => {
    const rand = rng(20260301);
    for (let i = 0; i < 1500; i++) {
      const input = mutate(SEEDS[i % SEEDS.length] as string, rand);
      expect(() => cleanly(() => parseDockerfile(input)), JSON.stringify(input)).not.toThrow();
    }
  });

  it('mutated words expand or fail with a StrataError, and patterns compile or fail cleanly', () => {
    const rand = rng(7);
    const words = ['${A:-x}${B#*/}', '"$A" \'$B\' \\$C', '${P//a/b}${P%%.*}', '$A${B:+${C:-d}}', '[a-z]*/**/x?'];
    for (let i = 0; i < 2000; i++) {
      const w = mutate(words[i % words.length] as string, rand);
      expect(() => cleanly(() => expandShellWord(w, { A: 'a/b', B: 'x.y', P: 'aaa.tar.gz' })), JSON.stringify(w)).not.toThrow();
      expect(() => cleanly(() => new DockerignoreMatcher([w]).ignores('a/b/c.x')), JSON.stringify(w)).not.toThrow();
    }
  });
});
