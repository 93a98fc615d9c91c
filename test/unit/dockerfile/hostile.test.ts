import { describe, expect, it } from 'vitest';
import { expandWord, formatDiagnostic, parseDockerfile, parseDockerfileAst, DockerfileError } from '../../../src/dockerfile/index.js';
import { StrataError } from '../../../src/errors/index.js';

/**
 * Runs fn, which must either succeed or throw a StrataError. No wall-clock limits: these inputs are large
 * enough that work growing faster than linearly with them takes minutes, which the test timeout catches.
 */
function timed(fn: () => unknown): { error: StrataError | undefined } {
  let error: StrataError | undefined;
  try {
    fn();
  } catch (err) {
    if (!(err instanceof StrataError)) throw err;
    error = err;
  }
  return { error };
}
const LINEAR = 30_000;

describe('hostile input', { timeout: LINEAR }, () => {
  it('parses a 10 MB Dockerfile', () => {
    const line = 'RUN echo "some words here to make a long enough line" && true\n';
    const text = 'FROM scratch\n' + line.repeat(Math.ceil((10 * 1024 * 1024) / line.length));
    const r = timed(() => parseDockerfile(text));
    expect(r.error).toBeUndefined();
  });

  it('parses a 100,000-line continuation', () => {
    const text = 'FROM scratch\nRUN a \\\n' + 'b \\\n'.repeat(100_000) + 'c\n';
    let nodes: ReturnType<typeof parseDockerfileAst>['nodes'] = [];
    const r = timed(() => {
      nodes = parseDockerfileAst(text).nodes;
    });
    expect(r.error).toBeUndefined();
    expect(nodes[1]?.endLine).toBe(100_003);
  });

  it('parses one 10 MB line with a heredoc marker in it', () => {
    const text = 'FROM scratch\nRUN ' + 'x'.repeat(10 * 1024 * 1024) + ' <<EOF\nbody\nEOF\n';
    const r = timed(() => parseDockerfileAst(text));
    expect(r.error).toBeUndefined();
  });

  it('expands 1,000 nested ${a:-${b:-...}} and refuses 100,000 without a stack overflow', () => {
    const nest = (n: number): string => Array.from({ length: n }, (_, i) => `\${v${i}:-`).join('') + 'end' + '}'.repeat(n);
    const ok = timed(() => expect(expandWord(nest(1000), {})).toBe('end'));
    expect(ok.error).toBeUndefined();
    const bad = timed(() => expandWord(nest(100_000), {}));
    expect(bad.error?.code).toBe('E_EXPANSION');
    expect(bad.error?.message.length).toBeLessThan(1000);
  });

  it('fails cleanly on an unterminated heredoc, even a huge one', () => {
    const r = timed(() => parseDockerfile('FROM scratch\nRUN <<EOF\n' + 'line\n'.repeat(200_000)));
    expect(r.error).toBeInstanceOf(DockerfileError);
    expect((r.error as DockerfileError).line).toBe(2);
  });

  it('handles NUL bytes and text decoded from invalid UTF-8', () => {
    const nul = timed(() => parseDockerfile('FROM scr\0atch\nRUN echo \0\0\nLABEL a=\0\n'));
    expect(nul.error).toBeUndefined();
    const bytes = new Uint8Array([0x46, 0x52, 0x4f, 0x4d, 0x20, 0xff, 0xfe, 0x0a, 0x52, 0x55, 0x4e, 0x20, 0xc3, 0x28, 0x0a]);
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    const bad = timed(() => parseDockerfile(text));
    expect(bad.error).toBeUndefined();
    const lone = timed(() => parseDockerfile('FROM a\nENV X=\uD800\nRUN \uDC00\n'));
    expect(lone.error).toBeUndefined();
  });

  it('renders a diagnostic for an error deep in a large file without splitting it', () => {
    const text = 'FROM a\n' + 'RUN x\n'.repeat(50_000) + 'BOGUS y\n';
    let err: unknown;
    try {
      parseDockerfile(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DockerfileError);
    expect(formatDiagnostic(text, err as DockerfileError)).toBe('Dockerfile:50002:1: unknown instruction: BOGUS\n  BOGUS y\n  ^');
  });
});
