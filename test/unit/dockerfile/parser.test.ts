import { describe, expect, it } from 'vitest';
import { DockerfileError, parseDockerfileAst, type DockerfileNode } from '../../../src/dockerfile/index.js';

const ast = (text: string) => parseDockerfileAst(text);
const nodes = (text: string) => ast(text).nodes;
const brief = (n: DockerfileNode | undefined) => n && { cmd: n.cmd, flags: n.flags, args: n.args, json: n.json };

function failure(text: string): DockerfileError {
  try {
    parseDockerfileAst(text, { file: 'Df' });
  } catch (err) {
    if (err instanceof DockerfileError) return err;
    throw err;
  }
  throw new Error('expected a DockerfileError');
}

describe('parseDockerfileAst: lines', () => {
  it('joins continuations without a separator and keeps the next line as written', () => {
    const [, run] = nodes('FROM a\nRUN echo hello\\\n  world\n');
    expect(run?.args).toStrictEqual(['echo hello  world']);
    expect([run?.line, run?.endLine]).toStrictEqual([2, 3]);
  });

  it('skips comment lines inside a continuation silently and warns once for blank ones', () => {
    const r = ast('FROM a\nRUN a \\\n# c\n\n  b \\\n\n  c\n');
    expect(r.nodes[1]?.args).toStrictEqual(['a   b   c']);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatchObject({ rule: 'NoEmptyContinuation', line: 7 });
    expect(r.warnings[0]?.short).toBe('Empty continuation line found in: RUN a   b   c');
  });

  it('ends an instruction whose continuation reaches the end of the file', () => {
    expect(nodes('FROM a\nRUN x \\').map(brief)[1]).toStrictEqual({ cmd: 'run', flags: [], args: ['x'], json: false });
  });

  it('does not treat an escaped escape token as a continuation', () => {
    expect(nodes('FROM a\nRUN x \\\\\nRUN y\n')).toHaveLength(3);
  });

  it('handles CRLF, a BOM and trailing whitespace after the continuation token', () => {
    const n = nodes('\uFEFFFROM a\r\nRUN a \\  \r\n b\r\n');
    expect(n[0]?.args).toStrictEqual(['a']);
    expect(n[1]?.args).toStrictEqual(['a  b']);
  });

  it('records line, end line and column of every instruction', () => {
    const n = nodes('# c\n\n  FROM a\n\tRUN b \\\n  c\nCMD d\n');
    expect(n.map((x) => [x.line, x.endLine, x.column])).toStrictEqual([
      [3, 3, 3],
      [4, 5, 2],
      [6, 6, 1],
    ]);
  });

  it('lower-cases the keyword but keeps how it was written', () => {
    expect(nodes('from a')[0]).toMatchObject({ cmd: 'from', keyword: 'from' });
    expect(nodes('FrOm a')[0]).toMatchObject({ cmd: 'from', keyword: 'FrOm' });
  });
});

describe('parseDockerfileAst: directives', () => {
  it('reads escape, syntax and check in the leading comment block only', () => {
    const r = ast('# syntax=docker/dockerfile:1\n# check=skip=all\n# escape=`\nFROM a\nRUN x `\n  y\n');
    expect(r.escapeToken).toBe('`');
    expect(r.directives.map((d) => [d.name, d.value, d.line])).toStrictEqual([
      ['syntax', 'docker/dockerfile:1', 1],
      ['check', 'skip=all', 2],
      ['escape', '`', 3],
    ]);
    expect(r.nodes[1]?.args).toStrictEqual(['x   y']);
  });

  it('ignores a directive after a comment or a blank line', () => {
    expect(ast('# hello\n# escape=`\nFROM a\n').escapeToken).toBe('\\');
    expect(ast('\n# escape=`\nFROM a\n').escapeToken).toBe('\\');
    expect(ast('FROM a\n# escape=`\n').directives).toStrictEqual([]);
  });

  it('rejects a repeated directive and a bad escape token at their line', () => {
    const dup = failure('# escape=`\n# escape=\\\nFROM a\n');
    expect(dup).toMatchObject({ code: 'E_DOCKERFILE_SYNTAX', line: 2, reason: 'only one escape parser directive can be used' });
    const bad = failure('# escape=x\nFROM a\n');
    expect(bad).toMatchObject({ line: 1, column: 1 });
    expect(bad.reason).toBe("invalid escape token 'x' does not match ` or \\");
    expect(bad.message).toBe("Df:1:1: invalid escape token 'x' does not match ` or \\");
  });
});

describe('parseDockerfileAst: argument shapes', () => {
  it('parses JSON (exec) form and falls back to shell form for invalid JSON', () => {
    const n = nodes('FROM a\nCMD ["a", "b"]\nCMD [\'a\']\nCMD ["a"\nENTRYPOINT ["x"] trailing\nCMD []\n');
    expect(n.slice(1).map(brief)).toStrictEqual([
      { cmd: 'cmd', flags: [], args: ['a', 'b'], json: true },
      { cmd: 'cmd', flags: [], args: ["['a']"], json: false },
      { cmd: 'cmd', flags: [], args: ['["a"'], json: false },
      { cmd: 'entrypoint', flags: [], args: ['x'], json: true },
      { cmd: 'cmd', flags: [], args: [], json: true },
    ]);
  });

  it('rejects a JSON array with a non-string element at its line', () => {
    const e = failure('FROM a\n\nCMD ["a", 1]\n');
    expect(e).toMatchObject({ code: 'E_DOCKERFILE_SYNTAX', line: 3, column: 1 });
    expect(e.reason).toBe('when using JSON array syntax, arrays must be comprised of strings only');
  });

  it('keeps ENV and LABEL as name/value/separator triples with quotes verbatim', () => {
    const n = nodes('FROM a\nENV A=1 B="x y"\nENV C d e\nLABEL "k"=v\n');
    expect(n[1]?.args).toStrictEqual(['A', '1', '=', 'B', '"x y"', '=']);
    expect(n[2]?.args).toStrictEqual(['C', 'd e', '']);
    expect(n[3]?.args).toStrictEqual(['"k"', 'v', '=']);
  });

  it('points the column at the word without =', () => {
    expect(failure('FROM a\nENV a=b b c=b\n')).toMatchObject({ line: 2, column: 9 });
  });

  it('reports ENV with one word and ENV mixing forms', () => {
    expect(failure('FROM a\nENV PATH\n')).toMatchObject({ line: 2, reason: 'ENV must have two arguments' });
    expect(failure('FROM a\nLABEL a=b c\n')).toMatchObject({
      line: 2,
      column: 11,
      reason: 'Syntax error - can\'t find = in "c". Must be of the form: name=value',
    });
  });

  it('collects flags, de-quoting them, until the first word without --', () => {
    const n = nodes('FROM a\nCOPY --from=x --chown="a b" -- --notflag /d\nRUN --mount=type=cache,target=/c echo\n');
    expect(brief(n[1])).toStrictEqual({ cmd: 'copy', flags: ['--from=x', '--chown=a b'], args: ['--notflag', '/d'], json: false });
    expect(n[2]?.flags).toStrictEqual(['--mount=type=cache,target=/c']);
  });

  it('nests the ONBUILD trigger and parses HEALTHCHECK type and command', () => {
    const n = nodes('FROM a\nONBUILD RUN ["x"]\nHEALTHCHECK --interval=5s CMD curl x\nHEALTHCHECK NONE\n');
    const inner = n[1]?.args[0] as DockerfileNode;
    expect(brief(inner)).toStrictEqual({ cmd: 'run', flags: [], args: ['x'], json: true });
    expect(brief(n[2])).toStrictEqual({ cmd: 'healthcheck', flags: ['--interval=5s'], args: ['CMD', 'curl x'], json: false });
    expect(n[3]?.args).toStrictEqual(['NONE']);
  });

  it('keeps unknown instructions with no arguments (the typed layer reports them)', () => {
    expect(brief(nodes('FROM a\nFOO bar baz\n')[1])).toStrictEqual({ cmd: 'foo', flags: [], args: [], json: false });
  });

  it('refuses ONBUILD nested without bound', () => {
    const e = failure('FROM a\n' + 'ONBUILD '.repeat(100) + 'RUN x\n');
    expect(e.reason).toBe('ONBUILD triggers are nested too deeply');
  });
});

describe('parseDockerfileAst: heredocs', () => {
  it('reads several heredocs in order, with chomp, quoting and file descriptors', () => {
    const text = 'FROM a\nCOPY <<A 3<<-"B" /d/\none\nA\n\ttwo\n\tB\nRUN <<EOF\n$X\nEOF\n';
    const n = nodes(text);
    expect(n[1]?.heredocs).toStrictEqual([
      { name: 'A', fileDescriptor: 0, expand: true, chomp: false, content: 'one\n' },
      { name: 'B', fileDescriptor: 3, expand: false, chomp: true, content: '\ttwo\n' },
    ]);
    expect([n[1]?.line, n[1]?.endLine]).toStrictEqual([2, 6]);
    expect(n[2]?.heredocs[0]?.content).toBe('$X\n');
  });

  it('has no heredocs in JSON form or in instructions that do not take them', () => {
    const n = nodes('FROM a\nRUN ["<<EOF"]\nUSER <<X\nX\n');
    expect(n[1]?.heredocs).toStrictEqual([]);
    expect(n.map((x) => x.cmd)).toStrictEqual(['from', 'run', 'user', 'x']);
  });

  it('reports an unterminated heredoc at the instruction', () => {
    const e = failure('FROM a\nRUN <<EOF\necho\n');
    expect(e).toMatchObject({ code: 'E_DOCKERFILE_SYNTAX', line: 2, endLine: 3, reason: 'unterminated heredoc EOF' });
  });

  it('supports heredocs in ONBUILD triggers', () => {
    expect(nodes('FROM a\nONBUILD RUN <<E\nhi\nE\n')[1]?.heredocs[0]?.content).toBe('hi\n');
  });
});

describe('parseDockerfileAst: empty input', () => {
  it('fails on a file with no instructions', () => {
    expect(failure('')).toMatchObject({ reason: 'file with no instructions', line: 1 });
    expect(failure('# only\n# comments\n')).toMatchObject({ reason: 'file with no instructions', line: 2 });
  });
});
