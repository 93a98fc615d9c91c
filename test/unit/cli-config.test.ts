import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configPath, readConfigFile } from '../../cli/config.js';
import type { CliContext } from '../../cli/context.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-config-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const cli = (env: Record<string, string>): CliContext => ({
  stdin: new PassThrough(),
  stdout: new PassThrough(),
  stderr: new PassThrough(),
  env,
  cwd: work,
  isTty: false,
});

describe('the config file', () => {
  it('is found through STRATA_CONFIG, else XDG_CONFIG_HOME, else ~/.config', () => {
    expect(configPath(cli({ STRATA_CONFIG: '/x/c.json', XDG_CONFIG_HOME: '/y' }))).toBe('/x/c.json');
    expect(configPath(cli({ XDG_CONFIG_HOME: '/y' }))).toBe('/y/strata/config.json');
    expect(configPath(cli({ HOME: '/home/u' }))).toBe('/home/u/.config/strata/config.json');
  });

  it('is optional, and when present must be valid', async () => {
    expect(readConfigFile(cli({ STRATA_CONFIG: join(work, 'absent.json') }))).toEqual({});
    await mkdir(join(work, 'strata'), { recursive: true });
    const file = join(work, 'strata', 'config.json');
    await writeFile(file, JSON.stringify({ executor: 'bwrap', insecureRegistries: ['registry.lan:5000'] }));
    expect(readConfigFile(cli({ XDG_CONFIG_HOME: work }))).toEqual({ executor: 'bwrap', insecureRegistries: ['registry.lan:5000'] });
    await writeFile(file, '{ "executor": 3 }');
    expect(() => readConfigFile(cli({ XDG_CONFIG_HOME: work }))).toThrow(/"executor" must be a string/);
    await writeFile(file, '{ nope');
    expect(() => readConfigFile(cli({ XDG_CONFIG_HOME: work }))).toThrow(/config.json: not valid JSON/);
  });
});
