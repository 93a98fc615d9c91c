import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

async function run(args: string[], stdin = '', cwd = os.tmpdir()): Promise<{ out: string; error?: Error & { code?: string } }> {
  const { register } = (await import('../../../cli/commands/parse.js')) as {
    register: (p: Command, ctx: import('../../../cli/context.js').CliContext) => void;
  };
  let out = '';
  const stdout = new Writable({
    write(chunk, _enc, cb) {
      out += String(chunk);
      cb();
    },
  });
  const input = new PassThrough();
  input.end(stdin);
  const program = new Command();
  program.exitOverride();
  register(program, { stdin: input, stdout, stderr: stdout, env: {}, cwd, isTty: false });
  try {
    await program.parseAsync(args, { from: 'user' });
    return { out };
  } catch (err) {
    return { out, error: err as Error & { code?: string } };
  }
}

describe('strata parse', () => {
  it('prints typed instructions grouped in stages', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-parse-'));
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'ARG V=1\nFROM alpine:$V AS a\nRUN echo hi\n');
    const { out, error } = await run(['parse'], '', dir).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
    expect(error).toBeUndefined();
    const parsed = JSON.parse(out) as { globalArgs: unknown[]; stages: { name: string; instructions: { kind: string }[] }[] };
    expect(parsed.globalArgs).toHaveLength(1);
    expect(parsed.stages[0]?.name).toBe('a');
    expect(parsed.stages[0]?.instructions.map((i) => i.kind)).toStrictEqual(['RUN']);
  });

  it('prints the raw tree with --ast, reading standard input', async () => {
    const { out } = await run(['parse', '-f', '-', '--ast'], 'FROM a\nENV k=v\nONBUILD RUN x\n');
    expect(JSON.parse(out)).toStrictEqual([
      { cmd: 'from', flags: [], args: ['a'], heredocs: [], line: 1, endLine: 1 },
      { cmd: 'env', flags: [], args: ['k', 'v', '='], heredocs: [], line: 2, endLine: 2 },
      { cmd: 'onbuild', flags: [], args: [{ cmd: 'run', flags: [], args: ['x'], heredocs: [], line: 3, endLine: 3 }], heredocs: [], line: 3, endLine: 3 },
    ]);
  });

  it('fails with the diagnostic as the message', async () => {
    const { error } = await run(['parse', '-'], 'FROM a\nCOPY --nope a b\n');
    expect(error?.code).toBe('E_DOCKERFILE_INSTRUCTION');
    expect(error?.message).toBe('<stdin>:2:6: unknown flag: nope\n  COPY --nope a b\n       ^');
  });

  it('names a missing file', async () => {
    const { error } = await run(['parse', '-f', 'does-not-exist/Dockerfile']);
    expect(error?.code).toBe('E_NOT_FOUND');
    expect(error?.message).toBe('cannot read does-not-exist/Dockerfile: no such file or directory');
  });
});
