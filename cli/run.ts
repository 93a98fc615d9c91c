import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { isStrataError, removeLeftovers } from '../src/internals.js';
import { apiContext } from './options.js';
import type { CliContext } from './context.js';
import { forTerminal } from './terminal-text.js';
import { register as registerAppend } from './commands/append.js';
import { register as registerBuild } from './commands/build.js';
import { register as registerImages } from './commands/images.js';
import { register as registerInspect } from './commands/inspect.js';
import { register as registerParse } from './commands/parse.js';
import { register as registerPull } from './commands/pull.js';
import { register as registerPush } from './commands/push.js';
import { register as registerLogin } from './commands/login.js';
import { register as registerStore } from './commands/store.js';
import { register as registerRegistryVerbs } from './commands/registry-verbs.js';
import { register as registerExport } from './commands/export.js';
import { register as registerDiff } from './commands/diff.js';
import { register as registerIndex } from './commands/index-create.js';

type Register = (program: Command, ctx: CliContext) => void;
const COMMANDS: readonly Register[] = [
  registerBuild,
  registerAppend,
  registerInspect,
  registerImages,
  registerParse,
  registerPull,
  registerPush,
  registerLogin,
  registerStore,
  registerRegistryVerbs,
  registerExport,
  registerDiff,
  registerIndex,
];

function packageVersion(): string {
  // Works from both cli/ (sources under test) and dist/cli/ (the installed program).
  for (let dir = dirname(fileURLToPath(import.meta.url)), i = 0; i < 4; dir = dirname(dir), i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'strata' && pkg.version) return pkg.version;
    } catch {
      // not here; look one level up
    }
  }
  return '0.0.0';
}

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('strata')
    .description('daemonless OCI image builder')
    .version(packageVersion(), '--version', 'print the version')
    .option('--debug', 'print stack traces of errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    });
  // What killed runs left behind goes before each command's own work (see removeLeftovers).
  program.hook('preAction', async () => {
    await removeLeftovers(apiContext(ctx), ctx.env).catch(() => undefined);
  });
  for (const register of COMMANDS) register(program, ctx);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI and returns the exit code: 0 on success, 1 on failure, 2 on a usage error. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message (or the help / version text).
      return error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : 2;
    }
    const debug = argv.includes('--debug');
    // Interrupted: whatever the work threw on its way out, the signal is the cause.
    if (ctx.signal?.aborted && isStrataError(ctx.signal.reason)) {
      ctx.stderr.write(`strata: ${ctx.signal.reason.message}\n`);
      if (debug && error instanceof Error && error.stack) ctx.stderr.write(`${error.stack}\n`);
      return 1;
    }
    if (isStrataError(error)) {
      ctx.stderr.write(`strata: ${forTerminal(error.message)}\n`);
      if (error.hint) ctx.stderr.write(`hint: ${forTerminal(error.hint)}\n`);
      if (debug && error.stack) ctx.stderr.write(`${error.stack}\n`);
      return error.code === 'E_USAGE' ? 2 : 1;
    }
    const message = error instanceof Error ? error.message : String(error);
    ctx.stderr.write(`strata: internal error: ${forTerminal(message)}\n`);
    if (debug && error instanceof Error && error.stack) ctx.stderr.write(`${error.stack}\n`);
    else ctx.stderr.write('hint: run again with --debug for the stack, and report it\n');
    return 1;
  }
}
