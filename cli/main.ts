#!/usr/bin/env node
import { runCli } from './run.js';

// The one place that touches the process: argv, env, cwd, the standard streams and the exit code.
const code = await runCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  isTty: process.stdout.isTTY === true,
  isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
});
process.exitCode = code;
