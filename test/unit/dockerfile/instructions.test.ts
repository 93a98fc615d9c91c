import { describe, expect, it } from 'vitest';
import { DockerfileError, parseDockerfile, type Instruction } from '../../../src/dockerfile/index.js';

const stage0 = (body: string): Instruction[] => parseDockerfile(`FROM base\n${body}`).stages[0]?.instructions ?? [];
const one = (body: string): Instruction => {
  const i = stage0(body)[0];
  if (i === undefined) throw new Error('no instruction');
  return i;
};
const strip = (i: Instruction): Record<string, unknown> => {
  const { location: _l, original: _o, ...rest } = i as unknown as Record<string, unknown> & { location: unknown; original: unknown };
  return rest;
};

function failure(text: string): DockerfileError {
  try {
    parseDockerfile(text, { file: 'Dockerfile' });
  } catch (err) {
    if (err instanceof DockerfileError) return err;
    throw err;
  }
  throw new Error(`expected a DockerfileError for ${JSON.stringify(text)}`);
}

describe('parseDockerfile: stages and global ARGs', () => {
  it('groups instructions into stages and keeps ARGs before the first FROM apart', () => {
    const p = parseDockerfile('ARG A=1 B\nFROM --platform=$BUILDPLATFORM img:$A AS Build\nRUN x\nFROM scratch\nCOPY --from=build /a /b\n');
    expect(p.globalArgs.map((a) => a.args)).toStrictEqual([[{ name: 'A', defaultValue: '1' }, { name: 'B' }]]);
    expect(p.stages.map((s) => [s.index, s.name, s.from.image, s.instructions.map((i) => i.kind)])).toStrictEqual([
      [0, 'build', 'img:$A', ['RUN']],
      [1, undefined, 'scratch', ['COPY']],
    ]);
    expect(p.stages[0]?.from.platform).toBe('$BUILDPLATFORM');
    expect(p.stages[1]?.instructions[0]?.location).toStrictEqual({ line: 5, endLine: 5, column: 1 });
  });

  it('refuses instructions before FROM other than ARG, and a file without FROM', () => {
    expect(failure('RUN x\nFROM a\n')).toMatchObject({ code: 'E_DOCKERFILE_INSTRUCTION', line: 1 });
    expect(failure('RUN x\nFROM a\n').reason).toContain('no build stage in current context');
    expect(failure('ARG x\n').reason).toContain('no FROM instruction');
  });

  it('refuses duplicate stage names and bad stage names', () => {
    expect(failure('FROM a AS x\nFROM b AS X\n')).toMatchObject({ line: 2, reason: 'duplicate stage name "x"' });
    expect(failure('FROM a AS 1x\n').reason).toBe('invalid name for build stage: "1x", name can\'t start with a number or contain symbols');
    expect(failure('FROM a b c\n').reason).toBe('Second argument of FROM must be "AS"');
    expect(failure('FROM a b\n').reason).toBe('FROM requires either one or three arguments');
    expect(failure('FROM\n').reason).toBe('FROM requires either one or three arguments');
  });
});

describe('parseDockerfile: every instruction', () => {
  it('RUN in shell and exec form with its flags', () => {
    expect(strip(one('RUN --mount=type=cache,target=/c --mount=type=secret,id=s --network=none --security=insecure echo "$X"'))).toStrictEqual({
      kind: 'RUN',
      args: ['echo "$X"'],
      prependShell: true,
      mounts: ['type=cache,target=/c', 'type=secret,id=s'],
      network: 'none',
      security: 'insecure',
      heredocs: [],
    });
    expect(strip(one('RUN ["a", "b"]'))).toMatchObject({ args: ['a', 'b'], prependShell: false, mounts: [] });
  });

  it('CMD, ENTRYPOINT and SHELL', () => {
    expect(strip(one('CMD ["a"]'))).toStrictEqual({ kind: 'CMD', args: ['a'], prependShell: false });
    expect(strip(one('CMD a b'))).toStrictEqual({ kind: 'CMD', args: ['a b'], prependShell: true });
    expect(strip(one('ENTRYPOINT ["/e"]'))).toStrictEqual({ kind: 'ENTRYPOINT', args: ['/e'], prependShell: false });
    expect(strip(one('SHELL ["/bin/bash", "-c"]'))).toStrictEqual({ kind: 'SHELL', shell: ['/bin/bash', '-c'] });
  });

  it('COPY with every flag and a heredoc source', () => {
    expect(strip(one('COPY --from=b --chown=1:2 --chmod=0755 --link --parents --exclude=*.md --exclude=x a b/ /d/'))).toStrictEqual({
      kind: 'COPY',
      sources: ['a', 'b/'],
      sourceContents: [],
      dest: '/d/',
      from: 'b',
      chown: '1:2',
      chmod: '0755',
      link: true,
      parents: true,
      exclude: ['*.md', 'x'],
    });
    expect(strip(one('COPY <<-EOF /f\n\thi $X\nEOF'))).toMatchObject({ sources: [], sourceContents: [{ path: 'EOF', data: 'hi $X\n', expand: true }] });
    expect(strip(one('COPY ["a b", "/c"]'))).toMatchObject({ sources: ['a b'], dest: '/c', link: false, parents: false });
  });

  it('ADD with every flag', () => {
    expect(
      strip(one('ADD --chown=u --chmod=600 --link=false --keep-git-dir --checksum=sha256:abc --exclude=a --unpack=true https://x/y.tgz /d')),
    ).toStrictEqual({
      kind: 'ADD',
      sources: ['https://x/y.tgz'],
      sourceContents: [],
      dest: '/d',
      chown: 'u',
      chmod: '600',
      checksum: 'sha256:abc',
      unpack: true,
      link: false,
      keepGitDir: true,
      exclude: ['a'],
    });
  });

  it('WORKDIR, USER, STOPSIGNAL, EXPOSE, VOLUME, MAINTAINER', () => {
    expect(strip(one('WORKDIR /a b'))).toStrictEqual({ kind: 'WORKDIR', path: '/a b' });
    expect(strip(one('USER 1000:1000'))).toStrictEqual({ kind: 'USER', user: '1000:1000' });
    expect(strip(one('STOPSIGNAL SIGTERM'))).toStrictEqual({ kind: 'STOPSIGNAL', signal: 'SIGTERM' });
    expect(strip(one('EXPOSE 80/tcp 53/udp'))).toStrictEqual({ kind: 'EXPOSE', ports: ['80/tcp', '53/udp'] });
    expect(strip(one('VOLUME /a /b'))).toStrictEqual({ kind: 'VOLUME', volumes: ['/a', '/b'] });
    expect(strip(one('VOLUME ["/a"]'))).toStrictEqual({ kind: 'VOLUME', volumes: ['/a'] });
    const p = parseDockerfile('FROM a\nMAINTAINER Jo <jo@x>\n');
    expect(strip(p.stages[0]?.instructions[0] as Instruction)).toStrictEqual({ kind: 'MAINTAINER', maintainer: 'Jo <jo@x>' });
    expect(p.warnings.map((w) => w.rule)).toStrictEqual(['MaintainerDeprecated']);
  });

  it('ENV and LABEL in both forms, ARG with and without defaults', () => {
    expect(strip(one('ENV A=1 B="two words"'))).toStrictEqual({
      kind: 'ENV',
      pairs: [
        { key: 'A', value: '1', separator: '=' },
        { key: 'B', value: '"two words"', separator: '=' },
      ],
    });
    expect(strip(one('ENV A one two'))).toStrictEqual({ kind: 'ENV', pairs: [{ key: 'A', value: 'one two', separator: '' }] });
    expect(strip(one('LABEL a=b'))).toStrictEqual({ kind: 'LABEL', pairs: [{ key: 'a', value: 'b', separator: '=' }] });
    expect(strip(one('ARG a b= c=d'))).toStrictEqual({ kind: 'ARG', args: [{ name: 'a' }, { name: 'b', defaultValue: '' }, { name: 'c', defaultValue: 'd' }] });
  });

  it('HEALTHCHECK NONE, shell and exec form with its four duration flags and retries', () => {
    expect(strip(one('HEALTHCHECK NONE'))).toStrictEqual({
      kind: 'HEALTHCHECK',
      health: { test: ['NONE'], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 },
    });
    expect(strip(one('HEALTHCHECK --interval=1m30s --timeout=5s --start-period=1s --start-interval=500ms --retries=4 CMD ["curl", "x"]'))).toStrictEqual({
      kind: 'HEALTHCHECK',
      health: { test: ['CMD', 'curl', 'x'], interval: 90e9, timeout: 5e9, startPeriod: 1e9, startInterval: 5e8, retries: 4 },
    });
    expect(strip(one('HEALTHCHECK cmd curl -f x'))).toMatchObject({ health: { test: ['CMD-SHELL', 'curl -f x'] } });
  });

  it('ONBUILD keeps the expression and parses the trigger', () => {
    const i = one('ONBUILD COPY --chown=1 . /app');
    expect(i.kind).toBe('ONBUILD');
    if (i.kind !== 'ONBUILD') return;
    expect(i.expression).toBe('COPY --chown=1 . /app');
    expect(strip(i.trigger)).toMatchObject({ kind: 'COPY', sources: ['.'], dest: '/app', chown: '1' });
  });
});

describe('parseDockerfile: error paths with message and location', () => {
  const cases: [string, string, number, number][] = [
    ['FROM a\nFOO bar\n', 'unknown instruction: FOO', 2, 1],
    ['FROM a\n  RUNN x\n', 'unknown instruction: RUNN', 2, 3],
    ['FROM a\nCOPY --bogus=1 a b\n', 'unknown flag: bogus', 2, 6],
    ['FROM a\nRUN --chown=1 x\n', 'unknown flag: chown', 2, 5],
    ['FROM a\nWORKDIR --x /a\n', 'unknown flag: x', 2, 9],
    ['FROM --plat=x a\n', 'unknown flag: plat', 1, 6],
    ['FROM a\nCOPY --from a b\n', 'missing a value on flag: from', 2, 6],
    ['FROM a\nCOPY --from=a --from=b a b\n', 'duplicate flag specified: from', 2, 6],
    ['FROM a\nCOPY --link=maybe a b\n', 'expecting boolean value for flag link, not: maybe', 2, 6],
    ['FROM a\nCOPY --link= a b\n', 'missing a value on flag: link', 2, 6],
    ['FROM a\nCOPY a\n', 'COPY requires at least two arguments, but only one was provided. Destination could not be determined.', 2, 1],
    ['FROM a\nADD a\n', 'ADD requires at least two arguments, but only one was provided. Destination could not be determined.', 2, 1],
    ['FROM a\nCOPY a <<EOF\nx\nEOF\n', 'COPY cannot accept a heredoc as a destination', 2, 1],
    ['FROM a\nRUN\n', 'RUN requires at least one argument', 2, 1],
    ['FROM a\nRUN --network=bridge x\n', 'network mode "bridge" not supported', 2, 5],
    ['FROM a\nRUN --security=weird x\n', 'security mode "weird" not supported', 2, 5],
    ['FROM a\nSHELL /bin/sh -c\n', 'SHELL requires the arguments to be in JSON form', 2, 1],
    ['FROM a\nSHELL []\n', 'SHELL requires at least one argument', 2, 1],
    ['FROM a\nWORKDIR\n', 'WORKDIR requires exactly one argument', 2, 1],
    ['FROM a\nUSER\n', 'USER requires exactly one argument', 2, 1],
    ['FROM a\nSTOPSIGNAL\n', 'STOPSIGNAL requires exactly one argument', 2, 1],
    ['FROM a\nMAINTAINER\n', 'MAINTAINER requires exactly one argument', 2, 1],
    ['FROM a\nEXPOSE\n', 'EXPOSE requires at least one argument', 2, 1],
    ['FROM a\nVOLUME\n', 'VOLUME requires at least one argument', 2, 1],
    ['FROM a\nVOLUME [""]\n', 'VOLUME specified can not be an empty string', 2, 1],
    ['FROM a\nENV\n', 'ENV requires at least one argument', 2, 1],
    ['FROM a\nLABEL =x\n', 'LABEL names can not be blank', 2, 1],
    ['FROM a\nARG\n', 'ARG requires at least one argument', 2, 1],
    ['FROM a\nARG =x\n', 'ARG names can not be blank', 2, 1],
    ['FROM a\nHEALTHCHECK\n', 'HEALTHCHECK requires at least one argument', 2, 1],
    ['FROM a\nHEALTHCHECK NONE x\n', 'HEALTHCHECK NONE takes no arguments', 2, 1],
    ['FROM a\nHEALTHCHECK CONNECT x\n', 'Unknown type "CONNECT" in HEALTHCHECK (try CMD)', 2, 1],
    ['FROM a\nHEALTHCHECK CMD\n', 'Missing command after HEALTHCHECK CMD', 2, 1],
    ['FROM a\nHEALTHCHECK --interval=soon CMD x\n', 'time: invalid duration "soon" for --interval', 2, 13],
    ['FROM a\nHEALTHCHECK --timeout=-1s CMD x\n', 'Interval "timeout" cannot be negative', 2, 13],
    ['FROM a\nHEALTHCHECK --start-period=10us CMD x\n', 'Interval "start-period" cannot be less than 1ms', 2, 13],
    ['FROM a\nHEALTHCHECK --retries=-2 CMD x\n', '--retries cannot be negative (-2)', 2, 13],
    ['FROM a\nHEALTHCHECK --retries=two CMD x\n', 'invalid value for --retries: "two"', 2, 13],
    ['FROM a\nONBUILD\n', 'ONBUILD requires at least one argument', 2, 1],
    ['FROM a\nONBUILD FROM b\n', "FROM isn't allowed as an ONBUILD trigger", 2, 1],
    ['FROM a\nONBUILD ONBUILD RUN x\n', "ONBUILD isn't allowed as an ONBUILD trigger", 2, 1],
    ['FROM a\nONBUILD MAINTAINER x\n', "MAINTAINER isn't allowed as an ONBUILD trigger", 2, 1],
  ];
  it.each(cases)('%j fails with %j at %i:%i', (text, reason, line, column) => {
    const e = failure(text);
    expect(e.code).toBe('E_DOCKERFILE_INSTRUCTION');
    expect(e.reason).toBe(reason);
    expect([e.line, e.column]).toStrictEqual([line, column]);
    expect(e.message).toBe(`Dockerfile:${line}:${column}: ${reason}`);
    expect(e.hint === undefined || e.hint.length > 0).toBe(true);
  });

  it('suggests the nearest instruction or flag', () => {
    expect(failure('FROM a\nCOPPY a b\n').hint).toBe('did you mean COPY?');
    expect(failure('FROM a\nCOPY --chmode=1 a b\n').hint).toContain('did you mean --chmod?');
  });
});
