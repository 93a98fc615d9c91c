import { StrataError } from '../errors/index.js';
import { expandShellWord, type ShellExpansion } from '../dockerfile/index.js';
import { where, type StageState } from './state.js';

export type WarnFn = (message: string, at?: string) => void;

/**
 * Expands one word against the stage's ARGs and Env, as BuildKit does at dispatch time. Variables
 * referenced but unset are reported once as warnings; `${X:?msg}` failures become errors at the line.
 */
function expansion(state: StageState, word: string, line: number, warn: WarnFn): ShellExpansion {
  try {
    const result = expandShellWord(word, state.metadata().expansionEnv(state.args), { escapeToken: state.escapeToken });
    for (const name of result.unmatched) warn(`variable "${name}" is not set; it expands to an empty string`, where(state, line));
    return result;
  } catch (cause) {
    throw new StrataError('E_EXPANSION', `${where(state, line)}: ${(cause as Error).message}`, { cause });
  }
}

export function expandInStage(state: StageState, word: string, line: number, warn: WarnFn): string {
  return expansion(state, word, line, warn).value;
}

/** Expands and splits into words (EXPOSE, and the like). */
export function expandWordsInStage(state: StageState, word: string, line: number, warn: WarnFn): string[] {
  return expansion(state, word, line, warn).words;
}
